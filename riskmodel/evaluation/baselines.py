"""Leakage-free baseline forecasters for (shift window x border segment) event counts.

Every baseline is a pure function ``f(events, segments, windows, **params) -> ndarray`` of shape
``(len(windows), n_segments)``. Row ``w`` uses **only events with timestamp strictly before
``windows.start_utc[w]``** (compared as int64 nanoseconds), so each row is exactly what could have
been computed at the start of that shift. Scores are scaled to *expected recorded events per
(window, segment)* so that deviance, Brier and calibration are meaningful; the scaling never
changes the ranking of segments within a window.

Baselines (open_cp / PredPol anchors, METHODOLOGY.md section 3.4):

``historical``  count in the segment over the last ``days`` days (optionally times the share
                of the window's shift-of-day), the naive-count baseline.
``hotspot``     Bowers-Johnson prospective hotspot, ``w = 1/((1+d)(1+t))`` with ``d`` in integer
                cells along the border and ``t`` in whole weeks (open_cp ``ClassicWeight``).
``kde``         Gaussian kernel along the chainage x exponential time decay.
``etas``        self-exciting point process (ETAS / SEPP, Mohler et al. 2011) along the 1-D
                chainage, fitted by EM on the history before the first evaluation window.

Implementation: events are sorted by time, so the events visible from window ``w`` within a
horizon form one contiguous slice; (window, event) pairs are built with ``np.searchsorted`` and
``np.repeat``, weighted in time, and multiplied with a sparse (event x segment) spatial kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import brentq
from scipy.special import ndtr

__all__ = [
    "BASELINES",
    "EtasFit",
    "compute_baselines",
    "fit_etas",
    "historical_frequency",
    "hotspot_weight",
    "kde_time_decay",
    "oracle",
    "prospective_hotspot",
    "self_exciting",
]

NS_PER_DAY = 86_400 * 10**9
_MAX_PAIRS = 2_000_000  # bound on (window, event) pairs held in memory at once


# --------------------------------------------------------------------------------------------
# input preparation
# --------------------------------------------------------------------------------------------


def _to_ns(values: Any) -> np.ndarray:
    """UTC nanoseconds (int64) of timestamps, whatever their pandas resolution."""
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    if idx.hasnans:
        raise ValueError("timestamps contain missing values (NaT)")
    return idx.as_unit("ns").asi8.astype(np.int64, copy=False)


@dataclass(frozen=True)
class _Data:
    """Validated numpy view of the three frames (events sorted by time, then segment)."""

    t_ns: np.ndarray  # (E,) int64, sorted
    seq: np.ndarray  # (E,) int64 segment index
    x: np.ndarray  # (E,) float chainage km
    seg_from: np.ndarray  # (S,) km, non-decreasing
    seg_to: np.ndarray  # (S,) km
    start_ns: np.ndarray  # (W,) int64 window starts
    hours: np.ndarray  # (W,) true window durations
    shift_idx: np.ndarray  # (W,) int
    first_ns: int | None  # earliest event time (None if no events)

    @property
    def n_seg(self) -> int:
        return len(self.seg_from)

    @property
    def seg_mid(self) -> np.ndarray:
        return 0.5 * (self.seg_from + self.seg_to)

    @property
    def seg_len(self) -> np.ndarray:
        return self.seg_to - self.seg_from

    def history_days(self) -> np.ndarray:
        """Days of history available before each window start (>= 0)."""
        if self.first_ns is None:
            return np.zeros(len(self.start_ns))
        return np.maximum((self.start_ns - self.first_ns) / NS_PER_DAY, 0.0)


def _prepare(events: pd.DataFrame, segments: pd.DataFrame, windows: pd.DataFrame) -> _Data:
    for name, frame, cols in (
        ("segments", segments, ("seq", "chainage_from_km", "chainage_to_km")),
        ("windows", windows, ("start_utc",)),
        ("events", events, ("timestamp", "seq")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}")
    seg = segments.sort_values("seq", kind="stable")
    n_seg = len(seg)
    if not np.array_equal(seg["seq"].to_numpy(), np.arange(n_seg)):
        raise ValueError("segments.seq must be 0..S-1")
    seg_from = seg["chainage_from_km"].to_numpy(float)
    seg_to = seg["chainage_to_km"].to_numpy(float)
    # Spatial look-ups use searchsorted on the chainage, so it must run along seq.
    if np.any(np.diff(seg_from) < 0) or np.any(seg_to < seg_from):
        raise ValueError("segment chainage must increase with seq (from <= to)")

    start_ns = _to_ns(windows["start_utc"])
    if "hours" in windows.columns:
        hours = windows["hours"].to_numpy(float)
    elif "end_utc" in windows.columns:
        hours = (_to_ns(windows["end_utc"]) - start_ns) / 3.6e12
    else:
        raise ValueError("windows need 'hours' or 'end_utc'")
    shift_idx = (
        windows["shift_idx"].to_numpy(np.int64)
        if "shift_idx" in windows.columns
        else np.zeros(len(windows), np.int64)
    )

    t_ns = _to_ns(events["timestamp"]) if len(events) else np.zeros(0, np.int64)
    seq = events["seq"].to_numpy(np.int64) if len(events) else np.zeros(0, np.int64)
    if len(seq) and (seq.min() < 0 or seq.max() >= n_seg):
        raise ValueError(f"events.seq outside 0..{n_seg - 1}")
    mid = 0.5 * (seg_from + seg_to)
    if "chainage_km" in events.columns and len(events):
        x = events["chainage_km"].to_numpy(float)
        x = np.where(np.isfinite(x), x, mid[seq])  # missing position: segment middle
    else:
        x = mid[seq]
    order = np.lexsort((seq, t_ns))  # deterministic: time, then segment order
    return _Data(
        t_ns=t_ns[order],
        seq=seq[order],
        x=x[order],
        seg_from=seg_from,
        seg_to=seg_to,
        start_ns=start_ns,
        hours=hours,
        shift_idx=shift_idx,
        first_ns=int(t_ns.min()) if len(t_ns) else None,
    )


# --------------------------------------------------------------------------------------------
# vectorised building blocks
# --------------------------------------------------------------------------------------------


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten integer ranges ``[lo_k, hi_k)`` into (owner k, value) arrays without a loop."""
    counts = np.maximum(hi - lo, 0)
    owner = np.repeat(np.arange(len(lo)), counts)
    starts = np.cumsum(counts) - counts
    value = np.arange(counts.sum()) - np.repeat(starts - lo, counts)
    return owner, value


