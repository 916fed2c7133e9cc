"""Bundled reference geodata (border, settlements, crossing points, corridors, rivers, areas).

Every layer can be replaced by a user's file in any OGR format and CRS (settings keys
``border``, ``settlements``, ``crossings``, ``corridors``, ``areas``). Layers are returned in
the metric CRS (EPSG:3794 by default).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from riskmodel._timing import timed
from riskmodel.errors import InputError
from riskmodel.io.read.border import BorderIndex
from riskmodel.io.read.coords import reproject
from riskmodel.io.read.layers import read_layer

log = logging.getLogger(__name__)

LAYERS = ("border", "settlements", "crossings", "corridors", "rivers", "areas")


def bundled_dir(kind: str = "geodata") -> Path:
    """Folder of bundled data (``geodata`` or ``features``), installed or source tree."""
    here = Path(__file__).resolve().parent.parent  # the package folder
    installed = here / "_bundled" / kind
    if installed.is_dir():
        return installed
    src = here.parent / kind
    if src.is_dir():
        return src
    raise InputError(
        f"bundled {kind} folder not found", fix="reinstall riskmodel"
    )  # pragma: no cover


def layer_path(name: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Path of a layer: the user's override if given, else the bundled GeoJSON."""
    if override:
        return Path(override)
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; one of {LAYERS}")
    return bundled_dir("geodata") / f"{name}.geojson"


@lru_cache(maxsize=32)
def _read_cached(path: str, mtime: float, crs: str) -> gpd.GeoDataFrame:
    gdf = read_layer(path, what=Path(path).stem)
    return reproject(gdf, crs)


def load_layer(
    name: str, override: str | os.PathLike[str] | None = None, crs: str = "EPSG:3794"
) -> gpd.GeoDataFrame:
    """Read a geodata layer into ``crs``.

    Parameters
    ----------
    name : str
        One of ``border``, ``settlements``, ``crossings``, ``corridors``, ``rivers``, ``areas``.
    override : path-like, optional
        User's file replacing the bundled layer.
    crs : str
        Target CRS (metric).
    """
    path = layer_path(name, override)
    if not path.is_file():
        raise InputError(f"{name} layer not found", where=str(path), fix="check the path")
    return _read_cached(str(path), path.stat().st_mtime, crs).copy()


class Geography:
    """All layers of one border, in one metric CRS, plus its segments.

    Parameters
    ----------
    settings : Settings, optional
        Paths of user layers (``border``, ``settlements``, ...), ``metric_crs`` and
        ``segment_length_m``; bundled layers by default.
    border : path-like, optional
        Overrides the border layer (e.g. ``--border``).
    segment_length_m : float, optional
        Overrides the segment length.

    Attributes
    ----------
    border, segments, settlements, crossings, corridors, rivers, areas : GeoDataFrame
    crs : str
    """

    @timed("geography")
    def __init__(self, settings=None, *, border=None, segment_length_m=None) -> None:  # noqa: ANN001
        from riskmodel.config.settings import Settings
        from riskmodel.geo.segments import make_segments, read_border

        s = settings if settings is not None else Settings()
        crs = s.metric_crs
        border_path = border or s.border or layer_path("border")
        self.border_path = str(border_path)
        self.border = read_border(border_path, metric_crs=crs)
        self.crs = str(self.border.crs)
        bundled = not (border or s.border)
        self.settlements = self._layer("settlements", s.settlements, bundled)
        self.crossings = self._layer("crossings", s.crossings, bundled)
        self.corridors = self._layer("corridors", s.corridors, bundled)
        self.rivers = self._layer("rivers", "", bundled)
        self.areas = self._layer("areas", s.areas, bundled)
        length = float(segment_length_m or s.segment_length_m)
        self.segment_length_m = length
        areas = self.areas if len(self.areas) else None
        rivers = self.rivers if len(self.rivers) else None
        self.segments = cached_segments(
            s.workspace,
            (self.border, areas, rivers, length),
            lambda: make_segments(self.border, length, areas=areas, rivers=rivers),
        )

    @property
    def border_index(self) -> BorderIndex:
        """Exact point-to-border index over the segments (pieces know their segment, see
        :func:`riskmodel.features.panel.assign_segments`); built once, shared by the reading
        of the events and their binning, so each point is measured once."""
        if getattr(self, "_border_index", None) is None:
            self._border_index = BorderIndex(self.segments, self.crs)
        return self._border_index

    def _layer(self, name: str, override: str, bundled_border: bool) -> gpd.GeoDataFrame:
        # Bundled auxiliary layers only make sense with the bundled border (or in its region).
        if override:
            return load_layer(name, override, self.crs)
        path = layer_path(name)
        if not path.is_file():
            return gpd.GeoDataFrame(geometry=[], crs=self.crs)
        gdf = load_layer(name, None, self.crs)
        if not bundled_border:
            # keep only features near the user's border
            near = gdf.distance(self.border.geometry.iloc[0]) <= 50_000
            gdf = gdf[near].reset_index(drop=True)
        return gdf


# ----------------------------------------------------------------------------- segment cache

CACHE_DIR = "cache"  # under the workspace's state folder (.riskmodel/)


def _segments_key(inputs: tuple) -> str:
    """Content hash of everything the segments depend on: the border, areas and rivers (their
    geometry, names, CRS), the length and the code that cuts them (``geo/segments.py``)."""
    from riskmodel.geo import segments as code

    h = hashlib.sha256(Path(code.__file__).read_bytes())
    for item in inputs:
        if isinstance(item, gpd.GeoDataFrame):
            h.update(str(item.crs).encode())
            h.update(b"".join(shapely.to_wkb(item.geometry.to_numpy(), hex=False)))
            for col in sorted(c for c in item.columns if c != item.geometry.name):
                h.update(
                    col.encode()
                    + pd.util.hash_pandas_object(item[col].astype(str)).to_numpy().tobytes()
                )
        h.update(repr(item if not isinstance(item, gpd.GeoDataFrame) else "gdf").encode())
    return h.hexdigest()[:32]


def cached_segments(
    workspace: object | None, inputs: tuple, make: Callable[[], gpd.GeoDataFrame]
) -> gpd.GeoDataFrame:
    """Segments from the workspace cache (``.riskmodel/cache/segments-<hash>.parquet``), else
    ``make()`` and store them there (atomically). Cutting the border and flagging rivers costs
    ~0.3 s on every command; the cached GeoParquet reads in ~0.02 s and holds the same values.
    Without a workspace, or when the cache cannot be read or written, the segments are made.
    """
    if workspace is None:
        return make()
    from riskmodel.files import atomic_write_with

    path = Path(workspace.state_dir) / CACHE_DIR / f"segments-{_segments_key(inputs)}.parquet"  # type: ignore[attr-defined]
    crs = inputs[0].crs
    if path.is_file():
        try:
            seg = gpd.read_parquet(path)
            return seg.set_crs(crs, allow_override=True)
        except Exception as exc:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
            log.debug("segment cache %s unreadable (%s): rebuilt", path, exc)
    seg = make()
    try:
        atomic_write_with(path, lambda tmp: seg.to_parquet(tmp, index=False))
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is skipped
        log.debug("segment cache %s not written: %s", path, exc)
    return seg
