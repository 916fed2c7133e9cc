"""Self-exciting point process baseline (ETAS / SEPP, Mohler et al. 2011) along the chainage,
fitted by EM on the history before the first evaluation window.

The background is either constant per segment over the training history (the default) or, with
``mu_half_life_days``, a recency-weighted estimate that forgets with that half-life and is
updated, leakage-free, with the events before each forecast window (it follows drifting routes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import ndtr

from riskmodel.evaluation import _events
from riskmodel.evaluation._events import (
    NS_PER_DAY,
    _Data,
    _prepare,
    _ranges,
    _space_gauss,
    _window_days,
    _window_event_scores,
)

# --------------------------------------------------------------------------------------------
# self-exciting point process (ETAS / SEPP)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EtasFit:
    """Fitted 1-D space-time ETAS model.

    ``lambda(x, t) = mu(x) + sum_{t_i < t} theta * g_t(t - t_i) * g_x(x - x_i)`` with
    ``g_t(u) = omega exp(-omega u) / (1 - exp(-omega T_c))`` on ``(0, T_c]`` and ``g_x`` a
    ``N(0, sigma)`` density truncated to ``|dx| <= X_c`` (both integrate to one), ``mu``
    piecewise constant per segment.

    Attributes
    ----------
    theta : float
        Branching ratio (expected direct offspring per event).
    omega : float
        Decay rate per day (mean lag ``1/omega`` when ``T_c`` is long).
    sigma_km : float
        Spatial spread of offspring along the chainage.
    mu : ndarray, shape (S,)
        Background events per day in each segment.
    time_cutoff_days, space_cutoff_km : float
        Truncations ``T_c`` and ``X_c`` of the triggering kernel.
    n_train : int
        Training events.
    train_days : float
        Length of the training period.
    n_iter : int
        EM iterations run.
    converged : bool
        Whether the relative parameter change fell below ``tol``.
    loglik : float
        Log-likelihood of the training events at the fitted parameters (time in days, space
        in km). With ``mu_half_life_days`` it is evaluated with the recent background held
        constant over the training span (a diagnostic, not comparable across half-lives; see
        :func:`select_mu_half_life`).
    mu_half_life_days : float or None
        Half-life of the recency-weighted background (``inf``: a running mean updated with
        new events); ``None``: constant background (``mu`` frozen at the fit).
    train_start_ns : int or None
        First instant of the training span (UTC ns); events before it are ignored.
    mu_bandwidth_km : float
        Smoothing of the background along the chainage.
    """

    theta: float
    omega: float
    sigma_km: float
    mu: np.ndarray = field(repr=False)
    time_cutoff_days: float
    space_cutoff_km: float
    n_train: int
    train_days: float
    n_iter: int
    converged: bool
    loglik: float
    mu_half_life_days: float | None = None
    train_start_ns: int | None = None
    mu_bandwidth_km: float = 1.0


_LN2 = math.log(2.0)


def _check_half_life(h: float | None) -> float | None:
    if h is None:
        return None
    h = float(h)
    if not h > 0:  # also rejects NaN
        raise ValueError(f"mu_half_life_days must be positive (or inf), got {h}")
    return h


def _decay_exposure(age_days: Any, h: float) -> Any:
    """``int_0^age 2^(-u/h) du``: the forgetting-weighted length of a span of ``age`` days."""
    if math.isinf(h):
        return age_days
    return h / _LN2 * -np.expm1(-_LN2 * np.asarray(age_days, float) / h)


def _etas_pairs(
    t_day: np.ndarray, x: np.ndarray, tc: float, xc: float
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (parent, child) pairs: ``0 < t_j - t_i <= tc`` and ``|x_j - x_i| <= xc``."""
    lo = np.searchsorted(t_day, t_day - tc, side="left")
    hi = np.searchsorted(t_day, t_day, side="left")  # strictly earlier parents only
    n = np.maximum(hi - lo, 0)
    block_of = np.cumsum(n) // _events._MAX_PAIRS  # bounded memory on very large histories
    parents, children = [], []
    for blk in np.unique(block_of):
        kids = np.flatnonzero(block_of == blk)
        owner, par = _ranges(lo[kids], hi[kids])
        child = kids[owner]
        keep = np.abs(x[child] - x[par]) <= xc
        parents.append(par[keep])
        children.append(child[keep])
    if not parents:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(parents), np.concatenate(children)


