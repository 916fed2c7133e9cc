"""Bundled reference geodata (border, settlements, crossing points, corridors, rivers, areas).

Every layer can be replaced by a user's file in any OGR format and CRS (settings keys
``border``, ``settlements``, ``crossings``, ``corridors``, ``areas``). Layers are returned in
the metric CRS (EPSG:3794 by default).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import geopandas as gpd

from riskmodel._timing import timed
from riskmodel.errors import InputError
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
    return gdf.to_crs(crs)


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
        self.segments = make_segments(
            self.border,
            length,
            areas=self.areas if len(self.areas) else None,
            rivers=self.rivers if len(self.rivers) else None,
        )

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
