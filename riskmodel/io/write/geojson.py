"""RFC 7946 GeoJSON layers (WGS84, one feature per line) with an optional QGIS style."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd

from riskmodel._timing import timed
from riskmodel.errors import OutputError
from riskmodel.files import atomic_write_text, atomic_write_with
from riskmodel.io.write.common import json_safe, require_crs

log = logging.getLogger(__name__)


@timed("write geojson")
def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    provenance: Mapping[str, Any] | None = None,
    qml: str | None = None,
) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84, 6 decimals, ``bbox``, no ``crs``).

    GDAL reprojects, rounds and fixes ring order (exterior counter-clockwise); the result is
    re-serialised with one feature per line and provenance as the top-level foreign member
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

    Returns
    -------
    Path
        The GeoJSON path.

    Raises
    ------
    OutputError
        If ``gdf`` has no CRS, geometries were lost in conversion, or the file cannot be written.
    """
    where = str(path)
    require_crs(gdf, where)
    target = Path(path)
    n_geoms = int((~(gdf.geometry.isna() | gdf.geometry.is_empty)).sum())
    prov = json_safe(provenance) if provenance is not None else None

    def writer(tmp: Path) -> None:
        # layer= fixes the "name" member (else GDAL uses the random temp-file name).
        gdf.to_file(
            tmp,
            driver="GeoJSON",
            engine="pyogrio",
            layer=target.stem,
            RFC7946="YES",
            COORDINATE_PRECISION=6,
            WRITE_BBOX="YES",
        )
        doc = json.loads(tmp.read_text(encoding="utf-8"))
        feats = doc.get("features", [])
        n_out = sum(1 for f in feats if f.get("geometry"))
        if n_out != n_geoms:
            raise OutputError(
                f"{n_geoms - n_out} geometries were lost converting to GeoJSON",
                where=where,
                fix="check the layer's CRS and geometry validity",
            )
        tmp.write_text(_geojson_text(doc, prov), encoding="utf-8", newline="\n")

    atomic_write_with(target, writer)
    if qml is not None:
        atomic_write_text(target.with_suffix(".qml"), qml)
    return target


def _geojson_text(doc: dict[str, Any], prov: Any) -> str:
    """Serialise a FeatureCollection deterministically, one feature per line (diff-friendly)."""

    def dump(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)

    head = {k: v for k, v in doc.items() if k != "features"}
    if prov is not None:
        head["riskmodel"] = prov
    lines = [f"{dump(k)}: {dump(v)}," for k, v in head.items()]
    feats = ",\n".join(dump(f) for f in doc.get("features", []))
    body = f'"features": [\n{feats}\n]' if feats else '"features": []'
    return "{\n" + "\n".join(lines) + "\n" + body + "\n}\n"
