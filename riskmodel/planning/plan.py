"""Randomised, risk-weighted, legally capped spot-check plans.

From a risk table (one row per 1-km border segment per shift, ``expected`` recorded events) a
plan is made in three steps (METHODOLOGY.md, section 4):

1. **Coverage** ``c_i`` (inclusion probability of segment ``i`` in this shift) from the risk
   (:mod:`riskmodel.planning.coverage`): ORIGAMI with an exploration floor and a per-shift cap.
2. **Frequency caps** over longer windows (7 / 30 days, share of shifts), counted from the
   executed checks of earlier plans (:mod:`riskmodel.planning.caps`): a segment whose cap is
   reached gets ``c_i = 0``.
3. **Sampling** exactly ``N`` checks with inclusion probabilities equal to ``c``
   (:mod:`riskmodel.planning.sampling`), each with a time slot inside the shift and a unit.

The seed comes from OS entropy unless given (drills, tests) and is always recorded, so a plan is
unpredictable from public information yet reproducible for an audit (METHODOLOGY.md, 4.1, 4.5).

:func:`make_plans` is pure (risk frame in, plans out) and does not care where the risk came
from; :func:`riskmodel.api.run_plan` adds the audit log, the output files and the locking.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.errors import InputError
from riskmodel.io.read.risk import validate_risk
from riskmodel.planning.caps import (
    PLAN_ENTRY_TYPE,
    PlanConfig,
    blocked_by_caps,
    checks_history,
    plan_history_entry,
    refusal_reasons,
)
from riskmodel.planning.coverage import coverage_status, normalised_entropy, solve_group
from riskmodel.planning.overrides import check_ids, check_units, parse_ids
from riskmodel.planning.sampling import draw_slots, shift_rng, systematic_sample, top_k

log = logging.getLogger(__name__)

REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")

#: Version of the plan entry written to the audit log.
ENTRY_SCHEMA = 1


@dataclass
class Plan:
    """One shift's spot-check plan.

    Attributes
    ----------
    plan_id : str
        UUID drawn from the plan's random stream (reproducible with the seed).
    date, shift, shift_start, shift_end : str
        Shift identity; times ISO 8601 with offset.
    seed : int
        Run seed (OS entropy unless given); ``rng`` states how the plan's stream derives from it.
    units : int
        Checks in the plan (``== len(checks)``).
    coverage : DataFrame
        Index ``segment_id``; ``area``, ``expected``, ``coverage``, ``floor``, ``cap``,
        ``status`` (``free``/``floor``/``cap``/``included``/``excluded``/``blocked``/``no_units``),
        ``reasons``.
    checks : DataFrame
        ``check_no, unit, segment_id, area, slot_start, slot_end, coverage, expected, reasons``.
    stats : dict
        Entropy, max inclusion, expected detections vs deterministic top-k, residual level.
    overrides : dict
        ``include``, ``exclude``, entropy before/after and their ratio.
    blocked : dict
        Segment -> cap that blocked it in this shift (it lost exploration).
    warnings : list of str
    supersedes : list of str
        Plan ids of earlier plans of the same shift in the history.
    """

    plan_id: str
    date: str
    shift: str
    shift_start: str
    shift_end: str
    seed: int
    rng: str
    units: int
    units_requested: int
    units_per_area: dict[str, int] | None
    coverage: pd.DataFrame
    checks: pd.DataFrame
    stats: dict[str, Any]
    overrides: dict[str, Any]
    caps: dict[str, Any]
    blocked: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    supersedes: list[str] = field(default_factory=list)
    geometry: Any = None  # GeoSeries indexed by segment_id, or None
    #: Why this is not a spot-check plan (:func:`riskmodel.planning.caps.refusal_reasons`);
    #: a plan with refusals is only recorded when forced with a reason.
    refusals: list[str] = field(default_factory=list)
    #: ``{"reason", "by", "refusals"}`` when the plan was forced past its refusals.
    forced: dict[str, Any] | None = None
    #: ``{"reason", "by"}`` when the shift was planned again on purpose (``--replan``): a
    #: redraw replaces a random draw, so it is never silent.
    replanned: dict[str, Any] | None = None
    audit_seq: int | None = None  # its line number in the audit chain, once recorded
    audit_prev: str | None = None  # the chain head it extends (MAC of the previous entry)
    audit_sha256: str | None = None  # MAC of its audit-log entry, once recorded

    @property
    def stem(self) -> str:
        """File-name stem ``<date>_<shift>``."""
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in self.shift)
        return f"{self.date}_{safe}"

    def audit_entry(
        self,
        *,
        model_id: str | None = None,
        risk_file: str | None = None,
        risk_sha256: str | None = None,
        created: str | None = None,
    ) -> dict[str, Any]:
        """The JSON-ready audit-log entry of this plan."""
        cov = self.coverage
        return {
            "type": PLAN_ENTRY_TYPE,
            "schema": ENTRY_SCHEMA,
            "plan_id": self.plan_id,
            "created": created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "software": f"riskmodel {__version__}",
            "model_id": model_id,
            "risk_file": risk_file,
            "risk_sha256": risk_sha256,
            "date": self.date,
            "shift": self.shift,
            "shift_start": self.shift_start,
            "shift_end": self.shift_end,
            "units": self.units,
            "units_requested": self.units_requested,
            "units_per_area": self.units_per_area,
            "seed": self.seed,
            "rng": self.rng,
            "caps": self.caps,
            "coverage": {s: round(float(c), 6) for s, c in cov["coverage"].items()},
            "expected": {s: round(float(r), 6) for s, r in cov["expected"].items()},
            "areas": {str(a): sorted(ids) for a, ids in cov.groupby("area").groups.items()},
            "blocked": dict(self.blocked),
            "exploration_lost": sorted(cov.index[cov["coverage"] <= 0].tolist()),
            "overrides": self.overrides,
            "entropy": self.stats["entropy"],
            "max_inclusion": self.stats["max_inclusion"],
            "chosen": self.checks["segment_id"].tolist(),
            "checks": self.checks[
                ["check_no", "unit", "segment_id", "slot_start", "slot_end"]
            ].to_dict(orient="records"),
            "expected_detections": self.stats["expected_detections"],
            "topk_expected_detections": self.stats["topk_expected_detections"],
            "stats": self.stats,
            "warnings": list(self.warnings),
            "supersedes": list(self.supersedes),
            "refusals": list(self.refusals),
            "forced": self.forced,
            "replanned": self.replanned,
        }


def _reasons(df: pd.DataFrame) -> np.ndarray:
    """The reason columns of each row joined with ``"; "`` (empty ones left out)."""
    cols = [c for c in REASON_COLUMNS if c in df.columns]
    out = np.full(len(df), "", dtype=object)
    for c in cols:
        v = df[c].astype(object).where(df[c].notna(), "").astype(str).str.strip()
        v = v.where(v.str.lower() != "nan", "").to_numpy(dtype=object)
        out = np.where((out != "") & (v != ""), out + "; " + v, out + v)
    return out


@dataclass
class _Shift:
    """One shift's segments and what the caps and overrides do to them (arrays by segment)."""

    grp: pd.DataFrame
    date: str
    shift: str
    seg: np.ndarray
    r: np.ndarray
    area: np.ndarray
    cap: np.ndarray
    inc: np.ndarray
    exc: np.ndarray
    forced: np.ndarray
    is_blocked: np.ndarray
    blocked: dict[str, str]
    supersedes: list[str]
    warnings: list[str]

    @property
    def n(self) -> int:
        return int(self.seg.size)


