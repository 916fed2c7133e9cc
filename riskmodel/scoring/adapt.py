"""Adaptation in production: correct today's map by the engine's recent residuals.

The same rule as the field trial (:func:`riskmodel.model.counts.recent_residual_factor`
with :data:`~riskmodel.model.RESIDUAL_DAYS`, ``RESIDUAL_PRIOR`` and
``RESIDUAL_KM``): over the last ``RESIDUAL_DAYS`` days, the events recorded on each segment
(pooled over +-``RESIDUAL_KM`` along the border) are compared with what the engine itself
forecast for the same shifts, and the forecasts of the next shifts are multiplied by the
Poisson-Gamma shrunk ratio ``(prior + recorded) / (prior + forecast)``.

The forecasts come from the workspace's forecast store (:mod:`riskmodel.scoring.store`). A
shift counts when

* it lies in the look-back window before the first scored shift and has ended by the last
  event of the events file (a shift the events file does not reach yet would look empty);
* its forecast was out of sample: its date is after the training window of the model that
  made it (forecasts of older models count, as in the trial, which keeps its forecasts across
  retrains);
* the forecast's ``exposure`` (officer-hours it assumed) equals the effort the effort file now
  records for that shift. Otherwise it compared recorded events with the wrong effort (a
  patrolled stretch records more): the shift is forecast again by the current model with the
  effort spent (as the trial does) when that is out of sample for the current model, else the
  cell is left out.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.features import build_features
from riskmodel.features.effort import EXPOSURE_FEATURE
from riskmodel.features.kernels import band
from riskmodel.model import RESIDUAL_DAYS, RESIDUAL_KM, RESIDUAL_PRIOR
from riskmodel.model.counts import recent_residual_factor
from riskmodel.scoring.store import StoreRead

log = logging.getLogger(__name__)

# Factors outside [1 / _NOTE, _NOTE] are counted in the provenance summary.
_NOTE = 1.25


def residual_pool(ds: Any, km: float = RESIDUAL_KM) -> Any:
    """The pooling matrix of the correction: segments within +-``km`` along the border."""
    seg = ds.geo.segments
    mid = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy(float)
    return band(mid, km)


def lookback(ds: Any, w0: int, days: int = RESIDUAL_DAYS) -> tuple[int, int]:
    """Window range ``[a, b)`` the correction of windows from ``w0`` looks at: the last
    ``days`` days before ``w0`` that the events file covers (ended by its last event)."""
    K = ds.panel.n_shifts
    a = max(0, w0 - days * K)
    ev = ds.events[ds.events["seq"] >= 0]
    if not len(ev):
        return a, a
    last = ev["timestamp"].max()
    ends = ds.windows["end_utc"].iloc[a:w0]
    b = a + int((ends <= last).sum()) if len(ends) else a
    return a, b


def residual_correction(
    ds: Any,
    bundle: Any,
    stored: StoreRead,
    w0: int,
    *,
    days: int = RESIDUAL_DAYS,
    prior: float = RESIDUAL_PRIOR,
    km: float = RESIDUAL_KM,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Factors ``(S,)`` for the windows from ``w0`` and a provenance summary.

    Parameters
    ----------
    ds : Dataset
        The run's data (events recorded so far, effort spent).
    bundle : Bundle
        The model in use (re-forecasts shifts whose assumed effort was not the effort spent).
    stored : StoreRead
        Store rows of the look-back dates.
    w0 : int
        First window scored.
    days, prior, km
        As :func:`~riskmodel.model.counts.recent_residual_factor` in the trial.

    Returns
    -------
    (ndarray, dict)
        Factors (ones when nothing counts) and ``{"ran", "why"?, "window_days", "prior",
        "pool_km", "from", "to", "shifts_used", "cells_used", "refreshed_cells",
        "dropped_cells", "models", "store_files", "skipped_files", "factor"}``.
    """
    S = ds.n_segments
    ones = np.ones(S)
    a, b = lookback(ds, w0, days)
    info: dict[str, Any] = {
        "ran": False,
        "window_days": days,
        "prior": prior,
        "pool_km": km,
        "store_files": list(stored.files),
        "skipped_files": list(stored.skipped),
    }
    y, m, mask, detail = _matrices(ds, bundle, stored.rows, a, b)
    info.update(detail)
    if not mask.any():
        info["why"] = "no stored out-of-sample forecasts of recorded shifts in the window"
        return ones, info
    f = recent_residual_factor(y * mask, m * mask, residual_pool(ds, km), prior=prior)
    info["ran"] = True
    info["factor"] = {
        "min": round(float(f.min()), 6),
        "median": round(float(np.median(f)), 6),
        "max": round(float(f.max()), 6),
        f"segments_above_{_NOTE:g}": int((f > _NOTE).sum()),
        f"segments_below_{1 / _NOTE:g}": int((f < 1 / _NOTE).sum()),
    }
    return f, info


