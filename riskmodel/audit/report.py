"""The compliance report of the audit log: the numbers a court or the Commission asks for.

For a period: plans and re-plans, checks, how often each segment was checked, coverage against
risk (selectivity), randomness, overrides, and every cap violation, judged by the same rules the
planner applies (:mod:`riskmodel.planning.caps`). METHODOLOGY.md, section 4.8, describes the
report; section 4.1 the legal basis.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.audit.log import LogIntegrity
from riskmodel.errors import InputError
from riskmodel.files import atomic_write_json, atomic_write_text
from riskmodel.planning.caps import (
    PLAN_ENTRY_TYPE,
    checks_history,
    effective_entries,
    over_per_shift,
    per_shift_cap,
    window_breaches,
    window_caps,
)

log = logging.getLogger(__name__)

LEGAL_BASIS = (
    "Schengen Borders Code art. 23; CJEU C-9/16 (intensity, frequency, "
    "selectivity of checks); C-278/12 Adil"
)


@dataclass
class AuditReport:
    """Compliance statistics over a period.

    Attributes
    ----------
    summary : dict
        Headline numbers (JSON-ready).
    per_segment : DataFrame
        One row per segment: checks, share of shifts, mean coverage and risk, weekly counts.
    weekly : DataFrame
        Checks per segment (rows) per ISO week (columns ``YYYY-Www``).
    deciles : DataFrame
        Coverage and check rate by within-plan risk decile (10 = highest risk).
    violations : DataFrame
        Every cap violation found (must be empty).
    """

    summary: dict[str, Any]
    per_segment: pd.DataFrame
    weekly: pd.DataFrame
    deciles: pd.DataFrame
    violations: pd.DataFrame

    @property
    def passed(self) -> bool:
        """No cap violation and (when it was checked) an intact log."""
        ok = self.summary["log_integrity"]["ok"]
        return not self.summary["cap_violations"] and ok is not False


def _parse_day(value: str | dt.date, what: str) -> dt.date:
    """A date from ``YYYY-MM-DD`` (``what`` names the flag in the error)."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(
            f"{what} {value!r} is not a date", fix="write dates as YYYY-MM-DD"
        ) from None


