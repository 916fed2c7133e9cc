"""Scoring shifts with a model bundle: expected events, band, rank, class, reasons, CIRAM fields.

Every shift is scored from the events strictly before its start (the feature pipeline
guarantees it), so scoring a range of dates whose events are in the file is a true
one-step-ahead forecast.

Risk classes are fixed rank-percentile classes per shift, so a planner reads them the same way
every day (the engine's decisions are about the top few per cent of the border):

=====  ============  =================================
class  label         segments (by rank within a shift)
=====  ============  =================================
5      very high     top 2 %
4      high          next 3 % (top 5 %)
3      medium        next 10 % (top 15 %)
2      low           next 25 % (top 40 %)
1      very low      the remaining 60 %
=====  ============  =================================
"""

from __future__ import annotations

import calendar
import re
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.model.bundle import Bundle
from riskmodel.model.pipeline import Dataset

CLASS_BREAKS = (0.02, 0.05, 0.15, 0.40)  # cumulative top shares for classes 5, 4, 3, 2
CLASS_LABELS = {5: "very high", 4: "high", 3: "medium", 2: "low", 1: "very low"}  # as writers
SMUGGLER_WEIGHT = 5.0  # impact of a smuggler arrest in person-equivalents (harm weighting)


def risk_class(rank: np.ndarray, n: int) -> np.ndarray:
    """Class 1-5 from 1-based ranks among ``n`` segments (see module table)."""
    share = (np.asarray(rank) - 0.5) / n
    cls = np.ones(len(share), dtype=int)
    for c, brk in zip((5, 4, 3, 2), CLASS_BREAKS, strict=True):
        cls = np.where((cls == 1) & (share < brk), c, cls)
    return cls


def _family(feature: str) -> str:
    """Group features so the three reasons are not three variants of one count."""
    for pre, fam in (
        ("near_repeat", "near"),
        ("n_1d", "recent"),
        ("n_7d", "recent"),
        ("decay_3d", "recent"),
        ("n_28d", "month"),
        ("decay_14d", "month"),
        ("n_91d", "long"),
        ("n_365d", "long"),
        ("decay_60d", "long"),
        ("persons", "long"),
        ("days_since", "since"),
        ("shift", "time"),
        ("local_hour", "time"),
        ("darkness", "dark"),
        ("effort", "effort"),
        ("area_n", "area"),
        ("border_n", "area"),
        ("trend", "trend"),
        ("month", "season"),
        ("doy", "season"),
        ("weekday", "weekday"),
        ("holiday", "holiday"),
        ("dist_crossing", "crossing"),
        ("dist_corridor", "corridor"),
        ("dist_approach", "corridor"),
        ("corridor_pull", "corridor"),
        ("dist_settlement_far", "settle_far"),
        ("pop_nearest_far", "settle_far"),
        ("pop_within_far", "settle_far"),
        ("dist_settlement_si", "settle_si"),
        ("pop_nearest_si", "settle_si"),
        ("pop_within_si", "settle_si"),
        ("river", "river"),
        ("chainage", "place"),
        ("area_code", "place"),
        ("history_days", "place"),
        ("segment_length", "place"),
    ):
        if feature.startswith(pre):
            return fam
    return feature


