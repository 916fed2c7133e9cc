"""GeoPackage 1.2 layers (one per shift) with embedded QGIS styles and provenance.

Dates and times get GeoPackage field types: ``date`` is a DATE, shift and slot times are
DATETIME (stored in UTC as the GeoPackage standard requires); QGIS shows them as Date/DateTime.
"""

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
#: Text columns written as GeoPackage DATE / DATETIME fields.
DATE_FIELDS: Final[tuple[str, ...]] = ("date",)
DATETIME_FIELDS: Final[tuple[str, ...]] = ("shift_start", "shift_end", "slot_start", "slot_end")


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
    styles: Mapping[str, str] | None = None,
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
        QML applied as default style of every layer not in ``styles``.
    created : str, optional
        Timestamp for ``update_time`` / ``last_change`` when ``provenance`` has no ``created``
        (callers pass a time taken from the data, e.g. the first shift's start, so the same
        inputs give the same bytes; without either the current time is used).
    styles : mapping of str to str, optional
        Layer name to its own default QML (e.g. the plan and segment layers of the daily
        GeoPackage).

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
        frames[name] = _typed(to_national(gdf, f"{where} (layer {name})"), f"{where} ({name})")
    qmls = {n: (styles or {}).get(n, style_qml) for n in frames}
    stamp = stamp_utc({"created": created, **(provenance or {})} if created else provenance)

    def writer(tmp: Path) -> None:
        # OGR_CURRENT_DATE fixes gpkg_contents.last_change: same input, same bytes. SQLite's
        # per-commit syncs of the temporary file protect nothing (atomic_write_with syncs it
        # once before it is renamed in) and cost ~0.05 s over the five writes.
        with _gdal_config({"OGR_CURRENT_DATE": stamp, "OGR_SQLITE_SYNCHRONOUS": "OFF"}):
            for i, (name, gdf) in enumerate(frames.items()):
                pyogrio.write_dataframe(
                    gdf,
                    tmp,
                    layer=name,
                    driver="GPKG",
                    dataset_options={"VERSION": "1.2"} if i == 0 else None,
                    layer_options={"SPATIAL_INDEX": "YES"},
                    use_arrow=True,  # the Arrow path maps date32 to DATE (the other: TEXT)
                )
            geom_cols = _gpkg_geometry_columns(tmp)
            styled = {n: q for n, q in qmls.items() if q is not None}
            if styled:
                pyogrio.write_dataframe(
                    _layer_styles(styled, geom_cols, stamp),
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


def _typed(gdf: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    """``date`` as date32 (-> DATE) and ISO time columns as UTC datetimes (-> DATETIME)."""
    out = gdf.copy()
    for col in (c for c in DATE_FIELDS if c in out.columns):
        if isinstance(out[col].dtype, pd.ArrowDtype):
            continue
        try:
            day = pd.to_datetime(out[col].astype("string"), format="ISO8601").dt.date
        except (ValueError, TypeError):
            raise OutputError(
                f"column {col} holds values that are not dates", where=where,
                fix="write dates as YYYY-MM-DD",
            ) from None  # fmt: skip
        out[col] = pd.Series(day, index=out.index).astype("date32[pyarrow]")
    for col in (c for c in DATETIME_FIELDS if c in out.columns):
        try:
            out[col] = pd.to_datetime(
                out[col].astype("string"), utc=True, format="ISO8601"
            ).dt.as_unit("ms")
        except (ValueError, TypeError):
            raise OutputError(
                f"column {col} holds values that are not ISO 8601 times", where=where,
                fix="write times like 2024-08-01T06:00:00+02:00",
            ) from None  # fmt: skip
    return out


def _layer_styles(
    styled: Mapping[str, str], geom_cols: Mapping[str, str], stamp: str
) -> pd.DataFrame:
    names = list(styled)
    n = len(names)
    # QGIS's schema; it selects on f_table_schema='' (not NULL) and picks the newest update_time.
    return pd.DataFrame(
        {
            "f_table_catalog": [""] * n,
            "f_table_schema": [""] * n,
            "f_table_name": names,
            "f_geometry_column": [geom_cols[name] for name in names],
            "styleName": names,
            "styleQML": [styled[name] for name in names],
            "styleSLD": [""] * n,
            "useAsDefault": np.ones(n, dtype=bool),
            "description": ["riskmodel default style"] * n,
            "owner": [""] * n,
            "ui": [""] * n,
            "update_time": pd.to_datetime([stamp] * n, utc=True).as_unit("ms"),
        }
    )


#: Segment attributes kept in the daily GeoPackage's ``segments`` layer.
SEGMENT_FIELDS: Final[tuple[str, ...]] = (
    "segment_id", "area", "neighbour", "chainage_from_km", "chainage_to_km", "length_m",
    "river", "river_name",
)  # fmt: skip


def daily_layers(
    segments: gpd.GeoDataFrame, plans: Mapping[str, gpd.GeoDataFrame]
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, str]]:
    """The day's ``segments`` layer and one ``plan_<shift>`` layer per shift, with their styles.

    Parameters
    ----------
    segments : GeoDataFrame
        The border segments (``segment_id`` and the attributes of :data:`SEGMENT_FIELDS`).
    plans : mapping of str to GeoDataFrame
        Shift name to plan checks (``unit``, ``slot_start``, ``slot_end``...).

    Returns
    -------
    (dict, dict)
        Layer name to layer, and layer name to its default QML, for :func:`write_gpkg`.
    """
    from riskmodel.io.write.common import with_slot
    from riskmodel.io.write.qml import qml_plan_style, qml_segments_style

    seg = segments[[c for c in SEGMENT_FIELDS if c in segments.columns] + [segments.geometry.name]]
    layers: dict[str, gpd.GeoDataFrame] = {"segments": seg}
    styles = {"segments": qml_segments_style()}
    units = sorted({str(u) for p in plans.values() for u in p.get("unit", [])})
    for shift, plan in plans.items():
        layers[f"plan_{shift}"] = with_slot(plan)
        styles[f"plan_{shift}"] = qml_plan_style(units)
    return layers, styles
