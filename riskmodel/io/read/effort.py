"""Read and validate patrol-effort files (who patrolled where, when, for how long).

Same door and guarantees as :mod:`riskmodel.io.read.events`: every row read is accepted or
quarantined with a reason; times follow the same time-zone and DST policies.

Canonical effort frame
    ``row``, ``segment_id`` (str or NA), ``x``/``y``/``lon``/``lat`` (NaN unless the row gives
    a location), ``start``, ``end`` (UTC), ``officer_hours`` (float >= 0), then extra columns.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.errors import InputError
from riskmodel.io.read.columns import (
    EFFORT_ALIASES,
    KNOWN_KEYS,
    missing_columns_error,
    resolve_columns,
)
from riskmodel.io.read.coords import coordinates
from riskmodel.io.read.flags import RowFlags
from riskmodel.io.read.result import (
    ReadResult,
    extent,
    finish,
    make_summary,
    quarantine_rows,
    time_span,
)
from riskmodel.io.read.steps import (
    add_extras,
    check_options,
    drop_unused_coords,
    load_rows,
    missing_location,
)
from riskmodel.io.read.tables import RawTable
from riskmodel.io.read.times import parse_times
from riskmodel.io.read.values import STR, str_arrow, str_series, to_float

log = logging.getLogger(__name__)

__all__ = ["read_effort"]

_EFFORT_COLUMNS = ("row", "segment_id", "x", "y", "lon", "lat", "start", "end", "officer_hours")


@timed("read effort")
def read_effort(
    path: str | os.PathLike[str],
    *,
    segment_ids: set[str] | None = None,
    columns: dict[str, str] | None = None,
    assume_tz: str | None = None,
    crs: str | None = None,
    swap_latlon: bool = False,
    dst: str = "raise",
    now: Any = None,
    min_date: Any = "2000-01-01",
    encoding: str | None = None,
    delimiter: str | None = None,
    strict: bool = False,
    metric_crs: str = "EPSG:3794",
) -> ReadResult:
    """Read a patrol-effort log (who patrolled where, when, for how many officer-hours).

    Each row names a border segment (``segment_id``) or a location (lon/lat, x/y or point
    geometry), a ``start`` and ``end`` and ``officer_hours``. Identical rows are counted in
    ``summary["duplicates"]`` but kept: two crews may patrol the same stretch at once.

    Parameters
    ----------
    path : path-like
        Effort file (same formats as :func:`read_events`).
    segment_ids : set of str, optional
        Known segment ids; other ids are quarantined ``unknown_segment``.
    columns, assume_tz, crs, swap_latlon, dst, now, min_date, encoding, delimiter, strict, metric_crs
        As in :func:`read_events`.

    Returns
    -------
    ReadResult
        Accepted frame, rejected rows and summary.
    """
    p, where, opts = check_options(path, assume_tz, crs, dst, now, min_date, metric_crs)
    table, flags, notes = load_rows(p, "effort", encoding, delimiter)
    data = table.data
    n = len(data)
    mapping, more, skipped = resolve_columns(
        list(data.columns), EFFORT_ALIASES, dict(columns or {}), KNOWN_KEYS, where
    )
    notes += more
    missing = [k for k in ("start", "end", "officer_hours") if k not in mapping]
    if "segment_id" not in mapping:
        missing += [
            m.replace("lat+lon", "segment_id or lat+lon")
            for m in missing_location(mapping, table, required=True)
        ]
    if missing:
        raise missing_columns_error(
            missing, list(data.columns), EFFORT_ALIASES, set(mapping.values()), where, skipped
        )

    start = parse_times(
        data[mapping["start"]],
        flags=flags,
        label="start",
        suffix="start",
        where=where,
        notes=notes,
        **opts,
    )
    end = parse_times(
        data[mapping["end"]],
        flags=flags,
        label="end",
        suffix="end",
        where=where,
        notes=notes,
        **opts,
    )
    both = ~np.isnat(start) & ~np.isnat(end)
    flags.mark(both & (end < start), "end_before_start")
    flags.mark(both & (end == start), "zero_duration")
    hours, miss, bad = to_float(data[mapping["officer_hours"]])
    flags.mark(miss, "missing_officer_hours")
    with np.errstate(invalid="ignore"):
        flags.mark(bad | (hours < 0), "bad_officer_hours")

    sid, has_sid = _segment_ids(data, mapping, flags, segment_ids)
    x, y, lon, lat = _locations(
        table,
        mapping,
        flags,
        has_sid,
        crs=crs,
        swap_latlon=swap_latlon,
        metric_crs=metric_crs,
        where=where,
        notes=notes,
    )

    ok = flags.ok
    rejected = quarantine_rows(table, flags)
    rows = np.arange(1, n + 1, dtype=np.int64)
    frame = pd.DataFrame({"row": rows[ok]})
    frame["segment_id"] = sid.where(pd.Series(has_sid))[ok].reset_index(drop=True)
    frame["x"], frame["y"], frame["lon"], frame["lat"] = x[ok], y[ok], lon[ok], lat[ok]
    frame["start"] = pd.Series(start[ok]).dt.tz_localize("UTC")
    frame["end"] = pd.Series(end[ok]).dt.tz_localize("UTC")
    frame["officer_hours"] = hours[ok]
    extras = add_extras(frame, data, ok, set(mapping.values()), _EFFORT_COLUMNS)

    if len(frame):
        dur_h = (frame["end"] - frame["start"]).dt.total_seconds() / 3600.0  # UTC: DST-safe
        crowded = int((frame["officer_hours"] > dur_h * 100).sum())
        if crowded:
            notes.append(
                f"{crowded} row(s) have more than 100 officers on average "
                "(officer_hours / duration); check the hours"
            )
    summary = make_summary(p, table, flags, mapping, extras, notes, "effort")
    if len(frame):
        summary["time_span"] = time_span(frame["start"], frame["end"])
        if frame["lon"].notna().any():
            summary["extent"] = extent(frame["lon"], frame["lat"])
    dup = int(
        frame.duplicated(subset=["segment_id", "start", "end", "x", "y", "officer_hours"]).sum()
    )
    summary["duplicates"] = dup
    if dup:
        notes.append(f"{dup} row(s) repeat an earlier row exactly; kept (two crews?)")
    return finish(frame, rejected, summary, strict)


def _segment_ids(
    data: pd.DataFrame, mapping: dict[str, str], flags: RowFlags, segment_ids: set[str] | None
) -> tuple[pd.Series, np.ndarray]:
    """The rows' segment ids (blank where none) and where one is given; unknown ids flagged."""
    n = len(data)
    if "segment_id" in mapping:
        sid = str_series(str_arrow(data[mapping["segment_id"]]))
        has_sid = (sid != "").to_numpy()
        if segment_ids is not None:
            known = sid.isin({str(s) for s in segment_ids}).to_numpy()
            flags.mark(has_sid & ~known, "unknown_segment")
    else:
        sid = pd.Series("", index=range(n), dtype=STR)
        has_sid = np.zeros(n, dtype=bool)
    return sid, has_sid