def _matrices(
    ds: Any, bundle: Any, rows: pd.DataFrame, a: int, b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Recorded, forecast and usable-cell matrices ``(b - a, S)`` of windows ``a .. b``."""
    S = ds.n_segments
    n = max(b - a, 0)
    y = np.asarray(ds.panel.counts[a:b], float)
    m = np.zeros((n, S))
    mask = np.zeros((n, S), bool)
    detail: dict[str, Any] = {"shifts_used": 0, "cells_used": 0, "refreshed_cells": 0}
    if n == 0 or rows.empty:
        return y, m, mask, detail
    win = ds.windows.iloc[a:b]
    key = {
        (d.strftime("%Y-%m-%d"), s): i
        for i, (d, s) in enumerate(zip(win["date"], win["shift"], strict=True))
    }
    wi = np.array([key.get(k, -1) for k in zip(rows["date"], rows["shift"], strict=True)], int)
    seq_of = pd.Series(np.arange(S), index=ds.geo.segments["segment_id"].astype(str))
    si = seq_of.reindex(rows["segment_id"].astype(str)).fillna(-1).to_numpy(int)
    out_of_sample = (
        rows["date"].astype(str).to_numpy() > rows["trained_until"].astype(str).to_numpy()
    )
    in_window = int(((wi >= 0) & (si >= 0)).sum())
    ok = (wi >= 0) & (si >= 0) & out_of_sample
    r = rows[ok]
    wi, si = wi[ok], si[ok]
    m[wi, si] = r["expected"].to_numpy(float)
    mask[wi, si] = True
    # Was the effort the forecast assumed the effort spent?
    spent = np.asarray(ds.panel.effort[a:b], float)[wi, si]
    assumed = r["exposure"].to_numpy(float)
    wrong = np.isfinite(assumed) & ~np.isclose(assumed, spent, rtol=1e-5, atol=1e-6)
    mask[wi[wrong], si[wrong]] = False
    until = str(bundle.manifest.get("training_window", {}).get("until", "9999-12-31"))
    dates = win["date"].dt.strftime("%Y-%m-%d").to_numpy()
    redo = np.unique(wi[wrong])
    redo = redo[dates[redo] > until]  # only where the current model is out of sample
    if redo.size:
        fresh = _forecast_with_effort(ds, bundle, a + redo)
        cells = np.isin(wi, redo) & wrong
        m[wi[cells], si[cells]] = fresh[np.searchsorted(redo, wi[cells]), si[cells]]
        mask[wi[cells], si[cells]] = True
        detail["refreshed_cells"] = int(cells.sum())
    detail.update(
        {
            "from": str(dates[0]),
            "to": str(dates[-1]),
            "shifts_used": int(mask.any(axis=1).sum()),
            "cells_used": int(mask.sum()),
            "dropped_cells": int(in_window - mask.sum()),
            "models": sorted(set(r["model_id"].astype(str))),
        }
    )
    return y, m, mask, detail


def _forecast_with_effort(ds: Any, bundle: Any, windows: np.ndarray) -> np.ndarray:
    """The current model's forecasts ``(len(windows), S)`` of past windows with the effort
    spent (features use only data before each window: still a forecast, made later)."""
    model = bundle.model
    cols = list(model.feature_names_in_)
    X = build_features(ds.panel, ds.static, ds.spec, np.asarray(windows))
    pred = np.asarray(model.predict(X[cols]), float)
    return pred.reshape(len(windows), ds.n_segments)


def exposure_of(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Officer-hours each scored row assumed (NaN when the model has no exposure feature)."""
    if EXPOSURE_FEATURE in list(model.feature_names_in_):
        return X[EXPOSURE_FEATURE].to_numpy(float)
    return np.full(len(X), np.nan)
