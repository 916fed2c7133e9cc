"""Events and effort binned into (windows x segments) matrices: the input of every feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskmodel.io.read.border import BorderIndex


def assign_segments(
    events: pd.DataFrame,
    segments: gpd.GeoDataFrame,
    max_distance_m: float = 20_000.0,
    *,
    index: BorderIndex | None = None,
) -> pd.DataFrame:
    """Attach the nearest segment (``seq``, ``segment_id``), the border chainage
    (``chainage_km``) and ``dist_to_border_m`` to events given by metric ``x``/``y``.

    Events farther than ``max_distance_m`` get ``seq = -1`` (and an infinite distance).

    Parameters
    ----------
    events : DataFrame
        With metric ``x``, ``y`` in the segments' CRS.
    segments : GeoDataFrame
        Segments in ``seq`` order (:func:`riskmodel.geo.segments.make_segments`).
    max_distance_m : float
        Farther events are not on any segment.
    index : BorderIndex, optional
        Index over ``segments`` (``Geography.border_index``), reused when given; its nearest
        piece is the nearest segment (ties to the lower ``seq``).
    """
    if index is None:
        index = BorderIndex(segments, str(segments.crs))
    x = events["x"].to_numpy(float)
    y = events["y"].to_numpy(float)
    dist, piece = index.nearest(x, y, max_distance_m)
    ok = (piece >= 0) & (dist <= max_distance_m)
    row = np.where(ok, index.source[np.where(ok, piece, 0)], 0)
    out = events.copy()
    out["seq"] = np.where(ok, segments["seq"].to_numpy()[row], -1)
    out["segment_id"] = np.where(ok, segments["segment_id"].to_numpy()[row], "")
    along = np.zeros(len(events))
    if ok.any():
        along[ok] = index.along(piece[ok], x[ok], y[ok])
    out["chainage_km"] = np.where(
        ok, segments["chainage_from_km"].to_numpy()[row] + along / 1000, np.nan
    )
    out["dist_to_border_m"] = np.where(ok, dist, np.inf)
    return out


@dataclass
class Panel:
    """Events, effort and windows binned into (windows x segments) matrices.

    Attributes
    ----------
    windows : DataFrame
        Shift windows (``window`` = row index), from :func:`riskmodel.geo.shifts.shift_windows`.
    segments : GeoDataFrame
        Segments ordered by ``seq``.
    counts, persons, effort : ndarray (W, S)
        Recorded events, persons, officer-hours per window and segment.
    n_shifts : int
        Windows per day.
    """

    windows: pd.DataFrame
    segments: gpd.GeoDataFrame
    counts: np.ndarray
    persons: np.ndarray
    effort: np.ndarray
    n_shifts: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        windows: pd.DataFrame,
        segments: gpd.GeoDataFrame,
        events: pd.DataFrame,
        effort: pd.DataFrame | None = None,
    ) -> Panel:
        """Bin events (with ``seq``, ``timestamp`` UTC, ``persons``) and effort (``seq``,
        ``start``, ``end``, ``officer_hours``) into the windows.

        Effort spanning several windows is split in proportion to the overlap.
        """
        W, S = len(windows), len(segments)
        starts = windows["start_utc"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        ends = windows["end_utc"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        counts = np.zeros((W, S), np.float32)
        persons = np.zeros((W, S), np.float32)
        ev = events[events["seq"] >= 0]
        if len(ev):
            t = ev["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            w = np.searchsorted(starts, t, side="right") - 1
            ok = (w >= 0) & (t < ends[np.clip(w, 0, W - 1)])
            s = ev["seq"].to_numpy()[ok]
            np.add.at(counts, (w[ok], s), 1.0)
            pers = ev["persons"].to_numpy(float)[ok] if "persons" in ev else np.ones(ok.sum())
            np.add.at(persons, (w[ok], s), pers)
        eff = np.zeros((W, S), np.float32)
        if effort is not None and len(effort):
            ef = effort[effort["seq"] >= 0]
            a = ef["start"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            b = ef["end"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            w0 = np.clip(np.searchsorted(starts, a, side="right") - 1, 0, W - 1)
            w1 = np.clip(np.searchsorted(starts, b, side="left") - 1, 0, W - 1)
            n = np.maximum(w1 - w0 + 1, 1)
            rep = np.repeat(np.arange(len(ef)), n)
            ww = np.repeat(w0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
            ov_start = np.maximum(a[rep], starts[ww])
            ov_end = np.minimum(b[rep], ends[ww])
            ov = np.clip((ov_end - ov_start) / np.timedelta64(1, "s"), 0, None)
            dur = np.maximum((b - a) / np.timedelta64(1, "s"), 1.0)[rep]
            hrs = ef["officer_hours"].to_numpy(float)[rep] * ov / dur
            np.add.at(eff, (ww, ef["seq"].to_numpy()[rep]), hrs.astype(np.float32))
        n_shifts = int(windows["shift_idx"].max()) + 1 if W else 1
        return cls(windows.reset_index(drop=True), segments, counts, persons, eff, n_shifts)
