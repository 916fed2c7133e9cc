"""Checks and conversions shared by the writers (CRS, required columns, provenance)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riskmodel.errors import OutputError
from riskmodel.files import canonical_json
from riskmodel.io.read.coords import reproject

log = logging.getLogger(__name__)

NATIONAL_CRS: Final[str] = "EPSG:3794"
WGS84: Final[str] = "EPSG:4326"


def require_crs(gdf: gpd.GeoDataFrame, where: str) -> None:
    """Refuse anything but a GeoDataFrame with a CRS (:class:`OutputError`)."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise OutputError(
            f"expected a GeoDataFrame, got {type(gdf).__name__}",
            where=where,
            fix="pass a geopandas.GeoDataFrame with a CRS (EPSG:3794)",
        )
    if gdf.crs is None:
        # GDAL's RFC7946 mode writes *empty* geometries for a frame without CRS (measured).
        raise OutputError(
            "layer has no CRS; refusing to write (coordinates would be wrong or empty)",
            where=where,
            fix="set the CRS first, e.g. gdf.set_crs('EPSG:3794')",
        )


def require_columns(df: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    """Refuse a frame lacking any of ``cols`` (:class:`OutputError`)."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise OutputError(
            f"missing column(s) {', '.join(missing)}",
            where=where,
            fix="pass the scored/planned frame produced by riskmodel",
        )


def to_national(gdf: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    """The layer in EPSG:3794 (reprojected only when needed); refuses a missing CRS."""
    require_crs(gdf, where)
    return gdf if gdf.crs.equals(NATIONAL_CRS) else reproject(gdf, NATIONAL_CRS)


def json_safe(obj: Any) -> Any:
    """Provenance as plain JSON values with sorted keys (datetimes/paths -> str)."""
    return json.loads(canonical_json(obj))


def stamp_utc(provenance: Mapping[str, Any] | None) -> str:
    """UTC timestamp for metadata fields: provenance ``created`` (reproducible) or now."""
    created = (provenance or {}).get("created")
    ts = None
    if created is not None:
        with contextlib.suppress(ValueError, TypeError):
            ts = pd.Timestamp(created)
    if ts is None or pd.isna(ts):
        ts = pd.Timestamp(datetime.now(UTC))
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def first_value(df: pd.DataFrame, col: str) -> str | None:
    """First value of ``col`` as a string, ``None`` when absent or null."""
    if col in df.columns and len(df) and pd.notna(df[col].iloc[0]):
        return str(df[col].iloc[0])
    return None


def hhmm(iso: str | None) -> str:
    """``HH:MM`` of an ISO 8601 timestamp string (empty when there is none)."""
    return iso[11:16] if iso and len(iso) >= 16 else ""


def midpoints(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Midpoint along each line (a point on the feature for other geometry types)."""
    geoms = gdf.geometry.to_numpy()
    is_line = np.isin(shapely.get_type_id(geoms), (1, 5))
    mid = shapely.line_interpolate_point(np.where(is_line, geoms, None), 0.5, normalized=True)
    return np.where(is_line, mid, shapely.point_on_surface(geoms))


def with_slot(checks: pd.DataFrame) -> pd.DataFrame:
    """Plan checks with a ``slot`` text column ``"HH:MM–HH:MM"`` in local time (the label of
    the plan style; GeoPackage stores the slot times in UTC)."""
    if "slot" in checks.columns or not {"slot_start", "slot_end"} <= set(checks.columns):
        return checks
    out = checks.copy()
    out["slot"] = [
        f"{hhmm(str(a))}\u2013{hhmm(str(b))}"
        for a, b in zip(out["slot_start"], out["slot_end"], strict=True)
    ]
    return out
