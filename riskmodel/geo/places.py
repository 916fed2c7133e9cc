"""Where a segment is, in words a patrol can use: nearest places on each side, the nearest
border crossing point and approach corridor, the river, and coordinates in WGS84 and D96/TM."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely

log = logging.getLogger(__name__)

CORRIDOR_KM = 5.0  # a corridor farther than this is not "the access road" of a stretch


def _nearest(
    points: np.ndarray, layer: Any, name_col: str = "name"
) -> tuple[np.ndarray, np.ndarray]:
    """Name of and distance (km) to the nearest feature of ``layer`` for each point."""
    n = len(points)
    if layer is None or len(layer) == 0:
        return np.full(n, "", dtype=object), np.full(n, np.nan)
    geoms = layer.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    (src, dst), dist = tree.query_nearest(points, return_distance=True, all_matches=False)
    names = np.full(n, "", dtype=object)
    km = np.full(n, np.nan)
    names[src] = layer[name_col].astype(str).to_numpy()[dst]
    km[src] = dist / 1000.0
    return names, km


def describe_places(geo: Any, segment_ids: Sequence[str]) -> pd.DataFrame:
    """Plain-word location of segments.

    Parameters
    ----------
    geo : Geography
        The geography (segments with ``rep_x/rep_y/rep_lon/rep_lat``, settlements with
        ``country``, crossings, corridors), all in its metric CRS.
    segment_ids : sequence of str

    Returns
    -------
    DataFrame
        Indexed by ``segment_id``: ``place_si``, ``place_si_km``, ``place_hr``, ``place_hr_km``,
        ``crossing``, ``crossing_km``, ``corridor``, ``corridor_km`` (empty beyond
        :data:`CORRIDOR_KM`), ``river``, ``lon``, ``lat`` (WGS84), ``x``, ``y`` (metric CRS).
    """
    seg = geo.segments.set_index("segment_id").loc[list(segment_ids)]
    pts = shapely.points(seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy())
    out = pd.DataFrame(index=seg.index)
    sett = geo.settlements
    for country, col in (("SI", "place_si"), ("HR", "place_hr")):
        layer = sett[sett["country"] == country] if sett is not None and len(sett) else None
        out[col], out[f"{col}_km"] = _nearest(pts, layer)
    out["crossing"], out["crossing_km"] = _nearest(pts, geo.crossings)
    name, km = _nearest(pts, geo.corridors)
    far = ~(km <= CORRIDOR_KM)
    name[far], km[far] = "", np.nan
    out["corridor"], out["corridor_km"] = name, km
    rn = seg["river_name"] if "river_name" in seg else pd.Series("", index=seg.index)
    out["river"] = rn.fillna("").astype(str).to_numpy()
    out["lon"], out["lat"] = seg["rep_lon"].to_numpy(), seg["rep_lat"].to_numpy()
    out["x"], out["y"] = seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy()
    return out
