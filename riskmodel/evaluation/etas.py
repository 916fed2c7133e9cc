"""Self-exciting point process baseline (ETAS / SEPP, Mohler et al. 2011) along the chainage,
fitted by EM on the history before the first evaluation window."""

from __future__ import annotations

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
        in km).
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

    Returns
    -------
    EtasFit
        Fitted parameters.
    """
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

    theta, omega, sigma = (float(v) for v in init)
    if n_ev < 10:  # too little to fit triggering: smoothed counts only
        mu = np.bincount(seq, minlength=n_seg) @ smooth / span
        return EtasFit(0.0, omega, sigma, mu, tc, xc, n_ev, span, 0, False, float("nan"))

    par, chi = _etas_pairs(t, x, tc, xc)
    dt = t[chi] - t[par]
    dx2 = (x[chi] - x[par]) ** 2
    lag_end = np.minimum(span - t, tc)  # observable part of each event's offspring period
    bg_mass = np.bincount(seq, minlength=n_seg).astype(float)  # start: all background
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is reported
        mu_dens = (bg_mass @ smooth) / span / seg_len  # events per km per day
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
        bg_mass = np.bincount(seq, weights=p_bg, minlength=n_seg)
        # theta relative to at least 0.1 (it may shrink to ~0 on unclustered data, where
        # omega and sigma are then unidentifiable and are not part of the stopping rule).
        change = abs(new_theta - theta) / max(theta, 0.1)
        if new_theta > 1e-3:
            change = max(change, abs(new_omega - omega) / omega, abs(new_sigma - sigma) / sigma)
        theta, omega, sigma = new_theta, new_omega, new_sigma
        if change < tol:
            converged = True
            break

    mu = (bg_mass @ smooth) / span  # events per day per segment
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
    )


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
) -> np.ndarray:
    """ETAS / SEPP forecast: expected events per window from background plus triggering.

    Parameters are fitted once by :func:`fit_etas` on the events strictly before the first
    (earliest) evaluation window; each window then uses all events strictly before its own
    start. Expected count in window ``[T, T + D)`` and segment ``s``:

    ``mu_s * D + theta * sum_{t_i < T} [G(T + D - t_i) - G(T - t_i)] * P_i(s)``

    with ``G`` the truncated exponential CDF and ``P_i(s)`` the truncated-Gaussian mass of
    event ``i``'s offspring in segment ``s``. Offspring of events that occur during the
    window itself are not added (first-order forecast).

    Parameters
    ----------
    events, segments, windows : DataFrame
        Frames of the data contract.
    fit : EtasFit, optional
        Pre-fitted parameters (must come from events before the first window to stay
        leakage-free); fitted here if omitted.
    time_cutoff_days, space_cutoff_km, mu_bandwidth_km, train_days, max_iter
        Passed to :func:`fit_etas`.

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
        )
    days = _window_days(data)
    out = days[:, None] * fit.mu[None, :]
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
