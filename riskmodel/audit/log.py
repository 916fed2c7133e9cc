"""The append-only, keyed, anchored plan audit log as a JSON-lines file (the file store).

Every plan made by ``riskmodel plan`` (:func:`riskmodel.api.run_plan`) appends one JSON line to
the audit log. Lines are never rewritten. Each line carries ``seq``, ``prev`` and ``mac``: the
keyed chain of :mod:`riskmodel.audit.chain`, shared with the database store
(:mod:`riskmodel.audit.dbstore`).

The chain's end is anchored *outside* the log: the workspace state holds
``audit: {seq, head, log}`` (updated under the log lock after every append). :func:`read_log`
verifies every MAC, the ``seq`` contiguity and that the log reaches its anchor, so truncation,
deletion, rewriting (even with the chain recomputed) and forged appends are all found.

Recovery is recorded, never silent: a ``"segment"`` entry starts a new chain after a damaged
stretch (``riskmodel plan --new-log-segment --reason``), a ``"repair"`` entry records the bytes
of a torn last line moved to a quarantine file (``riskmodel audit --repair --reason``).
Plan lines follow the typed schema :class:`PlanEntry`, checked when written and when read.

The log is the single source of truth for the frequency caps (counted by the rules of
:mod:`riskmodel.planning.caps` from its executed checks) and for the compliance numbers
(METHODOLOGY.md, sections 4.1 and 4.8).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from riskmodel.audit.chain import (
    CHAIN_HMAC,
    CHAIN_SHA,
    REPAIR_TYPE,
    SEGMENT_TYPE,
    UNKEYED_NOTE,
    LogIntegrity,
    Record,
    encode_entry,
    entry_mac,
    entry_sha256,
    verify_records,
)
from riskmodel.audit.entry import PlanEntry
from riskmodel.audit.store import AuditStore
from riskmodel.config.workspace import Workspace
from riskmodel.errors import InputError, OutputError

try:  # POSIX advisory locks; on other systems the log is used unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_LOCK_TIMEOUT_S = 60.0

__all__ = [
    "CHAIN_HMAC",
    "CHAIN_SHA",
    "REPAIR_TYPE",
    "SEGMENT_TYPE",
    "UNKEYED_NOTE",
    "AuditLog",
    "LogIntegrity",
    "PlanEntry",
    "anchor_of",
    "append_entry",
    "encode_entry",
    "entry_mac",
    "entry_sha256",
    "read_log",
    "workspace_anchor",
]


def read_log(
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    anchor: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], LogIntegrity]:
    """Read every entry of an audit log and verify its chain and anchor.

    Parameters
    ----------
    path : path-like
        JSON-lines audit log. A missing file is an empty log.
    key : bytes, optional
        The signing key (``settings.key()``); without it only the unkeyed sha256 chain is
        verified.
    anchor : mapping, optional
        ``{"seq", "head"}`` from the workspace state: where the log must end.

    Returns
    -------
    entries : list of dict
        Every valid entry in file order (also those of a broken chain: the integrity says
        whether they can be trusted); each gets ``_line`` (1-based line number).
    integrity : LogIntegrity
    """
    p = Path(path)
    try:
        data = p.read_bytes() if p.exists() else b""
    except OSError as exc:
        raise InputError(f"cannot read audit log: {exc.strerror or exc}", where=str(p)) from None
    ends_newline = not data or data.endswith(b"\n")
    pieces = data.split(b"\n")
    records = (
        Record(n, raw, torn_ok=n == len(pieces) and not ends_newline)
        for n, raw in enumerate(pieces, start=1)
        if raw.strip()
    )
    entries, integ = verify_records(records, key=key, anchor=anchor)
    integ.ends_newline = ends_newline
    if integ.problems:
        log.warning("audit log %s: %s", p, integ.why)
    return entries, integ


def anchor_of(workspace: Workspace | None, path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The workspace anchor ``{seq, head, log}`` if it belongs to the log at ``path``."""
    if workspace is None:
        return None
    a = workspace.read_state().get("audit")
    if not isinstance(a, dict):
        return None
    return a if _same_path(a.get("log"), path, workspace) else None


def workspace_anchor(workspace: Workspace | None) -> dict[str, Any] | None:
    """The workspace anchor ``{seq, head, log}`` whatever log it belongs to."""
    if workspace is None:
        return None
    a = workspace.read_state().get("audit")
    return a if isinstance(a, dict) and a.get("seq") else None


def anchored_log(workspace: Workspace, anchor: dict[str, Any]) -> Path:
    """The log file an anchor names: stored relative to the workspace root when the log lies
    inside it, so a workspace that is moved or restored elsewhere keeps its anchor."""
    return workspace.resolve(str(anchor.get("log", "")))


def _same_path(a: Any, b: str | os.PathLike[str], workspace: Workspace | None = None) -> bool:
    if not a:
        return False
    pa = workspace.resolve(str(a)) if workspace is not None else Path(str(a)).expanduser()
    return pa.resolve() == Path(b).expanduser().resolve()


