"""One typed, frozen settings object, resolved with the precedence
flag > environment variable (``RISKMODEL_*``) > ``riskmodel.toml`` > built-in default.

Every setting is a field of :class:`Settings` (its default is the built-in default); the same
field is read from the TOML key of its name, from ``RISKMODEL_<NAME>`` and from a command-line
flag through :meth:`Settings.with_flags`:

=====================  ===============================  ==============================================
``segment_length_m``   ``RISKMODEL_SEGMENT_LENGTH_M``   segment length in metres (default 1000)
``metric_crs``         ``RISKMODEL_METRIC_CRS``         metric CRS for distances (default EPSG:3794)
``timezone``           ``RISKMODEL_TIMEZONE``           local zone of shifts (default Europe/Ljubljana)
``shifts``             ``RISKMODEL_SHIFTS``             ``name=HH:MM-HH:MM,...`` (default morning 06-14,
                                                        afternoon 14-22, night 22-06)
``models_root``        ``RISKMODEL_MODELS_ROOT``        model registry folder (default ``./models``)
``feature_spec``       ``RISKMODEL_FEATURE_SPEC``       feature-set TOML (default bundled ``default.toml``)
``border``             ``RISKMODEL_BORDER``             border line file (default bundled)
``settlements``        ``RISKMODEL_SETTLEMENTS``        settlements layer (default bundled)
``crossings``          ``RISKMODEL_CROSSINGS``          border crossing points (default bundled)
``corridors``          ``RISKMODEL_CORRIDORS``          route corridors (default bundled)
``areas``              ``RISKMODEL_AREAS``              responsibility areas (default bundled)
``max_distance_m``     ``RISKMODEL_MAX_DISTANCE_M``     events farther from the border are quarantined
                                                        (default 20000)
``audit_log``          ``RISKMODEL_AUDIT_LOG``          append-only plan audit log (default
                                                        ``./plans/audit.jsonl``)
``signing_key``        ``RISKMODEL_SIGNING_KEY``        HMAC key overriding the workspace key (env only:
                                                        never in a file)
``events``             ``RISKMODEL_EVENTS``             the station's events file (workspace default
                                                        ``data/events.csv``)
``effort``             ``RISKMODEL_EFFORT``             the station's patrol log (``data/effort.csv``)
``caps``               ``RISKMODEL_CAPS``               legal caps file (``caps.toml``)
``out_dir``            ``RISKMODEL_OUT_DIR``            daily outputs, one folder per date (``out``)
``database``           ``RISKMODEL_DATABASE``           PostgreSQL/PostGIS connection: a libpq URI
                                                        (``postgresql://user@host:port/db``) or
                                                        ``service=NAME``; passwords belong in the
                                                        environment or ``.pgpass``, never here
``db_schema``          ``RISKMODEL_DB_SCHEMA``          schema for published layers and the audit
                                                        table (default ``riskmodel``)
``audit_store``        ``RISKMODEL_AUDIT_STORE``        ``file`` (the JSONL ``audit_log``, default) or
                                                        ``database`` (the audit table in ``database``)
``events_table``       ``RISKMODEL_EVENTS_TABLE``       read events from this ``schema.table`` of
                                                        ``database`` (or of an ``events`` URI)
``events_sql``         ``RISKMODEL_EVENTS_SQL``         ... or from this ``SELECT``
``effort_table``       ``RISKMODEL_EFFORT_TABLE``       read the patrol log from this table
``effort_sql``         ``RISKMODEL_EFFORT_SQL``         ... or from this ``SELECT``
=====================  ===============================  ==============================================

Paths: a relative path in a settings file is relative to that file's folder (in a workspace:
the workspace root), never to the current folder; a relative path from the environment or a
flag is relative to the current folder, as a user typed it.

Workspace: ``--workspace DIR``, else ``RISKMODEL_WORKSPACE``, else the nearest
``riskmodel.toml`` upwards that has a ``[workspace]`` table (see
:mod:`riskmodel.config.workspace`). Inside a workspace its ``riskmodel.toml`` is the settings
file and the path settings default to the workspace's own folders.

Checked when settings are made (file, environment or flag), each failure one
:class:`~riskmodel.errors.ConfigError` naming the setting and its source:
``segment_length_m`` within 50 m .. 20 km (shorter segments multiply memory for no real
resolution, longer ones blur whole river bends); ``max_distance_m`` positive; ``metric_crs``
a projected CRS in metres (a geographic CRS would take degrees for metres); ``timezone`` a
known IANA zone; ``shifts`` a valid definition whose shifts tile the 24 h day without gap or
overlap (events in a gap would fall into no shift and vanish).

A ``[columns]`` table maps canonical input columns to a user's names, e.g.
``timestamp = "DATUM_CAS"``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskmodel.config.dsn import is_database, mask_password
from riskmodel.config.workspace import MARKER, Workspace, find_workspace
from riskmodel.errors import ConfigError

DEFAULT_SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"
SEGMENT_LENGTH_RANGE_M = (50.0, 20000.0)


def _setting(default: Any, *, env_only: bool = False, secret: bool = False) -> Any:
    """A settings field: ``default`` is the built-in default and fixes the type."""
    return field(
        default=default,
        repr=not secret,
        metadata={"setting": True, "env_only": env_only, "secret": secret},
    )


@dataclass(frozen=True)
class Settings:
    """Effective configuration and where each value came from.

    Attributes
    ----------
    segment_length_m, metric_crs, timezone, shifts, models_root, feature_spec, border,
    settlements, crossings, corridors, areas, max_distance_m, audit_log, signing_key
        The settings (see the module documentation); empty strings mean "bundled default".
    sources : dict
        Setting -> ``"default"``, ``"file:<path>"``, ``"env:<NAME>"`` or ``"flag"``.
    columns : dict
        Canonical column name -> user's column name (from ``[columns]``; flags add to it).
    config_path : Path or None
        The TOML file read, if any.
    """

    segment_length_m: float = _setting(1000.0)
    metric_crs: str = _setting("EPSG:3794")
    timezone: str = _setting("Europe/Ljubljana")
    shifts: str = _setting(DEFAULT_SHIFTS)
    models_root: str = _setting("models")
    feature_spec: str = _setting("")
    border: str = _setting("")
    settlements: str = _setting("")
    crossings: str = _setting("")
    corridors: str = _setting("")
    areas: str = _setting("")
    max_distance_m: float = _setting(20000.0)
    audit_log: str = _setting("plans/audit.jsonl")
    signing_key: str = _setting("", env_only=True, secret=True)
    events: str = _setting("")
    effort: str = _setting("")
    caps: str = _setting("")
    out_dir: str = _setting("")
    database: str = _setting("", secret=True)
    db_schema: str = _setting("riskmodel")
    audit_store: str = _setting("file")
    events_table: str = _setting("")
    events_sql: str = _setting("")
    effort_table: str = _setting("")
    effort_sql: str = _setting("")
    assume_tz: str = _setting("")
    dst: str = _setting("")
    encoding: str = _setting("")
    delimiter: str = _setting("")
    input_crs: str = _setting("")
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    columns: dict[str, str] = field(default_factory=dict, hash=False)
    config_path: Path | None = None
    workspace: Workspace | None = None

    def __post_init__(self) -> None:
        # Every setting has a source; a bare Settings() is all defaults.
        sources = {key: "default" for key in SETTING_NAMES} | dict(self.sources)
        object.__setattr__(self, "sources", sources)
        _check(self)

    def with_flags(self, **flags: Any) -> Settings:
        """Return a copy where non-``None`` flags override everything else."""
        changes: dict[str, Any] = {}
        for key, val in flags.items():
            if val is None:
                continue
            if key not in SETTING_NAMES:
                raise ConfigError(f"unknown setting {key!r}")
            changes[key] = _coerce(key, val, "flag")
        if not changes:
            return self
        sources = dict(self.sources) | dict.fromkeys(changes, "flag")
        return dataclasses.replace(self, sources=sources, columns=dict(self.columns), **changes)

    def key(self) -> bytes | None:
        """The signing key: ``RISKMODEL_SIGNING_KEY`` if set, else the workspace key, else
        ``None`` (no workspace: bundles and the audit chain cannot be signed)."""
        if self.signing_key:
            return self.signing_key.encode()
        return self.workspace.key() if self.workspace is not None else None

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (key, value, source) for ``riskmodel config``; secrets are masked."""
        rows = []
        for f in _FIELDS:
            val = getattr(self, f.name)
            if f.metadata["secret"] and not is_database(str(val)):
                shown = "***" if val else ""
            else:  # a connection string shows where it goes, with its password masked
                shown = mask_password(str(val))
            rows.append((f.name, shown, self.sources[f.name]))
        for canon, user in sorted(self.columns.items()):
            rows.append((f"columns.{canon}", user, f"file:{self.config_path}"))
        if self.workspace is not None:
            rows.insert(0, ("workspace", str(self.workspace.root), self.sources["workspace"]))
        return rows


