"""The compliance report of the audit log: the numbers a court or the Commission asks for.

For a period: plans and re-plans, checks, how often each segment was checked, coverage against
risk (selectivity), randomness, overrides, and every cap violation, judged by the same rules the
planner applies (:mod:`riskmodel.planning.caps`). METHODOLOGY.md, section 4.8, describes the
report; section 4.1 the legal basis.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
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
    window_caps,
    window_counts,
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


def _merged_caps(
    recorded: Mapping[str, Any] | None, reference: Mapping[str, Any] | None
) -> tuple[float, dict[str, tuple[int, int]]]:
    """The per-shift cap and window caps a plan is judged by: its own, and the caps in force
    (``reference``) where stricter."""
    per = per_shift_cap(recorded)
    wc = dict(window_caps(recorded))
    if reference:
        per = min(per, per_shift_cap(reference))
        for name, (w, limit) in window_caps(reference).items():
            if name not in wc or (wc[name][0] == w and limit < wc[name][1]):
                wc[name] = (w, limit)
    return per, wc


def _violations(
    all_eff: list[dict[str, Any]],
    in_period: list[dict[str, Any]],
    long: pd.DataFrame,
    reference: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Cap violations of the plans ``in_period``, each blamed on the plan that broke the cap.

    Plans are replayed in log order; a check of plan P breaks a window cap when the window
    around its day holds more checks than the cap counting only P and the plans logged before
    it (:func:`riskmodel.planning.caps.window_counts`, windows reaching outside the period
    included). Earlier plans that were inside the cap when they were made are not blamed for
    a later plan that broke it. Each plan is judged by the caps it recorded and by the caps in
    force (``reference``) where stricter.
    """
    cols = ["plan_id", "date", "shift", "segment_id", "cap", "limit", "count"]
    rows: list[dict[str, Any]] = []
    in_ids = {e.get("plan_id") for e in in_period}
    # Per-shift intensity: coverage above the cap ...
    per = np.array([_merged_caps(e.get("caps"), reference)[0] for e in in_period])
    if len(long):
        over = long[over_per_shift(long["coverage"].to_numpy(), per[long["plan"].to_numpy()])]
        for rec in over.itertuples(index=False):
            e = in_period[rec.plan]
            rows.append(dict(plan_id=e.get("plan_id"), date=e["date"], shift=e["shift"],
                             segment_id=rec.segment_id, cap="per_shift",
                             limit=float(per[rec.plan]), count=float(rec.coverage)))  # fmt: skip
    seg_parts: list[np.ndarray] = []
    day_parts: list[np.ndarray] = []
    for e in all_eff:  # log order
        mine = checks_history([e])
        seg_parts.append(mine["segment_id"].to_numpy(dtype=object))
        day_parts.append(mine["day"].to_numpy())
        if e.get("plan_id") not in in_ids or mine.empty:
            continue
        # ... or a segment chosen twice in one shift ...
        for seg, n in mine["segment_id"].value_counts()[lambda x: x > 1].items():
            rows.append(dict(plan_id=e.get("plan_id"), date=e["date"], shift=e["shift"],
                             segment_id=seg, cap="one_check_per_shift", limit=1, count=int(n)))  # fmt: skip
        # ... or a window cap broken by this plan, counting the plans logged up to it.
        hist = pd.DataFrame(
            {"segment_id": np.concatenate(seg_parts), "day": np.concatenate(day_parts)}
        )
        for name, (w, limit) in _merged_caps(e.get("caps"), reference)[1].items():
            worst = window_counts(hist, mine["segment_id"], mine["day"].to_numpy(), w)
            for k in np.flatnonzero(worst > limit):
                rows.append(dict(plan_id=e.get("plan_id"), date=e["date"], shift=e["shift"],
                                 segment_id=mine["segment_id"].iloc[k], cap=name,
                                 limit=int(limit), count=int(worst[k])))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _cap_comparisons(
    all_eff: list[dict[str, Any]], eff: list[dict[str, Any]], caps: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Each statistic of the period next to its cap: ``name, text, value, cap, exceeded``."""
    if not eff:
        return []
    caps = caps or eff[-1].get("caps") or {}
    out: list[dict[str, Any]] = []
    max_inc = float(max(e.get("max_inclusion") or 0.0 for e in eff))
    per = per_shift_cap(caps)
    out.append(dict(name="per_shift", value=max_inc, cap=per,
                    text="largest chance one segment was checked in one shift",
                    exceeded=bool(over_per_shift(np.array([max_inc]), per)[0])))  # fmt: skip
    hist_all = checks_history(all_eff)
    mine = checks_history(eff)
    wc = window_caps(caps)
    spd = int(caps.get("shifts_per_day") or 3)
    for name, days, text in (
        ("max_per_segment_per_7d", 7, "most checks of one segment in any 7 days"),
        ("max_per_segment_per_30d", 30, "most checks of one segment in any 30 days"),
    ):
        worst = int(window_counts(hist_all, mine["segment_id"], mine["day"], days).max(initial=0))
        limit = wc.get(name, (days, None))[1]
        out.append(dict(name=name, value=worst, cap=limit, text=text,
                        exceeded=limit is not None and worst > limit))  # fmt: skip
    w = int(caps.get("share_window_days") or 30)
    worst = int(window_counts(hist_all, mine["segment_id"], mine["day"], w).max(initial=0))
    share = caps.get("max_share_of_shifts")
    out.append(dict(name="max_share_of_shifts", value=worst / (w * spd),
                    cap=None if share is None else float(share),
                    text=f"largest share of shifts one segment was checked in any {w} days",
                    exceeded=share is not None and worst > wc["max_share_of_shifts"][1]))  # fmt: skip
    return out


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
        "without_reason": int(sum(not e["overrides"].get("reason") for e in ov_plans)),
        "records": [
            {
                "plan_id": e.get("plan_id"),
                "include": e["overrides"].get("include") or [],
                "exclude": e["overrides"].get("exclude") or [],
                "reason": e["overrides"].get("reason"),
                "by": e["overrides"].get("by"),
            }
            for e in ov_plans
        ],
    }


def late_plans(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plans whose entry was created after their shift had started (drawn late or
    backdated), with how many minutes late; entries without times are skipped."""
    out = []
    for e in entries:
        if not (e.get("created") and e.get("shift_start")):
            continue
        late = (pd.Timestamp(e["created"]) - pd.Timestamp(e["shift_start"])).total_seconds()
        if late > 0:
            out.append(
                {
                    "plan_id": e.get("plan_id"),
                    "date": e.get("date"),
                    "shift": e.get("shift"),
                    "minutes_late": round(late / 60.0, 1),
                }  # fmt: skip
            )
    return out


def compliance_report(
    entries: list[dict[str, Any]],
    date_from: str | dt.date,
    date_to: str | dt.date,
    integrity: LogIntegrity | None = None,
    *,
    caps: Mapping[str, Any] | None = None,
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
    caps : mapping, optional
        The caps in force (:meth:`PlanConfig.as_dict`): plans are judged by them where they are
        stricter than the caps a plan recorded, and the statistics are compared with them
        (default: the caps of the period's last plan).

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
    logged = [e for e in plans_all if lo.isoformat() <= e["date"] <= hi.isoformat()]
    n_logged = len(logged)

    long = _long_table(eff)
    n_plans = len(eff)
    hist = checks_history(eff)
    weekly = _weekly(hist)
    per = _per_segment(eff, long, weekly)
    corr_p, corr_s, deciles = _selectivity(long)
    viol = _violations(all_eff, eff, long, caps)
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
        # Every logged plan, superseded ones too: an override stays on record when re-planned.
        "overrides": _overrides_summary(logged),
        "forced_plans": [
            {"plan_id": e.get("plan_id"), **(e.get("forced") or {})}
            for e in logged
            if e.get("forced")
        ],
        "late_plans": late_plans(logged),
        "caps_compared": _cap_comparisons(all_eff, eff, caps),
        "cap_violations": len(viol),
        "plans_blamed": sorted(set(viol["plan_id"].astype(str))) if len(viol) else [],
        "expected_detections": float(sum(e.get("expected_detections", 0.0) for e in eff)),
        "topk_expected_detections": float(sum(e.get("topk_expected_detections", 0.0) for e in eff)),
        "log_integrity": {
            "lines": integrity.lines if integrity else None,
            "corrupt_lines": integrity.corrupt_lines if integrity else None,
            "chain_breaks": integrity.chain_breaks if integrity else None,
            "ok": integrity.ok if integrity else None,
            "keyed": integrity.keyed if integrity else None,
            "anchor": integrity.anchor if integrity else None,
            "head_seq": integrity.last_seq if integrity else None,
            "head": integrity.last_mac if integrity else None,
            "problems": list(integrity.problems) if integrity else None,
            "acknowledged": list(integrity.acknowledged) if integrity else None,
            "status": integrity.status_line() if integrity else "log integrity: not checked",
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


def _cap_line(c: dict[str, Any]) -> str:
    """``<statistic>: <value> — cap <cap> — ok|EXCEEDED`` (or ``no cap set``)."""
    value = _fmt(c["value"])
    if c["cap"] is None:
        return f"{c['text']}: {value} — no cap set"
    return f"{c['text']}: {value} — cap {_fmt(c['cap'])} — {'EXCEEDED' if c['exceeded'] else 'ok'}"


def summary_lines(report: AuditReport) -> list[str]:
    """A short human summary (what ``riskmodel audit`` prints): each statistic next to its cap."""
    s = report.summary
    o = s["overrides"]
    li = s["log_integrity"]
    lines = [
        f"period {s['period']['from']} .. {s['period']['to']}: {s['plans']} plans "
        f"({s['replans']} re-planned), {s['checks']} checks",
        f"segments ever checked: {s['segments_ever_checked']}/{s['segments']} "
        f"({_fmt(s['share_segments_ever_checked'])}); share of the planned shifts the most "
        f"checked segment was in: {_fmt(s['max_share_of_shifts'])} "
        f"(segment {s['max_share_segment'] or 'n/a'}, not a cap)",
        *[_cap_line(c) for c in s.get("caps_compared", [])],
        f"coverage vs risk: pearson {_fmt(s['coverage_risk_pearson'])}, "
        f"spearman {_fmt(s['coverage_risk_spearman'])}; mean entropy "
        f"{_fmt(s['mean_normalised_entropy'])}",
        f"overrides (superseded plans included): {o['plans']} plans ({o['include']} include, "
        f"{o['exclude']} exclude, {o.get('without_reason', 0)} without a reason), min entropy "
        f"ratio {_fmt(o['min_entropy_ratio'])}, {o['warnings']} warnings",
    ]
    if s.get("forced_plans"):
        lines.append(
            f"FORCED plans: {len(s['forced_plans'])} ("
            + "; ".join(
                f"{f['plan_id']}: {f.get('reason')!r} by {f.get('by')}" for f in s["forced_plans"]
            )
            + ")"
        )
    late = s.get("late_plans") or []
    if late:
        lines.append(
            f"drawn after their shift had started: {len(late)} plan(s) ("
            + "; ".join(f"{x['date']} {x['shift']} {x['plan_id']}" for x in late[:5])
            + (f"; +{len(late) - 5} more" if len(late) > 5 else "")
            + ")"
        )
    viol = f"cap violations: {s['cap_violations']}"
    if s["cap_violations"]:
        blamed = s.get("plans_blamed", [])
        viol += f" — EXCEEDED, caused by plan(s) {', '.join(blamed[:5])}"
        viol += f" (+{len(blamed) - 5} more)" if len(blamed) > 5 else ""
    lines.append(viol)
    lines.append(li.get("status") or f"log integrity: {'ok' if li['ok'] else 'BROKEN'}")
    return lines


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
