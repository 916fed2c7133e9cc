"""The keyed hash chain of the audit trail, whatever stores it.

One place for how an entry is serialised, MACed, chained and verified. Two stores use it: the
JSON-lines file (:mod:`riskmodel.audit.log`) and the PostgreSQL table
(:mod:`riskmodel.audit.dbstore`). A *record* is the exact UTF-8 text of one entry (a line of
the file, the ``entry_text`` of a row): the MAC is computed over the canonical entry and the
text is kept byte for byte, so a log exported from the table is the file it was imported from.

Each entry carries

* ``seq`` -- 1, 2, 3, ... (a new log segment starts again at 1),
* ``prev`` -- the ``mac`` of the previous entry (``null`` on the first entry of a segment),
* ``mac`` -- HMAC-SHA256 with the signing key of the canonical entry without ``mac``
  (:func:`entry_mac`); without any key a plain sha256, and the entry says so
  (``"chain": "sha256"``): then anyone who can write the store can rewrite it unnoticed.

:func:`verify_records` checks every MAC, the ``seq``/``prev`` contiguity, recorded segments
(which acknowledge the damage before them) and the anchor (where the chain must reach).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from riskmodel.audit.entry import PlanEntry
from riskmodel.errors import InputError
from riskmodel.planning.caps import PLAN_ENTRY_TYPE

log = logging.getLogger(__name__)

#: ``chain`` of an entry MACed with a key, and of an entry only hashed (no key anywhere).
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
    """What :func:`verify_records` found besides the entries.

    Attributes
    ----------
    lines : int
        Non-empty records (lines of the file, rows of the table).
    keyed : bool
        Whether the MACs were verified with a key (False: plain sha256 chain, see
        :data:`UNKEYED_NOTE`).
    corrupt_lines, chain_breaks : list of int
        1-based numbers of records that are not valid entries / whose MAC, ``seq`` or ``prev``
        does not verify.
    problems : list of str
        Why the log is not intact, in words (empty: intact).
    acknowledged : list of str
        Problems before the last ``segment`` entry: damage recorded with a reason.
    torn_tail : bool
        The last line was cut short by a crash (repairable: ``riskmodel audit --repair``).
    anchor : str
        ``ok`` (log ends at the workspace anchor), ``ahead`` (verified entries after it),
        ``none`` (no anchor for this log) or ``broken``.
    last_seq, last_mac : int, str or None
        ``seq`` and ``mac`` of the last entry (what the next entry chains to).
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
        """True when no record is corrupt, every MAC verifies and the log reaches its anchor."""
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


@dataclass(frozen=True)
class Record:
    """One stored entry as its exact bytes.

    Attributes
    ----------
    number : int
        1-based line number (file) or row ``seq`` (table).
    raw : bytes
        The entry's UTF-8 JSON text.
    torn_ok : bool
        A parse failure means a torn last line (a crash mid-write), not corruption.
    note : str, optional
        Why the store itself says the record is not trustworthy (e.g. the table's ``hash``
        column disagrees with the text); reported as a problem.
    """

    number: int
    raw: bytes
    torn_ok: bool = False
    note: str | None = None


def _verify_mac(obj: dict[str, Any], where: str, key: bytes | None) -> str | None:
    """Why one parsed entry's MAC does not verify (``None``: it does)."""
    chain = obj.get("chain")
    if key is None and chain == CHAIN_HMAC:
        return (
            f"{where} is keyed but no key is available to verify it (set "
            "RISKMODEL_SIGNING_KEY or use --workspace)"
        )
    if key is not None and chain != CHAIN_HMAC:
        return f"{where} carries no HMAC (chain {chain!r})"
    if not isinstance(obj.get("mac"), str) or not hmac.compare_digest(
        obj["mac"], entry_mac(obj, key)
    ):
        return f"{where}: MAC does not verify (the entry was changed or forged)"
    return None


def _check_segment(obj: dict[str, Any], where: str, integ: LogIntegrity) -> str | None:
    """A segment entry must name the entry it follows as it still is."""
    if obj.get("after_seq") != (integ.last_seq if integ.lines > 1 else None) or obj.get(
        "after_head"
    ) != (integ.last_mac if integ.lines > 1 else None):
        return f"{where}: the lines before this log segment changed since it was recorded"
    return None


def _link_problem(obj: dict[str, Any], where: str, integ: LogIntegrity) -> str | None:
    """Why an entry does not extend the chain (segment rules included); ``None``: it does."""
    if obj.get("type") == SEGMENT_TYPE and obj.get("prev") is None:
        if obj.get("seq") != 1:
            return f"{where}: a log segment must start at seq 1"
        return _check_segment(obj, where, integ)
    if obj.get("seq") != integ.last_seq + 1:
        return (
            f"{where}: seq {obj.get('seq')!r} does not follow seq {integ.last_seq} "
            "(lines were removed, reordered or inserted)"
        )
    if obj.get("prev") != integ.last_mac:
        return f"{where}: prev does not match the line before (chain broken)"
    return None