def _long_table(eff: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (plan, segment): coverage, risk, whether checked, the plan's per-shift cap."""
    sizes = [len(e.get("coverage") or {}) for e in eff]
    segs = [s for e in eff for s in (e.get("coverage") or {})]
    cov = np.fromiter(
        (c for e in eff for c in (e.get("coverage") or {}).values()), float, sum(sizes)
    )
    exp = np.fromiter(
        ((e.get("expected") or {}).get(s, np.nan) for e in eff for s in (e.get("coverage") or {})),
        float,
        sum(sizes),
    )
    plan = np.repeat(np.arange(len(eff)), sizes)
    chosen = pd.MultiIndex.from_tuples(
        [(i, s) for i, e in enumerate(eff) for s in (e.get("chosen") or [])],
        names=["plan", "segment_id"],
    )
    key = pd.MultiIndex.from_arrays([plan, segs], names=["plan", "segment_id"])
    per_shift = np.array([per_shift_cap(e.get("caps")) for e in eff])
    return pd.DataFrame(
        {
            "plan": plan,
            "segment_id": pd.Series(segs, dtype=object),
            "coverage": cov,
            "expected": exp,
            "checked": key.isin(chosen) if len(chosen) else np.zeros(len(segs), bool),
            "per_shift": per_shift[plan] if len(eff) else np.zeros(0),
        }
    )


def _violations(
    all_eff: list[dict[str, Any]], in_period: list[dict[str, Any]], long: pd.DataFrame
) -> pd.DataFrame:
    """Cap violations of the plans ``in_period`` (whose rows ``long`` holds), counted over the
    full history ``all_eff`` so windows reaching outside the period are checked too.

    The rules are the planner's own (:mod:`riskmodel.planning.caps`), each plan judged by the
    caps it recorded.
    """
    cols = ["plan_id", "date", "shift", "segment_id", "cap", "limit", "count"]
    rows: list[dict[str, Any]] = []
    hist = checks_history(all_eff)
    meta = pd.DataFrame(
        {
            "plan_id": [e.get("plan_id") for e in in_period],
            "date": [e["date"] for e in in_period],
            "shift": [e["shift"] for e in in_period],
        }
    )
    # Per-shift intensity: coverage above the plan's cap ...
    over = long[over_per_shift(long["coverage"].to_numpy(), long["per_shift"].to_numpy())]
    for rec in over.itertuples(index=False):
        m = meta.iloc[rec.plan]
        rows.append(dict(plan_id=m.plan_id, date=m.date, shift=m["shift"],
                         segment_id=rec.segment_id, cap="per_shift", limit=rec.per_shift,
                         count=float(rec.coverage)))  # fmt: skip
    # ... or a segment chosen twice in one shift.
    in_ids = set(meta["plan_id"])
    twice = hist[hist["plan_id"].isin(in_ids)].groupby(["plan_id", "date", "shift", "segment_id"])
    for (pid, date, shift, seg), n in twice.size()[lambda x: x > 1].items():
        rows.append(dict(plan_id=pid, date=str(pd.Timestamp(date).date()), shift=shift,
                         segment_id=seg, cap="one_check_per_shift", limit=1, count=int(n)))  # fmt: skip
    if not hist.empty and in_period:
        # Plans sharing the same caps (the usual case) are checked in one vectorised pass.
        plan_caps = {e.get("plan_id"): window_caps(e.get("caps")) for e in in_period}
        cap_key = {pid: json.dumps(c, sort_keys=True) for pid, c in plan_caps.items()}
        in_hist = hist[hist["plan_id"].isin(list(plan_caps))]
        for key, sub in in_hist.groupby(in_hist["plan_id"].map(cap_key), sort=False):
            caps = {name: tuple(v) for name, v in json.loads(key).items()}  # by cap name
            for b in window_breaches(hist, sub, caps).itertuples(index=False):
                rec = sub.iloc[b.row]
                rows.append(dict(plan_id=rec["plan_id"], date=str(rec["date"].date()),
                                 shift=rec["shift"], segment_id=rec["segment_id"], cap=b.cap,
                                 limit=int(b.limit), count=int(b.count)))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _weekly(hist: pd.DataFrame) -> pd.DataFrame:
    """Checks per segment (rows) per ISO week of the plan date (columns ``YYYY-Www``)."""
    if len(hist):
        iso = hist["date"].dt.isocalendar()
        week = iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
        weekly = pd.crosstab(hist["segment_id"], week).sort_index()
    else:
        weekly = pd.DataFrame()
    weekly.index.name = "segment_id"
    weekly.columns.name = None
    return weekly


_PER_SEGMENT_COLUMNS = [
    "plans",
    "checks",
    "mean_coverage",
    "min_coverage",
    "zero_coverage_plans",
    "mean_expected",
]


def _per_segment(
    eff: list[dict[str, Any]], long: pd.DataFrame, weekly: pd.DataFrame
) -> pd.DataFrame:
    """One row per segment: area, plans, checks, coverage, risk, share of shifts, weekly counts."""
    areas: dict[str, str] = {}
    for e in eff:  # {area: [segment ids]} per entry; later plans win
        for a, ids in (e.get("areas") or {}).items():
            areas.update(dict.fromkeys(ids, a))
    if len(long):
        g = long.groupby("segment_id", sort=True)
        per = pd.DataFrame(
            {
                "plans": g.size(),
                "checks": g["checked"].sum().astype(int),
                "mean_coverage": g["coverage"].mean(),
                "min_coverage": g["coverage"].min(),
                "zero_coverage_plans": g["coverage"].apply(lambda s: int((s <= 0).sum())),
                "mean_expected": g["expected"].mean(),
            }
        )
    else:
        per = pd.DataFrame(columns=_PER_SEGMENT_COLUMNS)
    per.index.name = "segment_id"
    per.insert(0, "area", [areas.get(s, "") for s in per.index])
    n_plans = len(eff)
    per["share_of_shifts"] = per["checks"] / n_plans if n_plans else 0.0
    if not weekly.empty:
        per = per.join(weekly, how="left")
        per[list(weekly.columns)] = per[list(weekly.columns)].fillna(0).astype(int)
    return per


def _selectivity(long: pd.DataFrame) -> tuple[float | None, float | None, pd.DataFrame]:
    """Coverage against risk: Pearson, Spearman, and coverage and check rate by risk decile."""
    corr_p = corr_s = None
    deciles = pd.DataFrame(
        columns=["decile", "rows", "mean_expected", "mean_coverage", "check_rate"]
    )
    if len(long) > 2 and long["expected"].notna().any():
        ok = long.dropna(subset=["expected"])
        if ok["coverage"].std() > 0 and ok["expected"].std() > 0:
            corr_p = float(np.corrcoef(ok["coverage"], ok["expected"])[0, 1])
            corr_s = float(ok["coverage"].rank().corr(ok["expected"].rank()))
        # Within-plan deciles so busy and quiet shifts are compared like for like.
        pct = ok.groupby("plan")["expected"].rank(method="first", pct=True)
        dec = np.minimum(np.ceil(pct * 10), 10).astype(int)
        deciles = (
            ok.assign(decile=dec)
            .groupby("decile")
            .agg(
                rows=("coverage", "size"),
                mean_expected=("expected", "mean"),
                mean_coverage=("coverage", "mean"),
                check_rate=("checked", "mean"),
            )
            .reset_index()
        )
    return corr_p, corr_s, deciles


def _overrides_summary(eff: list[dict[str, Any]]) -> dict[str, Any]:
    """Plans with overrides, ids included/excluded, their entropy ratios, warnings."""
    ov_plans = [
        e
        for e in eff
        if (e.get("overrides") or {}).get("include") or (e.get("overrides") or {}).get("exclude")
    ]
    ratios = [
        float(e["overrides"]["entropy_ratio"])
        for e in ov_plans
        if e["overrides"].get("entropy_ratio") is not None
    ]
    return {
        "plans": len(ov_plans),
        "include": int(sum(len(e["overrides"].get("include") or []) for e in ov_plans)),
        "exclude": int(sum(len(e["overrides"].get("exclude") or []) for e in ov_plans)),
        "mean_entropy_ratio": float(np.mean(ratios)) if ratios else None,
        "min_entropy_ratio": float(np.min(ratios)) if ratios else None,
        "warnings": int(sum(len(e.get("warnings") or []) for e in eff)),
    }


def compliance_report(
    entries: list[dict[str, Any]],
    date_from: str | dt.date,
    date_to: str | dt.date,
    integrity: LogIntegrity | None = None,
) -> AuditReport:
    """Compliance statistics of the plans dated in ``[date_from, date_to]``.

    Parameters
    ----------
    entries : list of dict
        All audit-log entries (the whole log: caps are checked over windows reaching outside
        the period).
    date_from, date_to : str or date
        Inclusive period of plan dates (local).
    integrity : LogIntegrity, optional
        From :func:`riskmodel.audit.log.read_log`; reported in the summary.

    Returns
    -------
    AuditReport

    Raises
    ------
    InputError
        A date is not ``YYYY-MM-DD`` or the period is reversed.
    """
    lo = _parse_day(date_from, "--from")
    hi = _parse_day(date_to, "--to")
    if hi < lo:
        raise InputError(f"--to {hi} is before --from {lo}", fix="swap the dates")
    plans_all = [e for e in entries if e.get("type") == PLAN_ENTRY_TYPE]
    all_eff = effective_entries(plans_all)
    eff = [e for e in all_eff if lo.isoformat() <= e["date"] <= hi.isoformat()]
    n_logged = sum(lo.isoformat() <= e["date"] <= hi.isoformat() for e in plans_all)

    long = _long_table(eff)
    n_plans = len(eff)
    hist = checks_history(eff)
    weekly = _weekly(hist)
    per = _per_segment(eff, long, weekly)
    corr_p, corr_s, deciles = _selectivity(long)
    viol = _violations(all_eff, eff, long)
    n_segments = int(long["segment_id"].nunique()) if len(long) else 0
    summary: dict[str, Any] = {
        "period": {"from": lo.isoformat(), "to": hi.isoformat()},
        "plans": n_plans,
        "plans_logged": n_logged,
        "replans": n_logged - n_plans,
        "checks": len(hist),
        "segments": n_segments,
        "segments_ever_checked": int((per["checks"] > 0).sum()) if len(per) else 0,
        "share_segments_ever_checked": (float((per["checks"] > 0).mean()) if n_segments else None),
        "max_share_of_shifts": float(per["share_of_shifts"].max()) if len(per) else None,
        "max_share_segment": (str(per["share_of_shifts"].idxmax()) if len(per) else None),
        "max_checks_per_segment_per_week": int(weekly.to_numpy().max()) if not weekly.empty else 0,
        "coverage_risk_pearson": corr_p,
        "coverage_risk_spearman": corr_s,
        "mean_normalised_entropy": (
            float(np.mean([e["entropy"] for e in eff if e.get("entropy") is not None]))
            if eff
            else None
        ),
        "max_inclusion_probability": (
            float(max(e.get("max_inclusion", 0.0) for e in eff)) if eff else None
        ),
        "plans_with_zero_coverage_segments": int(sum(bool(e.get("exploration_lost")) for e in eff)),
        "overrides": _overrides_summary(eff),
        "cap_violations": len(viol),
        "expected_detections": float(sum(e.get("expected_detections", 0.0) for e in eff)),
        "topk_expected_detections": float(sum(e.get("topk_expected_detections", 0.0) for e in eff)),
        "log_integrity": {
            "lines": integrity.lines if integrity else None,
            "corrupt_lines": integrity.corrupt_lines if integrity else None,
            "chain_breaks": integrity.chain_breaks if integrity else None,
            "ok": integrity.ok if integrity else None,
        },
        "legal_basis": LEGAL_BASIS,
    }
    return AuditReport(
        summary=summary, per_segment=per, weekly=weekly, deciles=deciles, violations=viol
    )


def _fmt(v: Any) -> str:
    """A summary value as text (floats to 3 decimals, None as n/a)."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def summary_lines(report: AuditReport) -> list[str]:
    """A short human summary (what ``riskmodel audit`` prints)."""
    s = report.summary
    o = s["overrides"]
    li = s["log_integrity"]
    return [
        f"period {s['period']['from']} .. {s['period']['to']}: {s['plans']} plans "
        f"({s['replans']} re-planned), {s['checks']} checks",
        f"segments ever checked: {s['segments_ever_checked']}/{s['segments']} "
        f"({_fmt(s['share_segments_ever_checked'])})",
        f"largest share of shifts checked: {_fmt(s['max_share_of_shifts'])} "
        f"(segment {s['max_share_segment']}); max checks/segment/week: "
        f"{s['max_checks_per_segment_per_week']}",
        f"coverage vs risk: pearson {_fmt(s['coverage_risk_pearson'])}, "
        f"spearman {_fmt(s['coverage_risk_spearman'])}; mean entropy "
        f"{_fmt(s['mean_normalised_entropy'])}, max inclusion {_fmt(s['max_inclusion_probability'])}",
        f"overrides: {o['plans']} plans ({o['include']} include, {o['exclude']} exclude), "
        f"min entropy ratio {_fmt(o['min_entropy_ratio'])}, {o['warnings']} warnings",
        f"cap violations: {s['cap_violations']}; log integrity: "
        + (
            "ok"
            if li["ok"]
            else f"corrupt lines {li['corrupt_lines']}, chain breaks {li['chain_breaks']}"
        ),
    ]


def _md_table(df: pd.DataFrame, index: bool = True) -> str:
    """A frame as a Markdown table (``_none_`` when empty)."""
    d = df.reset_index() if index else df
    if d.empty:
        return "_none_\n"
    cols = [str(c) for c in d.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in d.itertuples(index=False):
        lines.append(
            "| " + " | ".join(_fmt(v) if isinstance(v, float) else str(v) for v in row) + " |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: AuditReport, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``audit_<from>_<to>.json``, ``.csv`` (per segment) and ``.md`` atomically.

    Returns
    -------
    list of Path
        The files written.
    """
    s = report.summary
    stem = Path(out) / f"audit_{s['period']['from']}_{s['period']['to']}"
    payload = {
        "summary": s,
        "deciles": report.deciles.to_dict(orient="records"),
        "weekly": {
            str(k): {str(w): int(n) for w, n in row.items() if n}
            for k, row in report.weekly.iterrows()
        },
        "violations": report.violations.to_dict(orient="records"),
    }
    p_json = atomic_write_json(stem.with_suffix(".json"), payload)
    per = report.per_segment.copy()
    for c in ("mean_coverage", "min_coverage", "mean_expected", "share_of_shifts"):
        if c in per:
            per[c] = per[c].astype(float).round(6)
    p_csv = atomic_write_text(stem.with_suffix(".csv"), per.to_csv(lineterminator="\n"))
    md = [
        f"# Spot-check compliance audit {s['period']['from']} .. {s['period']['to']}\n",
        "Legal basis: Schengen Borders Code art. 23 (checks in border areas must not have the "
        "effect of border control, must be spot checks distinct from systematic border checks); "
        "CJEU C-9/16 (limits on intensity, frequency and selectivity); C-278/12 Adil.\n",
        "## Summary\n",
        *[f"- {line}" for line in summary_lines(report)],
        "",
        "## Coverage and checks by risk decile (within plan; 10 = highest risk)\n",
        _md_table(report.deciles, index=False),
        "## Cap violations\n",
        _md_table(report.violations, index=False),
        "## Checks per segment per ISO week\n",
        _md_table(
            report.weekly[report.weekly.sum(axis=1) > 0]
            if not report.weekly.empty
            else report.weekly
        ),
    ]
    p_md = atomic_write_text(stem.with_suffix(".md"), "\n".join(md))
    return [p_json, p_csv, p_md]