def _shift_setup(
    grp: pd.DataFrame,
    config: PlanConfig,
    include: list[str],
    exclude: list[str],
    history: pd.DataFrame,
) -> _Shift:
    """Sort the shift's segments, remove its own earlier plans from the history, apply the window
    caps and the overrides (caps win)."""
    grp = grp.sort_values("segment_id", kind="stable").set_index("segment_id", drop=False)
    date = str(grp["date"].iloc[0])
    shift = str(grp["shift"].iloc[0])
    seg = grp["segment_id"].to_numpy(dtype=object)
    warnings: list[str] = []
    # Earlier plans of this very shift are replaced by this one: do not count them.
    same = (history["date"] == pd.Timestamp(date)) & (history["shift"] == shift)
    supersedes = sorted(history.loc[same, "plan_id"].unique().tolist()) if len(history) else []
    hist = history.loc[~same] if len(history) else history
    blocked = blocked_by_caps(seg, date, hist, config.window_caps())
    is_blocked = np.isin(seg, list(blocked))
    inc = np.isin(seg, include)
    exc = np.isin(seg, exclude)
    both = inc & exc
    if both.any():
        raise InputError(
            f"segment {seg[both][0]} is both in --include and --exclude",
            fix="list it in one of them",
        )
    for sid in seg[inc & is_blocked]:
        # Caps win over overrides: a cap must never be exceeded (METHODOLOGY.md, 4.1).
        warnings.append(f"--include {sid} not forced: it would break cap {blocked[sid]}")
    if config.per_shift < 1 and inc.any():
        warnings.append(f"--include segments limited to the per-shift cap {config.per_shift}")
    return _Shift(
        grp=grp,
        date=date,
        shift=shift,
        seg=seg,
        r=grp["expected"].to_numpy(dtype=float),
        area=grp["area"].to_numpy(dtype=object),
        cap=np.full(seg.size, float(config.per_shift)),
        inc=inc,
        exc=exc,
        forced=inc & ~is_blocked,
        is_blocked=is_blocked,
        blocked=blocked,
        supersedes=supersedes,
        warnings=warnings,
    )


