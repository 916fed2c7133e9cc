"""Timestamp parsing to UTC, time-zone and daylight-saving policies.

The DST policies are described in :mod:`riskmodel.io.read.events` and METHODOLOGY.md.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmodel.config.reading import DST_POLICIES  # noqa: F401 (re-exported)
from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.flags import RowFlags
from riskmodel.io.read.values import NAT, str_arrow, str_series, to_np_bool

log = logging.getLogger(__name__)

CHUNK = 1_000_000  # rows per string-parsing chunk
_AWARE_RE = r"\d[:.]\d{2}(?:[:.]\d{2}(?:[.,]\d{1,9})?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_ISO_RE = r"^\d{4}-\d{2}-\d{2}(?:$|[T ])"
_TIME = (
    r"(?:(?:\s*[T ,]\s*|\s+)(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2}(?:[.,]\d{1,9})?))?)?"
    r"\s*(?P<tz>[zZ]|[+-]\d{2}(?::?\d{2})?)?$"
)
_DMY = r"^(?P<d>\d{1,2})\s*(?P<sep>[./-])\s*(?P<m>\d{1,2})\s*[./-]\s*(?P<y>\d{4})\.?" + _TIME
_YMD = r"^(?P<y>\d{4})\s*(?P<sep>[./-])\s*(?P<m>\d{1,2})\s*[./-]\s*(?P<d>\d{1,2})\.?" + _TIME


def check_tz(assume_tz: str | None) -> str | None:
    """Validate an IANA zone name (``None`` passes)."""
    if assume_tz is None or assume_tz == "":
        return None
    try:
        ZoneInfo(assume_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {assume_tz!r}",
            where="--assume-tz",
            fix="use an IANA name such as Europe/Ljubljana",
        ) from None
    return assume_tz


def utc_timestamp(value: Any, name: str) -> pd.Timestamp:
    """A UTC Timestamp from str / datetime / Timestamp (naive means UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} is not a date: {value!r}", fix="use YYYY-MM-DD") from None
    if ts is pd.NaT:
        raise ConfigError(f"{name} is not a date: {value!r}", fix="use YYYY-MM-DD")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso_to_utc(s: pd.Series, aware: bool) -> np.ndarray:
    """ISO 8601 strings -> datetime64[us] (UTC for aware, wall clock for naive); NaT if not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = pd.to_datetime(s, format="ISO8601", utc=aware, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        return np.full(len(s), NAT)
    if isinstance(r.dtype, pd.DatetimeTZDtype):
        if not aware:  # an offset slipped past the regex: let the strict path decide
            return np.full(len(s), NAT)
        r = r.dt.tz_localize(None)
    return r.to_numpy(dtype="datetime64[us]")


def _slash_order(arr: pa.ChunkedArray, notes: list[str], label: str) -> bool:
    """Decide d/m/y vs m/d/y once per column from slashed values with a part > 12."""
    if not to_np_bool(pc.match_substring(arr, "/")).any():
        return False
    parts = pc.extract_regex(arr, r"^(?P<a>\d{1,2})\s*/\s*(?P<b>\d{1,2})\s*/\s*\d{4}")
    a = pd.to_numeric(pd.Series(pc.struct_field(parts, [0]).to_pandas()), errors="coerce")
    b = pd.to_numeric(pd.Series(pc.struct_field(parts, [1]).to_pandas()), errors="coerce")
    if a.notna().sum() == 0:
        return False
    if (b > 12).any() and not (a > 12).any():
        notes.append(f"{label}: slashed dates read as month/day/year (US order)")
        return True
    if not (a > 12).any():
        notes.append(f"{label}: slashed dates are ambiguous; read as day/month/year")
    return False


def _parse_strings(arr: pa.ChunkedArray, month_first: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """One chunk of trimmed strings -> (UTC instants, naive wall-clock times, n date-only)."""
    n = len(arr)
    utc = np.full(n, NAT)
    local = np.full(n, NAT)
    if to_np_bool(pc.match_substring_regex(arr, r"[A-Za-z]{3}$")).any():
        for pat, off in (
            ("(?i)\\s*(?:utc|gmt)$", "+00:00"),
            ("(?i)\\s*cest$", "+02:00"),
            ("(?i)\\s*cet$", "+01:00"),
        ):
            arr = pc.replace_substring_regex(arr, pat, off)
    aware = to_np_bool(pc.match_substring_regex(arr, _AWARE_RE))
    iso = to_np_bool(pc.match_substring_regex(arr, _ISO_RE))
    s = str_series(arr)
    m = aware & iso
    if m.any():
        utc[m] = _iso_to_utc(s[m], True)
    m = ~aware & iso
    if m.any():
        local[m] = _iso_to_utc(s[m], False)
    left = (s != "").to_numpy() & np.isnat(utc) & np.isnat(local)
    if left.any():
        utc[left], local[left] = _parse_other(s[left], month_first)
    short = to_np_bool(pc.less_equal(pc.utf8_length(arr), 11))
    n_date_only = int((short & (~np.isnat(utc) | ~np.isnat(local))).sum())
    return utc, local, n_date_only


def _parse_other(sub: pd.Series, month_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Day-first dotted / slashed dates (31.3.2024 2:30, 2024/03/31 ...) -> ISO -> datetimes."""
    ex = sub.str.extract(_DMY)
    miss = ex["y"].isna()
    if miss.any():
        ex2 = sub[miss].str.extract(_YMD)
        ex.loc[miss, ex2.columns] = ex2
    if month_first:
        slash = (ex["sep"] == "/") & ex["d"].notna()
        ex.loc[slash, ["d", "m"]] = ex.loc[slash, ["m", "d"]].to_numpy()
    date = ex["y"] + "-" + ex["m"].str.zfill(2) + "-" + ex["d"].str.zfill(2)
    sec = (":" + ex["S"].str.replace(",", ".", regex=False)).fillna("")
    clock = ("T" + ex["H"].str.zfill(2) + ":" + ex["M"] + sec).fillna("")
    tz = ex["tz"].fillna("")
    iso = (date + clock + tz).reset_index(drop=True)
    aware = (tz != "").to_numpy()
    utc = np.full(len(sub), NAT)
    local = np.full(len(sub), NAT)
    if aware.any():
        utc[aware] = _iso_to_utc(iso[aware], True)
    if (~aware).any():
        local[~aware] = _iso_to_utc(iso[~aware], False)
    return utc, local


