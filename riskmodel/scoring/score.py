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

from typing import Any

import numpy as np
import pandas as pd

from riskmodel.features import FeatureSpec, build_features
from riskmodel.features.registry import column_map, describe, reason_group
from riskmodel.model.bundle import Bundle
from riskmodel.model.pipeline import Dataset
from riskmodel.scoring.adapt import exposure_of

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


def top_reasons(
    contrib: pd.DataFrame,
    X: pd.DataFrame,
    where_rows: list[dict[str, Any]],
    spec: FeatureSpec,
    k: int = 3,
) -> list[list[str]]:
    """Top ``k`` plain-word reasons per row from TreeSHAP contributions (positive first,
    one reason per reason group), worded by the feature registry with the numbers of ``spec``.

    Parameters
    ----------
    contrib : DataFrame
        Contributions per feature (and ``bias``), one row per scored row.
    X : DataFrame
        The feature values of the same rows.
    where_rows : list of dict
        Plain-word context per row (see :func:`riskmodel.features.registry.describe`).
    spec : FeatureSpec
        The feature spec of the model.
    k : int
        Reasons per row (missing ones are ``""``).
    """
    cmap = column_map(spec)
    feats = [c for c in contrib.columns if c != "bias"]
    vals = contrib[feats].to_numpy()
    group = np.array([reason_group(f, cmap) for f in feats])
    order = np.argsort(-vals, axis=1, kind="stable")[:, :12]  # reasons come from the top few
    xv = X[feats].to_numpy()
    out = []
    for i in range(len(vals)):  # rows of the scored shifts (~650 each): plain numpy access
        seen: set[str] = set()
        reasons: list[str] = []
        for j in order[i]:
            if vals[i, j] <= 0 and reasons:
                break
            if group[j] in seen:
                continue
            seen.add(group[j])
            reasons.append(describe(feats[j], xv[i, j], cmap, where_rows[i]))
            if len(reasons) == k:
                break
        out.append(reasons + [""] * (k - len(reasons)))
    return out


def _where_rows(ds: Dataset, win: pd.DataFrame, seqs: np.ndarray) -> list[dict[str, Any]]:
    """Plain-word context of each scored row: names of and distances to the nearest places,
    the directorate, the shift and the month."""
    st = ds.static
    S = ds.n_segments
    names = st.attrs.get("names", {})
    zeros = np.zeros(S)
    dist = {
        n: (st[n].to_numpy(float) if n in st else zeros)
        for n in ("dist_corridor_km", "dist_settlement_far_km", "dist_settlement_si_km")
    }
    areas = ds.geo.segments["area"].astype(str).to_numpy()
    static_where = [
        {k: v[s] for k, v in names.items()}
        | {n: float(a[s]) for n, a in dist.items()}
        | {"area": areas[s]}
        for s in range(S)
    ]
    shifts = win["shift"].to_numpy()
    months = win["date"].dt.month.to_numpy()
    return [
        static_where[s] | {"shift": shifts[i // S], "month": int(months[i // S])}
        for i, s in enumerate(seqs)
    ]


def score_windows(
    bundle: Bundle,
    ds: Dataset,
    targets: np.ndarray,
    *,
    reasons: bool = True,
    plan_coverage: dict[int, np.ndarray] | None = None,
    factor: np.ndarray | None = None,
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
    factor : ndarray (S,), optional
        Adaptation factor per segment (:mod:`riskmodel.scoring.adapt`) applied to ``expected``,
        its band, ``threat`` and ``impact``; default none (1).

    Returns
    -------
    DataFrame
        ``segment_id, area, length_m, date, shift, shift_start, shift_end, expected, lower,
        upper, rank, percentile, risk_class, risk_label, reason_1..3, threat, vulnerability,
        impact, exposure, adapt_factor`` plus ``window``, ``seq`` and the model's own numbers
        before adaptation ``expected_model``, ``threat_model`` (for the forecast store).
        ``expected`` is the recorded events expected with ``exposure`` officer-hours in the
        shift (the effort file's planned effort, 0 when it has none); ``threat`` is
        effort-neutral (where people cross); ``rank``, percentile and class follow ``threat``.
    """
    model = bundle.model
    cols = list(model.feature_names_in_)
    X = build_features(ds.panel, ds.static, ds.spec, targets)
    S = ds.n_segments
    mu0 = np.asarray(model.predict(X[cols]), float)
    threat0 = np.asarray(model.predict_neutral(X[cols]), float)
    f = np.ones(S) if factor is None else np.asarray(factor, float)
    fr = f[X["seq"].to_numpy()]
    mu, threat = mu0 * fr, threat0 * fr
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
    # Rank by the effort-neutral threat within each shift (what plans follow: the expected
    # *recorded* events also say where patrols were planned), ties by segment order.
    key = np.lexsort((df["seq"].to_numpy(), -threat, df["window"].to_numpy()))
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
    df["exposure"] = exposure_of(model, X)
    df["adapt_factor"] = fr
    df["expected_model"] = mu0
    df["threat_model"] = threat0
    if reasons:
        contrib = model.predict_contributions(X[cols])
        where = _where_rows(ds, win, df["seq"].to_numpy())
        rs = top_reasons(contrib, X[cols].reset_index(drop=True), where, ds.spec)
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
