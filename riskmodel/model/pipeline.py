"""Dataset assembly, training, rolling-origin backtest and scoring.

One :class:`Dataset` holds a geography, validated events/effort and the binned panel; every
verb (train, backtest, score) slices rows of one leakage-free feature build.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.config.settings import Settings
from riskmodel.errors import InputError
from riskmodel.features import (
    FeatureSpec,
    Panel,
    assign_segments,
    build_features,
    feature_columns,
    static_features,
)
from riskmodel.geo.geodata import CACHE_DIR, Geography
from riskmodel.geo.shifts import shift_windows

if TYPE_CHECKING:  # reading data and scoring never import XGBoost
    from riskmodel.model.estimator import RiskRegressor

log = logging.getLogger(__name__)

BURN_IN_DAYS = 91  # days after the first event without a full history: not trained on
# A run may reach at most this far past the last event (one year of windows: a forecast
# horizon, not a typo such as 2262 that would build centuries of windows).
MAX_DAYS_AFTER_DATA = 366
# Warnings (stderr): the last event is older than this when scoring (30 days: a monthly export
# cycle plus slack; features such as recent counts are then all zero and the map shows the
# static background only) ...
STALE_AFTER_DAYS = 30
# ... or the history is thinner than this (a quarter of events: less than the burn-in and too
# few to learn seasonality from).
THIN_EVENTS, THIN_DAYS = 200, 91
# Reader keywords that apply to effort files too (the rest are for events only).
EFFORT_READ_KEYS = ("columns", "assume_tz", "crs", "strict", "encoding", "delimiter", "dst")


@dataclass
class Dataset:
    """Everything the model needs, aligned on one geography and one set of shift windows.

    Attributes
    ----------
    geo : Geography
    events : DataFrame
        Canonical events with ``seq``, ``chainage_km``.
    effort : DataFrame or None
        Effort with ``seq``.
    windows : DataFrame
        Shift windows from the first event's date to ``end``.
    panel : Panel
    static : DataFrame
    spec : FeatureSpec
    inputs : dict
        Input fingerprints (file -> sha256) and read summaries.
    settings : Settings
    """

    geo: Geography
    events: pd.DataFrame
    effort: pd.DataFrame | None
    windows: pd.DataFrame
    panel: Panel
    static: pd.DataFrame
    spec: FeatureSpec
    inputs: dict[str, Any]
    settings: Settings
    _features: pd.DataFrame | None = field(default=None, repr=False)

    def features(self) -> pd.DataFrame:
        """The full feature frame (built once, cached)."""
        if self._features is None:
            t0 = time.perf_counter()
            self._features = build_features(self.panel, self.static, self.spec)
            log.info(
                "features: %d rows x %d in %.1f s", *self._features.shape, time.perf_counter() - t0
            )
        return self._features

    def window_of_date(self, date: str | dt.date, side: str = "left") -> int:
        """Index of the first window whose local date is ``date`` (or after it)."""
        d = pd.Timestamp(date)
        return int(np.searchsorted(self.windows["date"].to_numpy(), d.to_datetime64(), side=side))

    @property
    def n_segments(self) -> int:
        """Number of segments."""
        return len(self.geo.segments)


def _to_metric(df: pd.DataFrame, crs: str) -> pd.DataFrame:
    if {"x", "y"} <= set(df.columns) and df.attrs.get("xy_crs") == crs:
        return df
    pts = gpd.GeoSeries(gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326").to_crs(crs)
    out = df.copy()
    out["x"] = pts.x.to_numpy()
    out["y"] = pts.y.to_numpy()
    return out


@timed("prepare dataset (panel, static)")
def prepare_dataset(
    settings: Settings,
    events: pd.DataFrame,
    effort: pd.DataFrame | None = None,
    *,
    geo: Geography | None = None,
    end: str | dt.date | None = None,
    spec: FeatureSpec | None = None,
    inputs: dict[str, Any] | None = None,
) -> Dataset:
    """Assemble a dataset from canonical frames.

    Parameters
    ----------
    settings : Settings
    events : DataFrame
        ``timestamp`` (tz-aware) and ``lon``/``lat`` or metric ``x``/``y``; ``persons`` optional.
    effort : DataFrame, optional
        ``segment_id`` (or location) with ``start``, ``end``, ``officer_hours``.
    geo : Geography, optional
        Default: from settings.
    end : date, optional
        Last local date of the windows (default: the last event's date).
    spec : FeatureSpec, optional
    inputs : dict, optional
        Fingerprints to record in bundles and outputs.
    """
    geo = geo or Geography(settings)
    spec = spec or FeatureSpec.load(settings.feature_spec or None)
    tz = settings.timezone
    ev = events.copy()
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    if "persons" not in ev:
        ev["persons"] = 1
    ev = _to_metric(ev, geo.crs)
    ev = assign_segments(ev, geo.segments, float(settings.max_distance_m), index=geo.border_index)
    if len(ev) == 0:
        raise InputError(
            "no events to learn from", fix="give an events file with at least a few weeks of data"
        )
    local = ev["timestamp"].dt.tz_convert(tz)
    first = local.min().date() - dt.timedelta(days=1)
    last = _check_end(end, local, len(ev)) if end is not None else local.max().date()
    windows = shift_windows(first, last, settings.shifts, tz)
    ef = None
    if effort is not None and len(effort):
        ef = effort.copy()
        for c in ("start", "end"):
            ef[c] = pd.to_datetime(ef[c], utc=True)
        ids = geo.segments.set_index("segment_id")["seq"]
        if "segment_id" in ef and ef["segment_id"].notna().any():
            ef["seq"] = ef["segment_id"].map(ids).fillna(-1).astype(int)
        else:
            ef = assign_segments(
                _to_metric(ef, geo.crs),
                geo.segments,
                float(settings.max_distance_m),
                index=geo.border_index,
            )
    panel = Panel.build(windows, geo.segments, ev, ef)
    if settings.workspace is not None:  # reference data (holiday calendars) cached there
        panel.extra["cache_dir"] = str(Path(settings.workspace.state_dir) / CACHE_DIR)
    static = static_features(geo, spec)
    return Dataset(geo, ev, ef, windows, panel, static, spec, inputs or {}, settings)


def _check_end(end: str | dt.date, local: pd.Series, n_events: int) -> dt.date:
    """The last date a run needs, checked against the events' span (warnings for stale or
    thin data; an error before the first event or far after the last)."""
    day = pd.Timestamp(end).date()
    d0, d1 = local.min().date(), local.max().date()
    if day < d0:
        raise InputError(
            f"date {day} is before the first event ({d0})",
            fix=f"choose a date from {d0} on, or give the older events",
        )
    if (day - d1).days > MAX_DAYS_AFTER_DATA:
        raise InputError(
            f"date {day} is {(day - d1).days} days after the last event ({d1}); at most "
            f"{MAX_DAYS_AFTER_DATA} are allowed",
            fix="check the date, or give the recent events",
        )
    if (day - d1).days > STALE_AFTER_DAYS:
        log.warning(
            "the last event is from %s, %d days before %s: the data look stale (more than %d "
            "days); recent-activity features are empty -- give the recent events",
            d1,
            (day - d1).days,
            day,
            STALE_AFTER_DAYS,
        )
    if n_events < THIN_EVENTS or (d1 - d0).days < THIN_DAYS:
        log.warning(
            "thin data: %d events over %d days (fewer than %d events or %d days); "
            "the model's ranking will be unreliable",
            n_events,
            (d1 - d0).days + 1,
            THIN_EVENTS,
            THIN_DAYS,
        )
    return day


@timed("read dataset")
def read_dataset(
    settings: Settings,
    events_path: str | os.PathLike[str],
    effort_path: str | os.PathLike[str] | None = None,
    *,
    border: str | None = None,
    end: str | None = None,
    read_kwargs: dict[str, Any] | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Read and validate the user's files (see :mod:`riskmodel.io.read.events`) into a dataset.

    Rejected rows are written to ``rejected_<input>.csv`` in ``quarantine_dir``.
    """
    from riskmodel.io.read.effort import read_effort
    from riskmodel.io.read.events import read_events

    geo = Geography(settings, border=border)
    kw = dict(read_kwargs or {})
    res = read_events(
        events_path, border=geo.border_index, max_distance_m=float(settings.max_distance_m), **kw
    )
    _account(res, quarantine_dir)
    fingerprints: dict[str, Any] = {
        "events": {
            "file": str(events_path),
            "sha256": res.summary.get("sha256"),
            "accepted": res.summary.get("accepted"),
            "quarantined": res.summary.get("quarantined"),
        }
    }
    eff = None
    if effort_path:
        kw_e = {k: v for k, v in kw.items() if k in EFFORT_READ_KEYS}
        r2 = read_effort(effort_path, segment_ids=set(geo.segments["segment_id"]), **kw_e)
        _account(r2, quarantine_dir)
        eff = r2.frame
        fingerprints["effort"] = {
            "file": str(effort_path),
            "sha256": r2.summary.get("sha256"),
            "accepted": r2.summary.get("accepted"),
            "quarantined": r2.summary.get("quarantined"),
        }
    ev = res.frame
    ev.attrs["xy_crs"] = geo.crs
    return prepare_dataset(settings, ev, eff, geo=geo, end=end, inputs=fingerprints)


