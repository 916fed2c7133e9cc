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
    check_backtest_period(ds, start, end)
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


def check_backtest_period(ds: Dataset, start: str, end: str) -> None:
    """Refuse a backtest that cannot judge anything, before hours of training.

    Raises
    ------
    InputError
        The period begins after the last event (nothing recorded to score: every day would
        count as a day without events), or the first origin has too little history before it
        to train on (the rule of ``riskmodel train``).
    """
    import pandas as pd

    from riskmodel.api._model import check_enough_data
    from riskmodel.errors import InputError

    where = str(ds.inputs.get("events", {}).get("file", "events"))
    last = ds.events["timestamp"].max().tz_convert(ds.settings.timezone).date()
    first_day, last_day = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if first_day > last:
        raise InputError(
            f"backtest period {start} .. {end} begins after the last event ({last}): "
            "nothing recorded to judge",
            where=where,
            fix=f"choose --from/--to up to {last}, or give the recent events",
        )
    try:
        check_enough_data(ds, start, ds.window_of_date(start))
    except InputError as exc:
        raise InputError(
            exc.what.replace("too little data to train", f"too little history before {start}"),
            where=exc.where,
            fix="choose a later --from: every origin trains on the events before it",
        ) from None
    if last_day > last:
        log.warning(
            "the backtest period runs %d day(s) past the last event (%s): they count as days "
            "without events -- end --to at %s unless none happened",
            (last_day - last).days,
            last,
            last,
        )
