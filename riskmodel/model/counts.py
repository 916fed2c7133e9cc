"""Count arithmetic of the model, in numpy only: the Poisson deviance, quantiles and
intervals of Poisson / negative-binomial counts, and the recent-residual correction.

Scoring, evaluation and training share these; nothing here imports XGBoost, scikit-learn or
scipy (scoring a day must not pay their imports).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from riskmodel.model import RESIDUAL_PRIOR


def poisson_deviance(
    y: np.ndarray, mu: np.ndarray, *, weight: np.ndarray | None = None, floor: float = 1e-9
) -> float:
    """Mean Poisson deviance ``2 [y log(y / mu) - (y - mu)]`` (``y log y = 0`` at ``y = 0``).

    The one deviance of the package: the estimator's validation deviance, the chunked and
    Dask engines and the evaluation metrics all call it.

    Parameters
    ----------
    y : array_like
        Observed counts.
    mu : array_like
        Expected counts, same shape; clipped below at ``floor``.
    weight : array_like, optional
        Row weights: the weighted mean ``sum(w d) / sum(w)`` (e.g. ``1 / share`` for
        subsampled empty rows: an unbiased estimate of the full mean).
    floor : float
        Lower clip of ``mu``.

    Returns
    -------
    float
        NaN for no rows.
    """
    mu = np.maximum(np.asarray(mu, float), floor)
    y = np.asarray(y, float)
    if y.size == 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    dev = 2.0 * (term - (y - mu))
    if weight is None:
        return float(np.mean(dev))
    w = np.broadcast_to(np.asarray(weight, float), dev.shape)
    return float((w * dev).sum() / w.sum())


def count_quantile(mu: np.ndarray, dispersion: float, q: float) -> np.ndarray:
    """Quantile ``q`` of a Poisson (``dispersion`` 0) or negative-binomial count with mean
    ``mu`` (variance ``mu + dispersion * mu**2``): the smallest ``k`` with ``P(N <= k) >= q``,
    as ``scipy.stats.poisson.ppf`` / ``nbinom.ppf(q, 1/a, 1/(1 + a*mu))`` give it.

    Summed from the probability recursion ``p(k+1) = p(k) * r(k)`` for every row at once;
    the loop runs to the largest quantile (a few steps for the engine's counts).
    """
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 1e-12)
    a = float(dispersion)
    if a <= 1e-9:
        pmf = np.exp(-mu)
        step = lambda k: mu / (k + 1.0)  # noqa: E731
    else:
        n = 1.0 / a
        p = n / (n + mu)
        pmf = np.exp(n * np.log(p))
        step = lambda k: (k + n) / (k + 1.0) * (1.0 - p)  # noqa: E731
    cdf = pmf.copy()
    out = np.where(cdf >= q, 0.0, np.nan)
    k = 0
    # the tail bound keeps a degenerate input from looping: far beyond any quantile < 1
    limit = int(np.max(mu * (1 + 50 * a)) + 50 * np.sqrt(np.max(mu) + 1) + 100)
    while np.isnan(out).any() and k < limit:
        pmf = pmf * step(k)
        k += 1
        cdf += pmf
        out[np.isnan(out) & (cdf >= q)] = k
    return np.where(np.isnan(out), float(k), out)


def count_interval(
    mu: np.ndarray, dispersion: float, level: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Central predictive interval ``(lower, upper)`` of the event count at ``level``
    (see :func:`count_quantile`)."""
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    return count_quantile(mu, dispersion, lo_q), count_quantile(mu, dispersion, hi_q)


def recent_residual_factor(
    recorded: np.ndarray,
    expected: np.ndarray,
    pool: Any = None,
    *,
    prior: float = RESIDUAL_PRIOR,
) -> np.ndarray:
    """Per-segment correction of a risk map by its recent residuals (Poisson-Gamma shrinkage).

    A model trained on a mostly stable history trusts its long-run features; when a route moves
    it keeps ranking the old stretch and is slow to rank the new one. Comparing what was recorded
    with what the model itself forecast for the same windows (with the effort actually spent)
    over the last weeks gives a factor ``f = (prior + y) / (prior + m)``: the posterior mean of a
    multiplicative error with a Gamma prior of mean 1 worth ``prior`` expected events. With little
    evidence ``f`` stays near 1; a stretch where far more (or fewer) events were recorded than
    forecast moves towards ``y / m``.

    Parameters
    ----------
    recorded : ndarray (windows, S)
        Recorded events of the recent windows.
    expected : ndarray (windows, S)
        The model's out-of-sample forecasts of the same windows, made with the effort spent.
    pool : sparse or dense matrix (S, S), optional
        Pools the evidence of neighbouring segments (e.g. 1 within +-3 km along the border);
        default: each segment on its own.
    prior : float
        Strength of the prior in expected events (larger = slower, steadier correction).

    Returns
    -------
    ndarray (S,)
        Factors to multiply the forecasts of the next windows with (1 = no change).
    """
    if prior <= 0:
        raise ValueError("prior must be > 0")
    y = np.asarray(recorded, float).reshape(-1, np.shape(recorded)[-1]).sum(axis=0)
    m = np.asarray(expected, float).reshape(-1, np.shape(expected)[-1]).sum(axis=0)
    if y.shape != m.shape:
        raise ValueError(f"recorded has {y.size} segments, expected {m.size}")
    if pool is not None:
        y = np.asarray(pool @ y, float).ravel()
        m = np.asarray(pool @ m, float).ravel()
    return (prior + y) / (prior + m)
