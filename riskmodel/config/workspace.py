"""The station workspace: one folder that holds a station's settings, caps, data, models,
outputs, audit log, signing key and state, all resolved relative to the folder.

Layout made by ``riskmodel init DIR``::

    DIR/
      riskmodel.toml      settings (paths in it are relative to DIR)
      caps.toml           legal caps for plans (documented safe defaults)
      data/               the station's events and effort files
      models/             model registry
      out/                daily outputs, one folder per date
      audit/audit.jsonl   append-only plan audit log
      .riskmodel/         key (0600) and state (default model, audit anchor)

Every command finds its workspace from ``--workspace``, else ``RISKMODEL_WORKSPACE``, else the
nearest ``riskmodel.toml`` upwards from the current folder that declares ``[workspace]``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskmodel.errors import ConfigError

WORKSPACE_FILE = "riskmodel.toml"
MARKER = "[workspace]"
STATE_DIR = ".riskmodel"
KEY_BYTES = 32

CAPS_TOML = """\
# Legal caps for spot-check plans (Schengen Borders Code art. 23; CJEU C-9/16 and C-278/12:
# national rules must limit the intensity, frequency and selectivity of checks).
# Every plan drawn in this workspace respects these caps; a plan that cannot is refused
# unless it is forced with a recorded reason (riskmodel plan/daily --force --reason TEXT).

# Largest chance that one segment is checked in one shift (0 < value <= 1).
per_shift = 0.5
# Largest number of checks of one segment in any 7 and any 30 consecutive days.
max_per_segment_per_7d = 3
max_per_segment_per_30d = 8
# Largest share of the shifts of any 30 days in which one segment is checked.
max_share_of_shifts = 0.1
# Exploration: every segment keeps at least this multiple of the uniform chance N/n.
floor_factor = 0.2
# Length of a check's time slot in hours.
slot_hours = 2.0
"""

CONFIG_TOML = """\
# riskmodel workspace settings. Relative paths are relative to this folder, wherever the
# command runs. `riskmodel config` shows every setting, its value and where it came from.

# The station's data (copy or export your files here):
events = "data/events.csv"
effort = "data/effort.csv"
# Legal caps applied to every plan:
caps = "caps.toml"
# Model registry, daily outputs and the append-only audit log:
models_root = "models"
out_dir = "out"
audit_log = "audit/audit.jsonl"
# How to read the station's exports, for every command (a flag such as --assume-tz wins):
# assume_tz = "Europe/Ljubljana"   # times written without a UTC offset are local times
# dst = "shift"                    # ... and at the DST change: raise|shift|earliest|latest|drop
# encoding = "cp1250"              # else detected
# delimiter = ";"                  # else sniffed
# input_crs = "EPSG:3912"          # CRS of x/y columns (D48/GK), if the export has them
# Other settings (see `riskmodel config`), e.g.:
# timezone = "Europe/Ljubljana"
# shifts = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"

[workspace]
# Marks this folder as a riskmodel workspace.