def _counts_before(
    t_ns: np.ndarray, label: np.ndarray, n_label: int, query_ns: np.ndarray
) -> np.ndarray:
    """Counts of events per label with ``t < q`` for every query time -> (Q, n_label).

    Events are binned between consecutive distinct query times and cumulated, so the cost is
    O(E + Q * n_label) instead of O(E * Q).
    """
    grid, inv = np.unique(query_ns, return_inverse=True)
    # b <= k  <=>  t < grid[k]   (b = number of grid points <= t)
    b = np.searchsorted(grid, t_ns, side="right")
    hist = np.bincount(b * n_label + label, minlength=(len(grid) + 1) * n_label)
    cum = np.cumsum(hist.reshape(len(grid) + 1, n_label), axis=0)
    return cum[inv.ravel()].astype(float)


def _window_event_scores(
    data: _Data,
    horizon_ns: int,
    space: sparse.csr_matrix,
    time_weight: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """``sum_i time_weight(dt_i, w) * space[i, s]`` over events ``start_w - horizon <= t_i < start_w``.

    ``time_weight(dt_ns, window_index)`` gets int64 lags (> 0) and the window of each pair.
    Windows are processed in blocks so that at most ``_MAX_PAIRS`` pairs live in memory.
    """
    n_win, n_seg = len(data.start_ns), data.n_seg
    out = np.zeros((n_win, n_seg))
    if len(data.t_ns) == 0 or n_win == 0:
        return out
    hi = np.searchsorted(data.t_ns, data.start_ns, side="left")  # strictly before the start
    lo = np.searchsorted(data.t_ns, data.start_ns - horizon_ns, side="left")
    n_pairs = np.maximum(hi - lo, 0)
    # Blocks of consecutive windows with bounded pair counts (one block at the usual sizes).
    block_of = np.cumsum(n_pairs) // _MAX_PAIRS
    for blk in np.unique(block_of):
        rows = np.flatnonzero(block_of == blk)
        owner, ev = _ranges(lo[rows], hi[rows])
        if len(ev) == 0:
            continue
        win = rows[owner]
        w = time_weight(data.start_ns[win] - data.t_ns[ev], win)
        # Pairs are already grouped by window with sorted event columns: build CSR directly.
        indptr = np.concatenate([[0], np.cumsum(n_pairs[rows])])
        tw = sparse.csr_matrix((w, ev, indptr), shape=(len(rows), len(data.t_ns)))
        out[rows] = (tw @ space).toarray()
    return out


def _space_gauss(
    data: _Data, sigma: float, cutoff: float, renormalise: bool = False
) -> sparse.csr_matrix:
    """Mass of ``N(x_i, sigma)`` (truncated at ``|dx| <= cutoff``) falling in each segment."""
    x = data.x
    first = np.searchsorted(data.seg_to, x - cutoff, side="right")
    last = np.searchsorted(data.seg_from, x + cutoff, side="left")
    ev, seg = _ranges(first, last)
    xe = x[ev]
    lo = np.clip(data.seg_from[seg], xe - cutoff, xe + cutoff)
    hi = np.clip(data.seg_to[seg], xe - cutoff, xe + cutoff)
    mass = ndtr((hi - xe) / sigma) - ndtr((lo - xe) / sigma)
    if renormalise:  # truncated kernel integrates to one over [-cutoff, cutoff]
        mass = mass / (2.0 * ndtr(cutoff / sigma) - 1.0)
    return sparse.csr_matrix((mass, (ev, seg)), shape=(len(x), data.n_seg))


def _window_days(data: _Data) -> np.ndarray:
    return data.hours / 24.0


# --------------------------------------------------------------------------------------------
# historical frequency
# --------------------------------------------------------------------------------------------


def _event_shift_of_day(data: _Data, windows: pd.DataFrame, tz: str) -> tuple[np.ndarray, int]:
    """Shift-of-day index of each event, from the windows' local start times."""
    if "start_local" in windows.columns:
        local = pd.DatetimeIndex(windows["start_local"])
        tz = str(local.tz) if local.tz is not None else tz
    local = pd.DatetimeIndex(pd.to_datetime(windows["start_utc"], utc=True)).tz_convert(tz)
    minutes = pd.Series(local.hour * 60 + local.minute, index=windows.index)
    # Modal local start minute per shift (DST-proof template of the day).
    template = minutes.groupby(data.shift_idx).agg(lambda m: m.mode().iloc[0]).sort_values()
    n_shift = int(data.shift_idx.max()) + 1 if len(data.shift_idx) else 1
    ev_local = pd.DatetimeIndex(data.t_ns.view("datetime64[ns]"), tz="UTC").tz_convert(tz)
    ev_min = np.asarray(ev_local.hour * 60 + ev_local.minute)
    pos = np.searchsorted(template.to_numpy(), ev_min, side="right") - 1
    # Before the earliest shift start of the day: still the last (overnight) shift.
    shift = template.index.to_numpy()[np.where(pos < 0, len(template) - 1, pos)]
    return shift.astype(np.int64), n_shift


def historical_frequency(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    windows: pd.DataFrame,
    *,
    days: float = 365.0,
    by_shift: bool = False,
    tz: str = "Europe/Ljubljana",
) -> np.ndarray:
    """Naive counts: events in the segment over the last ``days`` days before each window.

    Parameters
    ----------
    events, segments, windows : DataFrame
        Frames of the data contract (see module docstring).
    days : float
        Look-back length in days; events in ``[start - days, start)`` count.
    by_shift : bool
        If true, multiply by the border-wide share of the window's shift-of-day among the
        events of the same look-back (Laplace-smoothed ``(n_k + 1) / (N + K)``); the shift of
        an event is read from its local time of day against the windows' local start times.
    tz : str
        Zone used to read times of day when ``windows`` has no ``start_local`` column.

    Returns
    -------
    ndarray, shape (W, S)
        Expected events per window and segment: ``count / d * hours / 24`` (or
        ``count * share / d`` with ``by_shift``), ``d = min(days, history available)``.
    """
    data = _prepare(events, segments, windows)
    n_win, n_seg = len(data.start_ns), data.n_seg
    if len(data.t_ns) == 0 or n_win == 0:
        return np.zeros((n_win, n_seg))
    horizon = int(round(days * NS_PER_DAY))
    q = np.concatenate([data.start_ns, data.start_ns - horizon])
    cum = _counts_before(data.t_ns, data.seq, n_seg, q)
    counts = cum[:n_win] - cum[n_win:]
    eff_days = np.clip(np.minimum(days, data.history_days()), 1.0, None)[:, None]
    if not by_shift:
        return counts / eff_days * _window_days(data)[:, None]
    ev_shift, n_shift = _event_shift_of_day(data, windows, tz)
    cum_k = _counts_before(data.t_ns, ev_shift, n_shift, q)
    per_shift = cum_k[:n_win] - cum_k[n_win:]
    n_k = per_shift[np.arange(n_win), data.shift_idx]
    share = (n_k + 1.0) / (per_shift.sum(axis=1) + n_shift)
    # One window of each shift per day, so count*share/days is the per-window expectation.
    return counts * share[:, None] / eff_days


# --------------------------------------------------------------------------------------------
# prospective hotspot (Bowers-Johnson)
# --------------------------------------------------------------------------------------------


def hotspot_weight(d_cells: Any, t_weeks: Any, space_bw: int, time_bw: int) -> np.ndarray:
    """Bowers-Johnson weight ``1/((1+d)(1+t))``, zero when ``d >= space_bw`` or ``t >= time_bw``.

    Parameters
    ----------
    d_cells, t_weeks : array_like of int
        Whole cells between event and target, whole weeks between event and prediction time.
    space_bw, time_bw : int
        Bandwidths in cells and weeks (exclusive, as open_cp ``ClassicWeight``).

    Returns
    -------
    ndarray
        Weights.
    """
    d = np.asarray(d_cells, float)
    t = np.asarray(t_weeks, float)
    return np.where((d < space_bw) & (t < time_bw), 1.0 / ((1.0 + d) * (1.0 + t)), 0.0)


def prospective_hotspot(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    windows: pd.DataFrame,
    *,
    bandwidth_km: float = 3.0,
    bandwidth_weeks: int = 8,
    cell_km: float = 1.0,
    normalize: bool = True,
) -> np.ndarray:
    """Prospective hotspot (Bowers, Johnson & Pease 2004) along the border.

    The border is cut into cells of ``cell_km`` from the start of segment 0; an event and a
    segment sit in the cells of the event's chainage and of the segment's middle. With
    ``d = |cell_event - cell_segment|`` (integer cells) and ``t = floor(lag / 7 days)``
    (whole weeks, lag = window start - event time) the weight is
    ``1/((1+d)(1+t))`` if ``d < bandwidth_km / cell_km`` and ``t < bandwidth_weeks``, else 0
    (exclusive bandwidths as in open_cp ``ClassicWeight``).

    Parameters
    ----------
    events, segments, windows : DataFrame
        Frames of the data contract.
    bandwidth_km : float
        Spatial bandwidth; ``floor(bandwidth_km / cell_km + 1e-9)`` cells.
    bandwidth_weeks : int
        Temporal bandwidth in weeks.
    cell_km : float
        Cell size along the chainage.
    normalize : bool
        If true (default), divide the summed weights by the kernel's mass in time (days) and
        space (cells) and multiply by window days and segment length / cell, which turns
        them into expected events per window and segment. If false, return the raw sums of
        weights (the textbook score).

    Returns
    -------
    ndarray, shape (W, S)
        Scores.
    """
    data = _prepare(events, segments, windows)
    space_bw = int(np.floor(bandwidth_km / cell_km + 1e-9))
    time_bw = int(bandwidth_weeks)
    if space_bw < 1 or time_bw < 1:
        raise ValueError("bandwidths must cover at least one cell and one week")
    x0 = data.seg_from[0] if data.n_seg else 0.0
    cell_ev = np.floor((data.x - x0) / cell_km).astype(np.int64)
    cell_seg = np.floor((data.seg_mid - x0) / cell_km).astype(np.int64)  # non-decreasing
    first = np.searchsorted(cell_seg, cell_ev - (space_bw - 1), side="left")
    last = np.searchsorted(cell_seg, cell_ev + (space_bw - 1), side="right")
    ev, seg = _ranges(first, last)
    d = np.abs(cell_seg[seg] - cell_ev[ev])
    space = sparse.csr_matrix((1.0 / (1.0 + d), (ev, seg)), shape=(len(data.t_ns), data.n_seg))
    week = 7 * NS_PER_DAY

    def time_weight(dt_ns: np.ndarray, _win: np.ndarray) -> np.ndarray:
        t = dt_ns // week
        return np.where(t < time_bw, 1.0 / (1.0 + t), 0.0)

    raw = _window_event_scores(data, time_bw * week, space, time_weight)
    if not normalize:
        return raw
    # Mass of the time kernel over the available history (days), in closed form.
    span = np.minimum(data.history_days(), 7.0 * time_bw)
    full = np.floor(span / 7.0).astype(np.int64)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, time_bw + 1))])
    t_mass = 7.0 * harmonic[full] + (span - 7.0 * full) / (1.0 + full)
    s_mass = 1.0 + 2.0 * np.sum(1.0 / (1.0 + np.arange(1, space_bw)))
    scale = _window_days(data) / np.where(t_mass > 0, t_mass, np.inf) / s_mass
    return raw * scale[:, None] * (data.seg_len / cell_km)[None, :]


