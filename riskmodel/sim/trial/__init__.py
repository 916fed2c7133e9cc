"""Closed-loop policy trial on a simulated world (the truth is known).

Each shift a *policy* decides where ``units`` patrols check; the simulator's detection depends
on where the patrols actually are (``p = 1 - (1 - p0) exp(-k officer_hours)``); the crossers
adapt to the checks they learn about (displacement with a lag, :class:`~riskmodel.sim.world.
World`); the model is retrained every ``retrain_weeks`` on what was *recorded* (events plus the
effort actually spent: the detection-biased data a real deployment would have, PAWS/iWare-E);
and so on for ``weeks``. Half-way a smuggling route moves (by default all the static attraction
of the busiest 10 km, about a fifth of all crossings on the bundled geography, moves to a quiet
stretch far away) to see which policies notice.

Policies
    ``randomised``  the engine's plan, made by the shipped planner
    (:func:`riskmodel.planning.make_plans`) on the model's effort-*neutral* risk: ORIGAMI
    coverage with an exploration floor and a per-shift cap, the share-of-shifts cap counted
    over the trial's own checks history as for a deployment, systematic sampling (``units``
    checks, fewer when the caps leave too little room).
    ``top-k``       the ``units`` segments of highest predicted risk, every shift.
    ``uniform``     ``units`` segments uniformly at random.
    ``static``      top-k of the first week's risk, repeated (a fixed deployment).
    ``oracle``      ``randomised`` with a perfect map: the planner on the *true* expected
    crossings, same floor and caps (an upper reference for the engine's plan).

The engine's map
    The model retrained every ``retrain_weeks`` on the recorded data (with the product's
    chunked training engine: same estimator, empty-row draw, burn-in and early stopping),
    times a per-segment correction by its recent residuals
    (:func:`~riskmodel.model.counts.recent_residual_factor`: events recorded over forecast - the engine's own out-of-sample forecasts made with the effort
    spent - over ``recalibrate_days``, pooled over +-``recalibrate_km`` and shrunk by a prior of
    ``recalibrate_prior`` events). Without it a route shift takes the map 3-7 weeks to follow
    (with it 1-2; METHODOLOGY 3.8): trees fitted on a stable history trust the long-run counts.

Fair comparison (common random numbers)
    For a world seed, the static attraction, the one-year burn-in history (patrolled by the
    simulator's own police), the first model, the route shift and all crossing/detection
    uniforms are the same for every policy. Crossings are drawn by inverse CDF, detections
    with one uniform per group, so the runs differ only through where the patrols stand.

Outcomes (per policy, weekly and in total; mean and a t-interval over seeds)
    * patrol detections per patrol-hour: recorded groups that would *not* have been recorded
      without the patrol (uniform between ``p0`` and the patrolled ``p``), per unit-hour; and
      all recorded per patrol-hour (includes the baseline ``p0`` share seen anyway);
    * share of the true crossings recorded (and by patrols);
    * map drift: hit rate at 10 % of border length of the model's effort-neutral prediction
      against the *true* expected crossings, week by week;
    * randomness/legality: mean normalised coverage entropy
      (:func:`~riskmodel.planning.plan.normalised_entropy`), the largest share of shifts any
      segment was checked (whole trial, and the worst ``share_window_days`` consecutive days
      as the cap counts it);
    * recovery after the route shift: weeks until the weekly hit rate is back within 10 % of
      its pre-shift level.

Plans within a day are made before the day starts: the day's features see data up to the end
of the previous day (the training features, built afterwards, see everything before each
shift).
"""

from riskmodel.sim.trial.config import (
    DEFAULT_POLICIES,
    HIT_FRACTION,
    POLICIES,
    RECOVERY_TOLERANCE,
    WEEKLY_COLUMNS,
    PolicyRun,
    TrialConfig,
    TrialResult,
)
from riskmodel.sim.trial.loop import run_trial, summarise
from riskmodel.sim.trial.report import markdown_report, write_report

__all__ = [
    "DEFAULT_POLICIES",
    "HIT_FRACTION",
    "POLICIES",
    "RECOVERY_TOLERANCE",
    "WEEKLY_COLUMNS",
    "PolicyRun",
    "TrialConfig",
    "TrialResult",
    "markdown_report",
    "run_trial",
    "summarise",
    "write_report",
]