_FIELDS = tuple(f for f in dataclasses.fields(Settings) if f.metadata.get("setting"))
# Settings that name files or folders (resolved against the settings file's folder).
PATH_SETTINGS = (
    "models_root",
    "feature_spec",
    "border",
    "settlements",
    "crossings",
    "corridors",
    "areas",
    "audit_log",
    "events",
    "effort",
    "caps",
    "out_dir",
)
# Inside a workspace, path settings the file leaves out default to the workspace's folders.
WORKSPACE_DEFAULTS = {
    "models_root": "models",
    "audit_log": "audit/audit.jsonl",
    "events": "data/events.csv",
    "effort": "data/effort.csv",
    "caps": "caps.toml",
    "out_dir": "out",
}
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in _FIELDS)
_BY_NAME = {f.name: f for f in _FIELDS}


def _coerce(key: str, value: Any, source: str) -> Any:
    typ = type(_BY_NAME[key].default)
    try:
        if typ is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {key!r} from {source} must be a number, got {value!r}",
            fix=f"set {key} to a number",
        ) from None


def _check(s: Settings) -> None:
    """Refuse settings that would silently change what a run means (see the module doc)."""

    def bad(key: str, what: str, fix: str) -> ConfigError:
        src = s.sources.get(key, "default")
        return ConfigError(f"setting {key} {what} (from {src})", fix=fix)

    lo, hi = SEGMENT_LENGTH_RANGE_M
    if not lo <= s.segment_length_m <= hi:
        raise bad(
            "segment_length_m",
            f"= {s.segment_length_m:g} is outside {lo:g} .. {hi:g} m",
            "use a length in that range (default 1000)",
        )
    if not s.max_distance_m > 0:
        raise bad("max_distance_m", f"= {s.max_distance_m:g} is not positive", "use e.g. 20000")
    why = _crs_problem(s.metric_crs)
    if why:
        raise bad("metric_crs", f"= {s.metric_crs!r} {why}", "use a metric CRS such as EPSG:3794")
    if not _zone_ok(s.timezone):
        raise bad(
            "timezone",
            f"= {s.timezone!r} is not a known time zone",
            "use an IANA zone such as Europe/Ljubljana",
        )
    if s.audit_store not in {"file", "database"}:
        raise bad(
            "audit_store", f"= {s.audit_store!r} is neither 'file' nor 'database'", "use file"
        )
    if s.audit_store == "database" and not s.database:
        raise bad("audit_store", "= 'database' but no database is set", "set database too")
    why = _shifts_problem(s.shifts)
    if why:
        raise bad("shifts", f"= {s.shifts!r}: {why}", f"e.g. {DEFAULT_SHIFTS}")
    _check_reader_defaults(s, bad)


