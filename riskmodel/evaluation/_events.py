"""Shared machinery of the baselines: event/window preparation and (window, event) kernels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import ndtr

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