def _locations(
    table: RawTable,
    mapping: dict[str, str],
    flags: RowFlags,
    has_sid: np.ndarray,
    *,
    crs: str | None,
    swap_latlon: bool,
    metric_crs: str,
    where: str,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x, y, lon, lat`` per row (NaN where unusable).

    Rows without a segment id need a usable location (else they are flagged); rows with one
    keep their coordinates only when these are usable.
    """
    n = len(table.data)
    x = y = lon = lat = np.full(n, np.nan)
    need = ~has_sid
    coords = None
    if missing_location(mapping, table, required=True) == []:
        cflags = RowFlags(n)
        try:
            coords = coordinates(
                table,
                mapping,
                flags=cflags,
                crs=crs,
                swap_latlon=swap_latlon,
                metric_crs=metric_crs,
                where=where,
                notes=notes,
            )
        except InputError as exc:
            if need.any():
                raise
            coords = None  # every row has a segment_id: the location is optional
            notes.append(f"coordinates ignored: {exc.what}")
    if coords is not None:
        for i, name in enumerate(cflags.names[1:], start=1):
            hit = need & (cflags.code == i)
            if "segment_id" in mapping and name in ("missing_coordinates", "empty_geometry"):
                name = "missing_location"
            flags.mark(hit, name)
        usable = cflags.ok
        ignored = int((has_sid & ~usable & ~_blank_coords(cflags)).sum())
        if ignored:
            notes.append(
                f"{ignored} row(s) with a segment_id have unusable coordinates; coordinates ignored"
            )
        drop_unused_coords(mapping, coords.keys, notes)
        x, y, lon, lat = (
            np.where(usable, a, np.nan) for a in (coords.x, coords.y, coords.lon, coords.lat)
        )
    else:
        flags.mark(need, "missing_location")

    return x, y, lon, lat


def _blank_coords(cflags: RowFlags) -> np.ndarray:
    names = [
        i for i, nm in enumerate(cflags.names) if nm in ("missing_coordinates", "empty_geometry")
    ]
    return np.isin(cflags.code, names)