class AuditLog(AuditStore):
    """Exclusive, append-only handle on an audit log file (use as a context manager).

    Holding the handle locks the log (POSIX ``flock``) so that reading the history, planning,
    appending and moving the anchor happen atomically with respect to other planners.

    Parameters
    ----------
    path : path-like
        The JSON-lines log; created (with its folder) if missing.
    timeout : float
        Seconds to wait for another planner holding the lock.
    key : bytes, optional
        Signing key of the chain (``settings.key()``); ``None``: unkeyed sha256 chain.
    workspace : Workspace, optional
        Holds the anchor; without one the log has no anchor.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        timeout: float = _LOCK_TIMEOUT_S,
        *,
        key: bytes | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        super().__init__(key=key, workspace=workspace)
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> AuditLog:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: every write goes to the end, existing bytes are never touched.
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot open audit log for appending: {exc.strerror or exc}",
                where=str(self.path),
                fix="check the --audit-log path and its permissions",
            ) from None
        if fcntl is not None:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(self._fd)
                        self._fd = None
                        raise OutputError(
                            "audit log is locked by another riskmodel run",
                            where=str(self.path),
                            fix="wait for the other plan to finish and run again",
                        ) from None
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if fcntl is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None

    @property
    def where(self) -> str:
        """The log's path."""
        return str(self.path)

    @property
    def anchor(self) -> dict[str, Any] | None:
        """The workspace anchor of this log, if any."""
        return anchor_of(self.workspace, self.path)

    def anchor_value(self, seq: int, head: str) -> dict[str, Any]:
        """``{seq, head, log}``: the log's path relative to the workspace root when it lies
        inside the workspace (a moved workspace keeps its anchor), else absolute."""
        path = self.path.resolve()
        ws = self.workspace
        if ws is not None and ws.contains(path):
            return {"seq": seq, "head": head, "log": path.relative_to(ws.root.resolve()).as_posix()}
        return {"seq": seq, "head": head, "log": str(path)}

    def read(self) -> tuple[list[dict[str, Any]], LogIntegrity]:
        """Entries and integrity of the log (see :func:`read_log`)."""
        entries, self.integrity = read_log(self.path, key=self.key, anchor=self.anchor)
        return entries, self.integrity

    def _check_open(self, what: str) -> None:
        if self._fd is None:
            raise RuntimeError(f"AuditLog.{what} outside of 'with'")

    def _write(self, entry: dict[str, Any], text: bytes) -> None:
        """Append one line and fsync; a failed write is cut back off the file, so a full disk
        leaves no partial line."""
        assert self._fd is not None and self.integrity is not None
        size = os.fstat(self._fd).st_size
        payload = (b"" if self.integrity.ends_newline else b"\n") + text + b"\n"
        try:
            written = os.write(self._fd, payload)
            if written != len(payload):
                raise OSError(28, "short write")
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)  # no partial line stays behind
                os.fsync(self._fd)
            raise OutputError(
                f"cannot append to audit log: {exc.strerror or exc}",
                where=str(self.path),
                fix="free disk space / fix permissions; the plan was NOT recorded, do not use it",
            ) from None

    def _move_anchor(self, entry: Mapping[str, Any]) -> None:
        """Record the new chain end in the workspace state (if the log is the workspace's)."""
        if self.workspace is None:
            return
        current = workspace_anchor(self.workspace)
        if current and not _same_path(current.get("log"), self.path, self.workspace):
            if entry.get("type") != SEGMENT_TYPE:
                return  # another log than the anchored one: only a recorded segment moves it
        super()._move_anchor(entry)

    def repair_torn_tail(self, reason: str, by: str | None = None) -> dict[str, Any]:
        """Move a torn last line to ``<log>.torn-<sha12>`` and append a ``repair`` entry.

        Raises
        ------
        InputError
            The last line is not torn (nothing to repair).
        """
        self._check_open("repair_torn_tail")
        _, integ = self.read()
        if not integ.torn_tail:
            raise InputError(
                "the audit log's last line is not torn: nothing to repair",
                where=str(self.path),
                fix="a broken chain is recorded with 'riskmodel plan --new-log-segment --reason'",
            )
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        torn = data[cut:]
        sha = hashlib.sha256(torn).hexdigest()
        quarantine = self.path.with_name(f"{self.path.name}.torn-{sha[:12]}")
        from riskmodel.files import atomic_write_with

        atomic_write_with(quarantine, lambda tmp: tmp.write_bytes(torn))
        os.ftruncate(self._fd, cut)
        os.fsync(self._fd)
        self.read()
        return self.append(
            {
                "type": REPAIR_TYPE,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "reason": reason,
                "by": by,
                "quarantine": quarantine.name,
                "torn_sha256": sha,
                "torn_bytes": len(torn),
            }
        )


def append_entry(
    path: str | os.PathLike[str],
    entry: Mapping[str, Any] | PlanEntry,
    *,
    key: bytes | None = None,
    workspace: Workspace | None = None,
) -> dict[str, Any]:
    """Append one entry to the log at ``path`` (locks, chains, fsyncs). See :class:`AuditLog`."""
    with AuditLog(path, key=key, workspace=workspace) as alog:
        return alog.append(entry)
