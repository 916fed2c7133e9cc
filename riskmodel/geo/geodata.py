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
import shapely

from riskmodel._timing import timed
from riskmodel.errors import InputError
from riskmodel.io.read.border import BorderIndex
from riskmodel.io.read.coords import remember_pipelines, reproject
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

        s = settings if settings is not None else Settings()
        border_path = Path(border or s.border or layer_path("border"))
        self.border_path = str(border_path)
        bundled = not (border or s.border)
        length = float(segment_length_m or s.segment_length_m)
        self.segment_length_m = length
        overrides = {"settlements": s.settlements, "crossings": s.crossings,
                     "corridors": s.corridors, "rivers": "", "areas": s.areas}  # fmt: skip
        sources = {"border": border_path} | {k: layer_path(k, v) for k, v in overrides.items()}
        cache = Path(s.workspace.state_dir) / CACHE_DIR if s.workspace is not None else None
        remember_pipelines(cache)  # this workspace's PROJ pipelines (coords.remember_pipelines)
        layers = cached_layers(
            s.workspace,
            sources,
            (s.metric_crs, length, bundled),
            lambda: self._build(border_path, s.metric_crs, overrides, bundled, length),
        )
        for name in GEO_LAYERS:
            setattr(self, name, layers[name])
        self.crs = str(self.border.crs)

    def _build(
        self,
        border_path: Path,
        crs: str | None,
        overrides: dict[str, str],
        bundled: bool,
        length: float,
    ) -> dict[str, gpd.GeoDataFrame]:
        """Every layer read from its file and the segments cut (what the cache holds)."""
        from riskmodel.geo.segments import make_segments, read_border

        self.border = read_border(border_path, metric_crs=crs)
        self.crs = str(self.border.crs)
        out = {"border": self.border}
        for name, override in overrides.items():
            out[name] = self._layer(name, override, bundled)
        areas = out["areas"] if len(out["areas"]) else None
        rivers = out["rivers"] if len(out["rivers"]) else None
        out["segments"] = make_segments(self.border, length, areas=areas, rivers=rivers)
        return out

    @property
    def border_index(self) -> BorderIndex:
        """Exact point-to-border index over the segments (pieces know their segment, see
        :func:`riskmodel.features.panel.assign_segments`); built once, shared by the reading
        of the events and their binning, so each point is measured once."""
        if getattr(self, "_border_index", None) is None:  # also for frames built by hand
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


# ----------------------------------------------------------------------------- layer cache

CACHE_DIR = "cache"  # under the workspace's state folder (.riskmodel/)
GEO_LAYERS = ("border", "settlements", "crossings", "corridors", "rivers", "areas", "segments")
# The code that turns the files into layers: a change to it is a new cache key.
_CODE = ("geo/geodata.py", "geo/segments.py", "io/read/layers.py", "io/read/coords.py")


def _source_files(path: Path) -> list[Path]:
    """The files a layer is read from (a Shapefile's .shx/.dbf/.prj/... with its .shp)."""
    if path.suffix.lower() == ".shp":
        return sorted(p for p in path.parent.glob(path.stem + ".*") if p.is_file())
    return [path]


def _layers_key(sources: dict[str, Path], params: tuple) -> str:
    """Content hash of everything the layers depend on: the bytes of every source file (a
    missing optional layer counts as missing), the parameters (metric CRS, segment length,
    bundled border or not), the code that reads and cuts them, and the geometry libraries'
    versions (a PROJ update may move a reprojected coordinate)."""
    import pyproj

    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in _CODE:
        h.update((package / rel).read_bytes())
    h.update(repr(params).encode())
    versions = (gpd.__version__, shapely.__version__, pyproj.__version__, pyproj.proj_version_str)
    h.update(repr(versions).encode())
    for name, path in sources.items():
        h.update(f"\0{name}\0".encode())
        files = _source_files(path) if path.is_file() else []
        for f in files:
            h.update(f.suffix.lower().encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
        if not files:
            h.update(b"missing")
    return h.hexdigest()[:32]


def cached_layers(
    workspace: object | None,
    sources: dict[str, Path],
    params: tuple,
    make: Callable[[], dict[str, gpd.GeoDataFrame]],
) -> dict[str, gpd.GeoDataFrame]:
    """The geography's layers (:data:`GEO_LAYERS`) from the workspace cache
    (``.riskmodel/cache/layers-<hash>/<layer>.feather``), else ``make()`` and store them there.

    Reading six vector files through GDAL, reprojecting them, merging the border and cutting
    it into segments costs ~0.25 s on every command; the cached Arrow files read in ~0.05 s
    and hold the same values (same dtypes, CRS and geometry bytes). The key is the content of
    the source files, so an edited layer is a new entry, never a stale one. Without a
    workspace, or when the cache cannot be read or written, the layers are made.
    """
    if workspace is None:
        return make()
    try:
        key = _layers_key(sources, params)
    except OSError:  # a file gone missing: reading it says so properly
        return make()
    folder = Path(workspace.state_dir) / CACHE_DIR / f"layers-{key}"  # type: ignore[attr-defined]
    if folder.is_dir():
        try:
            # the CRS as it was given (e.g. "EPSG:3794"), not the PROJJSON Arrow stores
            crs = (folder / "crs.txt").read_text("utf-8")
            return {
                name: gpd.read_feather(folder / f"{name}.feather").set_crs(crs, allow_override=True)
                for name in GEO_LAYERS
            }
        except Exception as exc:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
            log.debug("layer cache %s unreadable (%s): rebuilt", folder, exc)
    layers = make()
    try:
        _store_layers(folder, layers)
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is skipped
        log.debug("layer cache %s not written: %s", folder, exc)
    return layers


def _store_layers(folder: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Write the layers into a temporary folder and move it into place in one rename (a
    reader sees a whole entry or none); a broken entry is replaced."""
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".layers-", dir=folder.parent))
    try:
        for name in GEO_LAYERS:
            layers[name].to_feather(tmp / f"{name}.feather")
        (tmp / "crs.txt").write_text(layers["border"].crs.to_string(), "utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        for old in folder.parent.glob("segments-*.parquet"):  # the earlier segment cache
            old.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