def describe(feature: str, value: float, ctx: dict[str, Any]) -> str:
    """Plain-words reason for one feature value of one segment-shift."""
    v = float(value)
    m = re.fullmatch(r"n_(\d+)d(?:_pm(\d+(?:\.\d+)?)km|_r(\d+(?:\.\d+)?)km)?", feature)
    if m:
        days, pm, r = m.groups()
        where = (
            f"within {pm} km along the border"
            if pm
            else f"within {r} km"
            if r
            else "on this segment"
        )
        return f"{v:.0f} incident{'s' if v != 1 else ''} {where} in the last {days} day{'s' if days != '1' else ''}"
    m = re.fullmatch(r"decay_(\d+)d(_pm3km)?", feature)
    if m:
        where = "within 3 km" if m.group(2) else "on this segment"
        return f"recent activity {where} (time-weighted count {v:.1f}, {m.group(1)}-day memory)"
    m = re.fullmatch(r"longrun_(\d+(?:\.\d+)?)km", feature)
    if m:
        return f"long-run rate {v * 30:.1f} incidents a month within ~{m.group(1)} km"
    if feature == "near_repeat":
        return f"{v:.0f} incident{'s' if v != 1 else ''} within 3 km in the last 72 h (near-repeat)"
    if feature.startswith("persons_"):
        return f"{v:.0f} persons apprehended here in the last {feature.split('_')[1][:-1]} days"
    if feature == "days_since":
        return (
            "no incident here in the last 2 years"
            if v >= 730
            else f"last incident here {v:.0f} days ago"
        )
    if feature == "days_since_pm3km":
        return (
            "no incident within 3 km in 2 years"
            if v >= 730
            else f"last incident within 3 km {v:.0f} days ago"
        )
    if feature in ("shift_idx", "local_hour", "shift_hours"):
        return f"{ctx['shift']} shift"
    if feature == "darkness":
        return f"dark for {v:.0%} of the shift"
    if feature == "shift_share":
        return f"{v:.0%} of this stretch's incidents fall in the {ctx['shift']} shift"
    if feature == "trend":
        return (
            f"activity within 3 km {'rising' if v >= 1 else 'falling'} ({v:.1f}x the yearly rate)"
        )
    if feature.startswith("area_n_") or feature.startswith("border_n_"):
        days = feature.rsplit("_", 1)[1][:-1]
        where = (
            f"the {ctx['area']} directorate"
            if feature.startswith("area") and ctx.get("area")
            else "the whole border"
        )
        return f"{v:.0f} incidents in {where} in the last {days} days"
    if feature.startswith("effort"):
        return f"patrol effort {v:.0f} officer-hours ({feature.replace('_', ' ')})"
    if feature in ("month_sin", "month_cos", "doy_sin", "doy_cos"):
        return f"season ({calendar.month_name[ctx['month']]})"
    if feature == "weekday":
        return f"{calendar.day_name[int(v)]}"
    if feature.startswith("holiday_"):
        cc = feature.split("_")[1].upper()
        return f"{'public holiday' if v else 'working day'} in {cc}"
    if feature == "dist_crossing_km":
        nm = ctx.get("crossing_name") or "a crossing point"
        return f"{v:.1f} km from crossing point {nm}"
    if feature in ("dist_corridor_km", "dist_approach_km", "corridor_pull"):
        nm = ctx.get("corridor_name") or "a route corridor"
        d = ctx.get("dist_corridor_km", v)
        return f"{float(d):.1f} km from route {nm}"
    if feature.endswith("_far_km") or feature.endswith("_far"):
        nm = ctx.get("settlement_far_name") or "a settlement"
        return f"near {nm} across the border ({ctx.get('dist_settlement_far_km', 0):.1f} km)"
    if feature.endswith("_si_km") or feature.endswith("_si"):
        nm = ctx.get("settlement_si_name") or "a settlement"
        return f"near {nm} ({ctx.get('dist_settlement_si_km', 0):.1f} km)"
    if feature == "river":
        return "river border" if v else "land border (no river)"
    return f"location along the border ({feature})"


def top_reasons(
    contrib: pd.DataFrame, X: pd.DataFrame, ctx_rows: list[dict[str, Any]], k: int = 3
) -> list[list[str]]:
    """Top ``k`` plain-word reasons per row from TreeSHAP contributions (positive first,
    one reason per feature family)."""
    feats = [c for c in contrib.columns if c != "bias"]
    vals = contrib[feats].to_numpy()
    fam = np.array([_family(f) for f in feats])
    order = np.argsort(-vals, axis=1, kind="stable")[:, :12]  # reasons come from the top few
    xv = X[feats].to_numpy()
    out = []
    for i in range(len(vals)):  # rows of the scored shifts (~650 each): plain numpy access
        seen: set[str] = set()
        reasons: list[str] = []
        for j in order[i]:
            if vals[i, j] <= 0 and reasons:
                break
            if fam[j] in seen:
                continue
            seen.add(fam[j])
            reasons.append(describe(feats[j], xv[i, j], ctx_rows[i]))
            if len(reasons) == k:
                break
        out.append(reasons + [""] * (k - len(reasons)))
    return out