# --------------------------------------------------------------------------------------------
# KDE with exponential time decay
# --------------------------------------------------------------------------------------------


def kde_time_decay(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    windows: pd.DataFrame,
    *,
    bandwidth_km: float = 2.0,
    half_life_days: float = 30.0,
    horizon_days: float = 365.0,
) -> np.ndarray:
    """Gaussian kernel along the chainage times exponential decay in time.

    ``score(w, s) = sum_i 2^(-lag_i / half_life) * P(segment s | N(x_i, bandwidth))`` over
    events with ``0 < lag_i <= horizon_days``, where ``P`` is the Gaussian mass inside the
    segment (kernel cut at 4 bandwidths).

    Parameters
    ----------
    events, segments, windows : DataFrame
        Frames of the data contract.
    bandwidth_km : float
        Standard deviation of the Gaussian along the chainage.
    half_life_days : float
        Half-life of the exponential time decay.
    horizon_days : float
        Events older than this are ignored.

    Returns
    -------
    ndarray, shape (W, S)
        Expected events per window and segment: the weighted sum divided by the decay kernel's
        mass over the available history (days) and multiplied by window days.
    """
    data = _prepare(events, segments, windows)
    lam = np.log(2.0) / half_life_days  # per day
    space = _space_gauss(data, bandwidth_km, 4.0 * bandwidth_km)

    def time_weight(dt_ns: np.ndarray, _win: np.ndarray) -> np.ndarray:
        return np.exp(-lam * (dt_ns / NS_PER_DAY))

    raw = _window_event_scores(data, int(round(horizon_days * NS_PER_DAY)), space, time_weight)
    span = np.minimum(data.history_days(), horizon_days)
    t_mass = -np.expm1(-lam * span) / lam
    scale = _window_days(data) / np.where(t_mass > 0, t_mass, np.inf)
    return raw * scale[:, None]


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
    block_of = np.cumsum(n) // _MAX_PAIRS  # bounded memory on very large histories
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