def _solve_omega(mean_lag: float, tc: float) -> float:
    """Rate of an exponential truncated to (0, tc] whose mean is ``mean_lag`` (MLE)."""

    # mean(omega) = 1/omega - tc/(exp(omega tc) - 1): decreasing from tc/2 to 0.
    def f(om: float) -> float:
        e = np.exp(-om * tc)  # overflow-free form of tc / (exp(om tc) - 1)
        return 1.0 / om - tc * e / -np.expm1(-om * tc) - mean_lag

    lo, hi = 1e-4 / tc, 1e4 / tc
    if mean_lag <= 0 or f(hi) > 0:
        return hi
    if f(lo) < 0:
        return lo
    return float(brentq(f, lo, hi, xtol=1e-10, rtol=1e-8))


def _solve_sigma(mean_sq: float, xc: float) -> float:
    """Sigma of a N(0, sigma) truncated to [-xc, xc] whose second moment is ``mean_sq`` (MLE)."""

    def f(sig: float) -> float:
        a = xc / sig
        z = 2.0 * ndtr(a) - 1.0
        return sig**2 * (1.0 - 2.0 * a * np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi) / z) - mean_sq

    lo, hi = 1e-3 * xc, 1e3 * xc
    if mean_sq <= 0 or f(lo) > 0:
        return lo
    if f(hi) < 0:  # flatter than uniform: spatially unspecific triggering
        return hi
    return float(brentq(f, lo, hi, xtol=1e-10, rtol=1e-8))


def _gauss_segment_matrix(data: _Data, bandwidth_km: float) -> np.ndarray:
    """Row-stochastic (S x S) matrix spreading a segment's mass over segments (Gaussian)."""
    mid = data.seg_mid[:, None]
    mass = ndtr((data.seg_to[None, :] - mid) / bandwidth_km) - ndtr(
        (data.seg_from[None, :] - mid) / bandwidth_km
    )
    # Mass falling beyond the border ends is returned to the segments (rows sum to one).
    return mass / mass.sum(axis=1, keepdims=True)


def _trigger_density(
    dt: np.ndarray, dx2: np.ndarray, theta: float, omega: float, sigma: float, tc: float, xc: float
) -> np.ndarray:
    """``theta * g_t(dt) * g_x(dx)`` for truncated exponential x truncated normal kernels."""
    const = theta * omega / -np.expm1(-omega * tc)
    const /= np.sqrt(2 * np.pi) * sigma * (2.0 * ndtr(xc / sigma) - 1.0)
    # One exp per pair: this is the hot loop of the EM.
    return const * np.exp(-omega * dt - (0.5 / sigma**2) * dx2)


