"""The append-only, hash-chained plan audit log.

Every plan made by ``riskmodel plan`` (:func:`riskmodel.api.run_plan`) appends one JSON line to
the audit log. Lines are never rewritten: each entry carries ``prev_sha256``, the sha256 of the
previous raw line, so any later edit, deletion or reordering breaks the chain and shows up in
the compliance report (:mod:`riskmodel.audit.report`). Plan lines follow the typed schema
:class:`PlanEntry`, checked when they are written and when they are read.

The log is the single source of truth for the frequency caps (counted by the rules of
:mod:`riskmodel.planning.caps` from its executed checks) and for the compliance numbers
(METHODOLOGY.md, sections 4.1 and 4.8).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from riskmodel.errors import InputError, OutputError
from riskmodel.planning.caps import PLAN_ENTRY_TYPE

try:  # POSIX advisory locks; on other systems the log is used unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_LOCK_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------------------------
# Entry schema
# ---------------------------------------------------------------------------------------------

_STR, _INT, _NUM, _DICT, _LIST, _STRS = "str", "int", "number", "dict", "list", "strs"
_KIND_TEXT = {
    _STR: "a string",
    _INT: "a whole number",
    _NUM: "a number",
    _DICT: "an object",
    _LIST: "a list",
    _STRS: "a list of strings",
}


def _is(kind: str, v: Any) -> bool:
    if kind == _STR:
        return isinstance(v, str)
    if kind == _INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == _NUM:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind == _DICT:
        return isinstance(v, dict)
    if kind == _LIST:
        return isinstance(v, list)
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


@dataclass(frozen=True)
class PlanEntry:
    """One plan in the audit log: the typed schema of a ``"type": "plan"`` line.

    :meth:`from_dict` validates a dict (as read from the log, or as made by
    :meth:`riskmodel.planning.plan.Plan.audit_entry`) and :meth:`to_dict` gives it back
    unchanged: the same keys, so the line written is the line planned. :class:`AuditLog`
    validates every plan entry it appends and :func:`read_log` every plan line it reads.
    Only ``plan_id``, ``date``, ``shift`` and ``chosen`` are required (what the caps count);
    the other fields are checked when present. Keys the schema does not know are kept in
    ``extra``. METHODOLOGY.md, section 4.8, lists what a plan entry records.
    """

    plan_id: str
    date: str
    shift: str
    chosen: list[str]
    type: str = PLAN_ENTRY_TYPE
    schema: int | None = None
    created: str | None = None
    software: str | None = None
    model_id: str | None = None
    risk_file: str | None = None
    risk_sha256: str | None = None
    shift_start: str | None = None
    shift_end: str | None = None
    units: int | None = None
    units_requested: int | None = None
    units_per_area: dict[str, int] | None = None
    seed: int | None = None
    rng: str | None = None
    caps: dict[str, Any] | None = None
    coverage: dict[str, float] | None = None
    expected: dict[str, float] | None = None
    areas: dict[str, list[str]] | None = None
    blocked: dict[str, str] | None = None
    exploration_lost: list[str] | None = None
    overrides: dict[str, Any] | None = None
    entropy: float | None = None
    max_inclusion: float | None = None
    checks: list[dict[str, Any]] | None = None
    expected_detections: float | None = None
    topk_expected_detections: float | None = None
    stats: dict[str, Any] | None = None
    warnings: list[str] | None = None
    supersedes: list[str] | None = None
    prev_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Schema fields present in the source dict (``None``: all of them).
    present: frozenset[str] | None = field(default=None, repr=False, compare=False)

    #: Kind of every schema field; the first four are required and never null.
    KINDS: ClassVar[dict[str, str]] = {
        "plan_id": _STR,
        "date": _STR,
        "shift": _STR,
        "chosen": _STRS,
        "type": _STR,
        "schema": _INT,
        "created": _STR,
        "software": _STR,
        "model_id": _STR,
        "risk_file": _STR,
        "risk_sha256": _STR,
        "shift_start": _STR,
        "shift_end": _STR,
        "units": _INT,
        "units_requested": _INT,
        "units_per_area": _DICT,
        "seed": _INT,
        "rng": _STR,
        "caps": _DICT,
        "coverage": _DICT,
        "expected": _DICT,
        "areas": _DICT,
        "blocked": _DICT,
        "exploration_lost": _STRS,
        "overrides": _DICT,
        "entropy": _NUM,
        "max_inclusion": _NUM,
        "checks": _LIST,
        "expected_detections": _NUM,
        "topk_expected_detections": _NUM,
        "stats": _DICT,
        "warnings": _STRS,
        "supersedes": _STRS,
        "prev_sha256": _STR,
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("plan_id", "date", "shift", "chosen")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanEntry:
        """Validate a plan entry dict; keys starting with ``_`` (e.g. ``_line``) are ignored.

        Parameters
        ----------
        data : mapping
            The entry.

        Returns
        -------
        PlanEntry

        Raises
        ------
        InputError
            Not a plan entry, a required field missing, or a field of the wrong type.
        """
        d = {k: v for k, v in data.items() if not str(k).startswith("_")}
        if d.get("type") != PLAN_ENTRY_TYPE:
            raise InputError(f"audit entry type {d.get('type')!r} is not {PLAN_ENTRY_TYPE!r}")
        for name in cls.REQUIRED:
            if d.get(name) is None:
                raise InputError(f"plan entry lacks {name}")
        for name, kind in cls.KINDS.items():
            if name in d and d[name] is not None and not _is(kind, d[name]):
                raise InputError(
                    f"plan entry field {name} must be {_KIND_TEXT[kind]} (got {d[name]!r:.60})"
                )
        try:
            dt.date.fromisoformat(d["date"])
        except ValueError:
            raise InputError(f"plan entry date {d['date']!r} is not YYYY-MM-DD") from None
        known = {k: v for k, v in d.items() if k in cls.KINDS}
        extra = {k: v for k, v in d.items() if k not in cls.KINDS}
        return cls(**known, extra=extra, present=frozenset(known))

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict: the fields present in the source, then ``extra``."""
        keys = self.KINDS if self.present is None else self.present
        out = {k: getattr(self, k) for k in self.KINDS if k in keys}
        out.update(self.extra)
        return out


