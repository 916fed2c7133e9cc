"""Point coordinates from lon/lat, x/y or point geometry: CRS checks, swaps, reprojection."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.flags import RowFlags
from riskmodel.io.read.tables import RawTable
from riskmodel.io.read.values import norm_name, to_float

log = logging.getLogger(__name__)

# D96/TM (EPSG:3794) and D48/GK (EPSG:3912) value ranges over Slovenia.
EASTING = (370_000.0, 630_000.0)
NORTHING = (30_000.0, 200_000.0)
SI_GRIDS = {"EPSG:3794", "EPSG:3912"}


def _between(v: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (v >= lo_hi[0]) & (v <= lo_hi[1])


def _near_si(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return _between(lat, (45.0, 47.0)) & _between(lon, (13.0, 17.0))


@lru_cache(maxsize=16)
def check_crs(crs: str) -> tuple[str, bool]:
    """Validate a CRS string; return ``(normalised, is_geographic)``."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        c = CRS.from_user_input(crs)
    except CRSError:
        raise ConfigError(
            f"unknown CRS {crs!r}", where="--crs", fix="use an EPSG code such as EPSG:3794"
        ) from None
    auth = c.to_authority()
    name = f"{auth[0]}:{auth[1]}" if auth else c.to_wkt()
    return name, bool(c.is_geographic)


# PROJ pipelines chosen for CRS pairs, remembered in a workspace (see remember_pipelines).
_pipelines: dict[str, str] = {}
_pipeline_file: Path | None = None


def remember_pipelines(folder: str | os.PathLike[str] | None) -> None:
    """Remember the PROJ pipeline of every CRS pair in ``folder`` (a workspace's cache).

    Choosing a pipeline for a pair looks through PROJ's database (~70 ms for EPSG:4326 ->
    EPSG:3794, the first thing every command reprojects); building a transformer from the
    chosen pipeline's definition takes ~1 ms and gives the same numbers. The file is per
    PROJ version (``proj-<version>.json``); pairs whose operation PROJ picks point by point
    (no single pipeline) are not remembered. ``None`` forgets the folder.
    """
    global _pipeline_file
    _pipelines.clear()
    _pipeline_file = None
    if folder is None:
        return
    import pyproj

    path = Path(folder) / f"proj-{pyproj.proj_version_str}.json"
    try:
        known = json.loads(path.read_text("utf-8"))
        _pipelines.update({k: v for k, v in known.items() if isinstance(v, str)})
    except (OSError, ValueError, AttributeError):  # none yet, or unreadable: rebuilt
        pass
    _pipeline_file = path


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Any:
    from pyproj import Transformer
    from pyproj.exceptions import ProjError

    pair = f"{src} -> {dst}"
    if pair in _pipelines:
        try:
            return Transformer.from_pipeline(_pipelines[pair])
        except ProjError:  # e.g. a grid file gone: choose again
            pass
    tr = Transformer.from_crs(src, dst, always_xy=True)
    definition = tr.definition or ""
    if _pipeline_file is not None and "unavailable" not in definition and definition:
        _pipelines[pair] = definition
        try:
            from riskmodel.files import atomic_write_text

            _pipeline_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(_pipeline_file, json.dumps(_pipelines, indent=1, sort_keys=True))
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is skipped
            log.debug("PROJ pipelines not remembered in %s: %s", _pipeline_file, exc)
    return tr


def reproject(data: Any, crs: Any) -> Any:
    """``data.to_crs(crs)`` (GeoSeries or GeoDataFrame) through the transformer cache the
    point readers share.

    Building a transformer costs 20-80 ms (PROJ database look-ups); geopandas caches its own
    by CRS object and this module by string, so a command paid twice for the same pair. Same
    pyproj call on the same coordinates: the same numbers.
    """
    import geopandas as gpd
    import shapely
    from pyproj import CRS

    if data.crs is None:  # geopandas' own error
        return data.to_crs(crs)
    src = data.crs.to_string()
    dst = crs if isinstance(crs, str) else CRS.from_user_input(crs).to_string()
    if src == dst:
        return data
    tr = _transformer(src, dst)

    def xy(c: np.ndarray) -> np.ndarray:
        return np.column_stack(tr.transform(c[:, 0], c[:, 1]))

    geoms = data.geometry if isinstance(data, gpd.GeoDataFrame) else data
    moved = gpd.GeoSeries(shapely.transform(geoms.to_numpy(), xy), index=geoms.index, crs=dst)
    if isinstance(data, gpd.GeoDataFrame):
        return data.set_geometry(moved.rename(data.geometry.name), crs=dst)
    return moved.rename(data.name)


