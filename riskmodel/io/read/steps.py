"""Steps shared by the row readers (events, effort): argument checks, loading, columns."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.coords import check_crs
from riskmodel.io.read.flags import RowFlags
from riskmodel.io.read.postgis import DbSource
from riskmodel.io.read.tables import RawTable, empty_rows, load_table
from riskmodel.io.read.times import DST_POLICIES, check_tz, utc_timestamp
from riskmodel.io.read.values import norm_name, str_arrow, str_series

log = logging.getLogger(__name__)


def check_options(
    path: Any,
    assume_tz: str | None,
    crs: str | None,
    dst: str,
    now: Any,
    min_date: Any,
    metric_crs: str,
) -> tuple[Any, str, dict[str, Any]]:
    """Validate the arguments (ConfigError) before touching the file; the source is a Path
    or a :class:`~riskmodel.io.read.postgis.DbSource`."""
    if dst not in DST_POLICIES:
        raise ConfigError(
            f"unknown DST policy {dst!r}",
            where="--dst",
            fix=f"use one of: {', '.join(DST_POLICIES)}",
        )
    tz = check_tz(assume_tz)
    if crs:
        check_crs(crs)
    check_crs(metric_crs)
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else utc_timestamp(now, "now")
    min_ts = max(utc_timestamp(min_date, "min_date"), pd.Timestamp("1678-01-01", tz="UTC"))
    p = path if isinstance(path, DbSource) else Path(path)
    opts = {"assume_tz": tz, "dst": dst, "now": now_ts, "min_date": min_ts}
    return p, str(p), opts


def load_rows(
    p: Path | DbSource, kind: str, encoding: str | None, delimiter: str | None
) -> tuple[RawTable, RowFlags, list[str]]:
    """Load a file and start its row flags (malformed and empty rows flagged)."""
    if isinstance(p, DbSource):  # a database table or query: same checks from here on
        table = p.load_raw(kind)
    else:
        table = load_table(p, encoding=encoding, delimiter=delimiter, kind=kind)
    flags = RowFlags(len(table.data))
    notes = list(table.warnings)
    if table.truncated_last:
        cut = np.zeros(len(table.data), dtype=bool)
        cut[-1] = True
        flags.mark(cut, "truncated_last_line")
    flags.mark(table.malformed, "malformed_row")
    if table.geometry is None:
        empty = empty_rows(table.data)
        if empty.all():
            raise InputError(
                "the file has a header but no data rows",
                where=str(p),
                fix="export the data again including the rows",
            )
        flags.mark(empty, "empty_row")
    return table, flags, notes


def missing_location(mapping: dict[str, str], table: RawTable, required: bool) -> list[str]:
    """Location columns still missing (none for a file with geometry)."""
    if table.geometry is not None:
        return []
    if {"lat", "lon"} <= mapping.keys() or {"x", "y"} <= mapping.keys():
        return []
    if "lat" in mapping or "lon" in mapping:
        return ["lon" if "lat" in mapping else "lat"]
    if "x" in mapping or "y" in mapping:
        return ["y" if "x" in mapping else "x"]
    return ["lat+lon or x+y"] if required else []


def time_values(
    data: pd.DataFrame, mapping: dict[str, str], key: str, notes: list[str], user_mapped: bool
) -> tuple[pd.Series | None, set[str]]:
    """The time column, or a date column joined with a separate time-of-day column."""
    cols = list(data.columns)
    dates = [c for c in cols if norm_name(c) in ("date", "datum")]
    times = [c for c in cols if norm_name(c) in ("time", "cas", "ura")]
    if not user_mapped and dates and times and mapping.get(key) in dates + times:
        t = str_series(str_arrow(data[times[0]]))
        sample = t[t != ""].head(200)
        if len(sample) and sample.str.fullmatch(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?").mean() >= 0.9:
            d = str_series(str_arrow(data[dates[0]]))
            joined = (d + " " + t.str.replace(".", ":", regex=False)).str.strip()
            notes.append(
                f"{key} joined from the date column {dates[0]!r} and the time column {times[0]!r}"
            )
            mapping[key] = f"{dates[0]}+{times[0]}"
            return joined, {dates[0], times[0]}
    if key not in mapping:
        return None, set()
    return data[mapping[key]], set()


def drop_unused_coords(mapping: dict[str, str], keys: tuple[str, ...], notes: list[str]) -> None:
    """Forget coordinate columns the points did not come from: they stay as extra columns."""
    spare = [k for k in ("lon", "lat", "x", "y") if k in mapping and k not in keys]
    if spare:
        cols = ", ".join(mapping[k] for k in spare)
        src = "/".join(mapping[k] for k in keys) if keys else "the geometry"
        notes.append(f"points taken from {src}; {cols} kept as extra column(s), not checked")
        for k in spare:
            del mapping[k]


def expand_mask(ok: np.ndarray, sub_mask: np.ndarray) -> np.ndarray:
    """Lift a mask over the ``ok`` rows back to all rows."""
    out = np.zeros(len(ok), dtype=bool)
    out[np.flatnonzero(ok)[sub_mask]] = True
    return out


def release_columns(data: pd.DataFrame, cols: set[str | None]) -> None:
    """Drop raw columns already parsed (the quarantine copy is made) to cap peak memory."""
    for c in cols:
        if c in data.columns:
            del data[c]
    pa.default_memory_pool().release_unused()


def add_extras(
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