# [columns]
# Map canonical input columns to your export's names, e.g. timestamp = "DATUM_CAS".
"""


@dataclass(frozen=True)
class Workspace:
    """A station workspace rooted at ``root`` (see the module docs).

    Attributes
    ----------
    root : Path
        The workspace folder (absolute).
    """

    root: Path

    @property
    def config_path(self) -> Path:
        """The workspace's ``riskmodel.toml``."""
        return self.root / WORKSPACE_FILE

    @property
    def state_dir(self) -> Path:
        """Folder of the key and the state (not for users to edit)."""
        return self.root / STATE_DIR

    @property
    def key_path(self) -> Path:
        """The workspace signing key (bundles and audit chain), mode 0600."""
        return self.state_dir / "signing.key"

    @property
    def state_path(self) -> Path:
        """``state.json``: default model and the audit log's anchor."""
        return self.state_dir / "state.json"

    def resolve(self, value: str | os.PathLike[str]) -> Path:
        """A path from the workspace settings, relative to the workspace root."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` lies inside the workspace."""
        r, p = self.root.resolve(), Path(path).resolve()
        return p == r or r in p.parents

    def key(self) -> bytes:
        """The signing key, refusing a key file others can read.

        Raises
        ------
        ConfigError
            Missing key, or a key file readable by group or others.
        """
        try:
            st = self.key_path.stat()
        except FileNotFoundError:
            raise ConfigError(
                "the workspace has no signing key",
                where=str(self.key_path),
                fix=f"run riskmodel init {self.root} (keeps existing files) to create one",
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the signing key is readable by others (mode {stat.filemode(st.st_mode)})",
                where=str(self.key_path),
                fix=f"chmod 600 {self.key_path}",
            )
        text = self.key_path.read_text(encoding="ascii").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(
                "the signing key is not hexadecimal", where=str(self.key_path), fix="restore it"
            ) from None
        if len(key) < 16:
            raise ConfigError(
                "the signing key is too short", where=str(self.key_path), fix="restore it"
            )
        return key

    def read_state(self) -> dict[str, Any]:
        """The workspace state (empty before the first write)."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(
                "the workspace state file is corrupt",
                where=str(self.state_path),
                fix="restore it from a backup; the audit anchor in it protects the log",
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("the workspace state file is corrupt", where=str(self.state_path))
        return data

    def update_state(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the state and write it atomically."""
        from riskmodel.files import atomic_write_json

        state = self.read_state()
        state.update(changes)
        atomic_write_json(self.state_path, state)
        return state


def _declares_workspace(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.strip() == MARKER for line in text.splitlines())


def find_workspace(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Workspace | None:
    """Find the workspace: ``explicit``, else ``RISKMODEL_WORKSPACE``, else the nearest
    ``riskmodel.toml`` with a ``[workspace]`` table upwards from ``cwd``.

    Raises
    ------
    ConfigError
        An explicit or environment workspace that is not a workspace folder.
    """
    env = os.environ if env is None else env
    given, origin = explicit, "--workspace"
    if given is None and env.get("RISKMODEL_WORKSPACE"):
        given, origin = env["RISKMODEL_WORKSPACE"], "RISKMODEL_WORKSPACE"
    if given is not None:
        root = Path(given).expanduser().resolve()
        if not _declares_workspace(root / WORKSPACE_FILE):
            raise ConfigError(
                f"{root} is not a riskmodel workspace (no {WORKSPACE_FILE} with {MARKER})",
                where=origin,
                fix=f"create one with riskmodel init {given}",
            )
        return Workspace(root)
    here = Path(cwd or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _declares_workspace(folder / WORKSPACE_FILE):
            return Workspace(folder)
    return None


def init_workspace(path: str | os.PathLike[str]) -> tuple[Workspace, list[Path]]:
    """Create a workspace at ``path`` (or complete one): folders, documented settings and caps,
    a fresh signing key. Existing files are never overwritten.

    Returns
    -------
    (Workspace, list of Path)
        The workspace and the files or folders created.
    """
    from riskmodel.files import atomic_write_text

    root = Path(path).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder", fix="choose another path")
    cfg = root / WORKSPACE_FILE
    if cfg.exists() and not _declares_workspace(cfg):
        raise ConfigError(
            f"{cfg} exists but is not a workspace configuration",
            where=str(cfg),
            fix=f"add a {MARKER} table to it, or choose another folder",
        )
    ws = Workspace(root)
    made: list[Path] = []
    for d in ("data", "models", "out", "audit", STATE_DIR):
        p = root / d
        if not p.is_dir():
            p.mkdir(parents=True, exist_ok=True)
            made.append(p)
    os.chmod(ws.state_dir, 0o700)
    for p, text in ((cfg, CONFIG_TOML), (root / "caps.toml", CAPS_TOML)):
        if not p.exists():
            atomic_write_text(p, text)
            made.append(p)
    if not ws.key_path.exists():
        # O_EXCL with mode 0600: the key never exists with wider permissions, not even briefly.
        fd = os.open(ws.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        made.append(ws.key_path)
    return ws, made
