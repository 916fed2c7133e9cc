"""Border line reading and segmentation.

A border line (LineString or MultiLineString, any CRS) is merged into one line, measured in a
metric CRS (EPSG:3794 for Slovenia, otherwise the UTM zone of its centroid) and split into
segments of (almost) equal length: ``n = round(L / length_m)`` pieces of ``L / n`` each, so no
short stub is left at the end and segment lengths sum to the line length.
"""

from __future__ import annotations

import logging
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, MultiLineString
from shapely.ops import linemerge

from riskmodel.errors import InputError
from riskmodel.io.read.coords import reproject
from riskmodel.io.read.layers import read_layer

log = logging.getLogger(__name__)

# Slovenia's bounding box (lon/lat) with a margin: inside it the national grid is used.
_SI_BOUNDS = (13.0, 45.2, 16.9, 47.0)


def metric_crs_for(gdf: gpd.GeoDataFrame, default: str = "EPSG:3794") -> str:
    """Metric CRS for a layer: ``default`` (national grid) when the layer lies in Slovenia's
    bounding box, else the UTM zone of its centroid."""
    ll = reproject(gdf, "EPSG:4326")
    minx, miny, maxx, maxy = ll.total_bounds
    b = _SI_BOUNDS
    if minx >= b[0] and miny >= b[1] and maxx <= b[2] and maxy <= b[3]:
        return default
    lon = (minx + maxx) / 2
    lat = (miny + maxy) / 2
    zone = int((lon + 180) // 6) + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _chain_parts(parts: list[LineString], max_gap_m: float, where: str) -> LineString:
    """Join line parts end to start, greedily by nearest endpoint; refuse gaps > max_gap_m."""
    merged = linemerge(MultiLineString(parts)) if len(parts) > 1 else parts[0]
    if isinstance(merged, LineString):
        return merged
    pieces = [np.asarray(g.coords) for g in merged.geoms]
    # Start from the piece whose start is farthest from all other ends (an extremity).
    chain = pieces.pop(int(np.argmax([len(p) for p in pieces])))
    while pieces:
        ends = np.array([[p[0], p[-1]] for p in pieces])  # (k, 2, 2)
        d_tail = np.linalg.norm(ends - chain[-1], axis=2)  # append after tail
        d_head = np.linalg.norm(ends - chain[0], axis=2)  # prepend before head
        best_tail = np.unravel_index(np.argmin(d_tail), d_tail.shape)
        best_head = np.unravel_index(np.argmin(d_head), d_head.shape)
        if d_tail[best_tail] <= d_head[best_head]:
            k, end = best_tail
            gap = d_tail[best_tail]
            p = pieces.pop(k)
            p = p if end == 0 else p[::-1]
            if gap > max_gap_m:
                raise _gap_error(gap, max_gap_m, where)
            chain = np.vstack([chain, p])
        else:
            k, end = best_head
            gap = d_head[best_head]
            p = pieces.pop(k)
            p = p if end == 1 else p[::-1]
            if gap > max_gap_m:
                raise _gap_error(gap, max_gap_m, where)
            chain = np.vstack([p, chain])
    return LineString(chain)


def _gap_error(gap: float, tol: float, where: str) -> InputError:
    return InputError(
        f"border has disconnected parts {gap:.0f} m apart (tolerance {tol:.0f} m)",
        where=where,
        fix="give one continuous line, or raise --max-gap-m if the gaps are real (e.g. rivers)",
    )


def read_border(
    path: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    metric_crs: str | None = None,
    max_gap_m: float = 200.0,
) -> gpd.GeoDataFrame:
    """Read and validate a border line; return one merged LineString in a metric CRS.

    Parameters
    ----------
    path : path-like or GeoDataFrame
        Any OGR-readable vector file (or an already loaded frame).
    metric_crs : str, optional
        CRS for distances; default from :func:`metric_crs_for`.
    max_gap_m : float
        Parts farther apart than this are an error; smaller gaps are bridged.

    Returns
    -------
    GeoDataFrame
        One row, one LineString, in the metric CRS.

    Raises
    ------
    InputError
        Unreadable file, no CRS, empty, no line geometry, disconnected parts.
    """
    where = str(path) if not isinstance(path, gpd.GeoDataFrame) else "border"
    if isinstance(path, gpd.GeoDataFrame):
        gdf = path
    else:
        gdf = read_layer(path, what="border", require_crs=False)
    if len(gdf) == 0 or gdf.geometry.isna().all() or gdf.geometry.is_empty.all():
        raise InputError(
            "border file has no features", where=where, fix="give a file with the border line"
        )
    if gdf.crs is None:
        raise InputError(
            "border file has no CRS",
            where=where,
            fix="assign its CRS (e.g. EPSG:4326 or EPSG:3794) in QGIS or with ogr2ogr -a_srs",
        )
    geoms = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    types = set(geoms.geom_type)
    if not types <= {"LineString", "MultiLineString"}:
        bad = ", ".join(sorted(types - {"LineString", "MultiLineString"}))
        raise InputError(
            f"border must be lines, found {bad}",
            where=where,
            fix="give the border as a LineString layer (convert polygons with 'Polygons to lines')",
        )
    crs = metric_crs or metric_crs_for(gdf)
    geoms = reproject(gpd.GeoSeries(geoms, crs=gdf.crs), crs)
    parts: list[LineString] = []
    for g in geoms:
        parts.extend(g.geoms if isinstance(g, MultiLineString) else [g])
    parts = [p for p in parts if p.length > 0]
    line = _chain_parts(parts, max_gap_m, where)
    return gpd.GeoDataFrame({"name": ["border"]}, geometry=[line], crs=crs)


def make_segments(
    border: gpd.GeoDataFrame,
    length_m: float = 1000.0,
    *,
    prefix: str = "SIHR",
    neighbour: str = "HR",
    areas: gpd.GeoDataFrame | None = None,
    rivers: gpd.GeoDataFrame | None = None,
    river_buffer_m: float = 150.0,
) -> gpd.GeoDataFrame:
    """Split a border line into segments of about ``length_m``.

    Parameters
    ----------
    border : GeoDataFrame
        Output of :func:`read_border` (one LineString, metric CRS).
    length_m : float
        Target segment length; actual length is ``L / round(L / length_m)``.
    prefix : str
        Id prefix: ids are ``<prefix>-0001`` counted from the line's start, stable between runs.
    neighbour : str
        Country code on the other side of the border.
    areas : GeoDataFrame, optional
        Responsibility areas (polygons with ``name``); a segment takes the area containing its
        midpoint, else the nearest.
    rivers : GeoDataFrame, optional
        River lines; a segment "follows a river" when ≥ 50 % of it lies within
        ``river_buffer_m`` of one (approximate when the river layer is).

    Returns
    -------
    GeoDataFrame
        Columns ``segment_id, seq, chainage_from_km, chainage_to_km, length_m, area, neighbour,
        river, river_name, rep_x, rep_y, rep_lon, rep_lat, geometry`` in the border's CRS.
    """
    if length_m <= 0:
        raise InputError(
            f"segment length must be positive, got {length_m}", fix="use e.g. --length-m 1000"
        )
    line = border.geometry.iloc[0]
    crs = border.crs
    geoms, cuts = _cut_line(line, length_m)
    n = len(geoms)
    lengths = shapely.length(geoms)
    reps = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    rx, ry = shapely.get_x(reps), shapely.get_y(reps)
    ll = reproject(gpd.GeoSeries(reps, crs=crs), "EPSG:4326")
    seg = gpd.GeoDataFrame(
        {
            "segment_id": [f"{prefix}-{i + 1:04d}" for i in range(n)],
            "seq": np.arange(n),
            "chainage_from_km": cuts[:-1] / 1000.0,
            "chainage_to_km": cuts[1:] / 1000.0,
            "length_m": lengths,
            "area": "",
            "neighbour": neighbour,
            "river": False,
            "river_name": "",
            "rep_x": rx,
            "rep_y": ry,
            "rep_lon": ll.x.to_numpy(),
            "rep_lat": ll.y.to_numpy(),
        },
        geometry=geoms,
        crs=crs,
    )
    if areas is not None and len(areas):
        seg["area"] = _assign_area(seg, reproject(areas, crs))
    if rivers is not None and len(rivers):
        flag, name = _river_flags(seg, reproject(rivers, crs), river_buffer_m)
        seg["river"] = flag
        seg["river_name"] = name
    return seg


def _cut_line(line: LineString, length_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``line`` into ``n = round(L / length_m)`` equal pieces; return them and the cut chainages."""
    coords = np.asarray(line.coords)[:, :2]
    step = np.linalg.norm(np.diff(coords, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(step)])
    total = float(cum[-1])
    n = max(1, int(round(total / length_m)))
    cuts = np.linspace(0.0, total, n + 1)
    cut_pts = shapely.get_coordinates(shapely.line_interpolate_point(line, cuts))
    # Vertices strictly inside each piece, vectorised with searchsorted.
    i0 = np.searchsorted(cum, cuts[:-1], side="right")
    i1 = np.searchsorted(cum, cuts[1:], side="left")
    inner = np.maximum(i1 - i0, 0)
    counts = inner + 2
    seg_of = np.repeat(np.arange(n), counts)
    offs = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(counts.sum()) - np.repeat(offs, counts)  # position within piece
    out = np.empty((counts.sum(), 2))
    is_first = pos == 0
    is_last = pos == np.repeat(counts - 1, counts)
    out[is_first] = cut_pts[:-1]
    out[is_last] = cut_pts[1:]
    mid = ~(is_first | is_last)
    out[mid] = coords[(np.repeat(i0, counts) + pos - 1)[mid]]
    return shapely.linestrings(out, indices=seg_of), cuts


def _assign_area(seg: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> np.ndarray:
    names = (
        areas["name"].astype(str).to_numpy()
        if "name" in areas
        else areas.index.astype(str).to_numpy()
    )
    pts = gpd.GeoSeries(shapely.points(seg["rep_x"], seg["rep_y"]), crs=seg.crs)
    tree = shapely.STRtree(areas.geometry.values)
    # nearest() returns the containing polygon (distance 0) when there is one.
    idx = tree.nearest(pts.values)
    return names[idx]


def _river_flags(
    seg: gpd.GeoDataFrame, rivers: gpd.GeoDataFrame, buf: float
) -> tuple[np.ndarray, np.ndarray]:
    names = (
        rivers["name"].astype(str).to_numpy()
        if "name" in rivers
        else np.array(["river"] * len(rivers))
    )
    buffers = shapely.buffer(rivers.geometry.values, buf)
    tree = shapely.STRtree(buffers)
    s_idx, r_idx = tree.query(seg.geometry.values, predicate="intersects")
    share = np.zeros(len(seg))
    best = np.full(len(seg), "", dtype=object)
    if len(s_idx):
        inter = shapely.length(shapely.intersection(seg.geometry.values[s_idx], buffers[r_idx]))
        frac = inter / np.maximum(seg["length_m"].to_numpy()[s_idx], 1e-9)
        df = pd.DataFrame({"s": s_idx, "r": r_idx, "f": frac}).sort_values(
            ["s", "f"], ascending=[True, False]
        )
        tot = df.groupby("s")["f"].sum()
        share[tot.index.to_numpy()] = tot.to_numpy()
        top = df.drop_duplicates("s")
        best[top["s"].to_numpy()] = names[top["r"].to_numpy()]
    flag = share >= 0.5
    return flag, np.where(flag, best, "").astype(str)


def segment_summary(seg: gpd.GeoDataFrame, border: gpd.GeoDataFrame) -> dict[str, float]:
    """Count and length check of a segmentation (for printing and tests)."""
    total = float(border.geometry.iloc[0].length)
    s = float(seg["length_m"].sum())
    return {
        "segments": int(len(seg)),
        "line_length_m": total,
        "segment_length_sum_m": s,
        "difference_m": abs(total - s),
        "min_length_m": float(seg["length_m"].min()),
        "max_length_m": float(seg["length_m"].max()),
    }
