"""Risk tables (the contract between scoring and planning) and units-per-area files.

A risk table has one row per border segment per shift: ``segment_id, date, shift, shift_start,
shift_end, expected, area`` (optionally ``threat``, ``reason_1..3``, ``model_id``, geometry).

``date`` follows the one date rule (:func:`riskmodel.config.dates.parse_day`, strict
``YYYY-MM-DD``: ``5.12.2025`` is refused, never guessed) and must be the local date of
``shift_start`` (a night shift belongs to the day it starts); ``shift_end`` is after
``shift_start``; ``expected`` and ``threat`` (when present) are finite and ``>= 0`` on every row.

Times written with the station's offset (``+01:00``) give their local date as written; times in
UTC (a GeoPackage stores DATETIME in UTC, ``...Z``) are first converted to the station's zone.
A GeoPackage is read whole: every layer with the risk columns (one per shift), not only the
first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config.dates import parse_day
from riskmodel.errors import ConfigError, InputError

REQUIRED_COLUMNS = ("segment_id", "date", "shift", "shift_start", "shift_end", "expected", "area")


def read_risk(path: str | os.PathLike[str], *, timezone: str = "Europe/Ljubljana") -> pd.DataFrame:
    """Read a risk table (CSV, Parquet, or a vector file with geometry) and validate it.

    Parameters
    ----------
    path : path-like
        The risk file (e.g. from ``riskmodel score``).
    timezone : str
        The station's zone, for times stored in UTC (see the module docs).

    Returns
    -------
    DataFrame or GeoDataFrame
        Validated risk (see :func:`validate_risk`).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("risk file not found", where=str(p), fix="check the --risk path")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            df = pd.read_csv(p, dtype={"segment_id": str, "date": str, "shift": str, "area": str})
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif suffix == ".gpkg":
            df = _read_gpkg_risk(p)
        else:
            import geopandas as gpd

            df = gpd.read_file(p)
    except InputError:
        raise
    except Exception as exc:  # readers raise many types on unreadable files
        raise InputError(
            f"cannot read risk file: {str(exc).splitlines()[0]}",
            where=str(p),
            fix="give a CSV/Parquet/GeoJSON risk table from 'riskmodel score'",
        ) from None
    return validate_risk(df, where=str(p), timezone=timezone)


def _read_gpkg_risk(p: Path) -> pd.DataFrame:
    """Every layer of a GeoPackage that holds the risk columns, in layer order."""
    import geopandas as gpd
    import pyogrio

    frames = []
    for name, _geom in pyogrio.list_layers(p):
        cols = set(pyogrio.read_info(p, layer=name)["fields"])
        if set(REQUIRED_COLUMNS) <= cols:
            frames.append(gpd.read_file(p, layer=name))
    if not frames:
        raise InputError(
            "no layer with the risk columns in this GeoPackage",
            where=str(p),
            fix=f"a risk layer needs {', '.join(REQUIRED_COLUMNS)}",
        )
    return pd.concat(frames, ignore_index=True)


