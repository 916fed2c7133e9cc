"""The append-only, keyed, anchored plan audit log.

Every plan made by ``riskmodel plan`` (:func:`riskmodel.api.run_plan`) appends one JSON line to
the audit log. Lines are never rewritten. Each line carries

* ``seq`` -- 1, 2, 3, ... (a new log segment starts again at 1),
* ``prev`` -- the ``mac`` of the previous line (``null`` on the first line of a segment),
* ``mac`` -- HMAC-SHA256 with the workspace signing key (``settings.key()``) of the canonical
  entry without ``mac`` (:func:`entry_mac`). Without any key the ``mac`` is a plain sha256 and
  says so (``"chain": "sha256"``): then anyone who can write the log can rewrite it unnoticed.

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
import hmac
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskmodel.audit.entry import PlanEntry
from riskmodel.config.workspace import Workspace
from riskmodel.errors import InputError, OutputError
from riskmodel.planning.caps import PLAN_ENTRY_TYPE

try:  # POSIX advisory locks; on other systems the log is used unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_LOCK_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------------------------
# The keyed chain
# ---------------------------------------------------------------------------------------------

#: ``chain`` of a line MACed with a key, and of a line only hashed (no key anywhere).
CHAIN_HMAC, CHAIN_SHA = "hmac-sha256", "sha256"
#: Entry types besides plans: a new chain after damage, and a torn line moved aside.
SEGMENT_TYPE, REPAIR_TYPE = "segment", "repair"
UNKEYED_NOTE = "unkeyed: tampering by someone who can write the log is not detectable"


def encode_entry(entry: Mapping[str, Any]) -> bytes:
    """Serialise one entry as a single deterministic JSON line (no trailing newline)."""
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def entry_mac(entry: Mapping[str, Any], key: bytes | None) -> str:
    """HMAC-SHA256 (or, without a key, sha256) of the canonical entry without ``mac``."""
    body = {k: v for k, v in entry.items() if k != "mac" and not str(k).startswith("_")}
    data = encode_entry(body)
    if key:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def entry_sha256(entry: Mapping[str, Any]) -> str:
    """sha256 of the line an entry is written as (:func:`encode_entry`)."""
    return hashlib.sha256(encode_entry(entry)).hexdigest()


@dataclass
class LogIntegrity:
    """What :func:`read_log` found besides the entries.

    Attributes
    ----------
    lines : int
        Non-empty lines in the file.
    keyed : bool
        Whether the MACs were verified with a key (False: plain sha256 chain, see
        :data:`UNKEYED_NOTE`).
    corrupt_lines, chain_breaks : list of int
        1-based numbers of lines that are not valid entries / whose MAC, ``seq`` or ``prev``
        does not verify.
    problems : list of str
        Why the log is not intact, in words (empty: intact).
    acknowledged : list of str
        Problems before the last ``segment`` entry: damage recorded with a reason.
    torn_tail : bool
        The last line was cut short by a crash (repairable: ``riskmodel audit --repair``).
    anchor : str
        ``ok`` (log ends at the workspace anchor), ``ahead`` (verified lines after it: a crash
        between append and anchor update), ``none`` (no anchor for this log) or ``broken``.
    last_seq, last_mac : int, str or None
        ``seq`` and ``mac`` of the last line (what the next entry chains to).
    """

    lines: int = 0
    keyed: bool = False
    corrupt_lines: list[int] = field(default_factory=list)
    chain_breaks: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    torn_tail: bool = False
    anchor: str = "none"
    last_seq: int = 0
    last_mac: str | None = None
    ends_newline: bool = True

    @property
    def ok(self) -> bool:
        """True when no line is corrupt, every MAC verifies and the log reaches its anchor."""
        return not self.problems

    @property
    def why(self) -> str:
        """The problems in one line (``""`` when intact)."""
        return "; ".join(self.problems)

    @property
    def last_sha256(self) -> str | None:
        """The chain head (alias of :attr:`last_mac`)."""
        return self.last_mac

    def status_line(self) -> str:
        """``log integrity: ok ...`` or ``log integrity: BROKEN — <why>``."""
        if not self.ok:
            return f"log integrity: BROKEN — {self.why}"
        text = f"log integrity: ok ({self.lines} lines, head seq {self.last_seq}"
        text += ", HMAC verified" if self.keyed else f"; {UNKEYED_NOTE}"
        text += {"ok": ", ends at its anchor)", "ahead": ", ahead of its anchor)"}.get(
            self.anchor, ", no anchor)"
        )
        if self.acknowledged:
            text += (
                f"; earlier damage acknowledged by a log segment: {'; '.join(self.acknowledged)}"
            )
        return text


def _verify_line(
    obj: dict[str, Any], lineno: int, key: bytes | None, integ: LogIntegrity
) -> str | None:
    """Why one parsed line does not verify (``None``: it does)."""
    chain = obj.get("chain")
    if key is None and chain == CHAIN_HMAC:
        return (
            f"line {lineno} is keyed but no key is available to verify it (set "
            "RISKMODEL_SIGNING_KEY or use --workspace)"
        )
    if key is not None and chain != CHAIN_HMAC:
        return f"line {lineno} carries no HMAC (chain {chain!r})"
    if not isinstance(obj.get("mac"), str) or not hmac.compare_digest(
        obj["mac"], entry_mac(obj, key)
    ):
        return f"line {lineno}: MAC does not verify (the entry was changed or forged)"
    return None


def _check_segment(obj: dict[str, Any], lineno: int, integ: LogIntegrity) -> str | None:
    """A segment entry must name the line it follows as it still is."""
    if obj.get("after_seq") != (integ.last_seq if integ.lines > 1 else None) or obj.get(
        "after_head"
    ) != (integ.last_mac if integ.lines > 1 else None):
        return f"line {lineno}: the lines before this log segment changed since it was recorded"
    return None


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
    integ = LogIntegrity(keyed=key is not None)
    try:
        data = p.read_bytes() if p.exists() else b""
    except OSError as exc:
        raise InputError(f"cannot read audit log: {exc.strerror or exc}", where=str(p)) from None
    integ.ends_newline = not data or data.endswith(b"\n")
    entries: list[dict[str, Any]] = []
    seen: dict[tuple[int, str], int] = {}
    pieces = data.split(b"\n")
    for lineno, raw in enumerate(pieces, start=1):
        if not raw.strip():
            continue
        integ.lines += 1
        last_piece = lineno == len(pieces) and not integ.ends_newline
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError
        except ValueError:
            if last_piece:
                integ.torn_tail = True
                integ.problems.append(
                    f"line {lineno} is torn (a write cut short): repair with "
                    "'riskmodel audit --repair --reason TEXT'"
                )
            else:
                integ.corrupt_lines.append(lineno)
                integ.problems.append(f"line {lineno} is not a JSON object")
            continue
        why = _verify_line(obj, lineno, key, integ)
        is_segment = obj.get("type") == SEGMENT_TYPE and obj.get("prev") is None
        if why is None and is_segment:
            if obj.get("seq") != 1:
                why = f"line {lineno}: a log segment must start at seq 1"
            else:
                why = _check_segment(obj, lineno, integ)
            if why is None:
                # Damage before a recorded segment is acknowledged (with the segment's reason).
                integ.acknowledged += [
                    f"{pr} (segment line {lineno}: {obj.get('reason')!r})" for pr in integ.problems
                ]
                integ.problems, integ.corrupt_lines, integ.chain_breaks = [], [], []
        elif why is None and (
            obj.get("seq") != integ.last_seq + 1 or obj.get("prev") != integ.last_mac
        ):
            why = (
                f"line {lineno}: seq {obj.get('seq')!r} does not follow seq {integ.last_seq} "
                "(lines were removed, reordered or inserted)"
                if obj.get("seq") != integ.last_seq + 1
                else f"line {lineno}: prev does not match the line before (chain broken)"
            )
        if why is not None:
            integ.chain_breaks.append(lineno)
            if "no key is available" in why and any(
                "no key is available" in x for x in integ.problems
            ):
                pass  # said once: "line N is keyed ..." for the first such line
            else:
                integ.problems.append(why)
        if obj.get("type") == PLAN_ENTRY_TYPE:
            try:
                PlanEntry.from_dict(obj)
            except InputError as exc:
                integ.corrupt_lines.append(lineno)
                integ.problems.append(f"line {lineno}: {exc.what}")
                continue
        if isinstance(obj.get("seq"), int):
            integ.last_seq = obj["seq"]
        integ.last_mac = obj.get("mac") if isinstance(obj.get("mac"), str) else None
        if why is None and integ.last_mac:
            seen[(integ.last_seq, integ.last_mac)] = lineno
        obj["_line"] = lineno
        entries.append(obj)
    _check_anchor(integ, anchor, seen, p)
    if integ.problems:
        log.warning("audit log %s: %s", p, integ.why)
    return entries, integ


def _check_anchor(
    integ: LogIntegrity,
    anchor: Mapping[str, Any] | None,
    seen: dict[tuple[int, str], int],
    path: Path,
) -> None:
    """Compare the log's end with the workspace anchor (see :func:`read_log`)."""
    if not anchor or not anchor.get("seq"):
        integ.anchor = "none"
        return
    a_seq, a_head = int(anchor["seq"]), str(anchor.get("head"))
    if integ.lines == 0:
        integ.anchor = "broken"
        integ.problems.append(
            f"the log is missing or empty but the workspace anchor records {a_seq} entries "
            f"ending in {a_head[:12]} (the log was deleted or replaced)"
        )
    elif (a_seq, a_head) not in seen:
        integ.anchor = "broken"
        integ.problems.append(
            f"the log does not reach its anchor (seq {a_seq}, head {a_head[:12]}): lines were "
            "removed or rewritten"
        )
    elif (a_seq, a_head) == (integ.last_seq, integ.last_mac):
        integ.anchor = "ok"
    elif integ.keyed:
        # Verified lines after the anchor: written with the key, the anchor update was lost.
        integ.anchor = "ahead"
    else:
        integ.anchor = "broken"
        integ.problems.append("unkeyed lines after the anchor")