def fit_etas(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    before: Any,
    *,
    time_cutoff_days: float = 14.0,
    space_cutoff_km: float = 10.0,
    mu_bandwidth_km: float = 1.0,
    train_days: float | None = None,
    max_iter: int = 200,
    tol: float = 1e-4,
    init: tuple[float, float, float] = (0.3, 1.0, 1.0),
    mu_half_life_days: float | None = None,
) -> EtasFit:
    """Fit the 1-D ETAS model by EM (Mohler et al. 2011, parametric triggering).

    E-step: for every candidate pair (parent ``i``, child ``j``) with ``0 < t_j - t_i <= T_c``
    and ``|x_j - x_i| <= X_c`` the probability ``p_ij = g_ij / lambda_j`` that ``i`` triggered
    ``j``; ``p_jj = mu(x_j) / lambda_j`` for background.

    M-step (closed form or 1-D root): ``theta = sum p_ij / sum_i G(T_end - t_i)`` (offspring
    censored at the end of training are not expected); ``omega`` and ``sigma`` are the
    weighted MLEs of the truncated exponential and truncated normal; the background is the
    ``p_jj`` mass per segment smoothed with a Gaussian of ``mu_bandwidth_km`` (fixed
    bandwidth, i.e. the smoothed "EMS" step of Mohler et al.), divided by the training length.

    With ``mu_half_life_days = h`` the background is a recency-weighted estimate at the end of
    training: each event's ``p_jj`` is weighted by ``2^(-(T_end - t_j) / h)`` and the mass is
    divided by the weighted exposure ``int 2^(-(T_end - t) / h) dt`` over the training span
    instead of its length (background events per day, recently). The triggering parameters
    are estimated as before (stationary).

    Parameters
    ----------
    events, segments : DataFrame
        Frames of the data contract.
    before : timestamp-like
        Only events strictly before this instant are used.
    time_cutoff_days, space_cutoff_km : float
        Truncation of the triggering kernel (and of the pair search).
    mu_bandwidth_km : float
        Smoothing of the background along the chainage.
    train_days : float, optional
        Use only the last ``train_days`` before ``before`` (default: all history).
    max_iter : int
        Maximum EM iterations.
    tol : float
        Stop when the largest relative change of theta, omega, sigma is below this.
    init : tuple of float
        Initial (theta, omega per day, sigma km).
    mu_half_life_days : float, optional
        Half-life in days of the recency-weighted background (``inf``: equal weights, the
        background then becomes a running mean in :func:`self_exciting`). ``None`` (default):
        constant background.

    Returns
    -------
    EtasFit
        Fitted parameters.
    """
    h = _check_half_life(mu_half_life_days)
    windows = pd.DataFrame({"start_utc": [pd.Timestamp(before)], "hours": [0.0]})
    data = _prepare(events, segments, windows)
    t_end = int(data.start_ns[0])
    t0 = data.first_ns if data.first_ns is not None else t_end
    if train_days is not None:
        t0 = max(t0, t_end - int(round(train_days * NS_PER_DAY)))
    keep = (data.t_ns >= t0) & (data.t_ns < t_end)
    t = (data.t_ns[keep] - t0) / NS_PER_DAY
    x, seq = data.x[keep], data.seq[keep]
    n_seg, n_ev = data.n_seg, int(keep.sum())
    span = max((t_end - t0) / NS_PER_DAY, 1.0)
    tc, xc = float(time_cutoff_days), float(space_cutoff_km)
    smooth = _gauss_segment_matrix(data, mu_bandwidth_km)
    seg_len = np.maximum(data.seg_len, 1e-9)
    # Background weights and exposure: equal weights over the span, or forgetting with h.
    if h is None:
        decay, expo = None, span
    else:
        decay = np.exp2(-((t_end - t0) / NS_PER_DAY - t) / h)
        expo = float(_decay_exposure(span, h))
    extra = {"mu_half_life_days": h, "train_start_ns": int(t0), "mu_bandwidth_km": mu_bandwidth_km}

    theta, omega, sigma = (float(v) for v in init)
    if n_ev < 10:  # too little to fit triggering: smoothed counts only
        mu = np.bincount(seq, weights=decay, minlength=n_seg) @ smooth / expo
        return EtasFit(0.0, omega, sigma, mu, tc, xc, n_ev, span, 0, False, float("nan"), **extra)

    par, chi = _etas_pairs(t, x, tc, xc)
    dt = t[chi] - t[par]
    dx2 = (x[chi] - x[par]) ** 2
    lag_end = np.minimum(span - t, tc)  # observable part of each event's offspring period
    bg_mass = np.bincount(seq, weights=decay, minlength=n_seg).astype(float)  # all background
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is reported
        mu_dens = (bg_mass @ smooth) / expo / seg_len  # events per km per day
        g = _trigger_density(dt, dx2, theta, omega, sigma, tc, xc)
        bg = mu_dens[seq]
        lam = bg + np.bincount(chi, weights=g, minlength=n_ev)
        lam = np.maximum(lam, 1e-300)
        p = g / lam[chi]
        p_bg = bg / lam
        n_trig = p.sum()
        # M-step.
        exposure = np.sum(-np.expm1(-omega * lag_end) / -np.expm1(-omega * tc))
        new_theta = n_trig / max(exposure, 1e-12)
        if n_trig > 1e-9:
            new_omega = _solve_omega(float(np.dot(p, dt) / n_trig), tc)
            new_sigma = _solve_sigma(float(np.dot(p, dx2) / n_trig), xc)
        else:
            new_omega, new_sigma = omega, sigma
        bg_mass = np.bincount(seq, weights=p_bg if decay is None else p_bg * decay, minlength=n_seg)
        # theta relative to at least 0.1 (it may shrink to ~0 on unclustered data, where
        # omega and sigma are then unidentifiable and are not part of the stopping rule).
        change = abs(new_theta - theta) / max(theta, 0.1)
        if new_theta > 1e-3:
            change = max(change, abs(new_omega - omega) / omega, abs(new_sigma - sigma) / sigma)
        theta, omega, sigma = new_theta, new_omega, new_sigma
        if change < tol:
            converged = True
            break

    mu = (bg_mass @ smooth) / expo  # events per day per segment
    # Log-likelihood at the final parameters (for diagnostics and model comparison).
    g = _trigger_density(dt, dx2, theta, omega, sigma, tc, xc)
    lam = (mu / seg_len)[seq] + np.bincount(chi, weights=g, minlength=n_ev)
    integral = mu.sum() * span + theta * np.sum(
        -np.expm1(-omega * lag_end) / -np.expm1(-omega * tc)
    )
    loglik = float(np.sum(np.log(np.maximum(lam, 1e-300))) - integral)
    return EtasFit(
        theta=float(theta),
        omega=float(omega),
        sigma_km=float(sigma),
        mu=mu,
        time_cutoff_days=tc,
        space_cutoff_km=xc,
        n_train=n_ev,
        train_days=float(span),
        n_iter=it,
        converged=converged,
        loglik=loglik,
        **extra,
    )


