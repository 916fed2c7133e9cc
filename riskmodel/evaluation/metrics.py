"""Forecast metrics along the border (METHODOLOGY.md section 3.3), with border *length* in place of area.

Inputs are ``pred`` and ``actual`` of shape (W, S) (windows x segments) and ``lengths`` (S,).

Selection rule (per window)
    Segments are ranked by ``pred`` in descending order; **ties are broken by segment order**
    (lower ``seq`` first) through a stable sort, so results never depend on platform or input
    permutation. With ``ties="spread"`` a group of tied segments is instead treated as one
    block taken *proportionally* (every member gets the same included fraction), which is the
    expectation under random tie-breaking and removes the order bias when many scores are
    equal (e.g. zero counts). The budget ``c * L`` is filled with **fractional inclusion**:
    segments are taken whole while they fit and the boundary segment contributes the fraction
    ``(c L - length already taken) / its length`` of its length and of its events. The
    selected length is therefore exactly ``l = c L`` for every method, so comparisons are not
    distorted by how a boundary segment happens to fall.

Pooled metrics (sums over all windows, then the ratio)
    ``HR(c) = n / N``; ``PAI_L(c) = HR / (l / L) = HR / c``; ``PEI*(c) = n / n*`` where ``n*``
    is the largest (fractional) number of events any selection of length ``c L`` could
    capture in each window: segments ranked by ``actual / length``, which for equal lengths
    is ranking by actual counts and in general is the exact optimum, so ``PEI* <= 1``.
    ``oracle_ratio(c) = HR_model / HR_oracle`` with the oracle ranked by the truth.

Cell metrics (pooled over all window x segment cells)
    Poisson deviance ``mean 2 [y log(y/mu) - (y - mu)]`` with ``mu = max(pred, 1e-9)``;
    Brier score of ``P(y >= 1) = 1 - exp(-mu)``; calibration ``observed / expected`` by
    deciles of ``pred`` (equal-count bins of cells ordered by pred, ties by cell order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from riskmodel.model.counts import poisson_deviance

__all__ = [
    "DEFAULT_FRACTIONS",
    "GAP_MIN",
    "brier_score",
    "calibration_table",
    "captured",
    "compare",
    "evaluate",
    "evaluate_all",
    "hit_rate_curve",
    "markdown_table",
    "results_table",
]

DEFAULT_FRACTIONS = np.arange(1, 21) / 100
HEADLINE = (0.05, 0.10, 0.20)
# gap closed = (HR_model - HR_bb) / (HR_oracle - HR_bb) is left empty when the oracle is less
# than this far (2 points of hit rate) ahead of the best baseline: the ratio is then noise.
GAP_MIN = 0.02
Ties = Literal["order", "spread"]
RankBy = Literal["pred", "density"]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _arrays(pred: Any, actual: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=float)
    actual = np.asarray(actual, dtype=float)
    lengths = np.asarray(lengths, dtype=float)
    if pred.ndim != 2 or pred.shape != actual.shape:
        raise ValueError(f"pred {pred.shape} and actual {actual.shape} must be equal 2-D shapes")
    if lengths.shape != (pred.shape[1],):
        raise ValueError(f"lengths {lengths.shape} must have one entry per segment")
    if not np.all(np.isfinite(pred)):
        raise ValueError("pred contains NaN or infinite values")
    if not np.all(np.isfinite(actual)) or np.any(actual < 0):
        raise ValueError("actual must be finite and non-negative")
    if not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
        raise ValueError("segment lengths must be positive")
    return pred, actual, lengths


def _fractions(fractions: Iterable[float]) -> np.ndarray:
    fr = np.asarray(list(fractions), dtype=float)
    if fr.ndim != 1 or np.any(fr <= 0) or np.any(fr > 1):
        raise ValueError("fractions must lie in (0, 1]")
    return fr


def _num(x: float) -> float | None:
    """JSON-safe float (NaN / inf -> None)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _ratio(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _pct(c: float) -> int:
    return int(round(c * 100))


# --------------------------------------------------------------------------------------------
# capture along the ranking
# --------------------------------------------------------------------------------------------


def captured(
    pred: Any,
    actual: Any,
    lengths: Any,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    *,
    ties: Ties = "order",
    rank_by: RankBy = "pred",
) -> np.ndarray:
    """Events captured per window when selecting a fraction of border length by ``pred``.

    Parameters
    ----------
    pred, actual : array_like, shape (W, S)
        Scores and observed counts.
    lengths : array_like, shape (S,)
        Segment lengths (any unit).
    fractions : iterable of float
        Fractions ``c`` of the total length, in (0, 1].
    ties : {"order", "spread"}
        ``"order"``: equal scores are taken in segment order (lower index first).
        ``"spread"``: a tied group is included proportionally (same fraction per member).
    rank_by : {"pred", "density"}
        Rank by ``pred`` (default) or by ``pred / length`` (events per km).

    Returns
    -------
    ndarray, shape (F, W)
        Fractional event counts ``n`` inside the selection (boundary segment pro rata).
    """
    pred, actual, lengths = _arrays(pred, actual, lengths)
    fr = _fractions(fractions)
    if rank_by not in ("pred", "density"):
        raise ValueError("rank_by must be 'pred' or 'density'")
    key = pred / lengths[None, :] if rank_by == "density" else pred
    n_win, n_seg = key.shape
    out = np.zeros((len(fr), n_win))
    if n_win == 0 or n_seg == 0:
        return out
    # Stable sort of -key: among equal keys the lower segment index comes first.
    order = np.argsort(-key, axis=1, kind="stable")
    ks = np.take_along_axis(key, order, axis=1)
    ls = lengths[order]
    a = np.take_along_axis(actual, order, axis=1)
    cum = np.cumsum(ls, axis=1)
    taken_before = cum - ls
    if ties == "spread":
        idx = np.broadcast_to(np.arange(n_seg), key.shape)
        first = np.ones(key.shape, bool)
        first[:, 1:] = ks[:, 1:] != ks[:, :-1]
        last = np.ones(key.shape, bool)
        last[:, :-1] = first[:, 1:]
        g_start = np.maximum.accumulate(np.where(first, idx, 0), axis=1)
        g_end = np.minimum.accumulate(np.where(last, idx, n_seg - 1)[:, ::-1], axis=1)[:, ::-1]
        lo = np.take_along_axis(taken_before, g_start, axis=1)
        span = np.take_along_axis(cum, g_end, axis=1) - lo
    elif ties == "order":
        lo, span = taken_before, ls
    else:
        raise ValueError("ties must be 'order' or 'spread'")
    total = lengths.sum()
    for k, c in enumerate(fr):  # a handful of fractions; each step is vectorised
        frac_in = np.clip((c * total - lo) / span, 0.0, 1.0)
        out[k] = np.sum(frac_in * a, axis=1)
    return out


def _optimal(actual: np.ndarray, lengths: np.ndarray, fr: np.ndarray) -> np.ndarray:
    # Fractional knapsack optimum: rank by events per unit length (ties do not matter).
    return captured(actual, actual, lengths, fr, rank_by="density")


def hit_rate_curve(
    pred: Any,
    actual: Any,
    lengths: Any,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    *,
    ties: Ties = "order",
    rank_by: RankBy = "pred",
) -> np.ndarray:
    """Pooled hit rate ``HR(c) = sum_w n_w(c) / sum_w N_w`` for each fraction ``c``.

    Parameters
    ----------
    pred, actual : array_like, shape (W, S)
        Scores and observed counts.
    lengths : array_like, shape (S,)
        Segment lengths.
    fractions : iterable of float
        Fractions of total border length (default 1 %, 2 %, ..., 20 %).
    ties, rank_by : str
        See :func:`captured`.

    Returns
    -------
    ndarray, shape (F,)
        Hit rates (NaN when there are no events).
    """
    n = captured(pred, actual, lengths, fractions, ties=ties, rank_by=rank_by).sum(axis=1)
    return _ratio(n, np.asarray(actual, float).sum())


# --------------------------------------------------------------------------------------------
# cell metrics
# --------------------------------------------------------------------------------------------


def brier_score(pred: Any, actual: Any) -> float:
    """Brier score of ``P(at least one event) = 1 - exp(-pred)``.

    Parameters
    ----------
    pred, actual : array_like
        Expected and observed counts, same shape.

    Returns
    -------
    float
        ``mean((1 - exp(-max(pred, 0)) - 1[actual >= 1])^2)``.
    """
    p = -np.expm1(-np.maximum(np.asarray(pred, float), 0.0))
    o = (np.asarray(actual, float) >= 1).astype(float)
    return float(np.mean((p - o) ** 2)) if o.size else float("nan")


def calibration_table(pred: Any, actual: Any, *, n_bins: int = 10) -> list[dict[str, Any]]:
    """Observed / expected by equal-count bins (deciles) of the pooled predictions.

    Cells are ordered by prediction (ties by flat cell order) and cut into ``n_bins`` groups
    of (almost) equal size.

    Parameters
    ----------
    pred, actual : array_like
        Expected and observed counts, same shape.
    n_bins : int
        Number of bins.

    Returns
    -------
    list of dict
        Per bin: ``bin`` (1 = lowest), ``n_cells``, ``pred_min``, ``pred_max``, ``expected``
        (sum of pred), ``observed`` (sum of actual), ``mean_pred``, ``mean_obs``, ``obs_exp``.
    """
    p = np.asarray(pred, float).ravel()
    y = np.asarray(actual, float).ravel()
    n = p.size
    if n == 0:
        return []
    order = np.argsort(p, kind="stable")
    b = np.empty(n, np.int64)
    b[order] = (np.arange(n) * n_bins) // n
    cnt = np.bincount(b, minlength=n_bins)
    exp_ = np.bincount(b, weights=p, minlength=n_bins)
    obs = np.bincount(b, weights=y, minlength=n_bins)
    pmin = np.full(n_bins, np.inf)
    pmax = np.full(n_bins, -np.inf)
    np.minimum.at(pmin, b, p)
    np.maximum.at(pmax, b, p)
    rows = []
    for k in np.flatnonzero(cnt):  # at most n_bins rows
        rows.append(
            {
                "bin": int(k + 1),
                "n_cells": int(cnt[k]),
                "pred_min": _num(pmin[k]),
                "pred_max": _num(pmax[k]),
                "expected": _num(exp_[k]),
                "observed": _num(obs[k]),
                "mean_pred": _num(exp_[k] / cnt[k]),
                "mean_obs": _num(obs[k] / cnt[k]),
                "obs_exp": _num(_ratio(obs[k], exp_[k])),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# evaluate / compare
# --------------------------------------------------------------------------------------------


def evaluate(
    pred: Any,
    actual: Any,
    lengths: Any,
    *,
    oracle_pred: Any | None = None,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    ties: Ties = "order",
    rank_by: RankBy = "pred",
    n_bins: int = 10,
) -> dict[str, Any]:
    """All metrics (METHODOLOGY.md section 3.3) of one prediction, as a JSON-serialisable dict.

    Parameters
    ----------
    pred, actual : array_like, shape (W, S)
        Expected and observed counts per window and segment.
    lengths : array_like, shape (S,)
        Segment lengths.
    oracle_pred : array_like, shape (W, S), optional
        Truth (simulator's expected counts); enables the oracle ratios.
    fractions : iterable of float
        Fractions of length for the curves (5, 10 and 20 % are always computed as well).
    ties, rank_by : str
        See :func:`captured`.
    n_bins : int
        Calibration bins.

    Returns
    -------
    dict
        ``hr_5/10/20``, ``pai_5/10/20``, ``pei_5/10/20``, ``oracle_hr_*`` and
        ``oracle_ratio_*`` (None without oracle), ``fractions``, ``curve`` (HR),
        ``pai_curve``, ``pei_curve``, ``oracle_curve``, ``deviance``, ``brier``,
        ``obs_exp`` (total observed / expected), ``calibration`` (list of dicts) and sizes.
        Undefined values (e.g. no events) are None.
    """
    pred, actual, lengths = _arrays(pred, actual, lengths)
    fr = _fractions(fractions)
    all_fr = np.unique(np.round(np.concatenate([fr, HEADLINE]), 12))
    pos = np.searchsorted(all_fr, np.round(fr, 12))
    head = np.searchsorted(all_fr, np.round(HEADLINE, 12))

    n_total = actual.sum()
    n = captured(pred, actual, lengths, all_fr, ties=ties, rank_by=rank_by).sum(axis=1)
    n_star = _optimal(actual, lengths, all_fr).sum(axis=1)
    hr = _ratio(n, n_total)
    pai = hr / all_fr
    pei = _ratio(n, n_star)
    if oracle_pred is not None:
        o_pred, _, _ = _arrays(oracle_pred, actual, lengths)
        n_o = captured(o_pred, actual, lengths, all_fr, ties=ties, rank_by=rank_by).sum(axis=1)
        hr_o = _ratio(n_o, n_total)
        ratio = _ratio(hr, hr_o)
    else:
        hr_o = ratio = np.full(len(all_fr), np.nan)

    res: dict[str, Any] = {
        "n_windows": int(pred.shape[0]),
        "n_segments": int(pred.shape[1]),
        "n_events": _num(n_total),
        "total_length": _num(lengths.sum()),
        "ties": ties,
        "rank_by": rank_by,
    }
    for c, i in zip(HEADLINE, head, strict=True):
        k = _pct(c)
        res[f"hr_{k}"] = _num(hr[i])
        res[f"pai_{k}"] = _num(pai[i])
        res[f"pei_{k}"] = _num(pei[i])
        res[f"oracle_hr_{k}"] = _num(hr_o[i])
        res[f"oracle_ratio_{k}"] = _num(ratio[i])
    res.update(
        {
            "fractions": [float(c) for c in fr],
            "curve": [_num(v) for v in hr[pos]],
            "pai_curve": [_num(v) for v in pai[pos]],
            "pei_curve": [_num(v) for v in pei[pos]],
            "oracle_curve": [_num(v) for v in hr_o[pos]],
            "deviance": _num(poisson_deviance(actual, pred)),
            "brier": _num(brier_score(pred, actual)),
            "mean_pred": _num(pred.mean()) if pred.size else None,
            "mean_actual": _num(actual.mean()) if actual.size else None,
            "obs_exp": _num(_ratio(n_total, pred.sum())),
            "calibration": calibration_table(pred, actual, n_bins=n_bins),
        }
    )
    return res


def evaluate_all(
    preds: Mapping[str, Any],
    actual: Any,
    lengths: Any,
    *,
    oracle_key: str = "oracle",
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate` for every prediction, all against the same oracle (if present).

    Parameters
    ----------
    preds : mapping of str to array_like
        Predictions (W, S) by method name; ``preds[oracle_key]`` is the truth if present.
    actual, lengths : array_like
        Observed counts (W, S) and segment lengths (S,).
    oracle_key : str
        Name of the oracle entry.
    **kwargs
        Passed to :func:`evaluate` (``fractions``, ``ties``, ``rank_by``, ``n_bins``).

    Returns
    -------
    dict of str to dict
        Results by method, in the order of ``preds``.
    """
    oracle_pred = preds.get(oracle_key)
    return {
        name: evaluate(p, actual, lengths, oracle_pred=oracle_pred, **kwargs)
        for name, p in preds.items()
    }


def results_table(
    results: Mapping[str, Mapping[str, Any]],
    *,
    oracle_key: str = "oracle",
    baselines: Sequence[str] | None = None,
    min_gap: float = GAP_MIN,
) -> pd.DataFrame:
    """Comparison table from :func:`evaluate_all` results.

    Parameters
    ----------
    results : mapping of str to dict
        Results by method.
    oracle_key : str
        Name of the oracle entry.
    baselines : sequence of str, optional
        Methods counted as baselines for ``gap_closed`` (default: the names of
        :data:`riskmodel.evaluation.baselines.BASELINES` present in ``results``).
    min_gap : float
        ``gap_closed_c`` is NaN when ``HR_oracle - HR_bb < min_gap`` (the ratio is then noise).

    Returns
    -------
    DataFrame
        One row per method (index ``method``): ``role``, ``hr_5``, ``hr_10``, ``hr_20``,
        ``pai_10``, ``pei_10``, ``oracle_ratio_10``, ``gap_closed_5/10/20``, ``deviance``,
        ``brier``, ``obs_exp``. ``gap_closed_c = (HR_m - HR_bb) / (HR_oracle - HR_bb)``
        with ``HR_bb`` the best baseline at ``c``; only for methods that are neither
        baselines nor the oracle (NaN otherwise, when undefined or when the oracle is less
        than ``min_gap`` ahead of the best baseline).
    """
    if baselines is None:
        from riskmodel.evaluation.baselines import (
            BASELINES,  # local import: evaluation stays usable standalone
        )

        baselines = [k for k in results if k in BASELINES]
    base = [b for b in baselines if b in results]
    rows = []
    for name, r in results.items():
        role = "oracle" if name == oracle_key else "baseline" if name in base else "model"
        row: dict[str, Any] = {"method": name, "role": role}
        for col in ("hr_5", "hr_10", "hr_20", "pai_10", "pei_10", "oracle_ratio_10"):
            row[col] = r.get(col)
        for c in HEADLINE:
            k = _pct(c)
            gap = np.nan
            hr_o = r.get(f"oracle_hr_{k}")
            if oracle_key in results:
                hr_o = results[oracle_key].get(f"hr_{k}")
            best = [results[b].get(f"hr_{k}") for b in base]
            best = [v for v in best if v is not None]
            hr_m = r.get(f"hr_{k}")
            if role == "model" and best and hr_o is not None and hr_m is not None:
                denom = hr_o - max(best)
                gap = (hr_m - max(best)) / denom if denom >= max(min_gap, 1e-12) else np.nan
            row[f"gap_closed_{k}"] = gap
        for col in ("deviance", "brier", "obs_exp"):
            row[col] = r.get(col)
        rows.append(row)
    cols = ["method", "role", "hr_5", "hr_10", "hr_20", "pai_10", "pei_10", "oracle_ratio_10"]
    cols += [f"gap_closed_{_pct(c)}" for c in HEADLINE] + ["deviance", "brier", "obs_exp"]
    df = pd.DataFrame(rows, columns=cols).set_index("method")
    num = [c for c in df.columns if c != "role"]
    df[num] = df[num].astype(float)
    return df


def compare(
    preds: Mapping[str, Any],
    actual: Any,
    lengths: Any,
    *,
    oracle_key: str = "oracle",
    baselines: Sequence[str] | None = None,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    ties: Ties = "order",
    rank_by: RankBy = "pred",
) -> pd.DataFrame:
    """Evaluate several methods in one run and tabulate them.

    Parameters
    ----------
    preds : mapping of str to array_like
        Predictions (W, S) by method, including the oracle under ``oracle_key`` if available.
    actual, lengths : array_like
        Observed counts (W, S) and segment lengths (S,).
    oracle_key : str
        Name of the oracle entry.
    baselines : sequence of str, optional
        Baseline names for ``gap_closed`` (see :func:`results_table`).
    fractions, ties, rank_by
        See :func:`evaluate`.

    Returns
    -------
    DataFrame
        See :func:`results_table`.
    """
    results = evaluate_all(
        preds,
        actual,
        lengths,
        oracle_key=oracle_key,
        fractions=fractions,
        ties=ties,
        rank_by=rank_by,
    )
    return results_table(results, oracle_key=oracle_key, baselines=baselines)


def markdown_table(df: pd.DataFrame, *, floatfmt: str = ".3f", index: bool = True) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table (no extra dependency).

    Parameters
    ----------
    df : DataFrame
        Table to render.
    floatfmt : str
        Format spec for floats; NaN / None render as an empty cell.
    index : bool
        Include the index as the first column.

    Returns
    -------
    str
        Markdown text ending with a newline.
    """

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float | np.floating) and not np.isfinite(v)):
            return ""
        if isinstance(v, float | np.floating):
            return format(float(v), floatfmt)
        return str(v).replace("|", "\\|")

    cols = list(df.columns)
    head = ([str(df.index.name or "")] if index else []) + [str(c) for c in cols]
    align = (["---"] if index else []) + [
        "---:" if pd.api.types.is_numeric_dtype(df[c]) else "---" for c in cols
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for idx, row in zip(df.index, df.itertuples(index=False), strict=True):
        cells = ([cell(idx)] if index else []) + [cell(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
