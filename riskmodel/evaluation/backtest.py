"""Rolling-origin backtest of the model against the field's baselines and the oracle.

At each origin the model is retrained on all windows before it and predicts every shift of the
next ``step_days``; the baselines score the same windows from the same past events; the oracle
ranks segments by the simulator's truth (expected recorded events) when a truth file is given.
Metrics (METHODOLOGY.md, "Evaluation") are pooled over all predicted windows.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import InputError
from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation.baselines import compute_baselines
from riskmodel.evaluation.plots import plot_calibration, plot_hit_rate_curves
from riskmodel.files import atomic_write_json, atomic_write_text
from riskmodel.model.engine import InMemoryEngine, TrainingEngine
from riskmodel.model.pipeline import Dataset

log = logging.getLogger(__name__)


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
    """

    table: pd.DataFrame
    results: dict[str, Any]
    preds: dict[str, np.ndarray]
    actual: np.ndarray
    windows: pd.DataFrame
    info: dict[str, Any]


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[dict[str, Any]]]:
    """Retrain at every origin and predict its step: (recorded, effort-neutral, no-exposure
    variant or None) predictions of windows ``[origins[0], w1)`` and the fit statistics."""
    w0, S = origins[0], ds.n_segments
    pred = np.zeros((w1 - w0, S))
    pred_neutral = np.zeros((w1 - w0, S))
    pred_noexp = np.zeros((w1 - w0, S)) if compare_exposure else None
    fits = []
    for o in origins:
        e = min(o + step, w1)
        model = engine.fit(ds, o, params)
        pred[o - w0 : e - w0] = engine.predict(ds, model, o, e)
        pred_neutral[o - w0 : e - w0] = engine.predict(ds, model, o, e, effort_neutral=True)
        fits.append({"origin": str(ds.windows["start_utc"].iloc[o]), **model.fit_info_})
        if pred_noexp is not None:
            m2 = engine.fit(ds, o, params, drop=("effort",))
            pred_noexp[o - w0 : e - w0] = engine.predict(ds, m2, o, e)
        log.info("backtest origin %s done", ds.windows["date"].iloc[o].date())
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
    """
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
        ds, engine, origins, w1, step_days * K, params, compare_exposure
    )
    actual = ds.panel.counts[w0:w1].astype(float)
    win = ds.windows.iloc[w0:w1].reset_index(drop=True)
    t_b = time.perf_counter()
    ev_frame = ds.events[ds.events["seq"] >= 0][["timestamp", "seq", "chainage_km", "persons"]]
    seg = ds.geo.segments[["segment_id", "seq", "length_m", "chainage_from_km", "chainage_to_km"]]
    base = compute_baselines(ev_frame, seg, win, names=baselines)
    t_b = time.perf_counter() - t_b
    preds: dict[str, np.ndarray] = {"model": pred}
    preds.update(base)
    info: dict[str, Any] = {
        "from": str(start),
        "to": str(end),
        "step_days": step_days,
        "windows": int(w1 - w0),
        "segments": S,
        "events_in_period": int(actual.sum()),
        "origins": fits,
        "baseline_seconds": round(t_b, 2),
    }
    if truth is not None:
        preds["oracle"] = truth_matrix(truth, ds, w0, w1, "expected_recorded")
        if compare_exposure:
            cross = truth_matrix(truth, ds, w0, w1, "expected_crossings")
            info["exposure"] = exposure_comparison(
                pred_neutral, pred_noexp, cross, ds.geo.segments["length_m"].to_numpy()
            )
    lengths = ds.geo.segments["length_m"].to_numpy()
    results = ev.evaluate_all(preds, actual, lengths, oracle_key="oracle")
    table = ev.results_table(results, oracle_key="oracle", baselines=[b for b in base])
    info["seconds"] = round(time.perf_counter() - t_all, 1)
    return BacktestResult(table, results, preds, actual, win, info)


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


def write_report(
    res: BacktestResult, out: str | Path, *, title: str = "Backtest"
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md``, ``hit_rate.png`` and ``calibration.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = res.table
    paths = {
        "metrics": atomic_write_json(
            out / "metrics.json",
            {"table": _records(table), "results": res.results, "info": res.info},
        ),
        "hit_rate_png": plot_hit_rate_curves(res.results, out / "hit_rate.png"),
        "calibration_png": plot_calibration(res.results, out / "calibration.png"),
    }
    lines = [
        f"# {title}",
        "",
        f"Period {res.info['from']} .. {res.info['to']}: {res.info['windows']} shift windows x "
        f"{res.info['segments']} segments, {res.info['events_in_period']} recorded events; retrained every "
        f"{res.info['step_days']} days ({len(res.info['origins'])} origins).",
        "",
        "HR_c = share of events in the top c % of border length (ranked per shift); PAI = HR/c; "
        "PEI* = captured / best possible; gap_closed = (HR_model - HR_best baseline) / (HR_oracle - HR_best baseline).",
        "",
        ev.markdown_table(table),
        "",
    ]
    if "exposure" in res.info:
        lines += [
            "## Exposure-awareness (against true crossings)",
            "",
            "Share of the *true* crossings (simulator truth, recorded or not) in the top c % of border length.",
            "",
            "| variant | HR 5 % | HR 10 % | HR 20 % |",
            "|---|---|---|---|",
        ]
        for k, v in res.info["exposure"].items():
            lines.append(
                f"| {k} | {v['true_crossing_hr_5']:.3f} | {v['true_crossing_hr_10']:.3f} | {v['true_crossing_hr_20']:.3f} |"
            )
        lines.append("")
    lines += ["![hit-rate curves](hit_rate.png)", "", "![calibration](calibration.png)", ""]
    paths["report"] = atomic_write_text(out / "report.md", "\n".join(lines))
    return paths


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    recs = []
    for name, row in df.iterrows():
        r = {"method": name}
        for k, v in row.items():
            r[k] = None if (isinstance(v, float) and not np.isfinite(v)) else v
        recs.append(r)
    return recs


def short_table(table: pd.DataFrame) -> str:
    """Fixed-width table for the terminal."""
    cols = [
        "hr_5",
        "hr_10",
        "hr_20",
        "pai_10",
        "pei_10",
        "oracle_ratio_10",
        "gap_closed_10",
        "deviance",
    ]
    cols = [c for c in cols if c in table.columns]
    head = f"{'method':<11}" + "".join(f"{c:>16}" for c in cols)
    rows = [head]
    for name, r in table.iterrows():
        cells = "".join(f"{'' if pd.isna(r[c]) else format(r[c], '.3f'):>16}" for c in cols)
        rows.append(f"{name:<11}{cells}")
    return "\n".join(rows)
