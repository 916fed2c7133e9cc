"""Read and validate events files (apprehensions, detections, smuggler arrests).

The readers here and in :mod:`riskmodel.io.read.effort` are the engine's only door for user
data. They take a user's export *unchanged* (CSV in UTF-8 / cp1250 / latin-1 with ``,`` ``;``
or tab, GeoJSON, GeoPackage, Shapefile, Parquet), use every good row and account for every bad
one: each row read is either in :attr:`ReadResult.frame` (canonical columns) or in
:attr:`ReadResult.rejected` with a reason code, and ``accepted + quarantined == rows read``
always holds. File-level problems (empty file, missing columns, undecidable time zone or CRS)
raise :class:`~riskmodel.errors.InputError` with a one-line message naming the file, what is
wrong and how to fix it.

Canonical events frame
    ``row`` (1-based data row in the file, header excluded; blank lines count), ``event_id``,
    ``timestamp`` (UTC), ``x``/``y`` (metric CRS, EPSG:3794), ``lon``/``lat`` (WGS84),
    ``persons`` (int >= 1, default 1), ``type`` (default ``apprehension``), ``source``,
    ``dist_to_border_m`` (when a border is given), then the user's other columns unchanged
    (a name clashing with a canonical one gets ``_input`` appended).

Daylight-saving policy (``dst``) for naive local times read with ``assume_tz``
    ==========  =========================================  ==================================
    policy      non-existent (spring, 02:00-03:00 skipped)  ambiguous (autumn, 02:00-03:00 x2)
    ==========  =========================================  ==================================
    raise       InputError naming the first such row       InputError naming the first row
    shift       read with the offset before the change     quarantined ``dst_ambiguous``
                (02:30 -> 01:30 UTC = 03:30 CEST)
    earliest    as ``shift``                               first occurrence (summer time)
    latest      as ``shift``                               second occurrence (winter time)
    drop        quarantined ``dst_nonexistent``             quarantined ``dst_ambiguous``
    ==========  =========================================  ==================================
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmodel._timing import timed
from riskmodel.errors import ConfigError
from riskmodel.io.read.border import BorderIndex
from riskmodel.io.read.columns import (
    EVENT_ALIASES,
    KNOWN_KEYS,
    missing_columns_error,
    resolve_columns,
)
from riskmodel.io.read.coords import Coords, coordinates
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
    expand_mask,
    load_rows,
    missing_location,
    release_columns,
    time_values,
)
from riskmodel.io.read.times import parse_times
from riskmodel.io.read.values import (
    STR,
    duplicated_keys,
    duplicated_strings,
    norm_name,
    str_arrow,
    str_series,
    to_float,
    to_np_bool,
)

log = logging.getLogger(__name__)

__all__ = ["EVENT_TYPES", "read_events"]

EVENT_TYPES = ("apprehension", "detection", "smuggler_arrest")
_EVENT_COLUMNS = (
    "row",
    "event_id",
    "timestamp",
    "x",
    "y",
    "lon",
    "lat",
    "persons",
    "type",
    "source",
    "dist_to_border_m",
)
_EFFORT_COLUMNS = ("row", "segment_id", "x", "y", "lon", "lat", "start", "end", "officer_hours")
_TYPE_ALIASES = {
    "apprehension": "apprehension",
    "apprehended": "apprehension",
    "prijetje": "apprehension",
    "detection": "detection",
    "detected": "detection",
    "odkritje": "detection",
    "zaznava": "detection",
    "smuggler_arrest": "smuggler_arrest",
    "smuggler": "smuggler_arrest",
    "smuggling": "smuggler_arrest",
    "tihotapec": "smuggler_arrest",
}


@timed("read events")
def read_events(
    path: str | os.PathLike[str],
    *,
    columns: dict[str, str] | None = None,
    assume_tz: str | None = None,
    crs: str | None = None,
    border: Any = None,
    max_distance_m: float = 20000.0,
    swap_latlon: bool = False,
    dst: str = "raise",
    now: Any = None,
    min_date: Any = "2000-01-01",
    encoding: str | None = None,
    delimiter: str | None = None,
    strict: bool = False,
    metric_crs: str = "EPSG:3794",
) -> ReadResult:
    """Read an events file (apprehensions, detections, smuggler arrests) and validate it.

    Parameters
    ----------
    path : path-like
        CSV / TSV / TXT, GeoJSON, GeoPackage, Shapefile or (Geo)Parquet, by extension.
    columns : dict, optional
        Canonical name -> the file's column, e.g. ``{"timestamp": "DATUM_CAS"}``. Common names
        (``datum``, ``latitude``, ``X_D96``, ``st_oseb`` ...) are recognised without it.
    assume_tz : str, optional
        IANA zone for timestamps without an offset (e.g. ``Europe/Ljubljana``). Without it a
        file whose times are all naive is refused; naive rows among aware ones are quarantined.
    crs : str, optional
        CRS of x/y columns (``EPSG:3794`` D96/TM or ``EPSG:3912`` D48/GK), or of a vector file
        that declares none. Columns named ``*_D96`` imply EPSG:3794.
    border : GeoDataFrame, GeoSeries, shapely geometry or BorderIndex, optional
        Border line in the metric CRS (or its index, e.g. ``Geography.border_index``, whose
        answers the binning into segments reuses); adds ``dist_to_border_m`` and quarantines points
        farther than ``max_distance_m``.
    max_distance_m : float
        Distance cut-off in metres (default 20 km).
    swap_latlon : bool
        Swap latitude/longitude in rows where only the swapped pair lies in Slovenia
        (lat 45-47, lon 13-17). Without it such rows are quarantined ``latlon_swapped``.
    dst : {"raise", "shift", "earliest", "latest", "drop"}
        Policy for local times that do not exist or occur twice at DST changes (module doc).
    now : datetime-like, optional
        Reference for the "future" check (default: the current time).
    min_date : datetime-like
        Older timestamps are quarantined ``too_old_timestamp``.
    encoding : str, optional
        Text encoding of CSV files (default: detected UTF-8 / UTF-16 / cp1250 / latin-1).
    delimiter : str, optional
        CSV delimiter (default: sniffed among ``,`` ``;`` tab ``|``); ``tab`` is accepted.
    strict : bool
        Raise :class:`InputError` for the first quarantined row instead of returning.
    metric_crs : str
        CRS of ``x``/``y`` and of ``border`` (default EPSG:3794).

    Returns
    -------
    ReadResult
        Accepted frame, rejected rows and summary.

    Raises
    ------
    InputError
        File-level problems, or any rejected row when ``strict``.
    ConfigError
        Invalid arguments (unknown zone, CRS, DST policy, column key).
    """
    p, where, opts = check_options(path, assume_tz, crs, dst, now, min_date, metric_crs)
    if not max_distance_m > 0:
        raise ConfigError(
            f"max_distance_m must be > 0, got {max_distance_m}",
            where="--max-distance-m",
            fix="give a distance in metres",
        )
    table, flags, notes = load_rows(p, "events", encoding, delimiter)
    data = table.data
    n = len(data)
    mapping, more, skipped = resolve_columns(
        list(data.columns), EVENT_ALIASES, dict(columns or {}), KNOWN_KEYS, where
    )
    notes += more
    ts_values, ts_used = time_values(
        data, mapping, "timestamp", notes, bool(columns and "timestamp" in columns)
    )
    missing = [] if ts_values is not None else ["timestamp"]
    missing += missing_location(mapping, table, required=True)
    if missing:
        raise missing_columns_error(
            missing, list(data.columns), EVENT_ALIASES, set(mapping.values()), where, skipped
        )

    ts = parse_times(ts_values, flags=flags, label="timestamp", where=where, notes=notes, **opts)
    coords = coordinates(
        table,
        mapping,
        flags=flags,
        crs=crs,
        swap_latlon=swap_latlon,
        metric_crs=metric_crs,
        where=where,
        notes=notes,
    )
    pa.default_memory_pool().release_unused()  # string temporaries of the parsers
    assert coords is not None  # guaranteed by the required-columns check
    drop_unused_coords(mapping, coords.keys, notes)

    persons = _persons(data, mapping, flags, notes)
    dist = (
        None
        if border is None
        else _border_distance(border, coords, flags, metric_crs, max_distance_m)
    )
    eid = _mark_duplicates(data, mapping, flags, ts, coords)

    ok = flags.ok
    rejected = quarantine_rows(table, flags)
    used = set(mapping.values()) | ts_used
    release_columns(data, used - {mapping.get(k) for k in ("event_id", "type", "source")})
    del ts_values
    rows = np.arange(1, n + 1, dtype=np.int64)
    frame = pd.DataFrame({"row": rows[ok]})
    frame["event_id"] = _event_ids(
        p.stem, rows[ok], None if eid is None else eid.filter(pa.array(ok))
    )
    eid = None
    frame["timestamp"] = pd.Series(ts[ok]).dt.tz_localize("UTC")
    del ts
    frame["x"], frame["y"] = coords.x[ok], coords.y[ok]
    frame["lon"], frame["lat"] = coords.lon[ok], coords.lat[ok]
    del coords
    frame["persons"] = persons[ok]
    frame["type"] = _types(data, mapping, ok, notes)
    frame["source"] = (
        _take_str(data[mapping["source"]], ok)
        if "source" in mapping
        else pd.Series("", index=frame.index, dtype=STR)
    )
    if dist is not None:
        frame["dist_to_border_m"] = dist[ok]
    extras = add_extras(frame, data, ok, used, _EVENT_COLUMNS)

    summary = make_summary(p, table, flags, mapping, extras, notes, "events")
    if len(frame):
        summary["time_span"] = time_span(frame["timestamp"], frame["timestamp"])
        summary["extent"] = extent(frame["lon"], frame["lat"])
    if dist is not None:
        d = frame["dist_to_border_m"].to_numpy()
        summary["share_within_1km"] = float((d <= 1000).mean()) if len(d) else 0.0
        summary["share_within_5km"] = float((d <= 5000).mean()) if len(d) else 0.0
    summary["duplicates"] = sum(
        v for k, v in summary["by_reason"].items() if k.startswith("duplicate_")
    )
    return finish(frame, rejected, summary, strict)


def _persons(
    data: pd.DataFrame, mapping: dict[str, str], flags: RowFlags, notes: list[str]
) -> np.ndarray:
    """Group sizes: whole numbers 1..10 000, blank read as 1, others flagged ``bad_persons``."""
    n = len(data)
    persons = np.ones(n, dtype=np.int64)
    if "persons" in mapping:
        v, miss, bad = to_float(data[mapping["persons"]])
        with np.errstate(invalid="ignore"):
            bad |= ~miss & ((v < 1) | (v != np.floor(v)) | (v > 10_000))
        flags.mark(bad, "bad_persons")
        persons = np.where(miss | bad, 1.0, v).astype(np.int64)
        n_miss = int((miss & flags.ok).sum())
        if n_miss:
            notes.append(f"{n_miss} empty persons value(s) read as 1")
    return persons


def _border_distance(
    border: Any, coords: Coords, flags: RowFlags, metric_crs: str, max_distance_m: float
) -> np.ndarray:
    """Distance to the border per row (NaN for flagged rows); farther rows are flagged."""
    ok = flags.ok
    dist = np.full(len(ok), np.nan)
    index = border if isinstance(border, BorderIndex) else BorderIndex(border, metric_crs)
    dist[ok] = index.distance(coords.x[ok], coords.y[ok], float(max_distance_m))
    with np.errstate(invalid="ignore"):
        flags.mark(ok & ~(dist <= max_distance_m), "too_far_from_border")
    return dist


def _mark_duplicates(
    data: pd.DataFrame, mapping: dict[str, str], flags: RowFlags, ts: np.ndarray, coords: Coords
) -> pa.ChunkedArray | None:
    """Flag repeated event ids, then repeated (time, place) among rows without a distinct id:
    two rows with different ids at the same time and place are two groups, both kept; return
    the ids (or ``None``)."""
    eid = None
    if "event_id" in mapping:
        eid = str_arrow(data[mapping["event_id"]])
        ok = flags.ok
        sub = eid.filter(pa.array(ok))
        dup = duplicated_strings(sub) & to_np_bool(pc.not_equal(sub, ""))
        flags.mark(expand_mask(ok, dup), "duplicate_event_id")
    ok = flags.ok
    keys = [ts[ok].view(np.int64), np.round(coords.x[ok]), np.round(coords.y[ok])]
    if eid is not None:
        ids = str_series(eid.filter(pa.array(ok))).to_numpy(dtype=object)
        codes, _ = pd.factorize(ids)
        codes[ids == ""] = -1  # rows without an id: time and place decide
        keys.append(codes.astype(np.int64))
    dup = duplicated_keys(*keys)
    flags.mark(expand_mask(ok, dup), "duplicate_time_place")
    return eid


def _event_ids(stem: str, rows: np.ndarray, given: pa.ChunkedArray | None) -> pd.Series:
    """The file's ids; ``<file-stem>-<row>`` where absent or blank."""
    if given is not None:
        blank = to_np_bool(pc.equal(given, ""))
        if not blank.any():
            return str_series(given)
        rows = rows[blank]
    gen = pc.binary_join_element_wise(stem, pc.cast(pa.array(rows), pa.string()), "-")
    if given is None:
        return str_series(pa.chunked_array([gen]))
    base = given.combine_chunks()  # string or large_string (GeoJSON): the ids take its type
    out = pc.replace_with_mask(base, pa.array(blank), gen.cast(base.type))
    return str_series(pa.chunked_array([out]))


def _take_str(values: pd.Series, ok: np.ndarray) -> pd.Series:
    return str_series(str_arrow(values).filter(pa.array(ok)))


def _types(
    data: pd.DataFrame, mapping: dict[str, str], ok: np.ndarray, notes: list[str]
) -> pd.Series:
    k = int(ok.sum())
    if "type" not in mapping:
        return str_series(pa.chunked_array([pa.repeat(pa.scalar("apprehension"), k)]))
    raw = str_arrow(data[mapping["type"]]).filter(pa.array(ok))
    enc = pc.dictionary_encode(raw).combine_chunks()  # map the few distinct values only
    uniques = enc.dictionary.to_pylist()
    mapped = [_TYPE_ALIASES.get(norm_name(u), u) if u != "" else "apprehension" for u in uniques]
    unknown = sorted({m for m in mapped if m not in EVENT_TYPES})
    if unknown:
        notes.append(
            f"unknown event type(s) kept as given: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''} (known: {', '.join(EVENT_TYPES)})"
        )
    out = pa.array(mapped, type=pa.string()).take(enc.indices)
    return str_series(pa.chunked_array([out]))
