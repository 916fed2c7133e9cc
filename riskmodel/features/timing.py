"""``[time]`` features: shift, weekday, season, public holidays and darkness of the window."""

from __future__ import annotations

import calendar as _cal
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.features.family import Block, Column, Family, Where
from riskmodel.features.kernels import solar_elevation
from riskmodel.features.spec import FeatureSpec

_COUNTRIES = {"SI": "Slovenia", "HR": "Croatia"}

log = logging.getLogger(__name__)


def holiday_dates(
    country: str, years: range, cache_dir: str | Path | None = None
) -> frozenset[dt.date]:
    """Public holidays of ``country`` (ISO code) in ``years``, by the ``holidays`` package.

    With ``cache_dir`` (a workspace's cache folder) the dates are kept there as JSON, keyed
    by the package's version, the country and the years: the package imports every country it
    knows to look one up (~0.15 s of every command), the file reads in ~1 ms. A cache that
    cannot be read or written is skipped.
    """
    from importlib import metadata

    path = None
    if cache_dir is not None:
        try:
            ver = metadata.version("holidays")
        except metadata.PackageNotFoundError:
            ver = "unknown"
        path = Path(cache_dir) / f"holidays-{ver}-{country}-{years.start}-{years.stop}.json"
        try:
            return frozenset(map(dt.date.fromisoformat, json.loads(path.read_text("utf-8"))))
        except (OSError, ValueError, TypeError):
            pass  # missing or broken: computed and written again
    import holidays as _holidays

    dates = frozenset(_holidays.country_holidays(country, years=years).keys())
    if path is not None:
        from riskmodel.files import atomic_write_text

        try:
            atomic_write_text(path, json.dumps(sorted(d.isoformat() for d in dates)))
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is skipped
            log.debug("holiday cache %s not written: %s", path, exc)
    return dates


def time_columns(
    windows: pd.DataFrame,
    segments: Any,
    spec: FeatureSpec,
    *,
    cache_dir: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """Every ``[time]`` value of every window (float32), computed once per panel
    (``cache_dir``: where :func:`holiday_dates` may keep the holiday calendars)."""
    t = spec.section("time")
    win = windows
    out: dict[str, np.ndarray] = {}
    local = win["start_local"]
    date = win["date"]
    out["shift_idx"] = win["shift_idx"].to_numpy()
    hours = win["hours"].to_numpy()
    out["shift_hours"] = hours
    out["local_hour"] = ((local.dt.hour + local.dt.minute / 60 + hours / 2) % 24).to_numpy()
    out["weekday"] = date.dt.day_of_week.to_numpy()
    doy = date.dt.day_of_year.to_numpy()
    out["doy_sin"] = np.sin(2 * np.pi * doy / 365.25)
    out["doy_cos"] = np.cos(2 * np.pi * doy / 365.25)
    m = date.dt.month.to_numpy()
    out["month_sin"] = np.sin(2 * np.pi * m / 12)
    out["month_cos"] = np.cos(2 * np.pi * m / 12)
    years = (
        range(int(date.dt.year.min()) - 1, int(date.dt.year.max()) + 2)
        if len(win)
        else range(2000, 2001)
    )
    for cc in t["holidays"]:
        cal = holiday_dates(cc, years, cache_dir)
        out[f"holiday_{cc.lower()}"] = np.array([d in cal for d in date.dt.date])
    if t["darkness"]:
        lat = float(segments["rep_lat"].mean())
        lon = float(segments["rep_lon"].mean())
        st = win["start_utc"].dt.tz_localize(None).to_numpy()
        en = win["end_utc"].dt.tz_localize(None).to_numpy()
        frac = (np.arange(16) + 0.5) / 16
        samples = st[:, None] + ((en - st)[:, None] * frac[None, :]).astype("timedelta64[ns]")
        out["darkness"] = (solar_elevation(samples, lat, lon) < -6).mean(axis=1)
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def _compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    for c in cols:
        yield blk.per_window(ctx.time_cols[c.name][blk.tg])


def _fixed(
    family: str, group: str, names: tuple[str, ...]
) -> Callable[[FeatureSpec], list[Column]]:
    def columns(spec: FeatureSpec) -> list[Column]:
        return [Column(n, family, group) for n in names]

    return columns


def _holiday_columns(spec: FeatureSpec) -> list[Column]:
    return [
        Column(f"holiday_{cc.lower()}", "holiday", "holiday", {"country": cc.upper()})
        for cc in spec.section("time")["holidays"]
    ]


def _darkness_columns(spec: FeatureSpec) -> list[Column]:
    return [Column("darkness", "darkness", "dark")] if spec.section("time")["darkness"] else []


def _shift_describe(c: Column, v: float, where: Where) -> str:
    return f"{where.get('shift', 'this')} shift"


def _weekday_describe(c: Column, v: float, where: Where) -> str:
    return _cal.day_name[int(v) % 7]  # 0 = Monday


def _season_describe(c: Column, v: float, where: Where) -> str:
    m = where.get("month")
    return f"season ({_cal.month_name[int(m)]})" if m else "season"


def _holiday_describe(c: Column, v: float, where: Where) -> str:
    cc = c.params["country"]
    return f"{'public holiday' if v else 'no public holiday'} in {_COUNTRIES.get(cc, cc)}"


def _darkness_describe(c: Column, v: float, where: Where) -> str:
    return f"dark for {float(v):.0%} of the shift"


FAMILIES: tuple[Family, ...] = (
    Family(
        "shift",
        "time",
        _fixed("shift", "time", ("shift_idx", "shift_hours", "local_hour")),
        _compute,
        _shift_describe,
    ),
    Family(
        "weekday", "time", _fixed("weekday", "weekday", ("weekday",)), _compute, _weekday_describe
    ),
    Family(
        "season",
        "time",
        _fixed("season", "season", ("doy_sin", "doy_cos", "month_sin", "month_cos")),
        _compute,
        _season_describe,
    ),
    Family("holiday", "time", _holiday_columns, _compute, _holiday_describe),
    Family("darkness", "time", _darkness_columns, _compute, _darkness_describe),
)