def score_windows(
    bundle: Bundle,
    ds: Dataset,
    targets: np.ndarray,
    *,
    reasons: bool = True,
    plan_coverage: dict[int, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Score target windows; one row per (window, segment).

    Parameters
    ----------
    bundle : Bundle
        Verified model bundle.
    ds : Dataset
        Data up to (at least) the day before the first target.
    targets : ndarray of int
        Window indices.
    reasons : bool
        Compute the three plain-word reasons (TreeSHAP).
    plan_coverage : dict, optional
        window -> coverage vector (share of the shift a segment is checked), for vulnerability.

    Returns
    -------
    DataFrame
        ``segment_id, area, length_m, date, shift, shift_start, shift_end, expected, lower,
        upper, rank, percentile, risk_class, risk_label, reason_1..3, threat, vulnerability,
        impact`` plus ``window`` and ``seq``.
    """
    from riskmodel.features.build import build_features

    model = bundle.model
    cols = list(model.feature_names_in_)
    X = build_features(ds.panel, ds.static, ds.spec, targets)
    S = ds.n_segments
    mu = model.predict(X[cols])
    threat = model.predict_neutral(X[cols])
    lo, hi = model.predict_interval(mu, 0.8)
    seg = ds.geo.segments
    win = ds.windows.iloc[targets].reset_index(drop=True)
    rep = lambda a: np.repeat(np.asarray(a), S)  # noqa: E731
    df = pd.DataFrame(
        {
            "window": X["window"].to_numpy(),
            "seq": X["seq"].to_numpy(),
            "segment_id": np.tile(seg["segment_id"].to_numpy(), len(targets)),
            "area": np.tile(seg["area"].astype(str).to_numpy(), len(targets)),
            "length_m": np.tile(seg["length_m"].to_numpy().round(1), len(targets)),
            "date": rep(win["date"].dt.strftime("%Y-%m-%d")),
            "shift": rep(win["shift"]),
            "shift_start": rep(win["start_local"].map(lambda t: t.isoformat())),
            "shift_end": rep(
                win["end_utc"].dt.tz_convert(ds.settings.timezone).map(lambda t: t.isoformat())
            ),
            "expected": mu.astype(float),
            "lower": lo.astype(float),
            "upper": hi.astype(float),
        }
    )
    # Rank within each shift, ties by segment order (deterministic).
    key = np.lexsort((df["seq"].to_numpy(), -df["expected"].to_numpy(), df["window"].to_numpy()))
    rank = np.empty(len(df), int)
    rank[key] = np.tile(np.arange(1, S + 1), len(targets))
    df["rank"] = rank
    df["percentile"] = np.round(100.0 * (1 - (rank - 1) / S), 2)
    df["risk_class"] = risk_class(rank, S)
    df["risk_label"] = df["risk_class"].map(CLASS_LABELS)
    # CIRAM: threat = expected crossings detectable without dedicated patrol (effort-neutral);
    # vulnerability = 1 - planned detection coverage; impact = expected persons (smugglers weighted).
    df["threat"] = threat.astype(float)
    cov = np.zeros(len(df))
    if plan_coverage:
        for i, w in enumerate(targets):
            if w in plan_coverage:
                cov[i * S : (i + 1) * S] = plan_coverage[w]
    df["vulnerability"] = 1.0 - cov
    df["impact"] = threat * _persons_per_incident(ds)[df["seq"].to_numpy()]
    if reasons:
        contrib = model.predict_contributions(X[cols])
        names = ds.static.attrs.get("names", {})
        months = win["date"].dt.month.to_numpy()
        st = ds.static

        zeros = np.zeros(S)
        dist = {
            n: (st[n].to_numpy(float) if n in st else zeros)
            for n in ("dist_corridor_km", "dist_settlement_far_km", "dist_settlement_si_km")
        }
        areas = seg["area"].astype(str).to_numpy()
        static_ctx = [
            {k: v[s] for k, v in names.items()}
            | {n: float(a[s]) for n, a in dist.items()}
            | {"area": areas[s]}
            for s in range(S)
        ]
        shifts = win["shift"].to_numpy()
        ctx_rows = [
            static_ctx[s] | {"shift": shifts[i // S], "month": int(months[i // S])}
            for i, s in enumerate(df["seq"].to_numpy())
        ]
        rs = top_reasons(contrib, X[cols].reset_index(drop=True), ctx_rows)
        for k in range(3):
            df[f"reason_{k + 1}"] = [r[k] for r in rs]
    return df


def _persons_per_incident(ds: Dataset) -> np.ndarray:
    """Smoothed persons per incident by segment (smuggler arrests weighted), last 365 days."""
    ev = ds.events[ds.events["seq"] >= 0]
    cutoff = ev["timestamp"].max() - pd.Timedelta(days=365) if len(ev) else None
    if cutoff is not None:
        ev = ev[ev["timestamp"] >= cutoff]
    S = ds.n_segments
    w = ev["persons"].to_numpy(float)
    if "type" in ev:
        w = w + np.where(
            ev["type"].astype(str).to_numpy() == "smuggler_arrest", SMUGGLER_WEIGHT, 0.0
        )
    tot = np.bincount(ev["seq"].to_numpy(int), weights=w, minlength=S)
    n = np.bincount(ev["seq"].to_numpy(int), minlength=S)
    prior = (w.sum() / max(len(w), 1)) if len(w) else 1.0
    return (tot + 5 * prior) / (n + 5)  # shrink towards the border-wide mean
