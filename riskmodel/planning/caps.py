"""The rule book of caps on spot checks: one place for every cap rule.

The planner (:mod:`riskmodel.planning.plan`) uses these rules to keep a plan inside the caps; the
compliance report (:mod:`riskmodel.audit.report`) uses the *same* functions to find plans that
broke them. See METHODOLOGY.md, sections 4.1-4.3 (legal basis, per-shift cap, window caps).

* :class:`PlanConfig` / :func:`load_caps`: the caps and planning parameters.
* Per-shift cap: ``c_i <= per_shift`` (:func:`per_shift_cap`, :func:`over_per_shift`), and at
  most one check of a segment per shift.
* Window caps (7 / 30 days, share of shifts): :func:`window_caps` turns a caps mapping into
  ``name -> (window_days, max_checks)`` (the share becomes a count, :func:`share_cap_count`);
  :func:`window_counts` counts checks in the worst window containing a day;
  :func:`blocked_by_caps` (planner: no room left) and :func:`window_breaches` (audit: limit
  exceeded) apply them.
* The history of executed checks (:func:`checks_history`, superseded plans removed by
  :func:`effective_entries`) that the window caps count.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Entry type of a plan in the audit log (other types, e.g. notes, are not plans).
PLAN_ENTRY_TYPE = "plan"

#: Fixed-length window caps: setting name -> window length in days.
WINDOW_CAPS: dict[str, int] = {"max_per_segment_per_7d": 7, "max_per_segment_per_30d": 30}

#: Coverage above the per-shift cap by less than this is rounding, not a breach.
PER_SHIFT_TOL = 1e-6

#: The built-in caps, used when no caps file is given (the workspace ``caps.toml`` written by
#: ``riskmodel init`` holds the same numbers; a test keeps them equal). Legal minimum: CJEU
#: C-9/16 asks for limits on intensity (per shift), frequency (7 / 30 days) and selectivity.
DEFAULT_CAPS: dict[str, Any] = {
    "per_shift": 0.5,
    "max_per_segment_per_7d": 3,
    "max_per_segment_per_30d": 8,
    "max_share_of_shifts": 0.1,
    "floor_factor": 0.2,
    "slot_hours": 2.0,
}

#: Shortest check slot in hours (a slot shorter than a quarter hour is no check).
MIN_SLOT_HOURS = 0.25

#: Columns of the executed-checks history (see :func:`checks_history`).
HISTORY_COLUMNS = ("date", "shift", "segment_id", "plan_id", "day")


# ---------------------------------------------------------------------------------------------
# Caps and parameters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanConfig:
    """Caps and planning parameters (``--caps`` TOML/JSON; every key optional).

    Attributes
    ----------
    per_shift : float
        Largest coverage (inclusion probability) of one segment in one shift, ``0 < cap <= 1``.
        At most one check per segment per shift in any case.
    max_per_segment_per_7d, max_per_segment_per_30d : int or None
        Largest number of checks of one segment in any 7 (30) consecutive days.
    max_share_of_shifts : float or None
        Largest share of the calendar shifts of any ``share_window_days`` window in which one
        segment is checked; enforced as the count ``floor(share * days * shifts_per_day)``.
    share_window_days : int
        Window of ``max_share_of_shifts`` (default 30).
    shifts_per_day : int
        Shifts per day (denominator of the share; default 3).
    floor_factor : float
        Exploration floor as a multiple of the uniform coverage ``N / n`` (default 0.2).
    floor : float or None
        Absolute exploration floor; overrides ``floor_factor`` when set.
    entropy_ratio_min : float
        Overrides that push the normalised coverage entropy below this share of the unforced
        entropy trigger a warning (default 0.8).
    slot_hours : float
        Length of a check's time slot in hours (default 2); slots start on whole hours after
        the shift start.
    """

    per_shift: float = 1.0
    max_per_segment_per_7d: int | None = None
    max_per_segment_per_30d: int | None = None
    max_share_of_shifts: float | None = None
    share_window_days: int = 30
    shifts_per_day: int = 3
    floor_factor: float = 0.2
    floor: float | None = None
    entropy_ratio_min: float = 0.8
    slot_hours: float = 2.0

    def __post_init__(self) -> None:
        def bad(key: str, must: str) -> ConfigError:
            return ConfigError(
                f"cap {key} = {getattr(self, key)!r} is invalid: it must be {must}",
                fix=f"correct {key} in the caps file",
            )

        if not 0 < self.per_shift <= 1:
            raise bad("per_shift", "in (0, 1]")
        for k in WINDOW_CAPS:
            v = getattr(self, k)
            if v is not None and (int(v) != v or v < 1):
                raise bad(k, "a whole number >= 1")
        if self.max_share_of_shifts is not None:
            if not 0 < self.max_share_of_shifts <= 1:
                raise bad("max_share_of_shifts", "in (0, 1]")
            if (
                share_cap_count(
                    self.max_share_of_shifts, self.share_window_days, self.shifts_per_day
                )
                < 1
            ):
                raise bad(
                    "max_share_of_shifts", "large enough to allow at least one check per window"
                )
        if self.share_window_days < 1:
            raise bad("share_window_days", ">= 1")
        if self.shifts_per_day < 1:
            raise bad("shifts_per_day", ">= 1")
        if not 0 < self.floor_factor <= 1:
            raise bad("floor_factor", "in (0, 1]")
        if self.floor is not None and not 0 < self.floor <= 1:
            raise bad("floor", "in (0, 1]")
        if not 0 <= self.entropy_ratio_min <= 1:
            raise bad("entropy_ratio_min", "in [0, 1]")
        if not MIN_SLOT_HOURS <= self.slot_hours <= 24:
            raise bad("slot_hours", f"between {MIN_SLOT_HOURS} and 24 hours")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in the audit log)."""
        return asdict(self)

    @classmethod
    def defaults(cls, **overrides: Any) -> PlanConfig:
        """The built-in caps :data:`DEFAULT_CAPS` (what applies without a caps file)."""
        return cls(**{**DEFAULT_CAPS, **{k: v for k, v in overrides.items() if v is not None}})

    @property
    def has_window_caps(self) -> bool:
        """Whether any frequency cap over days is set."""
        return bool(self.window_caps())

    def window_caps(self) -> dict[str, tuple[int, int]]:
        """Window caps as ``name -> (window_days, max_checks)`` (see :func:`window_caps`)."""
        return window_caps(self.as_dict())