def parse_times(
    values: pd.Series,
    *,
    flags: RowFlags,
    label: str,
    assume_tz: str | None,
    dst: str,
    where: str,
    now: pd.Timestamp,
    min_date: pd.Timestamp,
    notes: list[str],
    suffix: str = "",
) -> np.ndarray:
    """Parse a time column into UTC instants, flagging bad rows.

    Aware values (offset / Z / UTC / CET / CEST) are converted to UTC. Naive values need
    ``assume_tz``: without it the file is refused when *all* values are naive, otherwise the
    naive rows are quarantined. Local times that do not exist or occur twice at DST changes
    follow ``dst`` (see :func:`riskmodel.io.read.events.read_events`).

    Returns
    -------
    ndarray
        ``datetime64[ns]`` UTC instants (NaT for flagged rows).
    """
    n = len(values)
    rc = (lambda c: f"{c}:{suffix}") if suffix else (lambda c: c)
    utc = np.full(n, NAT)
    local = np.full(n, NAT)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc[:] = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        missing = np.isnat(utc)
    elif pd.api.types.is_datetime64_dtype(dtype):
        local[:] = values.to_numpy("datetime64[us]")
        missing = np.isnat(local)
    else:
        arr = str_arrow(values)
        missing = to_np_bool(pc.equal(arr, ""))
        month_first = _slash_order(arr, notes, label)
        n_date_only = 0
        for lo in range(0, n, CHUNK):  # chunks bound the object arrays pandas parses from
            hi = min(lo + CHUNK, n)
            u, lo_, k = _parse_strings(arr.slice(lo, hi - lo), month_first)
            utc[lo:hi], local[lo:hi] = u, lo_
            n_date_only += k
        if n_date_only:
            notes.append(
                f"{label}: {n_date_only} value(s) have a date but no time of day; read as 00:00 "
                "local (they bias the night shift)"
            )
    flags.mark(missing, rc("missing_timestamp"))
    flags.mark(~missing & np.isnat(utc) & np.isnat(local), rc("bad_timestamp"))
    naive = ~np.isnat(local)
    if naive.any():
        if assume_tz is None:
            if np.isnat(utc).all():
                i = int(np.flatnonzero(naive)[0])
                raise InputError(
                    f"{label} values have no time zone (row {i + 1}: {_val(values, i)!r})",
                    where=where,
                    fix="give --assume-tz Europe/Ljubljana (or assume_tz in riskmodel.toml), "
                    "or add UTC offsets such as +02:00",
                )
            flags.mark(naive, rc("naive_timestamp"))
        else:
            _localise(
                local,
                naive,
                utc,
                values,
                flags=flags,
                tz=assume_tz,
                dst=dst,
                where=where,
                label=label,
                rc=rc,
            )
    valid = ~np.isnat(utc)
    fut = valid & (utc > np.datetime64(now.tz_localize(None), "us"))
    old = valid & (utc < np.datetime64(min_date.tz_localize(None), "us"))
    flags.mark(fut, rc("future_timestamp"))
    flags.mark(old, rc("too_old_timestamp"))
    utc[fut | old] = NAT  # also keeps every value inside the ns range
    return utc.astype("datetime64[ns]")


