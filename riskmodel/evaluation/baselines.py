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
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

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


from riskmodel.evaluation._events import (
    NS_PER_DAY,
    _counts_before,
    _Data,
    _prepare,
    _ranges,
    _space_gauss,
    _window_days,
    _window_event_scores,
)
from riskmodel.evaluation.etas import EtasFit, fit_etas, self_exciting

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
