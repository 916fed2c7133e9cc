"""Evaluation verb: the rolling-origin backtest with its report."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from riskmodel.api._model import training_engine
from riskmodel.evaluation.backtest import BacktestResult, Progress, run_backtest, write_report
from riskmodel.io.read.truth import read_truth
from riskmodel.model.pipeline import Dataset

log = logging.getLogger(__name__)


def backtest(
    ds: Dataset,
    start: str,
    end: str,
    *,
    out: str | os.PathLike[str],
    truth: str | os.PathLike[str] | None = None,
    step_days: int = 28,
    params: dict[str, Any] | None = None,
    compare_exposure: bool = False,
    scheduler: str | None = None,
    progress: Progress | None = None,
    against: str = "records",
) -> tuple[BacktestResult, dict[str, Path]]:
    """Backtest the model against the baselines (and the oracle with ``truth``) and write the
    report (``metrics.json``, ``report.md``, plots) into ``out``.

    Parameters
    ----------
    ds : Dataset
        From :func:`riskmodel.api.read_inputs`.
    start, end : str
        First and last local date predicted.
    out : path-like
        Report folder.
    truth : path-like, optional
        Simulator truth (``truth.parquet``/``.csv``): adds the oracle and, with
        ``compare_exposure``, the variant without effort features.
    step_days : int
        Retrain every N days.
    params : dict, optional
        Model parameters.
    compare_exposure : bool
        Also train without effort features (needs ``truth``).
    scheduler : str, optional
        Dask scheduler address or ``"local"``: bounded-memory training (needs the dask extra).
    progress : callable, optional
        ``progress(done, total, message)`` before the first and after every origin (the
        library prints nothing; the CLI shows a bar or log lines).
    against : str
        ``"records"`` (recorded events) or ``"truth"`` (all true crossings; needs ``truth``):
        what the tables and the verdict score; the report says which.

    Returns
    -------
    (BacktestResult, dict of str to Path)
    """
    tr = read_truth(truth) if truth else None
    kw: dict[str, Any] = {
        "step_days": step_days,
        "truth": tr,
        "params": params or {},
        "compare_exposure": compare_exposure and tr is not None,
        "progress": progress,
        "against": against,
    }
    with training_engine(scheduler) as engine:
        res = run_backtest(ds, start, end, engine=engine, **kw)
    return res, write_report(res, out)
