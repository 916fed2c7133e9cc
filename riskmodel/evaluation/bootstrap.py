"""Day-bootstrap confidence intervals of the backtest's headline metrics.

Days, not cells, are resampled: events of one day share weather, patrols and groups crossing
together, so cells within a day are not independent, while days are close enough to it for a
percentile interval. Every metric is a ratio of sums over windows (METHODOLOGY.md 3.3), so the
sums are first reduced to one value per day; a draw is then a vector of day multiplicities
(how often each day was drawn), and all draws of all metrics of all methods are one matrix
product ``counts (B, D) @ day_sums (D, Q)``: no Python loop over draws.

The point estimate uses multiplicity one for every day, so it equals the pooled metric of
:func:`riskmodel.evaluation.metrics.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from riskmodel.evaluation.metrics import GAP_MIN, HEADLINE, brier_score, captured
from riskmodel.model.counts import poisson_deviance

__all__ = ["DRAWS", "GAP_MIN", "LEVEL", "SEED", "best_baseline", "bootstrap_metrics", "day_codes"]

DRAWS = 1000
SEED = 0
LEVEL = 0.95


def day_codes(dates: Sequence[Any]) -> np.ndarray:
    """Day number (0 .. D-1, in order of first appearance) of every window's local date."""
    _, first, inv = np.unique(np.asarray(dates), return_index=True, return_inverse=True)
    # Renumber by first appearance so codes follow the windows' order.
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]


def _per_day(x: np.ndarray, codes: np.ndarray, n_days: int) -> np.ndarray:
    """Sum the last axis of ``x`` (per window) into days: shape (..., D)."""
    onehot = np.zeros((codes.size, n_days))
    onehot[np.arange(codes.size), codes] = 1.0
    return x @ onehot


def _cell_sums(pred: np.ndarray, actual: np.ndarray, codes: np.ndarray, n_days: int) -> np.ndarray:
    """Per day: (sum of deviance, sum of Brier terms, cells) through the package's one deviance
    and Brier functions (one call per day, not per draw)."""
    out = np.zeros((3, n_days))
    for d in range(n_days):  # days, not draws: a few hundred small calls
        m = codes == d
        cells = float(m.sum() * pred.shape[1])
        out[0, d] = poisson_deviance(actual[m], pred[m]) * cells
        out[1, d] = brier_score(pred[m], actual[m]) * cells
        out[2, d] = cells
    return out


def best_baseline(hit_rates: Mapping[str, float | None], baselines: Sequence[str]) -> str | None:
    """The baseline with the highest hit rate (the first listed on ties), or None.

    Parameters
    ----------
    hit_rates : mapping of str to float or None
        Pooled hit rate at one coverage by method.
    baselines : sequence of str
        Baseline names, in order.
    """
    cand = [
        (float(v), -i, b)
        for i, b in enumerate(baselines)
        if (v := hit_rates.get(b)) is not None and np.isfinite(v)
    ]
    return max(cand)[2] if cand else None