# --------------------------------------------------------------------------------------------
# oracle and registry
# --------------------------------------------------------------------------------------------


def oracle(truth_expected: np.ndarray) -> np.ndarray:
    """Pass-through of the simulator's truth (expected recorded events per window x segment).

    Parameters
    ----------
    truth_expected : array_like, shape (W, S)
        Expected counts from the simulator.

    Returns
    -------
    ndarray, shape (W, S)
        A float copy, validated to be finite and non-negative.
    """
    arr = np.array(truth_expected, dtype=float, copy=True)
    if arr.ndim != 2:
        raise ValueError(f"truth must be 2-D (windows x segments), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("truth must be finite and non-negative")
    return arr


BaselineFn = Callable[..., np.ndarray]

BASELINES: dict[str, BaselineFn] = {
    "historical": historical_frequency,
    "hotspot": prospective_hotspot,
    "kde": kde_time_decay,
    "etas": self_exciting,
}


def compute_baselines(
    events: pd.DataFrame,
    segments: pd.DataFrame,
    windows: pd.DataFrame,
    names: Sequence[str] | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, np.ndarray]:
    """Run several baselines with one call.

    Parameters
    ----------
    events, segments, windows : DataFrame
        Frames of the data contract.
    names : sequence of str, optional
        Keys of :data:`BASELINES` (default: all, in registry order).
    params : mapping, optional
        Keyword arguments per baseline name, e.g. ``{"kde": {"bandwidth_km": 1.0}}``.

    Returns
    -------
    dict of str to ndarray
        Scores of shape (W, S) per baseline.
    """
    names = list(BASELINES) if names is None else list(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: {list(BASELINES)}")
    params = params or {}
    return {n: BASELINES[n](events, segments, windows, **dict(params.get(n, {}))) for n in names}