def _background_prob(data: _Data, fit: EtasFit, sel: np.ndarray) -> np.ndarray:
    """E-step at the fitted parameters: ``q_i = mu(x_i) / lambda(x_i, t_i)`` of the events ``sel``.

    ``lambda`` sums the fitted background ``fit.mu`` (at the fit instant) and the triggering of
    all earlier selected events; for the training events this is the EM's background
    probability at convergence.
    """
    t_ns = data.t_ns[sel]
    t = (t_ns - (t_ns[0] if len(t_ns) else 0)) / NS_PER_DAY  # days since the first event
    x, seq = data.x[sel], data.seq[sel]
    bg = (fit.mu / np.maximum(data.seg_len, 1e-9))[seq]
    if fit.theta <= 0 or len(t) == 0:
        return np.ones(len(t))
    tc, xc = fit.time_cutoff_days, fit.space_cutoff_km
    par, chi = _etas_pairs(t, x, tc, xc)
    g = _trigger_density(
        t[chi] - t[par], (x[chi] - x[par]) ** 2, fit.theta, fit.omega, fit.sigma_km, tc, xc
    )
    lam = bg + np.bincount(chi, weights=g, minlength=len(t))
    return bg / np.maximum(lam, 1e-300)


def _decayed_sums(
    t_ns: np.ndarray, seq: np.ndarray, q: np.ndarray, n_seg: int, query_ns: np.ndarray, h: float
) -> np.ndarray:
    """``sum_{t_i < T} q_i 2^(-(T - t_i)/h)`` per segment for every query time -> (Q, n_seg).

    Events are binned to the first distinct query time after them (weights relative to that
    time, so nothing overflows) and the bins are carried forward with the decay between
    consecutive query times: O(E + Q * n_seg), a loop over the distinct query times only.
    """
    grid, inv = np.unique(query_ns, return_inverse=True)
    b = np.searchsorted(grid, t_ns, side="right")  # first grid point strictly after t
    ok = b < len(grid)
    lag = (grid[b[ok]] - t_ns[ok]) / NS_PER_DAY
    w = q[ok] * np.exp2(-lag / h)
    acc = np.bincount(b[ok] * n_seg + seq[ok], weights=w, minlength=len(grid) * n_seg)
    acc = acc.reshape(len(grid), n_seg)
    step = np.exp2(-np.diff(grid) / NS_PER_DAY / h)
    for k in range(1, len(grid)):  # linear recursion over time points (S-vectors)
        acc[k] += step[k - 1] * acc[k - 1]
    return acc[inv.ravel()]


