"""Shift definitions and DST-correct shift windows.

A shift is named and given as local wall-clock times (``night=22:00-06:00``); a shift whose end
is not after its start ends on the next day. Windows are computed in the local zone and converted
to UTC, so the night of the October DST change lasts 9 h and that of March 7 h.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from riskmodel.config.shifts import Shift, parse_shifts


def _localize(naive: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    # Non-existent local times (spring forward) move forward; ambiguous ones take DST (first).
    return naive.tz_localize(tz, nonexistent="shift_forward", ambiguous=np.ones(len(naive), bool))


def shift_windows(
    start: str | dt.date,
    end: str | dt.date,
    shifts: tuple[Shift, ...] | str,
    tz: str = "Europe/Ljubljana",
) -> pd.DataFrame:
    """All shift windows whose start date (local) lies in ``[start, end]`` (inclusive).

    Parameters
    ----------
    start, end : str or date
        First and last local date.
    shifts : tuple of Shift or str
        Shift definitions (or their string spec).
    tz : str
        IANA zone of the shifts.

    Returns
    -------
    DataFrame
        Columns ``window`` (int, 0..), ``date`` (local date, datetime64), ``shift`` (name),
        ``shift_idx``, ``start_utc``, ``end_utc`` (tz-aware UTC), ``start_local`` (tz-aware local),
        ``hours`` (true duration, DST-correct). Ordered by start time.
    """
    if isinstance(shifts, str):
        shifts = parse_shifts(shifts)
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    frames = []
    for i, s in enumerate(shifts):
        st = days + pd.Timedelta(hours=s.start.hour, minutes=s.start.minute)
        en = days + pd.Timedelta(days=int(s.overnight), hours=s.end.hour, minutes=s.end.minute)
        st_l = _localize(pd.DatetimeIndex(st), tz)
        en_l = _localize(pd.DatetimeIndex(en), tz)
        frames.append(
            pd.DataFrame(
                {
                    "date": days,
                    "shift": s.name,
                    "shift_idx": i,
                    "start_local": st_l,
                    "start_utc": st_l.tz_convert("UTC"),
                    "end_utc": en_l.tz_convert("UTC"),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True).sort_values(
        ["start_utc", "shift_idx"], kind="stable"
    )
    out = out.reset_index(drop=True)
    out["hours"] = (out["end_utc"] - out["start_utc"]).dt.total_seconds() / 3600.0
    out.insert(0, "window", np.arange(len(out)))
    return out


def assign_shift(ts_utc: pd.Series, windows: pd.DataFrame) -> pd.Series:
    """Map UTC timestamps to the ``window`` index containing them (-1 if none).

    Windows must be non-overlapping and sorted by start (as :func:`shift_windows` returns).
    """
    starts = (
        windows["start_utc"].to_numpy(dtype="datetime64[ns]")
        if len(windows)
        else np.array([], "datetime64[ns]")
    )
    ends = windows["end_utc"].to_numpy(dtype="datetime64[ns]") if len(windows) else starts
    t = pd.to_datetime(ts_utc, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    idx = np.searchsorted(starts, t, side="right") - 1
    ok = (idx >= 0) & (idx < len(starts))
    ok[ok] &= t[ok] < ends[idx[ok]]
    res = np.where(
        ok,
        windows["window"].to_numpy()[np.clip(idx, 0, max(len(starts) - 1, 0))]
        if len(starts)
        else -1,
        -1,
    )
    return pd.Series(res, index=ts_utc.index, name="window")