def _unit_groups(
    sh: _Shift, units: int | None, units_per_area: dict[str, int] | None
) -> tuple[dict[str, np.ndarray], dict[str, int], int]:
    """Groups of segments solved and sampled together (one global group, or one per area), the
    units of each, and the units requested."""
    if units_per_area is None:
        return {"*": np.arange(sh.n)}, {"*": int(units or 0)}, int(units or 0)
    groups = {a: np.flatnonzero(sh.area == a) for a in sorted(set(sh.area))}
    alloc = {a: int(units_per_area.get(a, 0)) for a in groups}
    for a in groups:
        if a not in units_per_area:
            sh.warnings.append(f"area {a!r} has no units: its segments get no coverage")
    return groups, alloc, int(sum(units_per_area.values()))


@dataclass
class _Solution:
    """Coverage of a shift with and without the overrides, floors, levels and the top-k pick."""

    c: np.ndarray
    c_unforced: np.ndarray
    floors: np.ndarray
    level: dict[str, float]
    topk: np.ndarray


def _solve_shift(
    sh: _Shift, groups: dict[str, np.ndarray], alloc: dict[str, int], config: PlanConfig
) -> _Solution:
    """Coverage of every group (:func:`solve_group`), with and without the overrides."""
    n = sh.n
    sol = _Solution(np.zeros(n), np.zeros(n), np.zeros(n), {}, np.zeros(n, dtype=bool))
    for a, idx in groups.items():
        n_a = alloc[a]
        if n_a <= 0 or idx.size == 0:
            for sid in sh.seg[idx][sh.forced[idx]]:
                sh.warnings.append(f"--include {sid} not forced: area {a!r} has no units")
            continue
        fl = config.floor if config.floor is not None else config.floor_factor * n_a / idx.size
        sol.floors[idx] = np.minimum(fl, sh.cap[idx])
        sol.c[idx], sol.level[a], got = solve_group(
            sh.r[idx], n_a, fl, sh.cap[idx], sh.forced[idx], sh.exc[idx] | sh.is_blocked[idx]
        )
        sol.c_unforced[idx], _, _ = solve_group(
            sh.r[idx], n_a, fl, sh.cap[idx], np.zeros(idx.size, bool), sh.is_blocked[idx]
        )
        if got < n_a:
            sh.warnings.append(
                f"only {got} of {n_a} units usable{'' if a == '*' else f' in {a}'}: "
                "caps/exclusions leave too little room"
            )
        sol.topk[idx] = top_k(sh.r[idx], got, sh.forced[idx], sh.exc[idx] | sh.is_blocked[idx])
    return sol