def _account(res: Any, quarantine_dir: str | os.PathLike[str] | None) -> None:
    """Write the quarantine, say what was rejected, refuse a file whose every row was."""
    written = res.write_quarantine(quarantine_dir) if quarantine_dir is not None else None
    res.announce(written)
    err = res.all_rejected_error()
    if err is not None:
        raise err


# ----------------------------------------------------------------------------- training


def _xy(
    ds: Dataset, rows: np.ndarray, spec_cols: list[str]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    X = ds.features()
    sub = X.loc[rows]
    y = ds.panel.counts.reshape(-1)[rows]
    return sub[spec_cols], y, sub["window"].to_numpy()


def train_rows(ds: Dataset, until_window: int) -> np.ndarray:
    """Boolean row mask of the training set: windows after the burn-in and before ``until_window``."""
    X = ds.features()
    first = int(np.argmax(ds.panel.counts.sum(axis=1) > 0))
    start = first + BURN_IN_DAYS * ds.panel.n_shifts
    w = X["window"].to_numpy()
    if start >= until_window:
        start = first  # short histories: train on what there is
    return (w >= start) & (w < until_window)


def fit_model(
    ds: Dataset,
    until_window: int,
    *,
    params: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[RiskRegressor, list[str]]:
    """Fit a :class:`RiskRegressor` on all windows before ``until_window``.

    Parameters
    ----------
    drop : tuple of str
        Feature-name prefixes to leave out (e.g. ``("effort",)`` for the no-exposure variant).
    """
    X = ds.features()
    cols = [c for c in feature_columns(X) if not c.startswith(drop)] if drop else feature_columns(X)
    rows = train_rows(ds, until_window)
    if rows.sum() == 0:
        raise InputError(
            "no training windows before the cut-off",
            fix="choose a later --until or give more history",
        )
    from riskmodel.model.estimator import RiskRegressor

    Xt, y, t = _xy(ds, rows, cols)
    t0 = time.perf_counter()
    model = RiskRegressor(**(params or {})).fit(Xt, y, time=t)
    model.fit_info_["train_seconds"] = round(time.perf_counter() - t0, 2)
    log.info(
        "trained on %d rows (%d kept) in %.1f s, %d trees",
        len(y),
        model.fit_info_["rows_kept"],
        model.fit_info_["train_seconds"],
        model.best_iteration_ + 1,
    )
    return model, cols


def predict_windows(
    ds: Dataset,
    model: RiskRegressor,
    cols: list[str],
    w0: int,
    w1: int,
    *,
    effort_neutral: bool = False,
) -> np.ndarray:
    """Predictions (w1 - w0, S) for windows ``[w0, w1)``."""
    X = ds.features()
    S = ds.n_segments
    sub = X.iloc[w0 * S : w1 * S][cols]
    mu = model.predict_neutral(sub) if effort_neutral else model.predict(sub)
    return mu.reshape(w1 - w0, S)
