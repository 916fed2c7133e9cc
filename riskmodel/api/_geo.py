"""Geography verbs: segment a border, write a layer."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError
from riskmodel.geo.geodata import Geography
from riskmodel.geo.segments import segment_summary
from riskmodel.io.atomic import atomic_write_with

log = logging.getLogger(__name__)


def write_layer(gdf: gpd.GeoDataFrame, out: str | os.PathLike[str]) -> Path:
    """Write a layer by extension: ``.geojson`` (RFC 7946), ``.gpkg`` (its own CRS), ``.csv``
    (attributes plus WKT geometry), atomically."""
    out = Path(out)
    ext = out.suffix.lower()
    if ext in (".geojson", ".json"):
        from riskmodel.io.write.maps import write_geojson

        return write_geojson(gdf, out)
    if ext == ".gpkg":
        return atomic_write_with(out, lambda p: gdf.to_file(p, driver="GPKG", layer=out.stem))
    if ext == ".csv":
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["wkt"] = gdf.geometry.to_wkt(rounding_precision=3)
        return atomic_write_with(out, lambda p: df.to_csv(p, index=False, lineterminator="\n"))
    raise ConfigError(
        f"unknown output format {ext!r}", where=str(out), fix="use .geojson, .gpkg or .csv"
    )


def build_segments(
    settings: Settings,
    *,
    border: str | None = None,
    out: str | None = None,
    max_gap_m: float = 200.0,
) -> dict[str, Any]:
    """Segment a border (bundled or the user's) and optionally write the segments.

    Returns
    -------
    dict
        Count, lengths and CRS (see :func:`riskmodel.geo.segments.segment_summary`).
    """
    from riskmodel.geo.segments import make_segments, read_border

    if border is None:
        geo = Geography(settings)
        seg, b = geo.segments, geo.border
    else:
        b = read_border(border, metric_crs=None, max_gap_m=max_gap_m)
        seg = make_segments(b, float(settings.segment_length_m))
    info = segment_summary(seg, b)
    info["mean_length_m"] = float(seg["length_m"].mean())
    info["crs"] = str(seg.crs)
    if out:
        write_layer(seg, out)
    return info
