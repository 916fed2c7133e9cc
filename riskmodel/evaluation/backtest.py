"""Rolling-origin backtest of the model against the field's baselines and the oracle.

At each origin the model is retrained on all windows before it and predicts every shift of the
next ``step_days``; the baselines score the same windows from the same past events; the oracle
ranks segments by the simulator's truth when a truth file is given.

What is scored is an explicit choice (``against``): ``"records"`` (the recorded events of the
events file; the oracle ranks by the expected *recorded* events) or ``"truth"`` (all true
crossings of the simulator, recorded or not; the model ranks by its effort-neutral ``threat``
and the oracle by the true intensity). Records are made where the patrols stand, so on a
patrolled world the two differ a lot; with a truth file the report shows both side by side.
Metrics (METHODOLOGY.md, "Evaluation") are pooled over all predicted windows, with day-bootstrap
intervals (:mod:`riskmodel.evaluation.bootstrap`) and per-shift and per-area breakdowns; the
report itself is written by :mod:`riskmodel.evaluation.report`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import InputError
from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation.baselines import compute_baselines
from riskmodel.evaluation.bootstrap import DRAWS, SEED, best_baseline, bootstrap_metrics
from riskmodel.evaluation.report import by_area, by_shift, short_table, verdict, write_report
from riskmodel.model.engine import InMemoryEngine, TrainingEngine
from riskmodel.model.pipeline import Dataset

log = logging.getLogger(__name__)

__all__ = [
    "BacktestResult",
    "Progress",
    "TARGETS",
    "run_backtest",
    "short_table",
    "side_by_side",
    "truth_matrix",
    "write_report",
]

#: What a backtest scores: recorded events, or all true crossings (simulator truth).
TARGETS = ("records", "truth")
TARGET_TEXT = {
    "records": "recorded events (the events file)",
    "truth": "true crossings (simulator truth: all crossings, recorded or not)",
}

#: ``progress(done, total, message)``: called with ``done = 0`` before the first origin and after
#: every origin (``done = 1 .. total``); the library never prints, the caller decides how to show it.
Progress = Callable[[int, int, str], None]


@dataclass
class BacktestResult:
    """Predictions and metrics of one backtest.

    Attributes
    ----------
    table : DataFrame
        One row per method (see :func:`riskmodel.evaluation.metrics.results_table`).
    results : dict
        Full metrics per method (curves, calibration).
    preds : dict
        Predictions (W, S) per method over the evaluated windows.
    actual : ndarray (W, S)
    windows : DataFrame
        The evaluated windows.
    info : dict
        Origins, training statistics, timings, exposure comparison.
    ci : dict
        ``{method: {metric: {"value", "lo", "hi"}}}`` (day bootstrap).
    breakdown : dict
        ``methods`` (model, best baseline, oracle), ``by_shift`` and ``by_area`` rows.
    """

    table: pd.DataFrame
    results: dict[str, Any]
    preds: dict[str, np.ndarray]
    actual: np.ndarray
    windows: pd.DataFrame
    info: dict[str, Any]
    ci: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, Any] = field(default_factory=dict)

    def verdict(self) -> dict[str, Any]:
        """The plain-words verdict (see :func:`riskmodel.evaluation.report.verdict`)."""
        base = [m for m in self.table.index if self.table.loc[m, "role"] == "baseline"]
        if not self.ci:
            return {"outcome": "undefined", "best_baseline": None, "text": ""}
        return verdict(self.ci, base, target=self.info.get("target", "records"))


def truth_matrix(
    truth: pd.DataFrame, ds: Dataset, w0: int, w1: int, column: str = "expected_recorded"
) -> np.ndarray:
    """Align a truth table (``segment_id``, ``shift_start``, ``column``) to windows ``[w0, w1)``."""
    S = ds.n_segments
    starts = ds.windows["start_utc"].iloc[w0:w1]
    t = truth[["segment_id", "shift_start", column]].copy()
    t["shift_start"] = pd.to_datetime(t["shift_start"], utc=True)
    t = t[(t["shift_start"] >= starts.iloc[0]) & (t["shift_start"] <= starts.iloc[-1])]
    w_of = pd.Series(np.arange(w0, w1), index=pd.DatetimeIndex(starts))
    s_of = ds.geo.segments.set_index("segment_id")["seq"]
    wi = w_of.reindex(pd.DatetimeIndex(t["shift_start"])).to_numpy()
    si = s_of.reindex(t["segment_id"]).to_numpy()
    ok = ~(pd.isna(wi) | pd.isna(si))
    out = np.full((w1 - w0, S), np.nan)
    out[wi[ok].astype(int) - w0, si[ok].astype(int)] = t[column].to_numpy(float)[ok]
    if np.isnan(out).any():
        miss = int(np.isnan(out).sum())
        raise InputError(
            f"truth file lacks {miss} of {out.size} (segment, shift) cells of the backtest period",
            fix="use the truth file of the same simulation and segment set",
        )
    return out


def _predict_origins(
    ds: Dataset,
    engine: TrainingEngine,
    origins: list[int],
    w1: int,
    step: int,
    params: dict[str, Any] | None,
    compare_exposure: bool,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[dict[str, Any]]]:
    """Retrain at every origin and predict its step: (recorded, effort-neutral, no-exposure
    variant or None) predictions of windows ``[origins[0], w1)`` and the fit statistics."""
    w0, S = origins[0], ds.n_segments
    pred = np.zeros((w1 - w0, S))
    pred_neutral = np.zeros((w1 - w0, S))
    pred_noexp = np.zeros((w1 - w0, S)) if compare_exposure else None
    fits = []
    n = len(origins)
    if progress:
        progress(0, n, f"{n} origin(s) from {ds.windows['date'].iloc[w0].date()}, retraining ...")
    for i, o in enumerate(origins, 1):
        t0 = time.perf_counter()
        e = min(o + step, w1)
        model = engine.fit(ds, o, params)
        pred[o - w0 : e - w0] = engine.predict(ds, model, o, e)
        pred_neutral[o - w0 : e - w0] = engine.predict(ds, model, o, e, effort_neutral=True)
        fits.append({"origin": str(ds.windows["start_utc"].iloc[o]), **model.fit_info_})
        if pred_noexp is not None:
            m2 = engine.fit(ds, o, params, drop=("effort",))
            pred_noexp[o - w0 : e - w0] = engine.predict(ds, m2, o, e)
        day = ds.windows["date"].iloc[o].date()
        log.info("backtest origin %s done", day)
        if progress:
            progress(i, n, f"origin {i}/{n} {day}: trained in {time.perf_counter() - t0:.1f} s")
    return pred, pred_neutral, pred_noexp, fits


def run_backtest(
    ds: Dataset,
    start: str | dt.date,
    end: str | dt.date,
    *,
    step_days: int = 28,
    truth: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
    baselines: list[str] | None = None,
    compare_exposure: bool = False,
    engine: TrainingEngine | None = None,
    progress: Progress | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
    against: str = "records",
) -> BacktestResult:
    """Rolling-origin backtest over local dates ``[start, end]``.

    Parameters
    ----------
    ds : Dataset
    start, end : date
        First and last local date predicted.
    step_days : int
        Retrain every ``step_days``; predict the windows of the next step.
    truth : DataFrame, optional
        Simulator truth: adds the oracle (and the exposure comparison against true crossings).
    params : dict, optional
        :class:`~riskmodel.model.estimator.RiskRegressor` parameters.
    baselines : list of str, optional
        Baselines to run (default all).
    compare_exposure : bool
        Also train a variant without any effort features and compare both against the true
        crossings (needs ``truth``).
    engine : TrainingEngine, optional
        Where features are built and models trained (default
        :class:`~riskmodel.model.engine.InMemoryEngine`).
    progress : callable, optional
        ``progress(done, total, message)`` per origin (see :data:`Progress`).
    draws, seed : int
        Day-bootstrap draws and generator seed of the confidence intervals.
    against : str
        ``"records"`` (default): score the recorded events; ``"truth"``: score all true
        crossings of the simulator (needs ``truth`` with a ``crossings`` column); the model
        is then ranked by its effort-neutral threat and the oracle by the true intensity.
        Either way, with a truth file that has the crossings, ``info["side_by_side"]`` scores
        every method against both (:func:`side_by_side`).
    """
    if against not in TARGETS:
        raise InputError(f"unknown backtest target {against!r}", fix="use --against records|truth")
    if against == "truth" and (truth is None or "crossings" not in truth.columns):
        raise InputError(
            "scoring against true crossings needs a truth file with the realised crossings"
            + ("" if truth is None else " (this one has no 'crossings' column)"),
            fix="give --truth truth.parquet written by this version of riskmodel simulate",
        )
    engine = engine or InMemoryEngine()
    t_all = time.perf_counter()
    w0 = ds.window_of_date(start)
    w1 = ds.window_of_date(pd.Timestamp(end) + pd.Timedelta(days=1))
    if w1 <= w0:
        raise InputError(
            f"empty backtest period {start} .. {end}", fix="give --from before --to within the data"
        )
    S = ds.n_segments
    K = ds.panel.n_shifts
    origins = list(range(w0, w1, step_days * K))
    pred, pred_neutral, pred_noexp, fits = _predict_origins(
        ds, engine, origins, w1, step_days * K, params, compare_exposure, progress
    )
    records = ds.panel.counts[w0:w1].astype(float)
    crossings = (
        truth_matrix(truth, ds, w0, w1, "crossings")
        if truth is not None and "crossings" in truth.columns
        else None
    )
    actual = crossings if against == "truth" and crossings is not None else records
    win = ds.windows.iloc[w0:w1].reset_index(drop=True)
    t_b = time.perf_counter()
    ev_frame = ds.events[ds.events["seq"] >= 0][["timestamp", "seq", "chainage_km", "persons"]]
    seg = ds.geo.segments[["segment_id", "seq", "length_m", "chainage_from_km", "chainage_to_km"]]
    base = compute_baselines(ev_frame, seg, win, names=baselines)
    t_b = time.perf_counter() - t_b
    # Against the truth the model is ranked as the plans rank: by its effort-neutral threat.
    preds: dict[str, np.ndarray] = {"model": pred_neutral if against == "truth" else pred}
    preds.update(base)
    info: dict[str, Any] = {
        "target": against,
        "target_text": TARGET_TEXT[against],
        "model_ranking": "threat" if against == "truth" else "expected",
        "from": str(start),
        "to": str(end),
        "step_days": step_days,
        "windows": int(w1 - w0),
        "segments": S,
        "events_in_period": int(records.sum()),
        "days": int(win["date"].nunique()),
        "params": dict(params or {}),
        "bootstrap_draws": draws,
        "bootstrap_seed": seed,
        "origins": fits,
        "baseline_seconds": round(t_b, 2),
    }
    lengths = ds.geo.segments["length_m"].to_numpy()
    if truth is not None:
        orc_rec = truth_matrix(truth, ds, w0, w1, "expected_recorded")
        cross = truth_matrix(truth, ds, w0, w1, "expected_crossings")
        preds["oracle"] = cross if against == "truth" else orc_rec
        if compare_exposure:
            info["exposure"] = exposure_comparison(pred_neutral, pred_noexp, cross, lengths)
        if crossings is not None:
            info["true_crossings_in_period"] = int(crossings.sum())
            variants = {"model_threat": pred_neutral, "model_expected": pred}
            if pred_noexp is not None:
                variants["model_no_effort"] = pred_noexp
            info["side_by_side"] = side_by_side(
                {**variants, **base},
                {"records": records, "truth": crossings},
                {"records": orc_rec, "truth": cross},
                lengths,
            )
    results = ev.evaluate_all(preds, actual, lengths, oracle_key="oracle")
    table = ev.results_table(results, oracle_key="oracle", baselines=[b for b in base])
    t_ci = time.perf_counter()
    ci = bootstrap_metrics(
        preds, actual, lengths, win["date"].to_numpy(), baselines=list(base), draws=draws, seed=seed
    )
    bb = best_baseline({b: results[b]["hr_10"] for b in base}, list(base))
    methods = ["model", *([bb] if bb else []), *(["oracle"] if "oracle" in preds else [])]
    area = ds.geo.segments["area"] if "area" in ds.geo.segments else [""] * S
    breakdown = {
        "methods": methods,
        "by_shift": by_shift(preds, actual, lengths, win["shift"].to_numpy(), methods),
        "by_area": by_area(preds, actual, lengths, list(area), methods),
    }
    info["ci_seconds"] = round(time.perf_counter() - t_ci, 2)
    info["seconds"] = round(time.perf_counter() - t_all, 1)
    return BacktestResult(table, results, preds, actual, win, info, ci, breakdown)


def side_by_side(
    preds: dict[str, np.ndarray],
    targets: dict[str, np.ndarray],
    oracles: dict[str, np.ndarray],
    lengths: np.ndarray,
    fractions: tuple[float, ...] = (0.05, 0.10, 0.20),
) -> dict[str, Any]:
    """Every method scored against every target (records and true crossings), side by side.

    Parameters
    ----------
    preds : dict of str to ndarray (W, S)
        Rankings by method (model variants, baselines).
    targets : dict of str to ndarray (W, S)
        What is scored: ``records`` (recorded events) and ``truth`` (all true crossings).
    oracles : dict of str to ndarray (W, S)
        The oracle ranking of each target (expected recorded events; true intensity).
    lengths : ndarray (S,)
    fractions : tuple of float
        Shares of border length.

    Returns
    -------
    dict
        ``{target: {method: {"hr_5", "hr_10", "hr_20", "oracle_ratio_5", ...}}}``, the oracle
        under ``"oracle"``; hit rates pooled over all windows as in the main table.
    """
    fr = np.asarray(fractions, float)
    out: dict[str, Any] = {}
    for tname, act in targets.items():
        orc = ev.hit_rate_curve(oracles[tname], act, lengths, fractions=fr)
        rows: dict[str, Any] = {}
        for name, p in {**preds, "oracle": oracles[tname]}.items():
            hr = ev.hit_rate_curve(p, act, lengths, fractions=fr)
            row: dict[str, Any] = {}
            for c, h, o in zip(fr, hr, orc, strict=True):
                k = int(round(100 * c))
                row[f"hr_{k}"] = float(h)
                row[f"oracle_ratio_{k}"] = float(h / o) if o > 0 else None
            rows[name] = row
        out[tname] = {"events": float(act.sum()), "methods": rows}
    return out


def exposure_comparison(
    neutral: np.ndarray, noexp: np.ndarray | None, crossings: np.ndarray, lengths: np.ndarray
) -> dict[str, Any]:
    """How well each variant ranks where people *really* cross (simulator truth).

    The exposure-aware model is evaluated effort-neutral (in-window effort set to zero); the
    variant without effort features as it is. "Actual" is the expected true crossings, so
    detection bias (recording follows patrols) is taken out of the target.
    """
    out: dict[str, Any] = {}
    for name, p in (("exposure_aware", neutral), ("no_exposure", noexp)):
        if p is None:
            continue
        curve = ev.hit_rate_curve(p, crossings, lengths, fractions=np.array([0.05, 0.10, 0.20]))
        out[name] = {
            "true_crossing_hr_5": float(curve[0]),
            "true_crossing_hr_10": float(curve[1]),
            "true_crossing_hr_20": float(curve[2]),
        }
    orc = ev.hit_rate_curve(crossings, crossings, lengths, fractions=np.array([0.05, 0.10, 0.20]))
    out["oracle"] = {
        "true_crossing_hr_5": float(orc[0]),
        "true_crossing_hr_10": float(orc[1]),
        "true_crossing_hr_20": float(orc[2]),
    }
    return out
