"""Input verbs: read and validate the user's events, effort and layer files.

Every command that reads events or effort passes one ``read_kwargs`` dict (the keyword
arguments of :func:`riskmodel.io.read.events.read_events`) through these functions, so the
same reader options mean the same everywhere.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd

from riskmodel._timing import timed
from riskmodel.config.settings import Settings
from riskmodel.errors import InputError
from riskmodel.geo import geodata
from riskmodel.io.read.effort import read_effort
from riskmodel.io.read.events import read_events
from riskmodel.io.read.result import ReadResult
from riskmodel.model.pipeline import Dataset, read_dataset

log = logging.getLogger(__name__)


def _resolve(
    settings: Settings, read_kwargs: dict[str, Any] | None
) -> tuple[Settings, dict[str, Any]]:
    """Settings with ``max_distance_m`` applied, and reader keywords with ``[columns]`` and the
    reader settings (``assume_tz``, ``dst``, ``encoding``, ``delimiter``, ``input_crs``) of the
    configuration under the flags."""
    from riskmodel.config.settings import READER_SETTINGS

    kw = dict(read_kwargs or {})
    settings = settings.with_flags(max_distance_m=kw.pop("max_distance_m", None))
    kw["columns"] = {**settings.columns, **kw.get("columns", {})}
    for name, key in READER_SETTINGS.items():  # the station's defaults, under the flags
        if getattr(settings, name) and kw.get(key) is None:
            kw[key] = getattr(settings, name)
    return settings, kw


@timed("read inputs")
def read_inputs(
    settings: Settings,
    events: str | os.PathLike[str],
    effort: str | os.PathLike[str] | None = None,
    *,
    border: str | None = None,
    end: str | None = None,
    read_kwargs: dict[str, Any] | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Read and validate events (and effort) into a dataset on the border's segments.

    Parameters
    ----------
    settings : Settings
    events, effort : path-like
        The user's files (effort optional).
    border : str, optional
        Border line file (default: setting ``border``, else bundled).
    end : str, optional
        Last local date the dataset's shift windows must reach.
    read_kwargs : dict, optional
        Reader keywords (``columns``, ``assume_tz``, ``crs``, ``dst``, ``encoding``,
        ``delimiter``, ``swap_latlon``, ``strict``) and ``max_distance_m``.
    quarantine_dir : path-like, optional
        Where ``rejected_<input>.csv`` go.

    Returns
    -------
    Dataset
    """
    settings, kw = _resolve(settings, read_kwargs)
    return read_dataset(
        settings,
        events,
        effort,
        border=border,
        end=end,
        read_kwargs=kw,
        quarantine_dir=quarantine_dir,
    )


def read_border(settings: Settings, path: str | None = None) -> gpd.GeoDataFrame | None:
    """The border line in the metric CRS: ``path``, else setting ``border``, else the bundled
    one (``None`` with a warning when the bundled layer is absent)."""
    path = path or settings.border or None
    if path:
        return geodata.load_layer("border", override=path, crs=settings.metric_crs)
    try:
        return geodata.load_layer("border", crs=settings.metric_crs)
    except InputError as exc:
        log.warning("bundled border not available (%s); distance checks skipped", exc.what)
        return None


def validate_inputs(
    settings: Settings,
    events: str | os.PathLike[str],
    effort: str | os.PathLike[str] | None = None,
    *,
    border: str | None = None,
    read_kwargs: dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> list[tuple[ReadResult, Path | None]]:
    """Read and check events (and effort) without building anything.

    Rows are never refused here (``strict`` is ignored): the caller reports every result and
    then decides (``ReadResult.first_rejection_error``, ``ReadResult.all_rejected_error``).
    Effort rows naming a segment id the border's segments do not have are quarantined
    ``unknown_segment`` here as in ``train`` and ``score`` (the same reader rule).

    Returns
    -------
    list of (ReadResult, Path or None)
        Each result and its ``rejected_<input>.csv`` when ``out`` is given and rows were
        quarantined.
    """
    settings, kw = _resolve(settings, read_kwargs)
    kw.pop("strict", None)
    kw["metric_crs"] = settings.metric_crs
    geo = geodata.Geography(settings, border=border) if effort else None
    results = [
        read_events(
            events,
            border=geo.border_index if geo is not None else read_border(settings, border),
            max_distance_m=settings.max_distance_m,
            **kw,
        )
    ]
    if geo is not None:
        ids = set(geo.segments["segment_id"])
        results.append(read_effort(effort, segment_ids=ids, **_effort_kwargs(kw)))
    for res in results:  # without a folder, --quarantine-table still gets the rows
        src = res.summary.get("source")
        if not out and not res.ok and src is not None and src.quarantine_table:
            src.write_quarantine(src.keyed(res.rejected, res.summary["key"]))
    return [(res, res.write_quarantine(out) if out else None) for res in results]


def _effort_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """The reader keywords that apply to effort files."""
    from riskmodel.model.pipeline import EFFORT_READ_KEYS

    return {k: v for k, v in kw.items() if k in EFFORT_READ_KEYS or k == "metric_crs"}


def read_segments(settings: Settings, path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """A segments layer (``segment_id`` and geometry, any OGR format and CRS) in the metric CRS.

    Raises
    ------
    InputError
        Unreadable file, no CRS, or no ``segment_id`` column.
    """
    seg = geodata.load_layer("segments", override=path, crs=settings.metric_crs)
    if "segment_id" not in seg.columns:
        raise InputError("segments layer lacks column segment_id", where=str(path))
    return seg