def transform(x: np.ndarray, y: np.ndarray, src: str, dst: str) -> tuple[np.ndarray, np.ndarray]:
    """Reproject finite points (others stay NaN); non-finite results become NaN."""
    ox = np.full(len(x), np.nan)
    oy = np.full(len(y), np.nan)
    m = np.isfinite(x) & np.isfinite(y)
    if m.any():
        if src == dst:
            ox[m], oy[m] = x[m], y[m]
        else:
            with np.errstate(all="ignore"):
                tx, ty = _transformer(src, dst).transform(x[m], y[m], errcheck=False)
            ox[m], oy[m] = tx, ty
    bad = ~(np.isfinite(ox) & np.isfinite(oy))
    ox[bad] = np.nan
    oy[bad] = np.nan
    return ox, oy


@dataclass
class Coords:
    """Resolved coordinates per row (NaN where unusable)."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    source: str
    keys: tuple[str, ...] = ()  # canonical columns the points came from (none: geometry)


def coordinates(
    table: RawTable,
    mapping: dict[str, str],
    *,
    flags: RowFlags,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
) -> Coords | None:
    """Resolve point coordinates from the geometry, lon/lat or x/y columns.

    Returns ``None`` when the file has no coordinate source at all (caller decides).
    """
    data = table.data
    geom = table.geometry
    attr = ("lon" in mapping and "lat" in mapping) or ("x" in mapping and "y" in mapping)
    bad_geom = table.bad_geometry is not None and bool(table.bad_geometry.any())
    # Vector files use their geometry, unless it is entirely absent and attributes hold points.
    if geom is not None and (not attr or bad_geom or not pd.isna(geom).all()):
        return _from_geometry(
            table,
            flags=flags,
            crs=crs,
            swap_latlon=swap_latlon,
            metric_crs=metric_crs,
            where=where,
            notes=notes,
        )
    if "lon" in mapping and "lat" in mapping:
        lon, mlon, blon = to_float(data[mapping["lon"]])
        lat, mlat, blat = to_float(data[mapping["lat"]])
        flags.mark(mlon | mlat, "missing_coordinates")
        flags.mark(blon | blat, "bad_coordinates")
        cols = f"{mapping['lon']}/{mapping['lat']}"
        return _with_keys(
            ("lon", "lat"),
            _lonlat(
                lon,
                lat,
                flags=flags,
                crs=crs,
                swap_latlon=swap_latlon,
                metric_crs=metric_crs,
                where=where,
                notes=notes,
                cols=cols,
            ),
        )
    if "x" in mapping and "y" in mapping:
        x, mx, bx = to_float(data[mapping["x"]])
        y, my, by = to_float(data[mapping["y"]])
        flags.mark(mx | my, "missing_coordinates")
        flags.mark(bx | by, "bad_coordinates")
        cols = (mapping["x"], mapping["y"])
        if crs is None:
            crs = _crs_from_names(cols, x, where, notes)
        return _with_keys(
            ("x", "y"),
            _xy(
                x,
                y,
                crs,
                flags=flags,
                swap_latlon=swap_latlon,
                metric_crs=metric_crs,
                where=where,
                notes=notes,
                cols=cols,
            ),
        )
    return None


def _crs_from_names(cols: tuple[str, str], x: np.ndarray, where: str, notes: list[str]) -> str:
    """The CRS of x/y columns named ``*_d96`` / ``*_d48``; otherwise refuse the file."""
    nx, ny = norm_name(cols[0]), norm_name(cols[1])
    if "d96" in nx and "d96" in ny:
        crs = "EPSG:3794"
        notes.append(f"columns {cols[0]}/{cols[1]} read as D96/TM (EPSG:3794) from their names")
    elif "d48" in nx and "d48" in ny:
        crs = "EPSG:3912"
        notes.append(f"columns {cols[0]}/{cols[1]} read as D48/GK (EPSG:3912) from their names")
    else:
        hint = ""
        if (_between(x, EASTING) | _between(x, NORTHING)).mean() > 0.5:
            hint = " (values look like Slovenian grid metres)"
        raise InputError(
            f"x/y columns {cols[0]}/{cols[1]} have no coordinate reference system{hint}",
            where=where,
            fix="give --crs EPSG:3794 (D96/TM) or --crs EPSG:3912 (old D48/GK)",
        )
    return crs


def _with_keys(keys: tuple[str, ...], c: Coords) -> Coords:
    c.keys = keys
    return c


def _lonlat(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    flags: RowFlags,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
    cols: str,
) -> Coords:
    valid = np.isfinite(lon) & np.isfinite(lat)
    proj = valid & (
        (_between(lon, EASTING) & _between(lat, NORTHING))
        | (_between(lat, EASTING) & _between(lon, NORTHING))
    )
    if valid.any() and proj.sum() > 0.5 * valid.sum():
        if crs is None or check_crs(crs)[1]:
            i = int(np.flatnonzero(proj)[0])
            raise InputError(
                f"columns {cols} hold projected metres such as {lon[i]:.0f}/{lat[i]:.0f}, not "
                "degrees",
                where=where,
                fix="give --crs EPSG:3794 (D96/TM) or EPSG:3912 (D48/GK) to read them as x/y",
            )
        notes.append(f"columns {cols} hold metres; read as x/y in {check_crs(crs)[0]}")
        return _xy(
            lon,
            lat,
            crs,
            flags=flags,
            swap_latlon=swap_latlon,
            metric_crs=metric_crs,
            where=where,
            notes=notes,
            cols=tuple(cols.split("/", 1)),
        )
    flags.mark(proj, "projected_as_lonlat")
    with np.errstate(invalid="ignore"):
        oor = valid & ~proj & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    flags.mark(oor, "coords_out_of_range")
    swapped = valid & ~oor & ~proj & _near_si(lon, lat) & ~_near_si(lat, lon)
    k = int(swapped.sum())
    if k and swap_latlon:
        lon, lat = np.where(swapped, lat, lon), np.where(swapped, lon, lat)
        notes.append(f"swapped latitude/longitude in {k} row(s) (--swap-latlon)")
    elif k:
        flags.mark(swapped, "latlon_swapped")
        share = k / max(int(valid.sum()), 1)
        if share > 0.5:
            notes.append(
                f"{k} row(s) ({share:.0%}) have latitude and longitude swapped ({cols}); "
                "give --swap-latlon or map the columns the other way"
            )
    lon = np.where(flags.ok, lon, np.nan)
    lat = np.where(flags.ok, lat, np.nan)
    x, y = transform(lon, lat, "EPSG:4326", metric_crs)
    flags.mark(np.isfinite(lon) & ~np.isfinite(x), "coords_out_of_range")
    return Coords(x, y, lon, lat, "lon/lat")


def _xy(
    x: np.ndarray,
    y: np.ndarray,
    crs: str,
    *,
    flags: RowFlags,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
    cols: tuple[str, ...],
) -> Coords:
    name, geographic = check_crs(crs)
    if geographic:
        return _lonlat(
            x,
            y,
            flags=flags,
            crs=None,
            swap_latlon=swap_latlon,
            metric_crs=metric_crs,
            where=where,
            notes=notes,
            cols="/".join(cols),
        )
    valid = np.isfinite(x) & np.isfinite(y)
    if name in SI_GRIDS:
        normal = valid & _between(x, EASTING) & _between(y, NORTHING)
        swapped = valid & _between(x, NORTHING) & _between(y, EASTING)
        if swapped.sum() > normal.sum():
            # Slovenian exports label easting Y and northing X (Gauss-Krüger convention).
            x, y = y, x
            normal, swapped = swapped, normal
            notes.append(
                f"columns {'/'.join(cols)} hold northing/easting (Gauss-Krüger convention: "
                "X = northing, Y = easting); read them swapped"
            )
        flags.mark(swapped, "xy_swapped")
    x = np.where(flags.ok, x, np.nan)
    y = np.where(flags.ok, y, np.nan)
    lon, lat = transform(x, y, name, "EPSG:4326")
    mx, my = transform(x, y, name, metric_crs)
    flags.mark(np.isfinite(x) & ~(np.isfinite(lon) & np.isfinite(mx)), "coords_out_of_range")
    with np.errstate(invalid="ignore"):
        flags.mark((np.abs(lat) > 90) | (np.abs(lon) > 180), "coords_out_of_range")
    return Coords(mx, my, lon, lat, f"x/y {name}")


def _from_geometry(
    table: RawTable,
    *,
    flags: RowFlags,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
) -> Coords:
    import shapely

    geom = table.geometry
    flags.mark(table.bad_geometry, "invalid_geometry")
    missing = pd.isna(geom)
    flags.mark(missing, "empty_geometry")
    g = np.where(missing, None, geom)
    flags.mark(shapely.is_empty(g) & ~missing, "empty_geometry")
    tid = shapely.get_type_id(g)
    single_multi = (tid == 4) & (shapely.get_num_geometries(g) == 1)
    g = np.where(single_multi, shapely.get_geometry(g, 0), g)
    tid = np.where(single_multi, 0, tid)
    flags.mark(~missing & (tid != 0), "not_a_point")
    pts = np.where(flags.ok & (tid == 0), g, None)
    x = shapely.get_x(pts)
    y = shapely.get_y(pts)
    flags.mark(~pd.isna(pts) & ~(np.isfinite(x) & np.isfinite(y)), "invalid_geometry")
    fcrs = table.geometry_crs
    if fcrs is None:
        if crs is None:
            raise InputError(
                "the file has no coordinate reference system",
                where=where,
                fix="give --crs EPSG:4326 (or EPSG:3794 ...) or set the layer CRS in QGIS",
            )
        fcrs = crs
    elif crs is not None and check_crs(crs)[0] != check_crs(fcrs)[0]:
        notes.append(f"the file declares {check_crs(fcrs)[0]}; --crs {crs} ignored")
    return _xy(
        x,
        y,
        fcrs,
        flags=flags,
        swap_latlon=swap_latlon,
        metric_crs=metric_crs,
        where=where,
        notes=notes,
        cols=("geometry x", "geometry y"),
    )
