"""The typed schema of a plan line in the audit log (:class:`PlanEntry`).

:class:`riskmodel.audit.log.AuditLog` validates every plan entry it appends and
:func:`riskmodel.audit.log.read_log` every plan line it reads. METHODOLOGY.md, section 4.8,
lists what a plan entry records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from riskmodel.errors import InputError
from riskmodel.planning.caps import PLAN_ENTRY_TYPE

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
    refusals: list[str] | None = None
    forced: dict[str, Any] | None = None
    replanned: dict[str, Any] | None = None
    files: dict[str, str] | None = None
    seq: int | None = None
    prev: str | None = None
    mac: str | None = None
    chain: str | None = None
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
        "refusals": _STRS,
        "forced": _DICT,
        "replanned": _DICT,
        "files": _DICT,
        "seq": _INT,
        "prev": _STR,
        "mac": _STR,
        "chain": _STR,
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