def _val(values: pd.Series, i: int) -> str:
    v = values.iloc[i]
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _localise(
    local: np.ndarray,
    naive: np.ndarray,
    utc: np.ndarray,
    values: pd.Series,
    *,
    flags: RowFlags,
    tz: str,
    dst: str,
    where: str,
    label: str,
    rc: Any,
) -> None:
    """Fill ``utc`` for naive rows, applying the DST policy to gap / fold times."""
    pos = np.flatnonzero(naive)
    loc = pd.Series(local[pos])
    r = loc.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    utc[pos] = r.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    hole = r.isna().to_numpy()
    if not hole.any():
        return
    hpos = pos[hole]
    sub = loc[hole].reset_index(drop=True)
    amb = sub.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").isna().to_numpy()
    if dst == "raise":
        i = int(hpos[0])
        kind = (
            "occurs twice (clocks went back)"
            if amb[0]
            else "does not exist (clocks jumped forward)"
        )
        raise InputError(
            f"row {i + 1}: local {label} {_val(values, i)!r} {kind} in {tz} at the DST change",
            where=where,
            fix="choose --dst shift|earliest|latest|drop (see riskmodel validate --help)",
        )
    gap = ~amb
    if gap.any() and dst in ("shift", "earliest", "latest"):
        # Read with the offset in force before the change (clock not yet moved):
        # 02:30 on the spring night = 01:30 UTC = 03:30 summer time.
        t = sub[gap]
        before = (t - pd.Timedelta(days=1)).dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        off = before.dt.tz_localize(None) - before.dt.tz_convert("UTC").dt.tz_localize(None)
        utc[hpos[gap]] = (t - off).to_numpy("datetime64[us]")
    else:
        flags.mark(_mask(len(utc), hpos[gap]), rc("dst_nonexistent"))
    if amb.any() and dst in ("earliest", "latest"):
        t = sub[amb]
        first = np.full(len(t), dst == "earliest")  # True = summer time = the earlier instant
        res = t.dt.tz_localize(tz, ambiguous=first, nonexistent="NaT")
        utc[hpos[amb]] = res.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    else:
        flags.mark(_mask(len(utc), hpos[amb]), rc("dst_ambiguous"))


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return m
