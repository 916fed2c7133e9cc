"""Reference vector layers (border, settlements, crossings ...) read as GeoDataFrames.

User data rows go through :func:`riskmodel.io.read.tables.load_table` and are checked row by
row; a reference layer is read whole, as any OGR format GDAL opens, and only refused when it
cannot be read at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import geopandas as gpd

from riskmodel.errors import InputError

log = logging.getLogger(__name__)


def read_layer(
    path: str | os.PathLike[str], *, what: str = "layer", require_crs: bool = True
) -> gpd.GeoDataFrame:
    """Read a vector layer file in its own CRS.

    Parameters
    ----------
    path : path-like
        GeoJSON, GeoPackage, Shapefile or any other OGR-readable file.
    what : str
        Name of the layer for messages (``border``, ``settlements`` ...).
    require_crs : bool
        Refuse a layer without a coordinate reference system.

    Returns
    -------
    GeoDataFrame
        The layer as stored (no reprojection).

    Raises
    ------
    InputError
        The file is missing or unreadable, or has no CRS when ``require_crs``.
    """
    where = str(path)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file not found", where=where, fix="check the path")
    try:
        gdf = gpd.read_file(p)
    except Exception as exc:  # pyogrio/GDAL raise several types
        raise InputError(
            f"cannot read {what} file ({str(exc).splitlines()[0][:120]})",
            where=where,
            fix="give a vector file GDAL can read (GeoJSON, GeoPackage, Shapefile)",
        ) from None
    if require_crs and gdf.crs is None:
        raise InputError(
            f"{what} file has no CRS",
            where=where,
            fix="assign its CRS (e.g. EPSG:4326 or EPSG:3794) in QGIS or with ogr2ogr -a_srs",
        )
    return gdf
