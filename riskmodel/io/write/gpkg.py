"""GeoPackage 1.2 layers (one per shift) with embedded QGIS styles and provenance."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from riskmodel._timing import timed
from riskmodel.errors import OutputError
from riskmodel.files import atomic_write_with
from riskmodel.io.write.common import json_safe, stamp_utc, to_national

log = logging.getLogger(__name__)

_RESERVED_GPKG_NAMES: Final[frozenset[str]] = frozenset({"layer_styles", "riskmodel_provenance"})


@contextlib.contextmanager
def _gdal_config(options: Mapping[str, str]) -> Iterator[None]:
    """Set GDAL config options for the duration of a block, restoring previous values."""
    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(dict(options))
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)


@timed("write gpkg")
def write_gpkg(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: str | os.PathLike[str],
    *,
    provenance: Mapping[str, Any] | None = None,
    style_qml: str | None = None,
    created: str | None = None,
) -> Path:
    """Write layers (one per shift) to a GeoPackage 1.2 in EPSG:3794 with embedded QGIS style.

    The style goes into QGIS's ``layer_styles`` table (``useAsDefault=1``, with the real
    geometry column name), so QGIS >= 3.22 opens each layer styled; provenance goes into an
    attribute table ``riskmodel_provenance`` (``key``, ``value`` as JSON).

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Layer name (the shift) to layer; reprojected to EPSG:3794 when needed.
    path : path-like
        Target ``.gpkg``; replaced atomically.
    provenance : dict, optional
        Stored in ``riskmodel_provenance``; its ``created`` stamps ``update_time`` and
        ``last_change`` (else ``created``, else the current time).
    style_qml : str, optional
        QML applied as default style of every layer.
    created : str, optional
        Timestamp for ``update_time`` / ``last_change`` when ``provenance`` has no ``created``
        (callers pass a time taken from the data, e.g. the first shift's start, so the same
        inputs give the same bytes; without either the current time is used).

    Returns
    -------
    Path
        The GeoPackage path.

    Raises
    ------
    OutputError
        On missing CRS, bad layer names or write failures.
    """
    where = str(path)
    if not layers:
        raise OutputError("no layers to write", where=where, fix="pass at least one shift")
    frames: dict[str, gpd.GeoDataFrame] = {}
    for name, gdf in layers.items():
        if not name or name.lower() in _RESERVED_GPKG_NAMES or name.lower().startswith("gpkg_"):
            raise OutputError(
                f"invalid layer name {name!r}", where=where, fix="name layers after shifts"
            )
        frames[name] = to_national(gdf, f"{where} (layer {name})")
    stamp = stamp_utc({"created": created, **(provenance or {})} if created else provenance)

    def writer(tmp: Path) -> None:
        # OGR_CURRENT_DATE fixes gpkg_contents.last_change: same input, same bytes.
        with _gdal_config({"OGR_CURRENT_DATE": stamp}):
            for i, (name, gdf) in enumerate(frames.items()):
                pyogrio.write_dataframe(
                    gdf,
                    tmp,
                    layer=name,
                    driver="GPKG",
                    dataset_options={"VERSION": "1.2"} if i == 0 else None,
                    layer_options={"SPATIAL_INDEX": "YES"},
                )
            geom_cols = _gpkg_geometry_columns(tmp)
            if style_qml is not None:
                pyogrio.write_dataframe(
                    _layer_styles(frames, geom_cols, style_qml, stamp),
                    tmp,
                    layer="layer_styles",
                    driver="GPKG",
                    layer_options={"FID": "id"},
                )
            if provenance is not None:
                prov = json_safe(provenance)
                table = pd.DataFrame(
                    {
                        "key": list(prov),
                        "value": [
                            json.dumps(v, ensure_ascii=False, sort_keys=True) for v in prov.values()
                        ],
                    }
                )
                pyogrio.write_dataframe(table, tmp, layer="riskmodel_provenance", driver="GPKG")

    return atomic_write_with(path, writer)


def _gpkg_geometry_columns(path: Path) -> dict[str, str]:
    """Real geometry column per table (``geom`` with GDAL), read back rather than assumed."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        rows = con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
    return {t: c for t, c in rows}


def _layer_styles(
    frames: Mapping[str, gpd.GeoDataFrame], geom_cols: Mapping[str, str], qml: str, stamp: str
) -> pd.DataFrame:
    names = list(frames)
    n = len(names)
    # QGIS's schema; it selects on f_table_schema='' (not NULL) and picks the newest update_time.
    return pd.DataFrame(
        {
            "f_table_catalog": [""] * n,
            "f_table_schema": [""] * n,
            "f_table_name": names,
            "f_geometry_column": [geom_cols[name] for name in names],
            "styleName": names,
            "styleQML": [qml] * n,
            "styleSLD": [""] * n,
            "useAsDefault": np.ones(n, dtype=bool),
            "description": ["riskmodel default style"] * n,
            "owner": [""] * n,
            "ui": [""] * n,
            "update_time": pd.to_datetime([stamp] * n, utc=True).as_unit("ms"),
        }
    )
