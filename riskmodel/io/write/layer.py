"""Write one layer in the format its file name asks for (``.geojson``, ``.gpkg``, ``.csv``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd

from riskmodel.errors import ConfigError
from riskmodel.files import atomic_write_with
from riskmodel.io.write.geojson import write_geojson

log = logging.getLogger(__name__)


def write_layer(gdf: gpd.GeoDataFrame, out: str | os.PathLike[str]) -> Path:
    """Write a layer by extension, atomically.

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer, with a CRS.
    out : path-like
        ``.geojson`` / ``.json`` (RFC 7946, WGS84), ``.gpkg`` (the layer's own CRS, one layer
        named after the file) or ``.csv`` (attributes plus a ``wkt`` geometry column).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ConfigError
        For any other extension.
    """
    out = Path(out)
    ext = out.suffix.lower()
    if ext in (".geojson", ".json"):
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