def load_caps(path: str | os.PathLike[str] | None, **defaults: Any) -> PlanConfig:
    """Read a caps file (TOML or JSON; keys at top level or in a ``[caps]`` table).

    Parameters
    ----------
    path : path-like or None
        The file; ``None`` gives the built-in caps :data:`DEFAULT_CAPS`. Keys the file leaves
        out keep their built-in value (caps always apply; raise a cap to loosen it).
    **defaults
        Values used when the file does not set them (e.g. ``shifts_per_day`` from settings).

    Returns
    -------
    PlanConfig

    Raises
    ------
    InputError
        The file cannot be read.
    ConfigError
        Invalid TOML/JSON, unknown key, or an invalid value.

    Examples
    --------
    A ``caps.toml``::

        per_shift = 1.0
        max_per_segment_per_7d = 3
        max_per_segment_per_30d = 8
        max_share_of_shifts = 0.1
    """
    known = {f.name for f in fields(PlanConfig)}
    # Caps always apply: a key the file leaves out keeps its built-in value.
    values: dict[str, Any] = {
        **DEFAULT_CAPS,
        **{k: v for k, v in defaults.items() if v is not None},
    }
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read caps file: {exc.strerror or exc}",
                where=str(p),
                fix="check the --caps path",
            ) from None
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"invalid caps file: {exc}", where=str(p), fix="write TOML (key = value) or JSON"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("caps file must hold a table/object", where=str(p))
        if isinstance(data.get("caps"), dict):
            data = {**{k: v for k, v in data.items() if k != "caps"}, **data["caps"]}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown cap {unknown[0]!r}",
                where=str(p),
                fix=f"use one of: {', '.join(sorted(known))}",
            )
        values.update(data)
    where = str(path) if path else None
    for f in fields(PlanConfig):
        v = values.get(f.name)
        if v is None:
            continue
        # TOML/JSON give typed values; anything else ("abc", true) is refused in one line.
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        if not numeric or not math.isfinite(float(v)):
            raise ConfigError(
                f"cap {f.name} = {v!r} is not a number",
                where=where,
                fix=f"write {f.name} as a number (e.g. {DEFAULT_CAPS.get(f.name, 1)})",
            )
    try:
        return PlanConfig(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid caps: {exc}", where=where) from None


# ---------------------------------------------------------------------------------------------
# Per-shift cap
# ---------------------------------------------------------------------------------------------


def per_shift_cap(caps: Mapping[str, Any] | None) -> float:
    """The per-shift cap of a caps mapping (as recorded in the audit log; default 1)."""
    return float((caps or {}).get("per_shift", 1.0))


def over_per_shift(coverage: np.ndarray, per_shift: np.ndarray | float) -> np.ndarray:
    """Where a coverage breaks its per-shift cap (beyond rounding, :data:`PER_SHIFT_TOL`)."""
    return np.asarray(coverage, dtype=float) > np.asarray(per_shift, dtype=float) + PER_SHIFT_TOL


def refusal_reasons(
    coverage: np.ndarray,
    cap: np.ndarray,
    per_shift: float,
    requested: int,
    placed: int,
) -> list[str]:
    """Why a plan is not a spot-check plan (empty: it is one). The planner refuses such a plan
    unless it is forced with a recorded reason (METHODOLOGY.md, section 4.3).

    A plan is refused when

    * a segment's inclusion probability exceeds the per-shift cap (never by construction; a
      guard against a wrong solver or caps), or
    * its coverage is **systematic**: every segment still open (not blocked by a window cap,
      not excluded) sits at its per-shift cap, i.e. the units requested reach ``open segments
      x per_shift``. Coverage then no longer depends on risk or chance: the plan checks all it
      may (with ``per_shift = 1``: every segment, normalised entropy 0), or
    * fewer units could be placed than requested (the caps leave too little room: the same
      saturation seen from the units' side).

    Parameters
    ----------
    coverage, cap : ndarray
        Inclusion probability and per-shift cap of each segment (cap 0: blocked or excluded).
    per_shift : float
        The plan's per-shift cap.
    requested, placed : int
        Units asked for and checks drawn.

    Returns
    -------
    list of str
    """
    c = np.asarray(coverage, dtype=float)
    k = np.asarray(cap, dtype=float)
    out: list[str] = []
    if c.size and over_per_shift(c, per_shift).any():
        out.append(
            f"largest inclusion probability {c.max():.3f} exceeds the per-shift cap {per_shift}"
        )
    open_ = k > 0
    room = float(k[open_].sum())
    saturated = open_.any() and c.sum() > 0 and bool(np.all(c[open_] >= k[open_] - PER_SHIFT_TOL))
    if open_.any() and (saturated or requested >= room - PER_SHIFT_TOL):
        out.append(
            f"systematic coverage: {requested} units requested reach the room of "
            f"{room:g} under the per-shift cap {per_shift} ({int(open_.sum())} open segments x "
            f"cap): every open segment would be at its cap, not a spot-check selection"
        )
    if placed < requested:
        out.append(f"only {placed} of {requested} units fit under the caps")
    return out


# ---------------------------------------------------------------------------------------------
# Window caps
# ---------------------------------------------------------------------------------------------


def share_cap_count(max_share: float, window_days: int, shifts_per_day: int) -> int:
    """Checks allowed per segment in a share window: ``floor(share * days * shifts_per_day)``.

    The share is taken over the calendar shifts of the window (not over the planned ones), so
    the cap is a fixed count and holds from the first plan on.
    """
    return int(math.floor(max_share * window_days * shifts_per_day + 1e-9))


def window_caps(caps: Mapping[str, Any] | None) -> dict[str, tuple[int, int]]:
    """Window caps of a caps mapping as ``name -> (window_days, max_checks)``.

    Parameters
    ----------
    caps : mapping
        :meth:`PlanConfig.as_dict`, or the ``caps`` of an audit-log entry. Unset caps (missing
        or ``None``) are left out; the share of shifts becomes a count (:func:`share_cap_count`).

    Returns
    -------
    dict
        In the order 7 days, 30 days, share of shifts.
    """
    caps = caps or {}
    out: dict[str, tuple[int, int]] = {}
    for name, days in WINDOW_CAPS.items():
        if caps.get(name) is not None:
            out[name] = (days, int(caps[name]))
    if caps.get("max_share_of_shifts") is not None:
        w = int(caps.get("share_window_days") or 30)
        out["max_share_of_shifts"] = (
            w,
            share_cap_count(
                float(caps["max_share_of_shifts"]), w, int(caps.get("shifts_per_day") or 3)
            ),
        )
    return out


def day_number(values: Any) -> np.ndarray:
    """Days since 1970-01-01 of date-like values (what the window counts use)."""
    return np.asarray(pd.to_datetime(values), dtype="datetime64[D]").astype(np.int64)


def window_counts(
    history: pd.DataFrame,
    segment_ids: Iterable[str],
    days: Iterable[Any],
    window_days: int,
) -> np.ndarray:
    """Checks of each (segment, day) pair in the worst ``window_days``-day window containing the day.

    Windows are runs of consecutive local dates; every window that contains the day counts
    (also those reaching into the future, so planning out of order cannot break a cap).

    Parameters
    ----------
    history : DataFrame
        Executed checks (``segment_id`` and ``day`` or ``date``), e.g. :func:`checks_history`.
    segment_ids : iterable of str
        Segment of each pair.
    days : iterable of date-like or int
        Day of each pair (dates, or day numbers from :func:`day_number`).
    window_days : int
        Window length in days (7, 30, ...).

    Returns
    -------
    ndarray of int
        One count per pair.
    """
    segs = np.asarray(list(segment_ids), dtype=object)
    d = np.asarray(list(days))
    d = d.astype(np.int64) if np.issubdtype(d.dtype, np.integer) else day_number(d)
    out = np.zeros(segs.size, dtype=np.int64)
    w = int(window_days)
    if history.empty or w <= 0 or segs.size == 0:
        return out
    seg_index = pd.Index(pd.unique(segs))
    h_days = history["day"].to_numpy() if "day" in history else day_number(history["date"])
    d0 = int(d.min()) - w + 1  # first day of the first window
    span = int(d.max()) + w - d0  # days up to the end of the last window
    near = (h_days >= d0) & (h_days < d0 + span)
    idx = seg_index.get_indexer(history["segment_id"].to_numpy()[near])
    ok = idx >= 0
    if not ok.any():
        return out
    mat = np.zeros((len(seg_index), span), dtype=np.int64)
    np.add.at(mat, (idx[ok], h_days[near][ok] - d0), 1)
    cs = np.concatenate([np.zeros((len(seg_index), 1), np.int64), np.cumsum(mat, axis=1)], axis=1)
    # Windows [s, s + w) containing day t: s = t - w + 1 .. t.
    starts = (d - d0)[:, None] + np.arange(-w + 1, 1)[None, :]
    gi = seg_index.get_indexer(segs)[:, None]
    return (cs[gi, starts + w] - cs[gi, starts]).max(axis=1)


def window_max_counts(
    history: pd.DataFrame,
    segment_ids: Iterable[str],
    day: str | dt.date | pd.Timestamp,
    window_days: int,
) -> np.ndarray:
    """Largest number of checks of each segment in any ``window_days``-day window containing ``day``.

    :func:`window_counts` for one day.

    Parameters
    ----------
    history : DataFrame
        Executed checks (``date``, ``segment_id``), e.g. :func:`checks_history`.
    segment_ids : iterable of str
        Segments to report, in order.
    day : date-like
        The day of the shift being planned.
    window_days : int
        Window length in days (7, 30, ...).

    Returns
    -------
    ndarray of int
        One count per segment.
    """
    segs = list(segment_ids)
    return window_counts(history, segs, np.repeat(day_number([day]), len(segs)), window_days)


def blocked_by_caps(
    segment_ids: np.ndarray,
    day: str | dt.date | pd.Timestamp,
    history: pd.DataFrame,
    caps: Mapping[str, tuple[int, int]],
) -> dict[str, str]:
    """Segments without room under a window cap around ``day`` (the planner's rule).

    Parameters
    ----------
    segment_ids : ndarray of str
        Segments of the shift being planned.
    day : date-like
        Its date.
    history : DataFrame
        Executed checks (:func:`checks_history`), the shift's own earlier plans removed.
    caps : mapping
        ``name -> (window_days, max_checks)`` (:func:`window_caps`).

    Returns
    -------
    dict
        Segment -> ``"<cap>=<limit>"`` of the first cap (in ``caps`` order) already used up:
        one more check would exceed it.
    """
    blocked: dict[str, str] = {}
    if history.empty:
        return blocked
    for name, (days, limit) in caps.items():
        worst = window_max_counts(history, segment_ids, day, days)
        for sid in segment_ids[worst >= limit]:
            blocked.setdefault(str(sid), f"{name}={limit}")
    return blocked


def window_breaches(
    history: pd.DataFrame, checks: pd.DataFrame, caps: Mapping[str, tuple[int, int]]
) -> pd.DataFrame:
    """Checks that lie in a window holding more checks than a cap allows (the audit's rule).

    Parameters
    ----------
    history : DataFrame
        All executed checks (:func:`checks_history`), also outside the period examined.
    checks : DataFrame
        The checks to examine (rows of a history frame).
    caps : mapping
        ``name -> (window_days, max_checks)`` (:func:`window_caps`).

    Returns
    -------
    DataFrame
        ``row`` (position in ``checks``), ``cap``, ``limit``, ``count`` (checks of that segment in
        the worst window containing the check's day), by cap then row.
    """
    rows: list[tuple[int, str, int, int]] = []
    for name, (w, limit) in caps.items():
        worst = window_counts(history, checks["segment_id"], checks["day"], w)
        rows += [(int(k), name, limit, int(worst[k])) for k in np.flatnonzero(worst > limit)]
    return pd.DataFrame(rows, columns=["row", "cap", "limit", "count"])


# ---------------------------------------------------------------------------------------------
# History of executed checks
# ---------------------------------------------------------------------------------------------


def effective_entries(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Plan entries that count: the last entry of every (date, shift), in log order.

    Re-planning a shift supersedes its earlier plan: only the latest one counts as executed.
    """
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    for e in entries:
        if e.get("type") != PLAN_ENTRY_TYPE:
            continue
        last.pop((e["date"], e["shift"]), None)  # keep log order of the survivor
        last[(e["date"], e["shift"])] = e
    return list(last.values())


def checks_history(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Executed checks from plan entries (superseded plans removed).

    Parameters
    ----------
    entries : iterable of mapping
        Audit-log entries (``type``, ``date``, ``shift``, ``plan_id``, ``chosen``); entries of
        other types are ignored.

    Returns
    -------
    DataFrame
        Columns ``date`` (``datetime64[s]``, day), ``shift``, ``segment_id``, ``plan_id``,
        ``day`` (int, days since 1970-01-01; what the window counts use).
    """
    rows_d: list[str] = []
    rows_s: list[str] = []
    rows_g: list[str] = []
    rows_p: list[str] = []
    for e in effective_entries(entries):
        chosen = e.get("chosen") or []
        rows_d += [e["date"]] * len(chosen)
        rows_s += [e["shift"]] * len(chosen)
        rows_g += [str(c) for c in chosen]
        rows_p += [str(e.get("plan_id"))] * len(chosen)
    dates = pd.to_datetime(pd.Series(rows_d, dtype=object)).astype("datetime64[s]")
    return pd.DataFrame(
        {
            "date": dates,
            "shift": pd.Series(rows_s, dtype=object),
            "segment_id": pd.Series(rows_g, dtype=object),
            "plan_id": pd.Series(rows_p, dtype=object),
            "day": day_number(dates),
        }
    )


def plan_history_entry(date: str, shift: str, plan_id: str, chosen: list[str]) -> dict[str, Any]:
    """The part of a plan entry the history reads (to add a fresh plan to a history)."""
    return {
        "type": PLAN_ENTRY_TYPE,
        "date": date,
        "shift": shift,
        "plan_id": plan_id,
        "chosen": chosen,
    }