def validate_risk(
    risk: pd.DataFrame, where: str | None = None, *, timezone: str = "Europe/Ljubljana"
) -> pd.DataFrame:
    """Check the risk contract and normalise types.

    Parameters
    ----------
    risk : DataFrame
        A risk table (see the module docs).
    where : str, optional
        Its source, for error messages.
    timezone : str
        The station's zone, for times stored in UTC.

    Returns
    -------
    DataFrame
        A copy: ids and names as stripped strings, ``date`` as ``YYYY-MM-DD``, ``expected`` as
        float, and ``_shift_start_utc`` / ``_shift_end_utc`` (UTC timestamps) added.

    Raises
    ------
    InputError
        Missing columns, negative or non-finite ``expected``, duplicate segment in a shift.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in risk.columns]
    if missing:
        raise InputError(
            f"risk table lacks column(s) {', '.join(missing)}",
            where=where,
            fix=f"a risk table needs {', '.join(REQUIRED_COLUMNS)}",
        )
    if risk.empty:
        raise InputError("risk table is empty", where=where, fix="score at least one shift")
    df = risk.copy()
    for c in ("segment_id", "shift", "area"):
        df[c] = df[c].astype(str).str.strip()
    df["date"] = _dates(df["date"], where)
    df["expected"] = _non_negative(df, "expected", where)
    if "threat" in df.columns:
        df["threat"] = _non_negative(df, "threat", where)
    for c in ("shift_start", "shift_end"):
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            # A datetime column (GeoPackage DATETIME) is UTC; write it as ISO text like a CSV.
            df[c] = pd.to_datetime(df[c], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        try:
            ts = pd.to_datetime(df[c].astype(str), utc=True, format="ISO8601")
        except (ValueError, TypeError):
            raise InputError(
                f"column {c} holds values that are not ISO 8601 times",
                where=where,
                fix="write times like 2024-08-01T06:00:00+02:00",
            ) from None
        df[f"_{c}_utc"] = ts
    _check_shift_times(df, where, timezone)
    dup = df.duplicated(["date", "shift", "segment_id"])
    if dup.any():
        r = df[dup].iloc[0]
        raise InputError(
            f"segment {r['segment_id']} appears twice in {r['date']} {r['shift']}",
            where=where,
            fix="keep one row per segment per shift",
        )
    return df


def _row_error(df: pd.DataFrame, mask: np.ndarray, what: str, where: str | None, fix: str) -> None:
    """Raise for the first row where ``mask`` is True (row numbers as in the file, header = 1)."""
    if mask.any():
        row = int(np.flatnonzero(mask)[0])
        raise InputError(f"{what} (row {row + 2})", where=where, fix=fix)


def _dates(col: pd.Series, where: str | None) -> pd.Series:
    """``date`` by the one strict date rule, as ``YYYY-MM-DD`` strings."""
    vals = col.astype(object)
    out: dict[Any, str] = {}
    for i, v in enumerate(vals):
        key = v if not isinstance(v, pd.Timestamp) else v.date()
        if key in out:
            continue
        try:
            if isinstance(v, str) and v.strip().lower() in ("today", "tomorrow", "yesterday"):
                raise ConfigError("relative")
            if isinstance(v, str) and v.strip()[:1] in "+-":
                raise ConfigError("relative")
            out[key] = parse_day(key if not isinstance(key, str) else key.strip()).isoformat()
        except (ConfigError, TypeError):
            raise InputError(
                f"column date holds {v!r}, which is not a YYYY-MM-DD date (row {i + 2})",
                where=where,
                fix="write dates as YYYY-MM-DD (a spreadsheet may have reformatted them)",
            ) from None
    return pd.Series(
        [out[v if not isinstance(v, pd.Timestamp) else v.date()] for v in vals],
        index=col.index,
        dtype=object,
    )


def _non_negative(df: pd.DataFrame, col: str, where: str | None) -> pd.Series:
    """A column as floats, refusing missing, non-finite or negative values row by row."""
    v = pd.to_numeric(df[col], errors="coerce").astype(float)
    a = v.to_numpy()
    bad = ~np.isfinite(a) | (a < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{col} must be a finite number >= 0 (row {row + 2}: {df[col].iloc[row]!r})",
            where=where,
            fix="re-run scoring or fix the value",
        )
    return v


def _check_shift_times(df: pd.DataFrame, where: str | None, timezone: str) -> None:
    """``shift_end`` after ``shift_start``; ``date`` equal to the local date of ``shift_start``."""
    start, end = df["_shift_start_utc"], df["_shift_end_utc"]
    _row_error(
        df,
        (end <= start).to_numpy(),
        "shift_end is not after shift_start (a shift of zero or negative length)",
        where,
        "give every shift a positive length",
    )
    # The local date as written (the offset in the text is the station's local time), except
    # for times in UTC, which are read in the station's zone.
    text = df["shift_start"].astype(str).str.strip()
    local = text.str[:10]
    utc = text.str.endswith(("Z", "+00:00"))
    if utc.any():
        local = local.where(
            ~utc, df["_shift_start_utc"].dt.tz_convert(timezone).dt.strftime("%Y-%m-%d")
        )
    mism = (local != df["date"]).to_numpy()
    if mism.any():
        row = int(np.flatnonzero(mism)[0])
        raise InputError(
            f"date {df['date'].iloc[row]} is not the local date of shift_start "
            f"{df['shift_start'].iloc[row]} (row {row + 2})",
            where=where,
            fix="date must be the day the shift starts; check the date column's format",
        )


def read_units_per_area(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a CSV ``area,units`` into ``{area: units}``.

    Parameters
    ----------
    path : path-like
        The CSV file.

    Returns
    -------
    dict
        Area name -> units (whole numbers >= 0).

    Raises
    ------
    InputError
        Unreadable file, missing columns, bad counts or an area listed twice.
    """
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype={"area": str})
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read units-per-area file: {exc}",
            where=str(p),
            fix="give a CSV with columns area,units",
        ) from None
    if not {"area", "units"} <= set(df.columns):
        raise InputError("units-per-area file needs columns area,units", where=str(p))
    u = pd.to_numeric(df["units"], errors="coerce")
    if u.isna().any() or (u < 0).any() or (u != u.round()).any():
        raise InputError("units must be whole numbers >= 0", where=str(p))
    if df["area"].duplicated().any():
        raise InputError(
            f"area {df['area'][df['area'].duplicated()].iloc[0]!r} listed twice", where=str(p)
        )
    return {str(a).strip(): int(n) for a, n in zip(df["area"], u, strict=True)}