#: Reader settings -> reader keyword: what a station's export always needs (naive local
#: times, an encoding, a grid) given once in riskmodel.toml instead of on every command;
#: ``daily`` has no reader flags at all. A flag overrides the setting.
READER_SETTINGS = {
    "assume_tz": "assume_tz",
    "dst": "dst",
    "encoding": "encoding",
    "delimiter": "delimiter",
    "input_crs": "crs",
}


def _check_reader_defaults(s: Settings, bad: Any) -> None:
    import codecs

    from riskmodel.config.reading import DST_POLICIES, normalise_delimiter

    if s.assume_tz and not _zone_ok(s.assume_tz):
        raise bad(
            "assume_tz", f"= {s.assume_tz!r} is not a known time zone", "e.g. Europe/Ljubljana"
        )
    if s.dst and s.dst not in DST_POLICIES:
        raise bad(
            "dst", f"= {s.dst!r} is not a DST policy", f"use one of {', '.join(DST_POLICIES)}"
        )
    if s.encoding:
        try:
            codecs.lookup(s.encoding)
        except LookupError:
            raise bad(
                "encoding", f"= {s.encoding!r} is not a known encoding", "e.g. cp1250"
            ) from None
    if s.delimiter:
        try:
            normalise_delimiter(s.delimiter)
        except ConfigError:
            raise bad(
                "delimiter", f"= {s.delimiter!r} is not one character", "use , ; tab or |"
            ) from None
    if s.input_crs:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(s.input_crs)
        except CRSError:
            raise bad(
                "input_crs", f"= {s.input_crs!r} is not a known CRS", "e.g. EPSG:3912"
            ) from None


@functools.lru_cache(maxsize=32)
def _crs_problem(crs: str) -> str | None:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS.from_user_input(crs)
    except CRSError:
        return "is not a known CRS"
    units = {a.unit_name for a in c.axis_info}
    if not c.is_projected or not units <= {"metre", "meter"}:
        return "is not a projected CRS in metres"
    return None