def verify_records(
    records: Iterable[Record],
    *,
    key: bytes | None = None,
    anchor: Mapping[str, Any] | None = None,
    label: str = "line",
    ahead_ok: bool = False,
) -> tuple[list[dict[str, Any]], LogIntegrity]:
    """Parse and verify a chain of stored entries.

    Parameters
    ----------
    records : iterable of Record
        The entries in store order.
    key : bytes, optional
        The signing key; without it only the unkeyed sha256 chain is verified.
    anchor : mapping, optional
        ``{"seq", "head"}``: where the chain must reach (the workspace state).
    label : str
        What a record is called in messages (``line``, ``row``).
    ahead_ok : bool
        Unkeyed entries after the anchor are fine (a shared store others append to).

    Returns
    -------
    entries : list of dict
        Every parsable entry in order (also those of a broken chain: the integrity says
        whether they can be trusted); each gets ``_line`` (the record number).
    integrity : LogIntegrity
    """
    integ = LogIntegrity(keyed=key is not None)
    entries: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    for rec in records:
        integ.lines += 1
        where = f"{label} {rec.number}"
        try:
            obj = json.loads(rec.raw)
            if not isinstance(obj, dict):
                raise ValueError
        except ValueError:
            if rec.torn_ok:
                integ.torn_tail = True
                integ.problems.append(
                    f"{where} is torn (a write cut short): repair with "
                    "'riskmodel audit --repair --reason TEXT'"
                )
            else:
                integ.corrupt_lines.append(rec.number)
                integ.problems.append(f"{where} is not a JSON object")
            continue
        why = rec.note and f"{where}: {rec.note}"
        why = why or _verify_mac(obj, where, key) or _link_problem(obj, where, integ)
        if why is None and obj.get("type") == SEGMENT_TYPE and obj.get("prev") is None:
            # Damage before a recorded segment is acknowledged (with the segment's reason).
            integ.acknowledged += [
                f"{pr} (segment {where}: {obj.get('reason')!r})" for pr in integ.problems
            ]
            integ.problems, integ.corrupt_lines, integ.chain_breaks = [], [], []
        if why is not None:
            integ.chain_breaks.append(rec.number)
            # "no key is available" is said once, for the first such entry.
            if "no key is available" not in why or not any(
                "no key is available" in x for x in integ.problems
            ):
                integ.problems.append(why)
        if obj.get("type") == PLAN_ENTRY_TYPE:
            try:
                PlanEntry.from_dict(obj)
            except InputError as exc:
                integ.corrupt_lines.append(rec.number)
                integ.problems.append(f"{where}: {exc.what}")
                continue
        if isinstance(obj.get("seq"), int):
            integ.last_seq = obj["seq"]
        integ.last_mac = obj.get("mac") if isinstance(obj.get("mac"), str) else None
        if why is None and integ.last_mac:
            seen.add((integ.last_seq, integ.last_mac))
        obj["_line"] = rec.number
        entries.append(obj)
    check_anchor(integ, anchor, seen, ahead_ok=ahead_ok)
    return entries, integ


def check_anchor(
    integ: LogIntegrity,
    anchor: Mapping[str, Any] | None,
    seen: set[tuple[int, str]],
    *,
    ahead_ok: bool = False,
) -> None:
    """Compare the chain's end with its anchor (see :func:`verify_records`)."""
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
    elif integ.keyed or ahead_ok:
        # Verified entries after the anchor: written with the key (the anchor update was lost),
        # or by other planners appending to a shared store.
        integ.anchor = "ahead"
    else:
        integ.anchor = "broken"
        integ.problems.append("unkeyed lines after the anchor")


def chain_entry(
    entry: Mapping[str, Any] | PlanEntry, integ: LogIntegrity, key: bytes | None
) -> dict[str, Any]:
    """The entry as it is appended after ``integ``'s head: ``seq``, ``prev``, ``chain``,
    ``mac`` set (a ``segment`` entry starts a new chain at ``seq`` 1).

    Raises
    ------
    InputError
        A plan entry breaks the schema (nothing may be written).
    """
    if isinstance(entry, PlanEntry):
        entry = entry.to_dict()
    out = {k: v for k, v in entry.items() if not k.startswith("_")}
    for k in ("prev_sha256", "mac"):
        out.pop(k, None)
    if out.get("type") == SEGMENT_TYPE:
        out.update(seq=1, prev=None)
    else:
        out.update(seq=integ.last_seq + 1, prev=integ.last_mac)
    out["chain"] = CHAIN_HMAC if key else CHAIN_SHA
    if out.get("type") == PLAN_ENTRY_TYPE:
        out = PlanEntry.from_dict(out).to_dict()
    out["mac"] = entry_mac(out, key)
    return out
