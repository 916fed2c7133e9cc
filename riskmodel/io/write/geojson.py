"""RFC 7946 GeoJSON layers (WGS84, one feature per line) with an optional QGIS style."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from riskmodel._timing import timed
from riskmodel.errors import OutputError
from riskmodel.files import atomic_write_text, atomic_write_with
from riskmodel.io.read.coords import reproject
from riskmodel.io.write.common import WGS84, json_safe, require_crs

log = logging.getLogger(__name__)


@timed("write geojson")
def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    provenance: Mapping[str, Any] | None = None,
    qml: str | None = None,
    geometries: GeoJSONGeometries | None = None,
) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84, 6 decimals, ``bbox``, no ``crs``).

    One feature per line (diff-friendly), provenance as the top-level foreign member
    ``"riskmodel"`` (RFC 7946 section 6.1).

    Parameters
    ----------
    gdf : GeoDataFrame
        Layer in any CRS (normally EPSG:3794). Row and column order are kept.
    path : path-like
        Target ``.geojson`` file.
    provenance : dict, optional
        Model id, input hashes, versions ...; stored under ``"riskmodel"``.
    qml : str, optional
        QGIS style; written as ``<path stem>.qml`` beside the file, which QGIS auto-loads.
    geometries : GeoJSONGeometries, optional
        ``gdf``'s geometries already serialised, row for row (:func:`geojson_geometries`):
        layers that share their geometries (the day's shifts) convert them once.

    Returns
    -------
    Path
        The GeoJSON path.

    Raises
    ------
    OutputError
        If ``gdf`` has no CRS, ``geometries`` has another length, or the file cannot be
        written.
    """
    where = str(path)
    require_crs(gdf, where)
    target = Path(path)
    if geometries is None:
        geometries = geojson_geometries(gdf.geometry)
    elif len(geometries.members) != len(gdf):
        raise OutputError(
            f"{len(geometries.members)} serialised geometries for {len(gdf)} rows",
            where=where,
            fix="pass the geometries of this layer's rows (GeoJSONGeometries.take)",
        )
    prov = json_safe(provenance) if provenance is not None else None
    props = _properties(gdf.drop(columns=gdf.geometry.name))
    text = _geojson_text(target.stem, props, geometries, prov)

    def writer(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8", newline="\n")

    atomic_write_with(target, writer)
    if qml is not None:
        atomic_write_text(target.with_suffix(".qml"), qml)
    return target


@dataclass(frozen=True)
class GeoJSONGeometries:
    """Features' geometry members as GeoJSON text, one per row.

    Attributes
    ----------
    members : list of str
        ``"bbox": [...], "geometry": {...}`` (``"geometry": null`` for a missing or empty
        geometry), exactly as ``json.dumps`` writes those members of a feature.
    bounds : ndarray (n, 4)
        WGS84 bounds (NaN for a missing geometry), for the collection's ``bbox``.
    """

    members: list[str]
    bounds: np.ndarray

    def take(self, rows: np.ndarray) -> GeoJSONGeometries:
        """The geometries of ``rows`` (positions), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return GeoJSONGeometries([self.members[i] for i in rows.tolist()], self.bounds[rows])


def geojson_geometries(geoms: gpd.GeoSeries) -> GeoJSONGeometries:
    """Serialise geometries as RFC 7946 feature members (see :class:`GeoJSONGeometries`).

    WGS84 longitude/latitude rounded to 6 decimals (~0.1 m), polygon exteriors
    counter-clockwise, a ``bbox`` per feature. Built with pyproj and shapely directly (GDAL's
    writer plus a re-read took ~0.2 s a layer).
    """
    wgs = reproject(geoms, WGS84).to_numpy()
    present = ~(shapely.is_missing(wgs) | shapely.is_empty(wgs))
    out = np.array(wgs, dtype=object)
    if present.any():
        g = shapely.orient_polygons(out[present])  # exterior rings counter-clockwise
        coords = shapely.get_coordinates(g)
        out[present] = shapely.set_coordinates(g, np.round(coords, 6))
    bounds = shapely.bounds(out)
    members = []
    for i, geom in enumerate(out):
        if present[i]:
            bbox = json.dumps([float(v) for v in bounds[i]], allow_nan=False)
            shape = json.dumps(dict(shapely.geometry.mapping(geom)), allow_nan=False)
            members.append(f'"bbox": {bbox}, "geometry": {shape}')
        else:
            members.append('"geometry": null')
    return GeoJSONGeometries(members, np.where(present[:, None], bounds, np.nan))


def _properties(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Row dicts of JSON values: NaN/NaT/None -> null, numpy scalars -> Python, timestamps
    and dates -> ISO strings (column by column; element by element only where needed)."""
    cols: dict[str, list[Any]] = {}
    for c in df.columns:
        v = df[c]
        missing = v.isna().to_numpy()
        if pd.api.types.is_datetime64_any_dtype(v):
            vals = [None if m else t.isoformat() for t, m in zip(v, missing, strict=True)]
        elif pd.api.types.is_bool_dtype(v) or pd.api.types.is_integer_dtype(v):
            conv = bool if pd.api.types.is_bool_dtype(v) else int
            vals = (
                v.to_numpy().tolist()
                if not missing.any()
                else [None if m else conv(x) for x, m in zip(v, missing, strict=True)]
            )
        elif pd.api.types.is_float_dtype(v):
            a = v.to_numpy(float)
            vals = a.tolist()
            if not np.isfinite(a).all():
                vals = [x if f else None for x, f in zip(vals, np.isfinite(a), strict=True)]
        elif pd.api.types.is_string_dtype(v) and not pd.api.types.is_object_dtype(v):
            vals = v.tolist()  # str already (pandas string dtype)
            if missing.any():
                vals = [None if m else x for x, m in zip(vals, missing, strict=True)]
        else:
            vals = [_plain(x) for x in v]
        cols[str(c)] = vals
    if not cols:
        return [{} for _ in range(len(df))]
    names = list(cols)
    return [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _plain(x: Any) -> Any:
    """One value of an object/string column as JSON."""
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if hasattr(x, "isoformat"):
        return x.isoformat()
    return x if isinstance(x, (str, int, bool)) else str(x)


def _geojson_text(
    name: str, props: list[dict[str, Any]], geometries: GeoJSONGeometries, prov: Any
) -> str:
    """Serialise a FeatureCollection deterministically, one feature per line (diff-friendly);
    the precision of the coordinates as GDAL writes it (readers use it to keep the rounding)."""

    def dump(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)

    head: dict[str, Any] = {
        "type": "FeatureCollection",
        "name": name,
        "xy_coordinate_resolution": 1e-06,
    }
    b = geometries.bounds
    b = b[~np.isnan(b).any(axis=1)]
    if len(b):
        head["bbox"] = [
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        ]
    if prov is not None:
        head["riskmodel"] = prov
    lines = [f"{dump(k)}: {dump(v)}," for k, v in head.items()]
    feats = ",\n".join(
        f'{{"type": "Feature", "properties": {dump(p)}, {g}}}'
        for p, g in zip(props, geometries.members, strict=True)
    )
    body = f'"features": [\n{feats}\n]' if feats else '"features": []'
    return "{\n" + "\n".join(lines) + "\n" + body + "\n}\n"