@functools.lru_cache(maxsize=32)
def _zone_ok(tz: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=32)
def _shifts_problem(spec: str) -> str | None:
    """Why the shifts do not tile the day (events in a gap would fall into no shift)."""
    from riskmodel.config.shifts import parse_shifts

    try:
        shifts = parse_shifts(spec)
    except ConfigError as exc:
        return exc.what
    minutes = []
    for sh in shifts:
        start, end = sh.start.hour * 60 + sh.start.minute, sh.end.hour * 60 + sh.end.minute
        minutes.append((start, (end - start) % 1440 or 1440))
    minutes.sort()
    total = sum(length for _, length in minutes)
    for (s0, n0), (s1, _) in zip(minutes, minutes[1:] + [(minutes[0][0] + 1440, 0)], strict=True):
        if s0 + n0 != s1:
            gap = "a gap" if s0 + n0 < s1 else "an overlap"
            at = (s0 + n0) % 1440
            return f"the shifts leave {gap} at {at // 60:02d}:{at % 60:02d}"
    if total != 1440:
        return "the shifts do not cover the 24 h day exactly"
    return None


def _config_path(config: str | os.PathLike[str] | None, env: dict[str, str]) -> Path | None:
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(
                f"configuration file not found: {path}", fix="check the --config path"
            )
        return path
    if env.get("RISKMODEL_CONFIG"):
        path = Path(env["RISKMODEL_CONFIG"])
        if not path.is_file():
            raise ConfigError(
                f"configuration file not found: {path} (from RISKMODEL_CONFIG)",
                fix="fix or unset RISKMODEL_CONFIG",
            )
        return path
    return Path("riskmodel.toml") if Path("riskmodel.toml").is_file() else None


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings and ``[columns]`` of a TOML file, checked."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid TOML: {exc}", where=str(path), fix="fix the syntax") from None
    cols = data.pop("columns", {})
    if not isinstance(cols, dict):
        raise ConfigError("[columns] must be a table", where=str(path))
    if not isinstance(data.pop(MARKER.strip("[]"), {}), dict):
        raise ConfigError(f"{MARKER} must be a table", where=str(path))
    values: dict[str, Any] = {}
    for key, val in data.items():
        if key not in _BY_NAME:
            raise ConfigError(
                f"unknown setting {key!r}",
                where=str(path),
                fix=f"use one of: {', '.join(sorted(SETTING_NAMES))}",
            )
        if _BY_NAME[key].metadata["env_only"]:
            raise ConfigError(
                f"{key} may only come from the environment",
                where=str(path),
                fix=f"remove it from the file and set RISKMODEL_{key.upper()}",
            )
        values[key] = _coerce(key, val, str(path))
    return values, {str(k): str(v) for k, v in cols.items()}


def _resolve_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative path settings of a file, made absolute against ``base``."""
    out = dict(values)
    for key in PATH_SETTINGS:
        v = out.get(key)
        if is_database(v):  # events/effort may name a database: not a path
            continue
        if v and not Path(str(v)).expanduser().is_absolute():
            out[key] = str(base / str(v))
        elif v:
            out[key] = str(Path(str(v)).expanduser())
    return out


def load_settings(
    config: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    workspace: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve settings from the workspace or a file and the environment (flags are applied
    with :meth:`Settings.with_flags`).

    Parameters
    ----------
    config : path-like, optional
        TOML file; default the workspace's ``riskmodel.toml``, else ``RISKMODEL_CONFIG``, else
        ``./riskmodel.toml`` if it exists.
    env : dict, optional
        Environment to read (default ``os.environ``).
    workspace : path-like, optional
        The workspace folder (``--workspace``); default ``RISKMODEL_WORKSPACE`` or the nearest
        workspace upwards from ``cwd``.
    cwd : path-like, optional
        Folder the search starts from (default the current folder).

    Returns
    -------
    Settings
    """
    env = dict(os.environ) if env is None else env
    ws = find_workspace(workspace, env=env, cwd=cwd)
    path = _config_path(config, env) if (config is not None or ws is None) else ws.config_path
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    columns: dict[str, str] = {}
    if ws is not None and path is not None and path.resolve().parent != ws.root:
        ws = None  # an explicit --config elsewhere wins over the workspace found
    if ws is not None:
        values = _resolve_paths(WORKSPACE_DEFAULTS, ws.root)
        sources = dict.fromkeys(values, f"workspace:{ws.root}")
    if path is not None:
        file_values, columns = _read_file(path)
        values.update(_resolve_paths(file_values, path.resolve().parent))
        sources.update(dict.fromkeys(file_values, f"file:{path}"))
    for key in SETTING_NAMES:
        name = f"RISKMODEL_{key.upper()}"
        if env.get(name, "") != "":
            values[key] = _coerce(key, env[name], name)
            sources[key] = f"env:{name}"
    if ws is not None:
        origin = (
            "--workspace"
            if workspace
            else ("env:RISKMODEL_WORKSPACE" if env.get("RISKMODEL_WORKSPACE") else "found upwards")
        )
        sources["workspace"] = origin
    return Settings(**values, sources=sources, columns=columns, config_path=path, workspace=ws)