# ---------------------------------------------------------------------------------------------
# Log reading / appending
# ---------------------------------------------------------------------------------------------


def _line_sha(raw: bytes) -> str:
    """sha256 of one raw line without its line end (what ``prev_sha256`` chains to)."""
    return hashlib.sha256(raw.rstrip(b"\r\n")).hexdigest()


def encode_entry(entry: Mapping[str, Any]) -> bytes:
    """Serialise one entry as a single deterministic JSON line (no trailing newline)."""
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


@dataclass
class LogIntegrity:
    """What :func:`read_log` found besides the entries.

    Attributes
    ----------
    lines : int
        Non-empty lines in the file.
    corrupt_lines : list of int
        1-based numbers of lines that are not valid JSON objects (e.g. a write cut by a crash)
        or plan lines that break the :class:`PlanEntry` schema.
    chain_breaks : list of int
        1-based numbers of lines whose ``prev_sha256`` does not match the previous line: the
        log was edited, truncated or reordered.
    last_sha256 : str or None
        sha256 of the last line (what the next entry chains to).
    """

    lines: int = 0
    corrupt_lines: list[int] = field(default_factory=list)
    chain_breaks: list[int] = field(default_factory=list)
    last_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """True when no line is corrupt and the hash chain is intact."""
        return not self.corrupt_lines and not self.chain_breaks