def _tv_background(data: _Data, fit: EtasFit) -> np.ndarray:
    """Recency-weighted background per window from the events strictly before its start.

    ``mu_T(s) = sum_{t0 <= t_i < T} q_i 2^(-(T - t_i)/h) smooth(seg_i -> s) / exposure(T)``
    with ``exposure(T) = int_{t0}^{T} 2^(-(T - t)/h) dt`` (``T - t0`` at least one day).
    """
    h = fit.mu_half_life_days
    assert h is not None
    t0 = fit.train_start_ns if fit.train_start_ns is not None else int(data.start_ns.min())
    sel = data.t_ns >= t0
    q = _background_prob(data, fit, sel)
    num = _decayed_sums(data.t_ns[sel], data.seq[sel], q, data.n_seg, data.start_ns, h)
    smooth = _gauss_segment_matrix(data, fit.mu_bandwidth_km)
    age = np.maximum((data.start_ns - t0) / NS_PER_DAY, 1.0)
    return (num @ smooth) / np.asarray(_decay_exposure(age, h))[:, None]


def self_exciting(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    windows: pd.DataFrame,
    *,
    fit: EtasFit | None = None,
    time_cutoff_days: float = 14.0,
    space_cutoff_km: float = 10.0,
    mu_bandwidth_km: float = 1.0,
    train_days: float | None = None,
    max_iter: int = 200,
    mu_half_life_days: float | None = None,
) -> np.ndarray:
    """ETAS / SEPP forecast: expected events per window from background plus triggering.

    Parameters are fitted once by :func:`fit_etas` on the events strictly before the first
    (earliest) evaluation window; each window then uses all events strictly before its own
    start. Expected count in window ``[T, T + D)`` and segment ``s``:

    ``mu_s * D + theta * sum_{t_i < T} [G(T + D - t_i) - G(T - t_i)] * P_i(s)``

    with ``G`` the truncated exponential CDF and ``P_i(s)`` the truncated-Gaussian mass of
    event ``i``'s offspring in segment ``s``. Offspring of events that occur during the
    window itself are not added (first-order forecast).

    With a half-life ``h`` (``fit.mu_half_life_days``) the background is not frozen at the fit
    but re-estimated at every window start ``T`` from the events strictly before ``T``:

    ``mu_T(s) = sum_{t0 <= t_i < T} q_i 2^(-(T - t_i)/h) smooth(seg_i -> s) / exposure(T)``

    with ``q_i = mu(x_i) / lambda(x_i, t_i)`` the background probability of event ``i`` at the
    fitted parameters (the EM's ``p_jj`` for training events; for later events the same
    formula with the background of the fit instant, a first-order choice: the background
    share of an event moves little within a test period much shorter than ``h``) and
    ``exposure(T) = int_{t0}^{T} 2^(-(T - t)/h) dt``. At ``T`` = the fit instant this is
    ``fit.mu``.

    Parameters
    ----------
    events, segments, windows : DataFrame
        Frames of the data contract.
    fit : EtasFit, optional
        Pre-fitted parameters (must come from events before the first window to stay
        leakage-free); fitted here if omitted.
    time_cutoff_days, space_cutoff_km, mu_bandwidth_km, train_days, max_iter
        Passed to :func:`fit_etas`.
    mu_half_life_days : float, optional
        Passed to :func:`fit_etas` (when ``fit`` is given, its own ``mu_half_life_days``
        decides). ``None`` (default): constant background.

    Returns
    -------
    ndarray, shape (W, S)
        Expected events per window and segment.
    """
    data = _prepare(events, segments, windows)
    n_win = len(data.start_ns)
    if n_win == 0:
        return np.zeros((0, data.n_seg))
    if fit is None:
        first = pd.Timestamp(int(data.start_ns.min()), unit="ns", tz="UTC")
        fit = fit_etas(
            events,
            segments,
            first,
            time_cutoff_days=time_cutoff_days,
            space_cutoff_km=space_cutoff_km,
            mu_bandwidth_km=mu_bandwidth_km,
            train_days=train_days,
            max_iter=max_iter,
            mu_half_life_days=mu_half_life_days,
        )
    days = _window_days(data)
    if fit.mu_half_life_days is None:
        out = days[:, None] * fit.mu[None, :]
    else:
        out = days[:, None] * _tv_background(data, fit)
    if fit.theta <= 0 or len(data.t_ns) == 0:
        return out
    tc, om = fit.time_cutoff_days, fit.omega
    norm = -np.expm1(-om * tc)
    space = _space_gauss(data, fit.sigma_km, fit.space_cutoff_km, renormalise=True)

    def time_weight(dt_ns: np.ndarray, win: np.ndarray) -> np.ndarray:
        lag = dt_ns / NS_PER_DAY
        # G(lag + D) - G(lag), both clipped at the cut-off.
        a = np.minimum(lag, tc)
        b = np.minimum(lag + days[win], tc)
        return fit.theta * (np.exp(-om * a) - np.exp(-om * b)) / norm

    horizon = int(np.ceil(tc * NS_PER_DAY))
    return out + _window_event_scores(data, horizon, space, time_weight)