def _draw_checks(
    sh: _Shift,
    c: np.ndarray,
    groups: dict[str, np.ndarray],
    reasons: np.ndarray,
    rng: np.random.Generator,
    config: PlanConfig,
    tz: str,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Sample the checks (one comb per group), give each a time slot and a unit."""
    chosen = np.zeros(sh.n, dtype=bool)
    for idx in groups.values():
        if c[idx].sum() > 0.5:
            chosen[idx] = systematic_sample(c[idx], rng)
    pick = np.flatnonzero(chosen)
    s_start, s_end = draw_slots(
        sh.grp["_shift_start_utc"].iloc[0],
        sh.grp["_shift_end_utc"].iloc[0],
        pick.size,
        config.slot_hours,
        rng,
        tz,
    )
    checks = pd.DataFrame(
        {
            "segment_id": sh.seg[pick],
            "area": sh.area[pick],
            "slot_start": s_start,
            "slot_end": s_end,
            "coverage": np.round(c[pick], 6),
            "expected": np.round(sh.r[pick], 6),
            "reasons": reasons[pick],
        }
    )
    checks = checks.sort_values(["area", "slot_start", "segment_id"], kind="stable").reset_index(
        drop=True
    )
    checks.insert(0, "unit", [f"U{i + 1:02d}" for i in range(len(checks))])
    checks.insert(0, "check_no", np.arange(1, len(checks) + 1))
    return chosen, checks


def _coverage_table(
    sh: _Shift,
    sol: _Solution,
    alloc: dict[str, int],
    units_per_area: dict[str, int] | None,
    reasons: np.ndarray,
) -> pd.DataFrame:
    """Per-segment coverage, bounds and status (the plan's ``coverage`` frame)."""
    status = coverage_status(sol.c, sol.floors, sh.cap)
    status[sh.forced] = "included"
    status[sh.exc] = "excluded"
    status[sh.is_blocked] = "blocked"
    no_units = (
        np.isin(sh.area, [a for a, v in alloc.items() if v <= 0])
        if units_per_area
        else np.zeros(sh.n, bool)
    )
    status[no_units] = "no_units"
    return pd.DataFrame(
        {
            "area": sh.area,
            "expected": sh.r,
            "coverage": sol.c,
            "floor": sol.floors,
            "cap": np.where(sh.is_blocked | sh.exc, 0.0, sh.cap),
            "status": status,
            "reasons": reasons,
        },
        index=pd.Index(sh.seg, name="segment_id"),
    )


def _stats(
    sh: _Shift,
    sol: _Solution,
    chosen: np.ndarray,
    config: PlanConfig,
    include: list[str],
    exclude: list[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan's statistics against top-k (METHODOLOGY.md, 4.7) and its overrides record; warns
    when the overrides make the plan predictable."""
    c, r, topk, n = sol.c, sh.r, sol.topk, sh.n
    h_after = normalised_entropy(c)
    h_before = normalised_entropy(sol.c_unforced)
    ratio = h_after / h_before if h_before > 0 else None
    if (sh.inc.any() or sh.exc.any()) and ratio is not None and ratio < config.entropy_ratio_min:
        sh.warnings.append(
            f"overrides lower coverage entropy to {ratio:.2f} of the unforced plan "
            f"(threshold {config.entropy_ratio_min}): the plan gets predictable"
        )
    stats = {
        "segments": int(n),
        "entropy": round(h_after, 6),
        "max_inclusion": round(float(c.max()) if n else 0.0, 6),
        "min_inclusion_nonblocked": round(float(c[c > 0].min()) if (c > 0).any() else 0.0, 6),
        "expected_detections": round(float((c * r).sum()), 6),
        "realised_expected": round(float(r[chosen].sum()), 6),
        "worst_case_residual": round(float((r * (1 - c)).max()) if n else 0.0, 6),
        "residual_level": {k: round(v, 9) for k, v in sol.level.items()},
        "topk_expected_detections": round(float(r[topk].sum()), 6),
        "topk_entropy": round(normalised_entropy(topk.astype(float)), 6),
        "topk_max_inclusion": 1.0 if topk.any() else 0.0,
        "topk_worst_case_residual": round(float(r[~topk].max()) if (~topk).any() else 0.0, 6),
        "blocked_by_caps": int(sh.is_blocked.sum()),
        "zero_coverage": int((c <= 0).sum()),
    }
    seg_set = set(sh.seg)
    overrides = {
        "include": [s for s in include if s in seg_set],
        "exclude": [s for s in exclude if s in seg_set],
        "entropy_before": round(h_before, 6),
        "entropy_after": round(h_after, 6),
        "entropy_ratio": round(ratio, 6) if ratio is not None else None,
    }
    return stats, overrides


def _plan_one(
    grp: pd.DataFrame,
    *,
    units: int | None,
    units_per_area: dict[str, int] | None,
    config: PlanConfig,
    include: list[str],
    exclude: list[str],
    seed: int,
    history: pd.DataFrame,
    tz: str,
    geometry: Any,
) -> Plan:
    """The plan of one shift: caps, coverage, sample, slots, statistics."""
    sh = _shift_setup(grp, config, include, exclude, history)
    # The shift's stream draws the plan id first, then the sample, then the slots.
    rng, rng_desc = shift_rng(seed, sh.date, sh.shift)
    plan_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    groups, alloc, requested = _unit_groups(sh, units, units_per_area)
    sol = _solve_shift(sh, groups, alloc, config)
    reasons = _reasons(sh.grp)
    chosen, checks = _draw_checks(sh, sol.c, groups, reasons, rng, config, tz)
    coverage = _coverage_table(sh, sol, alloc, units_per_area, reasons)
    stats, overrides = _stats(sh, sol, chosen, config, include, exclude)
    lost = sh.seg[(sol.c <= 0) & ~sh.exc]
    if len(lost):
        log.info(
            "%s %s: %d segment(s) without coverage (caps/no units): exploration lost",
            sh.date,
            sh.shift,
            len(lost),
        )
    for w in sh.warnings:
        log.warning("%s %s: %s", sh.date, sh.shift, w)
    refusals = refusal_reasons(
        sol.c, coverage["cap"].to_numpy(), float(config.per_shift), requested, int(len(checks))
    )
    return Plan(
        plan_id=plan_id,
        date=sh.date,
        shift=sh.shift,
        shift_start=pd.Timestamp(str(sh.grp["shift_start"].iloc[0])).isoformat(),
        shift_end=pd.Timestamp(str(sh.grp["shift_end"].iloc[0])).isoformat(),
        seed=int(seed),
        rng=rng_desc,
        units=int(len(checks)),
        units_requested=requested,
        units_per_area=(dict(alloc) if units_per_area is not None else None),
        coverage=coverage,
        checks=checks,
        stats=stats,
        overrides=overrides,
        caps=config.as_dict(),
        blocked=sh.blocked,
        warnings=sh.warnings,
        supersedes=sh.supersedes,
        geometry=geometry.reindex(coverage.index) if geometry is not None else None,
        refusals=refusals,
    )


def _geometry_of(risk: pd.DataFrame, segments: pd.DataFrame | None) -> Any:
    """Segment geometry as a GeoSeries by ``segment_id`` (from ``segments`` or the risk), or None."""
    src = None
    if segments is not None and "geometry" in segments.columns:
        src = segments
    elif "geometry" in risk.columns and hasattr(risk, "crs"):
        src = risk.drop_duplicates("segment_id")
    if src is None:
        return None
    import geopandas as gpd

    gs = gpd.GeoSeries(
        src["geometry"].to_numpy(),
        index=src["segment_id"].astype(str).to_numpy(),
        crs=getattr(src, "crs", None),
    )
    return gs[~gs.index.duplicated()]


def make_plans(
    risk: pd.DataFrame,
    units: int | None = None,
    *,
    units_per_area: dict[str, int] | None = None,
    config: PlanConfig | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    shift: str | None = None,
    seed: int | None = None,
    history: pd.DataFrame | None = None,
    segments: pd.DataFrame | None = None,
    tz: str = "Europe/Ljubljana",
) -> list[Plan]:
    """Make one plan per (date, shift) of a risk table, in chronological order.

    This is the library entry point: it does not care where the risk came from (a CSV, or
    scoring run just before). It is pure: nothing is read or written.

    Parameters
    ----------
    risk : DataFrame
        Risk contract (see module docs); several shifts may be stacked.
    units : int, optional
        Checks per shift (``N``); required unless ``units_per_area`` is given.
    units_per_area : dict, optional
        ``{area: units}``: coverage is solved and sampled per area.
    config : PlanConfig, optional
        Caps and parameters (default :class:`PlanConfig`).
    include, exclude : sequence of str
        Segment ids forced to full (capped) coverage / to zero coverage.
    shift : str, optional
        Plan only this shift name.
    seed : int, optional
        Seed; default 64 bits of OS entropy (``secrets.randbits(64)``).
    history : DataFrame, optional
        Executed checks of earlier plans (:func:`riskmodel.planning.caps.checks_history`); frequency
        caps are counted from it. Plans made here are added for the later shifts.
    segments : GeoDataFrame, optional
        Segment geometry (for maps); else the risk's own geometry if it has one.
    tz : str
        Zone of the printed slot times.

    Returns
    -------
    list of Plan

    Raises
    ------
    InputError
        Unknown override ids (with close matches), unknown shift, bad unit counts.
    """
    config = config or PlanConfig()
    if not {"_shift_start_utc", "_shift_end_utc"} <= set(risk.columns):
        risk = validate_risk(risk)
    if "threat" in risk.columns:
        # Plans follow the effort-neutral risk (where people cross), not expected *recorded*
        # events, which rise wherever patrols already are (detection bias, PAWS/iWare-E).
        # validate_risk refused a missing or invalid threat value row by row.
        risk = risk.assign(expected=risk["threat"].astype(float))
    seed = secrets.randbits(64) if seed is None else int(seed)
    if seed < 0:
        raise InputError(f"seed {seed} is negative", fix="use a seed >= 0")
    include, exclude = parse_ids(include), parse_ids(exclude)
    known = risk["segment_id"].unique().tolist()
    check_ids(include, known, "--include")
    check_ids(exclude, known, "--exclude")
    if shift is not None:
        if shift not in set(risk["shift"]):
            raise InputError(
                f"shift {shift!r} is not in the risk table",
                fix=f"use one of: {', '.join(sorted(set(risk['shift'])))}",
            )
        risk = risk[risk["shift"] == shift]
    check_units(set(risk["area"]), units, units_per_area)
    hist = history if history is not None else checks_history([])
    geometry = _geometry_of(risk, segments)
    order = (
        risk.groupby(["date", "shift"], sort=False)["_shift_start_utc"]
        .min()
        .sort_values(kind="stable")
    )
    plans: list[Plan] = []
    for date, shift_name in order.index:
        grp = risk[(risk["date"] == date) & (risk["shift"] == shift_name)]
        p = _plan_one(
            grp,
            units=units,
            units_per_area=units_per_area,
            config=config,
            include=include,
            exclude=exclude,
            seed=seed,
            history=hist,
            tz=tz,
            geometry=geometry,
        )
        plans.append(p)
        new = checks_history(
            [plan_history_entry(p.date, p.shift, p.plan_id, p.checks["segment_id"].tolist())]
        )
        same = (hist["date"] == pd.Timestamp(p.date)) & (hist["shift"] == p.shift)
        hist = pd.concat([hist.loc[~same], new], ignore_index=True) if len(hist) else new
    return plans