def read_log(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], LogIntegrity]:
    """Read every entry of an audit log and verify its hash chain.

    Parameters
    ----------
    path : path-like
        JSON-lines audit log. A missing file is an empty log.

    Returns
    -------
    entries : list of dict
        Valid entries in file order; each gets ``_line`` (1-based line number).
    integrity : LogIntegrity
        Corrupt lines and hash-chain breaks.
    """
    p = Path(path)
    integ = LogIntegrity()
    if not p.exists():
        return [], integ
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read audit log: {exc.strerror or exc}", where=str(p)) from None
    entries: list[dict[str, Any]] = []
    prev_sha: str | None = None
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        integ.lines += 1
        sha = _line_sha(raw)
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError
        except ValueError:
            integ.corrupt_lines.append(lineno)
            prev_sha = sha
            continue
        if obj.get("type") == PLAN_ENTRY_TYPE:
            try:
                PlanEntry.from_dict(obj)
            except InputError as exc:
                log.warning("audit log %s line %d: %s", p, lineno, exc.what)
                integ.corrupt_lines.append(lineno)
                prev_sha = sha
                continue
        if obj.get("prev_sha256") != prev_sha:
            integ.chain_breaks.append(lineno)
        obj["_line"] = lineno
        entries.append(obj)
        prev_sha = sha
    integ.last_sha256 = prev_sha
    if integ.corrupt_lines:
        log.warning(
            "audit log %s has %d corrupt line(s): %s",
            p,
            len(integ.corrupt_lines),
            integ.corrupt_lines[:5],
        )
    if integ.chain_breaks:
        log.warning("audit log %s hash chain broken at line(s) %s", p, integ.chain_breaks[:5])
    return entries, integ


def _tail_state(fd: int) -> tuple[str | None, bool]:
    """sha256 of the last non-empty line and whether the file ends with a newline."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    chunk = 1 << 16
    buf = b""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        stripped = buf.rstrip(b"\n")
        if b"\n" in stripped or pos == 0:
            break
    ends_nl = buf.endswith(b"\n")
    stripped = buf.rstrip(b"\n")
    if not stripped.strip():
        return None, ends_nl
    return _line_sha(stripped.rsplit(b"\n", 1)[-1]), ends_nl


class AuditLog:
    """Exclusive, append-only handle on an audit log (use as a context manager).

    Holding the handle locks the log (POSIX ``flock``) so that reading the history, planning
    and appending happen atomically with respect to other planners: two runs cannot both see
    room under a cap and both use it.

    Parameters
    ----------
    path : path-like
        The JSON-lines log; created (with its folder) if missing.
    timeout : float
        Seconds to wait for another planner holding the lock.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = _LOCK_TIMEOUT_S) -> None:
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

    def read(self) -> tuple[list[dict[str, Any]], LogIntegrity]:
        """Entries and integrity of the log (see :func:`read_log`)."""
        return read_log(self.path)

    def append(self, entry: Mapping[str, Any] | PlanEntry) -> dict[str, Any]:
        """Append one entry (adds ``prev_sha256``), fsync, and return the entry as written.

        Parameters
        ----------
        entry : mapping or PlanEntry
            The entry; plan entries are validated against :class:`PlanEntry` first, keys
            starting with ``_`` are dropped.

        Returns
        -------
        dict
            The entry as written.

        Raises
        ------
        InputError
            A plan entry breaks the schema (nothing is written).
        OutputError
            The line cannot be written (the plan was not recorded).
        """
        if self._fd is None:
            raise RuntimeError("AuditLog.append outside of 'with'")
        if isinstance(entry, PlanEntry):
            entry = entry.to_dict()
        prev, ends_nl = _tail_state(self._fd)
        entry = {k: v for k, v in entry.items() if not k.startswith("_")}
        entry["prev_sha256"] = prev
        if entry.get("type") == PLAN_ENTRY_TYPE:
            entry = PlanEntry.from_dict(entry).to_dict()
        line = encode_entry(entry)
        # A line cut by a crash stays (flagged as corrupt); start ours on a fresh line.
        payload = (b"" if ends_nl else b"\n") + line + b"\n"
        try:
            written = os.write(self._fd, payload)
            if written != len(payload):
                raise OSError(28, "short write")
            os.fsync(self._fd)
        except OSError as exc:
            raise OutputError(
                f"cannot append to audit log: {exc.strerror or exc}",
                where=str(self.path),
                fix="free disk space / fix permissions; the plan was NOT recorded, do not use it",
            ) from None
        return entry


def append_entry(
    path: str | os.PathLike[str], entry: Mapping[str, Any] | PlanEntry
) -> dict[str, Any]:
    """Append one entry to the log at ``path`` (locks, chains, fsyncs). See :class:`AuditLog`."""
    with AuditLog(path) as alog:
        return alog.append(entry)


def entry_sha256(entry: Mapping[str, Any]) -> str:
    """sha256 of the line an entry is written as (:func:`encode_entry`)."""
    return hashlib.sha256(encode_entry(entry)).hexdigest()