def anchor_of(workspace: Workspace | None, path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The workspace anchor ``{seq, head, log}`` if it belongs to the log at ``path``."""
    if workspace is None:
        return None
    a = workspace.read_state().get("audit")
    if not isinstance(a, dict):
        return None
    return a if _same_path(a.get("log"), path) else None


def workspace_anchor(workspace: Workspace | None) -> dict[str, Any] | None:
    """The workspace anchor ``{seq, head, log}`` whatever log it belongs to."""
    if workspace is None:
        return None
    a = workspace.read_state().get("audit")
    return a if isinstance(a, dict) and a.get("seq") else None


def _same_path(a: Any, b: str | os.PathLike[str]) -> bool:
    if not a:
        return False
    return Path(str(a)).expanduser().resolve() == Path(b).expanduser().resolve()


class AuditLog:
    """Exclusive, append-only handle on an audit log (use as a context manager).

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
        self.path = Path(path)
        self.timeout = timeout
        self.key = key
        self.workspace = workspace
        self._fd: int | None = None
        self.integrity: LogIntegrity | None = None

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
    def anchor(self) -> dict[str, Any] | None:
        """The workspace anchor of this log, if any."""
        return anchor_of(self.workspace, self.path)

    def read(self) -> tuple[list[dict[str, Any]], LogIntegrity]:
        """Entries and integrity of the log (see :func:`read_log`)."""
        entries, self.integrity = read_log(self.path, key=self.key, anchor=self.anchor)
        return entries, self.integrity

    def append(self, entry: Mapping[str, Any] | PlanEntry) -> dict[str, Any]:
        """Chain (``seq``, ``prev``, ``mac``), append, fsync, move the anchor; return the entry.

        A ``segment`` entry starts a new chain (``seq`` 1, ``prev`` null). A failed write is
        cut back off the file, so a full disk leaves no partial line.

        Raises
        ------
        InputError
            A plan entry breaks the schema (nothing is written).
        OutputError
            The line cannot be written (the plan was not recorded).
        """
        if self._fd is None:
            raise RuntimeError("AuditLog.append outside of 'with'")
        integ = self.integrity if self.integrity is not None else self.read()[1]
        if isinstance(entry, PlanEntry):
            entry = entry.to_dict()
        entry = {k: v for k, v in entry.items() if not k.startswith("_")}
        for k in ("prev_sha256", "mac"):
            entry.pop(k, None)
        if entry.get("type") == SEGMENT_TYPE:
            entry.update(seq=1, prev=None)
        else:
            entry.update(seq=integ.last_seq + 1, prev=integ.last_mac)
        entry["chain"] = CHAIN_HMAC if self.key else CHAIN_SHA
        if entry.get("type") == PLAN_ENTRY_TYPE:
            entry = PlanEntry.from_dict(entry).to_dict()
        entry["mac"] = entry_mac(entry, self.key)
        size = os.fstat(self._fd).st_size
        payload = (b"" if integ.ends_newline else b"\n") + encode_entry(entry) + b"\n"
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
        integ.lines += 1
        integ.last_seq, integ.last_mac, integ.ends_newline = entry["seq"], entry["mac"], True
        self._move_anchor(entry)
        return entry

    def _move_anchor(self, entry: Mapping[str, Any]) -> None:
        """Record the new chain end in the workspace state (if the log is the workspace's)."""
        if self.workspace is None:
            return
        current = workspace_anchor(self.workspace)
        if current and not _same_path(current.get("log"), self.path):
            if entry.get("type") != SEGMENT_TYPE:
                return  # another log than the anchored one: only a recorded segment moves it
        self.workspace.update_state(
            audit={"seq": entry["seq"], "head": entry["mac"], "log": str(self.path.resolve())}
        )

    def repair_torn_tail(self, reason: str, by: str | None = None) -> dict[str, Any]:
        """Move a torn last line to ``<log>.torn-<sha12>`` and append a ``repair`` entry.

        Raises
        ------
        InputError
            The last line is not torn (nothing to repair).
        """
        if self._fd is None:
            raise RuntimeError("AuditLog.repair_torn_tail outside of 'with'")
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

    def new_segment(
        self, reason: str, by: str | None = None, previous_log: str | None = None
    ) -> dict[str, Any]:
        """Append a ``segment`` entry: a new chain that records (and so acknowledges) the
        problems found before it."""
        integ = self.integrity if self.integrity is not None else self.read()[1]
        return self.append(
            {
                "type": SEGMENT_TYPE,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "reason": reason,
                "by": by,
                "problems": list(integ.problems),
                "after_seq": integ.last_seq if integ.lines else None,
                "after_head": integ.last_mac if integ.lines else None,
                "previous_log": previous_log,
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