def _interval(draws: np.ndarray, value: float, level: float) -> dict[str, float | None]:
    a = (1.0 - level) / 2.0
    ok = draws[np.isfinite(draws)]
    lo, hi = np.quantile(ok, [a, 1.0 - a]) if ok.size else (np.nan, np.nan)
    return {
        k: (float(v) if np.isfinite(v) else None)
        for k, v in (("value", value), ("lo", lo), ("hi", hi))
    }


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def bootstrap_metrics(
    preds: Mapping[str, np.ndarray],
    actual: np.ndarray,
    lengths: np.ndarray,
    dates: Sequence[Any],
    *,
    oracle_key: str = "oracle",
    baselines: Sequence[str] = (),
    draws: int = DRAWS,
    seed: int = SEED,
    level: float = LEVEL,
    min_gap: float = GAP_MIN,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Point estimates and day-bootstrap percentile intervals of the headline metrics.

    Parameters
    ----------
    preds : mapping of str to ndarray (W, S)
        Predictions by method (the oracle under ``oracle_key`` if present).
    actual : ndarray (W, S)
        Observed counts.
    lengths : ndarray (S,)
        Segment lengths.
    dates : sequence (W,)
        Local date of every window: the resampling unit.
    oracle_key : str
        Name of the oracle entry.
    baselines : sequence of str
        Baseline names: the best one at 10 % (by pooled HR) is the reference of ``gap_closed_*``
        and ``diff_best_baseline_*``, computed for the other non-oracle methods.
    draws, seed, level : int, int, float
        Bootstrap draws, generator seed, interval level.
    min_gap : float
        ``gap_closed_*`` is None when ``HR_oracle - HR_bb`` is below this.

    Returns
    -------
    dict
        ``{method: {metric: {"value", "lo", "hi"}}}`` for ``hr_5/10/20``, ``pai_5/10/20``,
        ``pei_5/10/20``, ``oracle_ratio_5/10/20`` (with an oracle), ``deviance``, ``brier`` and,
        for the model(s), ``gap_closed_5/10/20`` and ``diff_best_baseline_5/10/20``
        (``HR_method - HR_bb``, paired: the same days in both). Undefined values are None.
    """
    actual = np.asarray(actual, float)
    lengths = np.asarray(lengths, float)
    codes = day_codes(dates)
    n_days = int(codes.max()) + 1 if codes.size else 0
    fr = np.asarray(HEADLINE)
    N = _per_day(actual.sum(axis=1), codes, n_days)  # (D,)
    n_star = _per_day(captured(actual, actual, lengths, fr, rank_by="density"), codes, n_days)
    n = {m: _per_day(captured(p, actual, lengths, fr), codes, n_days) for m, p in preds.items()}
    cells = {m: _cell_sums(np.asarray(p, float), actual, codes, n_days) for m, p in preds.items()}

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_days, size=(draws, n_days))
    flat = (idx + n_days * np.arange(draws)[:, None]).ravel()
    counts = np.bincount(flat, minlength=draws * n_days).reshape(draws, n_days).astype(float)
    weights = np.vstack([np.ones((1, n_days)), counts])  # row 0 = the point estimate

    def tot(x: np.ndarray) -> np.ndarray:  # (..., D) -> (..., 1 + B)
        return x @ weights.T

    N_b, star_b = tot(N), tot(n_star)
    n_b = {m: tot(v) for m, v in n.items()}
    hr = {m: _ratio(v, N_b[None, :]) for m, v in n_b.items()}  # (F, 1 + B)
    base = [b for b in baselines if b in preds]
    # The best baseline at each coverage, as in the results table.
    bbs = [best_baseline({b: hr[b][i, 0] for b in base}, base) for i in range(len(fr))]
    out: dict[str, dict[str, dict[str, float | None]]] = {}

    def put(m: str, key: str, x: np.ndarray) -> None:
        out[m][key] = _interval(x[1:], float(x[0]), level)

    for m in preds:
        out[m] = {}
        c_b = tot(cells[m])
        for i, c in enumerate(fr):
            k = int(round(c * 100))
            put(m, f"hr_{k}", hr[m][i])
            put(m, f"pai_{k}", hr[m][i] / c)
            put(m, f"pei_{k}", _ratio(n_b[m][i], star_b[i]))
            if oracle_key in preds:
                put(m, f"oracle_ratio_{k}", _ratio(n_b[m][i], n_b[oracle_key][i]))
        put(m, "deviance", _ratio(c_b[0], c_b[2]))
        put(m, "brier", _ratio(c_b[1], c_b[2]))
        if m == oracle_key or m in base:
            continue
        for i, c in enumerate(fr):
            k, bb = int(round(c * 100)), bbs[i]
            if bb is None:
                continue
            put(m, f"diff_best_baseline_{k}", hr[m][i] - hr[bb][i])
            if oracle_key in preds:
                gap = hr[oracle_key][i] - hr[bb][i]
                g = _ratio(hr[m][i] - hr[bb][i], gap)
                if not gap[0] >= min_gap:
                    g = np.full_like(g, np.nan)
                put(m, f"gap_closed_{k}", g)
    return out