@dataclass(frozen=True, eq=False)
class HalfLifeChoice:
    """Result of :func:`select_mu_half_life`.

    Attributes
    ----------
    best : float
        Half-life (days) with the highest predictive log-likelihood (``inf``: running mean).
    scores : dict of float to float
        Poisson log-likelihood of the daily forecasts of the evaluation span per half-life.
    fits : dict of float to EtasFit
        The fit made for each half-life (reusable by :func:`self_exciting`).
    """

    best: float
    scores: dict[float, float]
    fits: dict[float, EtasFit]


def select_mu_half_life(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    before: Any,
    *,
    grid: Sequence[float] = (30.0, 60.0, 120.0, 240.0, math.inf),
    eval_days: float = 182.0,
    **fit_kwargs: Any,
) -> HalfLifeChoice:
    """Choose the background half-life by predictive likelihood on the training history.

    For each ``h`` of ``grid`` the model is fitted by :func:`fit_etas` on the events before
    ``before``; then the last ``eval_days`` of that history are forecast day by day with
    :func:`self_exciting` (background re-estimated from the events before each day) and scored
    by the Poisson log-likelihood ``sum n log(m) - m`` of the daily counts per segment. The
    background part of these forecasts uses only the past; the triggering parameters and the
    background shares ``q_i`` come from the whole training history, for every ``h`` alike.

    Parameters
    ----------
    events, segments : DataFrame
        Frames of the data contract.
    before : timestamp-like
        End of the training history (events strictly before it are used).
    grid : sequence of float
        Candidate half-lives in days (``inf`` allowed).
    eval_days : float
        Length of the scored span at the end of the training history.
    **fit_kwargs
        Passed to :func:`fit_etas` (not ``mu_half_life_days``).

    Returns
    -------
    HalfLifeChoice
        Chosen half-life, score per candidate and the fits.
    """
    end = pd.Timestamp(before)
    if end.tzinfo is None:
        end = end.tz_localize("UTC")
    n_days = max(int(eval_days), 1)
    starts = pd.date_range(end=end - pd.Timedelta(days=1), periods=n_days, freq="D")
    windows = pd.DataFrame({"start_utc": starts, "hours": 24.0})
    data = _prepare(events, segments, windows)
    w = np.searchsorted(data.start_ns, data.t_ns, side="right") - 1  # day of each event
    ok = (w >= 0) & (data.t_ns < data.start_ns[-1] + NS_PER_DAY)
    counts = np.bincount(w[ok] * data.n_seg + data.seq[ok], minlength=n_days * data.n_seg).reshape(
        n_days, data.n_seg
    )
    past = events[_events._to_ns(events["timestamp"]) < int(_events._to_ns([end])[0])]
    scores: dict[float, float] = {}
    fits: dict[float, EtasFit] = {}
    for h in grid:
        fit = fit_etas(past, segments, end, mu_half_life_days=h, **fit_kwargs)
        m = np.maximum(self_exciting(past, segments, windows, fit=fit), 1e-12)
        scores[float(h)] = float(np.sum(counts * np.log(m)) - m.sum())
        fits[float(h)] = fit
    best = max(scores, key=lambda k: scores[k])
    return HalfLifeChoice(best=best, scores=scores, fits=fits)
