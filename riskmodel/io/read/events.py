"""Read and validate events and patrol-effort files: the engine's only door for user data.

The readers take a user's export *unchanged* (CSV in UTF-8 / cp1250 / latin-1 with ``,`` ``;``
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

Canonical effort frame
    ``row``, ``segment_id`` (str or NA), ``x``/``y``/``lon``/``lat`` (NaN unless the row gives
    a location), ``start``, ``end`` (UTC), ``officer_hours`` (float >= 0), then extra columns.

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmodel.errors import ConfigError, InputError
from riskmodel.io.atomic import atomic_write_with
from riskmodel.io.read import core as V

__all__ = [
    "DST_POLICIES",
    "EFFORT_ALIASES",
    "EVENT_ALIASES",
    "EVENT_TYPES",
    "REASONS",
    "ReadResult",
    "read_effort",
    "read_events",
]

DST_POLICIES = V.DST_POLICIES
REASONS = V.REASONS
EVENT_TYPES = ("apprehension", "detection", "smuggler_arrest")

_COORD_ALIASES: dict[str, tuple[str, ...]] = {
    # Slovene: (geografska) sirina = latitude, dolzina = longitude (after ASCII folding).
    "lat": (
        "lat",
        "latitude",
        "y_wgs",
        "lat_wgs84",
        "wgs84_lat",
        "sirina",
        "geo_sirina",
        "geografska_sirina",
    ),
    "lon": (
        "lon",
        "lng",
        "long",
        "longitude",
        "x_wgs",
        "lon_wgs84",
        "wgs84_lon",
        "dolzina",
        "geo_dolzina",
        "geografska_dolzina",
    ),
    "x": ("x", "x_d96", "e", "easting", "x_d48"),
    "y": ("y", "y_d96", "n", "northing", "y_d48"),
}
#: Canonical events column -> recognised (normalised, case-insensitive) names, preferred first.
EVENT_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "date_time",
        "datum_cas",
        "datum_in_cas",
        "time",
        "date",
        "datum",
        "cas",
    ),
    **_COORD_ALIASES,
    "persons": ("persons", "st_oseb", "n_persons", "count", "group_size", "stevilo_oseb"),
    "event_id": ("event_id", "id", "incident_id"),
    "type": ("type", "event_type", "vrsta"),
    "source": ("source", "vir"),
}
#: Canonical effort column -> recognised names.
EFFORT_ALIASES: dict[str, tuple[str, ...]] = {
    "segment_id": ("segment_id", "segment", "odsek", "seg_id"),
    "start": ("start", "from", "zacetek", "start_time", "begin"),
    "end": ("end", "to", "konec", "end_time", "finish"),
    "officer_hours": ("officer_hours", "hours", "ure", "man_hours", "st_ur"),
    **_COORD_ALIASES,
}
_KNOWN_KEYS = set(EVENT_ALIASES) | set(EFFORT_ALIASES)
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
# Which canonical columns explain each reason (for the --strict message).
_REASON_KEYS = {
    "timestamp": (
        "missing_timestamp",
        "bad_timestamp",
        "naive_timestamp",
        "dst_nonexistent",
        "dst_ambiguous",
        "future_timestamp",
        "too_old_timestamp",
    ),
    "coords": (
        "missing_coordinates",
        "bad_coordinates",
        "coords_out_of_range",
        "latlon_swapped",
        "xy_swapped",
        "projected_as_lonlat",
        "too_far_from_border",
        "duplicate_time_place",
    ),
    "persons": ("bad_persons",),
    "event_id": ("duplicate_event_id",),
    "officer_hours": ("missing_officer_hours", "bad_officer_hours"),
    "segment_id": ("unknown_segment", "missing_location"),
    "start+end": ("end_before_start", "zero_duration"),
}


@dataclass
class ReadResult:
    """Outcome of reading one file.

    Attributes
    ----------
    frame : DataFrame
        Accepted rows in canonical columns.
    rejected : DataFrame
        Quarantined rows: ``row``, ``reason`` and the original values as strings.
    summary : dict
        ``file``, ``sha256``, ``rows_read``, ``accepted``, ``quarantined``, ``by_reason``,
        ``time_span``, ``extent`` (lon/lat bbox), ``share_within_1km``, ``share_within_5km``,
        ``duplicates``, ``warnings`` and a few descriptive keys (``format``, ``encoding``,
        ``delimiter``, ``columns``, ``extra_columns``).
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.summary
        if len(self.frame) + len(self.rejected) != s.get("rows_read", -1):  # the core promise
            raise AssertionError(
                f"row accounting broken for {s.get('file')}: {len(self.frame)} accepted + "
                f"{len(self.rejected)} quarantined != {s.get('rows_read')} read"
            )

    @property
    def ok(self) -> bool:
        """True when no row was quarantined."""
        return len(self.rejected) == 0

    def write_quarantine(self, folder: str | os.PathLike[str]) -> Path | None:
        """Write ``rejected_<input-stem>.csv`` (UTF-8 with BOM for Excel) atomically.

        Returns
        -------
        Path or None
            The file written, or ``None`` when nothing was quarantined.
        """
        if self.ok:
            return None
        target = Path(folder) / f"rejected_{Path(self.summary['file']).stem}.csv"
        return atomic_write_with(
            target, lambda p: self.rejected.to_csv(p, index=False, encoding="utf-8-sig")
        )

    def first_rejection_error(self) -> InputError | None:
        """The ``--strict`` error for the first quarantined row (``None`` if none)."""
        if self.ok:
            return None
        first = self.rejected.iloc[0]
        code = str(first["reason"])
        what, fix = V.reason_text(code)
        base, _, col = code.partition(":")
        cols = self.summary.get("columns", {})
        keys = [col] if col else []
        for key, codes in _REASON_KEYS.items():
            if base in codes and not col:
                keys = ["lon", "lat", "x", "y"] if key == "coords" else key.split("+")
        names = [cols[k] for k in keys if k in cols]
        if base.endswith("geometry") or base == "not_a_point":
            names = ["geometry_wkt"]
        hint = ", ".join(f"{c}={first[c]!r}" for c in names if c in self.rejected.columns)
        return InputError(
            f"{what} [{code}]" + (f" ({hint})" if hint else ""),
            where=f"{self.summary['file']}, row {int(first['row'])}",
            fix=fix,
        )

    def report_lines(self) -> list[str]:
        """Human-readable report (used by ``riskmodel validate``)."""
        s = self.summary
        out = [
            f"{s['kind']}: {s['file']}",
            f"  read {s['rows_read']} = accepted {s['accepted']} + quarantined {s['quarantined']}",
        ]
        fmt = s.get("format", "")
        if s.get("encoding"):
            fmt += f", {s['encoding']}, delimiter {s['delimiter']!r}"
        out.append(f"  format: {fmt}; sha256 {s['sha256'][:16]}...")
        if s.get("columns"):
            out.append("  columns: " + ", ".join(f"{k}<-{v}" for k, v in s["columns"].items()))
        if s.get("extra_columns"):
            out.append("  extra columns kept, not used: " + ", ".join(s["extra_columns"]))
        for code, n in s["by_reason"].items():
            what, fix = V.reason_text(code)
            out.append(f"  quarantined {n:>8} {code}: {what} -- fix: {fix}")
        if s.get("time_span"):
            out.append(f"  time span: {s['time_span']['start']} .. {s['time_span']['end']}")
        if s.get("extent"):
            e = s["extent"]
            out.append(
                f"  extent: lon {e['lon_min']:.4f} .. {e['lon_max']:.4f}, "
                f"lat {e['lat_min']:.4f} .. {e['lat_max']:.4f}"
            )
        if s.get("share_within_1km") is not None:
            out.append(
                f"  near the border: {s['share_within_1km']:.1%} within 1 km, "
                f"{s['share_within_5km']:.1%} within 5 km"
            )
        if s.get("duplicates"):
            out.append(f"  duplicates: {s['duplicates']}")
        out.extend(f"  warning: {w}" for w in s.get("warnings", []))
        return out


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------
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
    border : GeoDataFrame, GeoSeries or shapely geometry, optional
        Border line in the metric CRS; adds ``dist_to_border_m`` and quarantines points
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
    p, where, opts = _start(path, assume_tz, crs, dst, now, min_date, metric_crs)
    if not max_distance_m > 0:
        raise ConfigError(
            f"max_distance_m must be > 0, got {max_distance_m}",
            where="--max-distance-m",
            fix="give a distance in metres",
        )
    table, flags, notes = _load(p, "events", encoding, delimiter)
    data = table.data
    n = len(data)
    mapping, more = V.resolve_columns(
        list(data.columns), EVENT_ALIASES, dict(columns or {}), _KNOWN_KEYS, where
    )
    notes += more
    ts_values, ts_used = _time_values(
        data, mapping, "timestamp", notes, bool(columns and "timestamp" in columns)
    )
    missing = [] if ts_values is not None else ["timestamp"]
    missing += _missing_location(mapping, table, required=True)
    if missing:
        raise V.missing_columns_error(
            missing, list(data.columns), EVENT_ALIASES, set(mapping.values()), where
        )

    ts = V.parse_times(ts_values, flags=flags, label="timestamp", where=where, notes=notes, **opts)
    coords = V.coordinates(
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
    _unused_coords(mapping, coords.keys, notes)

    persons = np.ones(n, dtype=np.int64)
    if "persons" in mapping:
        v, miss, bad = V.to_float(data[mapping["persons"]])
        with np.errstate(invalid="ignore"):
            bad |= ~miss & ((v < 1) | (v != np.floor(v)) | (v > 10_000))
        flags.mark(bad, "bad_persons")
        persons = np.where(miss | bad, 1.0, v).astype(np.int64)
        n_miss = int((miss & flags.ok).sum())
        if n_miss:
            notes.append(f"{n_miss} empty persons value(s) read as 1")

    dist = None
    if border is not None:
        ok = flags.ok
        dist = np.full(n, np.nan)
        index = V.BorderIndex(border, metric_crs)
        dist[ok] = index.distance(coords.x[ok], coords.y[ok], float(max_distance_m))
        with np.errstate(invalid="ignore"):
            flags.mark(ok & ~(dist <= max_distance_m), "too_far_from_border")

    eid = None
    if "event_id" in mapping:
        eid = V.str_arrow(data[mapping["event_id"]])
        ok = flags.ok
        sub = eid.filter(pa.array(ok))
        dup = V.duplicated_strings(sub) & V.to_np_bool(pc.not_equal(sub, ""))
        flags.mark(_expand(ok, dup), "duplicate_event_id")
    ok = flags.ok
    dup = V.duplicated_keys(ts[ok].view(np.int64), np.round(coords.x[ok]), np.round(coords.y[ok]))
    flags.mark(_expand(ok, dup), "duplicate_time_place")

    ok = flags.ok
    rejected = _rejected(table, flags)
    used = set(mapping.values()) | ts_used
    _release(data, used - {mapping.get(k) for k in ("event_id", "type", "source")})
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
        else pd.Series("", index=frame.index, dtype=V.STR)
    )
    if dist is not None:
        frame["dist_to_border_m"] = dist[ok]
    extras = _add_extras(frame, data, ok, used, _EVENT_COLUMNS)

    summary = _summary(p, table, flags, mapping, extras, notes, "events")
    if len(frame):
        summary["time_span"] = _span(frame["timestamp"], frame["timestamp"])
        summary["extent"] = _extent(frame["lon"], frame["lat"])
    if dist is not None:
        d = frame["dist_to_border_m"].to_numpy()
        summary["share_within_1km"] = float((d <= 1000).mean()) if len(d) else 0.0
        summary["share_within_5km"] = float((d <= 5000).mean()) if len(d) else 0.0
    summary["duplicates"] = sum(
        v for k, v in summary["by_reason"].items() if k.startswith("duplicate_")
    )
    return _finish(frame, rejected, summary, strict)


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
    p, where, opts = _start(path, assume_tz, crs, dst, now, min_date, metric_crs)
    table, flags, notes = _load(p, "effort", encoding, delimiter)
    data = table.data
    n = len(data)
    mapping, more = V.resolve_columns(
        list(data.columns), EFFORT_ALIASES, dict(columns or {}), _KNOWN_KEYS, where
    )
    notes += more
    missing = [k for k in ("start", "end", "officer_hours") if k not in mapping]
    if "segment_id" not in mapping:
        missing += [
            m.replace("lat+lon", "segment_id or lat+lon")
            for m in _missing_location(mapping, table, required=True)
        ]
    if missing:
        raise V.missing_columns_error(
            missing, list(data.columns), EFFORT_ALIASES, set(mapping.values()), where
        )

    start = V.parse_times(
        data[mapping["start"]],
        flags=flags,
        label="start",
        suffix="start",
        where=where,
        notes=notes,
        **opts,
    )
    end = V.parse_times(
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
    hours, miss, bad = V.to_float(data[mapping["officer_hours"]])
    flags.mark(miss, "missing_officer_hours")
    with np.errstate(invalid="ignore"):
        flags.mark(bad | (hours < 0), "bad_officer_hours")

    if "segment_id" in mapping:
        sid = V.str_series(V.str_arrow(data[mapping["segment_id"]]))
        has_sid = (sid != "").to_numpy()
        if segment_ids is not None:
            known = sid.isin({str(s) for s in segment_ids}).to_numpy()
            flags.mark(has_sid & ~known, "unknown_segment")
    else:
        sid = pd.Series("", index=range(n), dtype=V.STR)
        has_sid = np.zeros(n, dtype=bool)
    x = y = lon = lat = np.full(n, np.nan)
    need = ~has_sid
    coords = None
    if _missing_location(mapping, table, required=True) == []:
        cflags = V.RowFlags(n)
        try:
            coords = V.coordinates(
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
        _unused_coords(mapping, coords.keys, notes)
        x, y, lon, lat = (
            np.where(usable, a, np.nan) for a in (coords.x, coords.y, coords.lon, coords.lat)
        )
    else:
        flags.mark(need, "missing_location")

    ok = flags.ok
    rejected = _rejected(table, flags)
    rows = np.arange(1, n + 1, dtype=np.int64)
    frame = pd.DataFrame({"row": rows[ok]})
    frame["segment_id"] = sid.where(pd.Series(has_sid))[ok].reset_index(drop=True)
    frame["x"], frame["y"], frame["lon"], frame["lat"] = x[ok], y[ok], lon[ok], lat[ok]
    frame["start"] = pd.Series(start[ok]).dt.tz_localize("UTC")
    frame["end"] = pd.Series(end[ok]).dt.tz_localize("UTC")
    frame["officer_hours"] = hours[ok]
    extras = _add_extras(frame, data, ok, set(mapping.values()), _EFFORT_COLUMNS)

    if len(frame):
        dur_h = (frame["end"] - frame["start"]).dt.total_seconds() / 3600.0  # UTC: DST-safe
        crowded = int((frame["officer_hours"] > dur_h * 100).sum())
        if crowded:
            notes.append(
                f"{crowded} row(s) have more than 100 officers on average "
                "(officer_hours / duration); check the hours"
            )
    summary = _summary(p, table, flags, mapping, extras, notes, "effort")
    if len(frame):
        summary["time_span"] = _span(frame["start"], frame["end"])
        if frame["lon"].notna().any():
            summary["extent"] = _extent(frame["lon"], frame["lat"])
    dup = int(
        frame.duplicated(subset=["segment_id", "start", "end", "x", "y", "officer_hours"]).sum()
    )
    summary["duplicates"] = dup
    if dup:
        notes.append(f"{dup} row(s) repeat an earlier row exactly; kept (two crews?)")
    return _finish(frame, rejected, summary, strict)


# --------------------------------------------------------------------------------------------
# Internals shared by both readers
# --------------------------------------------------------------------------------------------
def _start(
    path: Any,
    assume_tz: str | None,
    crs: str | None,
    dst: str,
    now: Any,
    min_date: Any,
    metric_crs: str,
) -> tuple[Path, str, dict[str, Any]]:
    """Validate the arguments (ConfigError) before touching the file."""
    if dst not in DST_POLICIES:
        raise ConfigError(
            f"unknown DST policy {dst!r}",
            where="--dst",
            fix=f"use one of: {', '.join(DST_POLICIES)}",
        )
    tz = V.check_tz(assume_tz)
    if crs:
        V.check_crs(crs)
    V.check_crs(metric_crs)
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else V.utc_timestamp(now, "now")
    min_ts = max(V.utc_timestamp(min_date, "min_date"), pd.Timestamp("1678-01-01", tz="UTC"))
    p = Path(path)
    opts = {"assume_tz": tz, "dst": dst, "now": now_ts, "min_date": min_ts}
    return p, str(p), opts


def _load(
    p: Path, kind: str, encoding: str | None, delimiter: str | None
) -> tuple[V.RawTable, V.RowFlags, list[str]]:
    table = V.load_table(p, encoding=encoding, delimiter=delimiter, kind=kind)
    flags = V.RowFlags(len(table.data))
    notes = list(table.warnings)
    flags.mark(table.malformed, "malformed_row")
    if table.geometry is None:
        empty = V.empty_rows(table.data)
        if empty.all():
            raise InputError(
                "the file has a header but no data rows",
                where=str(p),
                fix="export the data again including the rows",
            )
        flags.mark(empty, "empty_row")
    return table, flags, notes


def _missing_location(mapping: dict[str, str], table: V.RawTable, required: bool) -> list[str]:
    if table.geometry is not None:
        return []
    if {"lat", "lon"} <= mapping.keys() or {"x", "y"} <= mapping.keys():
        return []
    if "lat" in mapping or "lon" in mapping:
        return ["lon" if "lat" in mapping else "lat"]
    if "x" in mapping or "y" in mapping:
        return ["y" if "x" in mapping else "x"]
    return ["lat+lon or x+y"] if required else []


def _time_values(
    data: pd.DataFrame, mapping: dict[str, str], key: str, notes: list[str], user_mapped: bool
) -> tuple[pd.Series | None, set[str]]:
    """The time column, or a date column joined with a separate time-of-day column."""
    cols = list(data.columns)
    dates = [c for c in cols if V.norm_name(c) in ("date", "datum")]
    times = [c for c in cols if V.norm_name(c) in ("time", "cas", "ura")]
    if not user_mapped and dates and times and mapping.get(key) in dates + times:
        t = V.str_series(V.str_arrow(data[times[0]]))
        sample = t[t != ""].head(200)
        if len(sample) and sample.str.fullmatch(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?").mean() >= 0.9:
            d = V.str_series(V.str_arrow(data[dates[0]]))
            joined = (d + " " + t.str.replace(".", ":", regex=False)).str.strip()
            notes.append(
                f"{key} joined from the date column {dates[0]!r} and the time column {times[0]!r}"
            )
            mapping[key] = f"{dates[0]}+{times[0]}"
            return joined, {dates[0], times[0]}
    if key not in mapping:
        return None, set()
    return data[mapping[key]], set()


def _unused_coords(mapping: dict[str, str], keys: tuple[str, ...], notes: list[str]) -> None:
    """Forget coordinate columns the points did not come from: they stay as extra columns."""
    spare = [k for k in ("lon", "lat", "x", "y") if k in mapping and k not in keys]
    if spare:
        cols = ", ".join(mapping[k] for k in spare)
        src = "/".join(mapping[k] for k in keys) if keys else "the geometry"
        notes.append(f"points taken from {src}; {cols} kept as extra column(s), not checked")
        for k in spare:
            del mapping[k]


def _expand(ok: np.ndarray, sub_mask: np.ndarray) -> np.ndarray:
    """Lift a mask over the ``ok`` rows back to all rows."""
    out = np.zeros(len(ok), dtype=bool)
    out[np.flatnonzero(ok)[sub_mask]] = True
    return out


def _event_ids(stem: str, rows: np.ndarray, given: pa.ChunkedArray | None) -> pd.Series:
    """The file's ids; ``<file-stem>-<row>`` where absent or blank."""
    if given is not None:
        blank = V.to_np_bool(pc.equal(given, ""))
        if not blank.any():
            return V.str_series(given)
        rows = rows[blank]
    gen = pc.binary_join_element_wise(stem, pc.cast(pa.array(rows), pa.string()), "-")
    if given is None:
        return V.str_series(pa.chunked_array([gen]))
    out = pc.replace_with_mask(given.combine_chunks(), pa.array(blank), gen)
    return V.str_series(pa.chunked_array([out]))


def _take_str(values: pd.Series, ok: np.ndarray) -> pd.Series:
    return V.str_series(V.str_arrow(values).filter(pa.array(ok)))


def _types(
    data: pd.DataFrame, mapping: dict[str, str], ok: np.ndarray, notes: list[str]
) -> pd.Series:
    k = int(ok.sum())
    if "type" not in mapping:
        return V.str_series(pa.chunked_array([pa.repeat(pa.scalar("apprehension"), k)]))
    raw = V.str_arrow(data[mapping["type"]]).filter(pa.array(ok))
    enc = pc.dictionary_encode(raw).combine_chunks()  # map the few distinct values only
    uniques = enc.dictionary.to_pylist()
    mapped = [_TYPE_ALIASES.get(V.norm_name(u), u) if u != "" else "apprehension" for u in uniques]
    unknown = sorted({m for m in mapped if m not in EVENT_TYPES})
    if unknown:
        notes.append(
            f"unknown event type(s) kept as given: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''} (known: {', '.join(EVENT_TYPES)})"
        )
    out = pa.array(mapped, type=pa.string()).take(enc.indices)
    return V.str_series(pa.chunked_array([out]))


def _release(data: pd.DataFrame, cols: set[str | None]) -> None:
    """Drop raw columns already parsed (the quarantine copy is made) to cap peak memory."""
    for c in cols:
        if c in data.columns:
            del data[c]
    pa.default_memory_pool().release_unused()


def _add_extras(
    frame: pd.DataFrame,
    data: pd.DataFrame,
    ok: np.ndarray,
    used: set[str],
    canonical: tuple[str, ...],
) -> list[str]:
    """Keep the user's other columns (unchanged, ignored by the engine)."""
    extras = [c for c in data.columns if c not in used]
    for c in extras:
        name = f"{c}_input" if c in canonical or c in frame.columns else c
        frame[name] = data[c][ok].reset_index(drop=True)
    return extras


def _summary(
    p: Path,
    table: V.RawTable,
    flags: V.RowFlags,
    mapping: dict[str, str],
    extras: list[str],
    notes: list[str],
    kind: str,
) -> dict[str, Any]:
    n = len(table.data)
    acc = int(flags.ok.sum())
    return {
        "file": str(p),
        "kind": kind,
        "format": table.meta.get("format"),
        "encoding": table.meta.get("encoding"),
        "delimiter": table.meta.get("delimiter"),
        "layer": table.meta.get("layer"),
        "sha256": table.meta["sha256"],
        "rows_read": n,
        "accepted": acc,
        "quarantined": n - acc,
        "by_reason": flags.counts(),
        "time_span": None,
        "extent": None,
        "share_within_1km": None,
        "share_within_5km": None,
        "duplicates": 0,
        "columns": dict(mapping),
        "extra_columns": extras,
        "warnings": notes,
    }


def _span(start: pd.Series, end: pd.Series) -> dict[str, str]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"start": start.min().strftime(fmt), "end": end.max().strftime(fmt)}


def _extent(lon: pd.Series, lat: pd.Series) -> dict[str, float]:
    return {
        "lon_min": round(float(lon.min()), 6),
        "lat_min": round(float(lat.min()), 6),
        "lon_max": round(float(lon.max()), 6),
        "lat_max": round(float(lat.max()), 6),
    }


def _blank_coords(cflags: V.RowFlags) -> np.ndarray:
    names = [
        i for i, nm in enumerate(cflags.names) if nm in ("missing_coordinates", "empty_geometry")
    ]
    return np.isin(cflags.code, names)


def _rejected(table: V.RawTable, flags: V.RowFlags) -> pd.DataFrame:
    """Quarantined rows: ``row``, ``reason`` and the original values as strings."""
    bad = ~flags.ok
    n = len(bad)
    orig = V.as_strings(table.data, bad)
    orig.columns = [f"{c}_original" if c in ("row", "reason") else c for c in orig.columns]
    head = pd.DataFrame(
        {
            "row": np.arange(1, n + 1, dtype=np.int64)[bad],
            "reason": pd.Series(flags.reasons(bad), dtype=V.STR),
        }
    )
    rejected = pd.concat([head, orig], axis=1)
    if table.geometry is not None:
        import shapely

        wkt = shapely.to_wkt(table.geometry[bad], rounding_precision=-1)
        rejected["geometry_wkt"] = pd.Series(wkt, dtype=V.STR).fillna("")
    return rejected


def _finish(
    frame: pd.DataFrame, rejected: pd.DataFrame, summary: dict[str, Any], strict: bool
) -> ReadResult:
    result = ReadResult(frame=frame, rejected=rejected, summary=summary)
    if strict and not result.ok:
        raise result.first_rejection_error()  # type: ignore[misc]
    return result
