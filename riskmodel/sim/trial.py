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
    ``randomised``  the engine's plan: ORIGAMI coverage (:func:`~riskmodel.planning.
    origami_coverage`) on the model's effort-*neutral* risk with an exploration floor, a
    per-shift cap and a 30-day share-of-shifts cap, sampled systematically (exactly ``units``
    checks).
    ``top-k``       the ``units`` segments of highest predicted risk, every shift.
    ``uniform``     ``units`` segments uniformly at random.
    ``static``      top-k of the first week's risk, repeated (a fixed deployment).
    ``oracle``      ``randomised`` with a perfect map: ORIGAMI on the *true* expected crossings,
    same floor and caps (an upper reference for the engine's plan).

The engine's map
    The model retrained every ``retrain_weeks`` on the recorded data, times a per-segment
    correction by its recent residuals (:func:`~riskmodel.model.estimator.recent_residual_factor`: events
    recorded over forecast - the engine's own out-of-sample forecasts made with the effort
    spent - over ``recalibrate_days``, pooled over +-``recalibrate_km`` and shrunk by a prior of
    ``recalibrate_prior`` events). Without it a route shift takes the map 10+ weeks to follow:
    trees fitted on a stable history trust the long-run counts.

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
      (:func:`~riskmodel.planning.normalised_entropy`), the largest share of shifts any segment
      was checked (whole trial and worst 30 days);
    * recovery after the route shift: weeks until the weekly hit rate is back within 10 % of
      its pre-shift level.

Plans within a day are made before the day starts: the day's features see data up to the end
of the previous day (the training features, built afterwards, see everything before each
shift).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.config.settings import DEFAULT_SHIFTS
from riskmodel.errors import ConfigError
from riskmodel.evaluation.metrics import hit_rate_curve
from riskmodel.features import (
    FeatureSpec,
    Panel,
    build_features,
    feature_columns,
    static_features,
)
from riskmodel.features.kernels import band as _band
from riskmodel.geo.geodata import Geography
from riskmodel.io.atomic import atomic_write_json, atomic_write_text, atomic_write_with
from riskmodel.model.estimator import RiskRegressor, recent_residual_factor
from riskmodel.planning import (
    normalised_entropy,
    origami_coverage,
    share_cap_count,
    systematic_sample,
    top_k,
)
from riskmodel.sim.world import ScenarioParams, World

log = logging.getLogger("riskmodel.sim.trial")

POLICIES = ("randomised", "top-k", "uniform", "static", "oracle")
DEFAULT_POLICIES = ("randomised", "top-k", "uniform")
HIT_FRACTION = 0.10  # share of border length for the map-drift hit rate
RECOVERY_TOLERANCE = 0.10  # "back within 10 % of the pre-shift level"
TRAIN_SKIP_DAYS = 91  # burn-in windows without a full history are not trained on
_CHUNK_DAYS = 28  # feature building in chunks keeps memory flat

# Streams of the trial's randomness (SeedSequence spawn keys): fixed per purpose so that every
# policy of a world seed sees the same world noise.
_S_WORLD, _S_PERSONS, _S_ROUTE, _S_POLICY, _S_SUBSAMPLE = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class TrialConfig:
    """Parameters of a closed-loop trial (all recorded in ``trial.json``).

    Attributes
    ----------
    weeks : int
        Trial length in weeks (after the burn-in).
    units : int
        Patrols per shift; each patrol is ``officers_per_unit`` officers for the whole shift.
    policies : tuple of str
        Policies to compare (see :data:`POLICIES`).
    seed : int
        First world seed; seeds ``seed .. seed + seeds - 1`` are run.
    seeds : int
        Number of world seeds (confidence intervals need >= 2).
    retrain_weeks : int
        Retrain the model every this many weeks.
    burn_in_days : int
        Simulated history before the trial (patrolled by the simulator's own police).
    start : str
        First local date of the trial (ISO).
    officers_per_unit : int
        Officers per patrol.
    route_shift : bool
        Inject a route shift at ``route_shift_week``.
    route_shift_week : int or None
        Week (0-based) at whose start the route moves; default ``weeks // 2``.
    route_shift_share : float
        Share of the busiest stretch's static attraction that moves (1 = the whole route moves;
        below 1 the route splits in two, which also makes the truth less concentrated).
    route_km : float
        Length of the stretches (busiest source, quiet target).
    per_shift_cap : float
        Largest coverage of one segment in one shift (``randomised``, ``oracle``).
    floor_factor : float
        Exploration floor as a multiple of the uniform coverage ``units / segments``.
    max_share_of_shifts : float or None
        Largest share of the shifts of any ``share_window_days`` in which one segment is
        checked (``randomised``, ``oracle``); None for no such cap.
    share_window_days : int
        Window of ``max_share_of_shifts``.
    recalibrate_days : int
        The engine in the loop corrects its map by its recent residuals over this many days
        (:func:`~riskmodel.model.estimator.recent_residual_factor` on its own forecasts made with the
        effort spent); 0 = off. Applies to every policy that uses the model.
    recalibrate_prior : float
        Prior strength of that correction, in expected events.
    recalibrate_km : float
        The correction pools the evidence of segments within +- this many km along the border.
    n_estimators, learning_rate, zero_keep : float
        Retraining model (kept cheap: few trees, a high learning rate, 5 % of empty rows).
    n_jobs : int
        XGBoost threads (1: the fits are small, and OpenMP threads on busy shared cores spin).
    scenario : dict
        Overrides of :class:`~riskmodel.sim.world.ScenarioParams` (e.g. ``persons_per_year``).
    """

    weeks: int = 26
    units: int = 16
    policies: tuple[str, ...] = DEFAULT_POLICIES
    seed: int = 0
    seeds: int = 1
    retrain_weeks: int = 4
    burn_in_days: int = 364
    start: str = "2024-04-01"
    officers_per_unit: int = 2
    route_shift: bool = True
    route_shift_week: int | None = None
    route_shift_share: float = 1.0
    route_km: float = 10.0
    per_shift_cap: float = 0.5
    floor_factor: float = 0.2
    max_share_of_shifts: float | None = 0.25
    share_window_days: int = 30
    recalibrate_days: int = 28
    recalibrate_prior: float = 20.0
    recalibrate_km: float = 3.0
    n_estimators: int = 150
    learning_rate: float = 0.15
    zero_keep: float = 0.05
    n_jobs: int = 1
    scenario: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(key: str, must: str) -> ConfigError:
            return ConfigError(
                f"trial {key} = {getattr(self, key)!r} is invalid: it must be {must}",
                where="trial configuration",
                fix=f"correct --{key.replace('_', '-')}",
            )

        if self.weeks < 1:
            raise bad("weeks", ">= 1")
        if self.units < 1:
            raise bad("units", ">= 1")
        if self.seeds < 1:
            raise bad("seeds", ">= 1")
        if self.retrain_weeks < 1:
            raise bad("retrain_weeks", ">= 1")
        if self.burn_in_days < 2 * _CHUNK_DAYS:
            raise bad("burn_in_days", f">= {2 * _CHUNK_DAYS}")
        if self.officers_per_unit < 1:
            raise bad("officers_per_unit", ">= 1")
        if not self.policies:
            raise bad("policies", "at least one policy")
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown:
            raise ConfigError(
                f"unknown policy {unknown[0]!r}",
                where="--policy",
                fix=f"use one of: {', '.join(POLICIES)}",
            )
        if len(set(self.policies)) != len(self.policies):
            raise bad("policies", "listed once each")
        if not 0 <= self.route_shift_share <= 1:
            raise bad("route_shift_share", "in [0, 1]")
        if self.route_km <= 0:
            raise bad("route_km", "> 0")
        wk = self.shift_week
        if self.route_shift and not 0 <= wk < self.weeks:
            raise bad("route_shift_week", f"in [0, {self.weeks - 1}]")
        if not 0 < self.per_shift_cap <= 1:
            raise bad("per_shift_cap", "in (0, 1]")
        if not 0 < self.floor_factor <= 1:
            raise bad("floor_factor", "in (0, 1]")
        if self.max_share_of_shifts is not None and not 0 < self.max_share_of_shifts <= 1:
            raise bad("max_share_of_shifts", "in (0, 1]")
        if self.share_window_days < 1:
            raise bad("share_window_days", ">= 1")
        if self.recalibrate_days < 0:
            raise bad("recalibrate_days", ">= 0 (0 = off)")
        if self.recalibrate_prior <= 0:
            raise bad("recalibrate_prior", "> 0")
        if self.recalibrate_km < 0:
            raise bad("recalibrate_km", ">= 0")
        if not 0 < self.zero_keep <= 1:
            raise bad("zero_keep", "in (0, 1]")
        try:
            dt.date.fromisoformat(self.start)
        except ValueError:
            raise bad("start", "an ISO date (YYYY-MM-DD)") from None
        known = {f.name for f in dataclasses.fields(ScenarioParams)}
        extra = sorted(set(self.scenario) - known)
        if extra:
            raise ConfigError(
                f"unknown scenario parameter {extra[0]!r}",
                where="trial scenario",
                fix=f"use one of: {', '.join(sorted(known))}",
            )

    @property
    def shift_week(self) -> int:
        """Week at whose start the route moves."""
        return self.weeks // 2 if self.route_shift_week is None else int(self.route_shift_week)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in the report)."""
        d = dataclasses.asdict(self)
        d["policies"] = list(self.policies)
        d["route_shift_week"] = self.shift_week if self.route_shift else None
        return d


@dataclass
class PolicyRun:
    """One policy on one world seed.

    Attributes
    ----------
    weekly : DataFrame
        One row per week (see :data:`WEEKLY_COLUMNS`).
    totals : dict
        Whole-trial outcomes (see :func:`_totals`).
    """

    weekly: pd.DataFrame
    totals: dict[str, Any]


@dataclass
class TrialResult:
    """All runs of a trial and their aggregation over seeds.

    Attributes
    ----------
    config : TrialConfig
    runs : dict
        ``seed -> policy -> PolicyRun``.
    summary : dict
        ``policy -> metric -> {mean, sd, ci_low, ci_high, n}`` over seeds.
    route : dict
        ``seed -> route shift description`` (source/target stretches, moved share).
    meta : dict
        Geography size, runtime, version.
    """

    config: TrialConfig
    runs: dict[int, dict[str, PolicyRun]]
    summary: dict[str, dict[str, dict[str, float | None]]]
    route: dict[int, dict[str, Any]]
    meta: dict[str, Any]

    def weekly(self) -> pd.DataFrame:
        """All weekly rows (``seed``, ``policy``, ``week`` first)."""
        return pd.concat(
            [r.weekly for by_pol in self.runs.values() for r in by_pol.values()],
            ignore_index=True,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready content of ``trial.json``."""
        wk = self.weekly()
        return {
            "riskmodel_version": __version__,
            "config": self.config.as_dict(),
            "meta": self.meta,
            "route_shift": {str(s): r for s, r in self.route.items()},
            "policies": {
                pol: {
                    "summary": self.summary[pol],
                    "per_seed": {
                        str(s): _json_safe(self.runs[s][pol].totals) for s in sorted(self.runs)
                    },
                    "weekly_mean": _json_safe(
                        wk[wk["policy"] == pol]
                        .groupby("week")[list(_WEEKLY_MEAN)]
                        .mean()
                        .reset_index()
                        .to_dict(orient="list")
                    ),
                }
                for pol in self.config.policies
            },
        }


# ----------------------------------------------------------------------------- helpers


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return round(x, 6) if math.isfinite(x) else None
    return obj


def _ci(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean and a two-sided 95 % t-interval over seeds (None where undefined)."""
    v = np.array([np.nan if x is None else float(x) for x in values], float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return {"mean": None, "sd": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(v.mean())
    if n == 1:
        return {"mean": mean, "sd": None, "ci_low": None, "ci_high": None, "n": 1}
    from scipy import stats

    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def _route_stretches(
    base: np.ndarray, seg_km: np.ndarray, route_km: float, min_gap_km: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Segment indices of the source (busiest ``route_km`` stretch) and the target (a quiet
    stretch of the same length at least ``min_gap_km`` away, drawn from the seed)."""
    S = base.size
    n = int(max(1, min(S // 3, round(route_km / max(float(np.median(seg_km)), 1e-6)))))
    starts = np.arange(S - n + 1)
    csum = np.concatenate([[0.0], np.cumsum(base)])
    sums = csum[starts + n] - csum[starts]
    src0 = int(np.argmax(sums))
    chain = np.concatenate([[0.0], np.cumsum(seg_km)])
    mid = (chain[starts] + chain[starts + n]) / 2
    gap = np.abs(mid - mid[src0]) - route_km
    far = gap >= min_gap_km
    if not far.any():  # tiny worlds: the farthest stretch that does not overlap
        far = np.abs(starts - src0) >= n
    quiet = far & (sums <= np.median(sums[far]))
    cand = starts[quiet] if quiet.any() else starts[far]
    tgt0 = int(_stream(seed, _S_ROUTE).choice(cand))
    return np.arange(src0, src0 + n), np.arange(tgt0, tgt0 + n)


# ----------------------------------------------------------------------------- learner


class _Learner:
    """The engine in the loop: the recorded panel, a training cache and the current model.

    The training cache holds feature rows of completed windows (built once, after the fact:
    a window's features only use data before it, which never changes), subsampled like
    :class:`~riskmodel.model.estimator.RiskRegressor` does (all rows with events, ``zero_keep`` of the
    empty ones weighted ``1 / zero_keep``), so a retrain costs one small fit.
    """

    def __init__(
        self, panel: Panel, static: pd.DataFrame, spec: FeatureSpec, cfg: TrialConfig, seed: int
    ) -> None:
        self.panel = panel
        # No attrs: pandas deep-copies them on every column access (slow, unused here).
        self.static = static.copy()
        self.static.attrs = {}
        self.spec = spec
        self.cfg = cfg
        self.seed = seed
        self.S = panel.counts.shape[1]
        self.K = panel.n_shifts
        # Early windows lack a full history: skip them (a quarter of short burn-ins).
        self.first_train = min(TRAIN_SKIP_DAYS, cfg.burn_in_days // 4) * self.K
        self.cached_until = self.first_train
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.cols: list[str] = []
        self.model: RiskRegressor | None = None
        self.fits = 0
        # The engine's own forecasts of past windows with the effort spent (out of sample: made
        # by the model of the day, after the window was recorded), for the residual correction.
        W = panel.counts.shape[0]
        self.forecast = np.zeros((W, self.S), np.float32)
        self.has_forecast = np.zeros(W, bool)
        seg = panel.segments
        mid = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy()
        self.pool = _band(mid, cfg.recalibrate_km)  # segments within +-km along the border

    def fork(self) -> _Learner:
        """Independent copy (panel arrays copied; cached chunks are immutable and shared)."""
        new = copy.copy(self)
        p = self.panel
        new.panel = Panel(
            p.windows, p.segments, p.counts.copy(), p.persons.copy(), p.effort.copy(), p.n_shifts
        )
        new.chunks = list(self.chunks)
        new.forecast = self.forecast.copy()
        new.has_forecast = self.has_forecast.copy()
        return new

    def record(self, w0: int, counts: np.ndarray, persons: np.ndarray, effort: np.ndarray) -> None:
        """Write observed windows ``w0 ..`` (rows of ``counts``) into the panel."""
        n = counts.shape[0]
        self.panel.counts[w0 : w0 + n] = counts
        self.panel.persons[w0 : w0 + n] = persons
        self.panel.effort[w0 : w0 + n] = effort

    def _upto(self, end: int) -> Panel:
        # Windows >= end are not used by features of earlier windows: views, exact, cheaper.
        p = self.panel
        return Panel(
            p.windows.iloc[:end],
            p.segments,
            p.counts[:end],
            p.persons[:end],
            p.effort[:end],
            p.n_shifts,
        )

    def _extend_cache(self, until: int) -> None:
        step = _CHUNK_DAYS * self.K
        for a in range(self.cached_until, until, step):
            b = min(a + step, until)
            X = build_features(self._upto(b), self.static, self.spec, np.arange(a, b))
            if not self.cols:
                self.cols = feature_columns(X)
            y = self.panel.counts[a:b].reshape(-1).astype(np.float64)
            rng = _stream(self.seed, _S_SUBSAMPLE, a)
            keep = (y > 0) | (rng.random(y.size) < self.cfg.zero_keep)
            w = np.where(y > 0, 1.0, 1.0 / self.cfg.zero_keep)
            self.chunks.append(
                (
                    X[self.cols].to_numpy(np.float32)[keep],
                    y[keep],
                    w[keep],
                    X["window"].to_numpy()[keep],
                )
            )
        self.cached_until = max(self.cached_until, until)

    def fit(self, until: int) -> None:
        """Retrain on all completed windows before ``until`` (recorded events and effort)."""
        self._extend_cache(until)
        X = np.concatenate([c[0] for c in self.chunks])
        y = np.concatenate([c[1] for c in self.chunks])
        w = np.concatenate([c[2] for c in self.chunks])
        t = np.concatenate([c[3] for c in self.chunks])
        model = RiskRegressor(
            n_estimators=self.cfg.n_estimators,
            learning_rate=self.cfg.learning_rate,
            zero_keep=1.0,  # the cache is already subsampled and weighted ...
            n_bags=1,  # ... so bags over empty-row subsamples would all see the same rows
            random_state=self.seed,
            n_jobs=self.cfg.n_jobs,
        )
        self.model = model.fit(pd.DataFrame(X, columns=self.cols), y, time=t, sample_weight=w)
        self.fits += 1

    def predict_neutral(self, w0: int, n: int) -> np.ndarray:
        """Effort-neutral risk ``(n, S)`` of windows ``w0 .. w0 + n`` from the data so far."""
        assert self.model is not None
        X = build_features(
            self._upto(w0 + n),
            self.static,
            self.spec,
            np.arange(w0, w0 + n),
            effort_override=np.zeros((n, self.S), np.float32),
        )
        risk = np.asarray(self.model.predict(X[self.cols]), np.float64).reshape(n, self.S)
        return risk * self.residual_factor(w0)[None, :]

    def residual_factor(self, w0: int) -> np.ndarray:
        """Correction ``(S,)`` from the recorded events and forecasts of the recent windows."""
        days = self.cfg.recalibrate_days
        if days <= 0:
            return np.ones(self.S)
        a = max(0, w0 - days * self.K)
        have = self.has_forecast[a:w0]
        if not have.any():
            return np.ones(self.S)
        return recent_residual_factor(
            self.panel.counts[a:w0][have],
            self.forecast[a:w0][have],
            self.pool,
            prior=self.cfg.recalibrate_prior,
        )

    def note_forecast(self, w0: int, n: int) -> None:
        """Once windows ``w0 .. w0 + n`` are recorded: keep the model's forecast of them made
        with the effort spent (the features see only data before each window)."""
        if self.cfg.recalibrate_days <= 0:
            return
        assert self.model is not None
        X = build_features(self._upto(w0 + n), self.static, self.spec, np.arange(w0, w0 + n))
        pred = np.asarray(self.model.predict(X[self.cols]), np.float64).reshape(n, self.S)
        self.forecast[w0 : w0 + n] = pred
        self.has_forecast[w0 : w0 + n] = True


# ----------------------------------------------------------------------------- policies


class _Policy:
    """Where the units check in one shift: returns (checked mask, inclusion probabilities)."""

    def __init__(self, name: str, cfg: TrialConfig, S: int, K: int, seed: int) -> None:
        self.name = name
        self.cfg = cfg
        self.S = S
        self.K = K
        self.U = min(cfg.units, S)
        self.seed = seed
        self.code = zlib.crc32(name.encode())
        self.static_plan: np.ndarray | None = None  # (K, S) for "static"
        self.floor = cfg.floor_factor * self.U / S
        self.limit = (
            share_cap_count(cfg.max_share_of_shifts, cfg.share_window_days, K)
            if cfg.max_share_of_shifts is not None
            else None
        )
        self.history: list[np.ndarray] = []  # checks of past trial shifts (for the share cap)

    def _capped(self, risk: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        upper = np.full(self.S, cfg.per_shift_cap)
        if self.limit is not None and self.history:
            span = cfg.share_window_days * self.K - 1  # this shift + span earlier ones
            used = np.sum(self.history[-span:], axis=0)
            blocked = used >= self.limit
            upper[blocked] = 0.0
            short = self.U - upper.sum()
            if short > 1e-9:  # caps leave too few segments: free the least used ones
                order = np.flatnonzero(blocked)[np.argsort(used[blocked], kind="stable")]
                upper[order[: int(math.ceil(short / cfg.per_shift_cap))]] = cfg.per_shift_cap
        lower = np.minimum(self.floor, upper)
        c, _ = origami_coverage(np.maximum(risk, 0.0), float(self.U), lower, upper)
        return systematic_sample(c, rng), c

    def decide(
        self, k: int, risk: np.ndarray, truth: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Checks of shift ``k`` from the model's ``risk`` and (oracle only) the ``truth``."""
        none = np.zeros(self.S, bool)
        if self.name == "randomised":
            pick, c = self._capped(risk, rng)
        elif self.name == "oracle":
            pick, c = self._capped(truth, rng)
        elif self.name == "top-k":
            pick = top_k(risk, self.U, none, none)
            c = pick.astype(float)
        elif self.name == "static":
            assert self.static_plan is not None
            pick = self.static_plan[k].copy()
            c = pick.astype(float)
        else:  # uniform
            pick = np.zeros(self.S, bool)
            pick[rng.choice(self.S, self.U, replace=False)] = True
            c = np.full(self.S, self.U / self.S)
        self.history.append(pick)
        return pick, c


# ----------------------------------------------------------------------------- the loop

WEEKLY_COLUMNS = (
    "seed",
    "policy",
    "week",
    "patrol_hours",
    "officer_hours",
    "true_crossings",
    "expected_crossings",
    "recorded",
    "patrol_detections",
    "expected_patrol_detections",
    "patrol_detections_per_patrol_hour",
    "expected_patrol_detections_per_patrol_hour",
    "recorded_per_patrol_hour",
    "share_recorded",
    "share_patrol_detected",
    "hit_rate_10",
    "hit_rate_10_ceiling",
    "oracle_ratio_10",
    "hit_rate_10_truth_last_week",
    "entropy",
    "route_shifted",
    "model_fits",
)
_WEEKLY_MEAN = (
    "patrol_detections_per_patrol_hour",
    "expected_patrol_detections_per_patrol_hour",
    "recorded_per_patrol_hour",
    "share_recorded",
    "share_patrol_detected",
    "hit_rate_10",
    "hit_rate_10_ceiling",
    "oracle_ratio_10",
    "entropy",
)


def _persons(counts: np.ndarray, mean_group: float, rng: np.random.Generator) -> np.ndarray:
    # Sum of n group sizes 1 + NB(r, q) is n + NB(n r, q): one draw per cell.
    r = 1.2
    q = r / (r + mean_group - 1)
    n = counts.astype(np.int64)
    extra = rng.negative_binomial(np.maximum(n * r, 1e-9), q) * (n > 0)
    return (n + extra).astype(np.float32)


def _run_policy(
    name: str,
    world: World,
    learner: _Learner,
    cfg: TrialConfig,
    seed: int,
    route: tuple[np.ndarray, np.ndarray] | None,
    lengths: np.ndarray,
    static_risk: np.ndarray,
) -> PolicyRun:
    S, K = world.n_segments, world.n_shifts
    p = world.params
    pol = _Policy(name, cfg, S, K, seed)
    if name == "static":
        pol.static_plan = np.stack(
            [top_k(static_risk[k], pol.U, np.zeros(S, bool), np.zeros(S, bool)) for k in range(K)]
        )
    d0 = cfg.burn_in_days
    rows: list[dict[str, Any]] = []
    prev_truth: np.ndarray | None = None
    checks_all: list[np.ndarray] = []
    ent_all: list[float] = []
    for week in range(cfg.weeks):
        shifted = bool(route is not None and week == cfg.shift_week)
        if shifted:
            world.relocate(route[0], route[1], cfg.route_shift_share)
        preds, truths = [], []
        acc = dict.fromkeys(
            (
                "patrol_hours",
                "officer_hours",
                "true_crossings",
                "expected_crossings",
                "recorded",
                "patrol_detections",
                "expected_patrol_detections",
            ),
            0.0,
        )
        ents = []
        for day in range(7):
            d = d0 + week * 7 + day
            w0 = d * K
            risk = learner.predict_neutral(w0, K)
            truth = world.intensity()
            rng = _stream(seed, _S_POLICY, pol.code, d)
            effort = np.zeros((K, S))
            for k in range(K):
                pick, c = pol.decide(k, risk[k], truth[k], rng)
                effort[k, pick] = cfg.officers_per_unit * world.hours[d, k]
                ents.append(normalised_entropy(c))
                checks_all.append(pick)
            st = world.step_day(effort, crn=_stream(seed, _S_WORLD, d))
            pers = _persons(st.recorded, p.mean_group_size, _stream(seed, _S_PERSONS, d))
            learner.record(w0, st.recorded, pers, st.effort)
            learner.note_forecast(w0, K)
            preds.append(risk)
            truths.append(st.expected_crossings)
            acc["patrol_hours"] += float((pol.U * world.hours[d]).sum())
            acc["officer_hours"] += float(st.effort.sum())
            acc["true_crossings"] += float(st.groups.sum())
            acc["expected_crossings"] += float(st.expected_crossings.sum())
            acc["recorded"] += float(st.recorded.sum())
            acc["patrol_detections"] += float(st.patrol_recorded.sum())
            acc["expected_patrol_detections"] += float(
                (st.expected_recorded - p.p0 * st.expected_crossings).sum()
            )
        pred_w = np.concatenate(preds)
        truth_w = np.concatenate(truths)
        hr = float(hit_rate_curve(pred_w, truth_w, lengths, [HIT_FRACTION])[0])
        ceiling = float(hit_rate_curve(truth_w, truth_w, lengths, [HIT_FRACTION])[0])
        # How predictable the truth itself is: last week's true mean intensity as the map.
        lag = truth_w.mean(axis=0) if prev_truth is None else prev_truth
        persist = float(
            hit_rate_curve(np.broadcast_to(lag, truth_w.shape), truth_w, lengths, [HIT_FRACTION])[0]
        )
        prev_truth = truth_w.mean(axis=0)
        ent_all += ents
        row = {"seed": seed, "policy": name, "week": week, **acc}
        ph = max(acc["patrol_hours"], 1e-9)
        tc = max(acc["true_crossings"], 1e-9)
        row.update(
            patrol_detections_per_patrol_hour=acc["patrol_detections"] / ph,
            expected_patrol_detections_per_patrol_hour=acc["expected_patrol_detections"] / ph,
            recorded_per_patrol_hour=acc["recorded"] / ph,
            share_recorded=acc["recorded"] / tc,
            share_patrol_detected=acc["patrol_detections"] / tc,
            hit_rate_10=hr,
            hit_rate_10_ceiling=ceiling,
            oracle_ratio_10=hr / ceiling if ceiling > 0 else np.nan,
            hit_rate_10_truth_last_week=persist if week > 0 else None,
            entropy=float(np.mean(ents)),
            route_shifted=shifted,
            model_fits=learner.fits,
        )
        rows.append(row)
        if (week + 1) % cfg.retrain_weeks == 0 and week + 1 < cfg.weeks:
            learner.fit((d0 + (week + 1) * 7) * K)
    weekly = pd.DataFrame(rows, columns=list(WEEKLY_COLUMNS))
    return PolicyRun(weekly, _totals(weekly, np.array(checks_all), ent_all, cfg, K))


def _trajectory(x: np.ndarray, cfg: TrialConfig, name: str) -> dict[str, Any]:
    """Start/end and route-shift recovery of one weekly series (hit rate or oracle ratio)."""
    n4 = min(4, len(x))
    start = float(x[:n4].mean())
    end = float(x[-n4:].mean())
    out: dict[str, Any] = {
        f"{name}_mean": float(x.mean()),
        f"{name}_start": start,
        f"{name}_end": end,
        f"{name}_last": float(x[-1]),
        f"{name}_end_vs_start": end / start if start > 0 else None,
    }
    if cfg.route_shift:
        w = cfg.shift_week
        pre = float(x[max(0, w - 4) : w].mean()) if w > 0 else float(x[0])
        after = x[w:]
        ok = np.flatnonzero(after >= (1 - RECOVERY_TOLERANCE) * pre)
        out.update(
            {
                f"{name}_pre_shift": pre,
                f"{name}_min_after_shift": float(after.min()),
                f"{name}_dip_vs_pre_shift": float(after.min() / pre) if pre > 0 else None,
                # None = not back within the tolerance before the trial ended
                f"{name}_recovery_weeks": int(ok[0]) if ok.size else None,
                f"{name}_recovered": bool(ok.size),
            }
        )
    return out


def _totals(
    weekly: pd.DataFrame, checks: np.ndarray, ents: list[float], cfg: TrialConfig, K: int
) -> dict[str, Any]:
    """Whole-trial outcomes of one policy run."""
    s = weekly[
        [
            "patrol_hours",
            "officer_hours",
            "true_crossings",
            "expected_crossings",
            "recorded",
            "patrol_detections",
            "expected_patrol_detections",
        ]
    ].sum()
    out: dict[str, Any] = {k: float(v) for k, v in s.items()}
    out.update(
        patrol_detections_per_patrol_hour=s["patrol_detections"] / max(s["patrol_hours"], 1e-9),
        expected_patrol_detections_per_patrol_hour=s["expected_patrol_detections"]
        / max(s["patrol_hours"], 1e-9),
        recorded_per_patrol_hour=s["recorded"] / max(s["patrol_hours"], 1e-9),
        share_recorded=s["recorded"] / max(s["true_crossings"], 1e-9),
        share_patrol_detected=s["patrol_detections"] / max(s["true_crossings"], 1e-9),
        hit_rate_10_ceiling_mean=float(weekly["hit_rate_10_ceiling"].mean()),
        entropy_mean=float(np.mean(ents)),
    )
    out.update(_trajectory(weekly["hit_rate_10"].to_numpy(float), cfg, "hit_rate_10"))
    # How concentrated the truth itself stays (the patrols flatten it by displacement).
    ceil = weekly["hit_rate_10_ceiling"].to_numpy(float)
    n4 = min(4, len(ceil))
    c0, c1 = float(ceil[:n4].mean()), float(ceil[-n4:].mean())
    out.update(
        truth_hit_rate_10_start=c0,
        truth_hit_rate_10_end=c1,
        truth_hit_rate_10_end_vs_start=c1 / c0 if c0 > 0 else None,
    )
    out.update(_trajectory(weekly["oracle_ratio_10"].to_numpy(float), cfg, "oracle_ratio_10"))
    # Legal side: largest share of shifts a segment was checked, whole trial and worst window.
    n = checks.shape[0]
    out["max_share_of_shifts"] = float(checks.sum(axis=0).max() / max(n, 1))
    # Share of the calendar shifts of a window (as the cap counts it), also for short trials.
    window = cfg.share_window_days * K
    span = min(window, n)
    cum = np.vstack([np.zeros((1, checks.shape[1])), np.cumsum(checks, axis=0)])
    out["max_share_of_shifts_30d"] = float((cum[span:] - cum[:-span]).max() / window)
    out["segments_ever_checked"] = int((checks.sum(axis=0) > 0).sum())
    return out


def _seed_world(
    geo: Geography, cfg: TrialConfig, seed: int, shifts: str, tz: str, spec: FeatureSpec
) -> tuple[World, _Learner, dict[str, Any], tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    """Burn-in world, first model, route shift and week-1 risk shared by every policy."""
    start = dt.date.fromisoformat(cfg.start)
    first = start - dt.timedelta(days=cfg.burn_in_days)
    last = start + dt.timedelta(days=7 * cfg.weeks - 1)
    params = ScenarioParams(
        **{
            **cfg.scenario,
            "seed": seed,
            "start": first.isoformat(),
            "end": last.isoformat(),
            "units_per_shift": (cfg.units,),
            "officers_per_unit": cfg.officers_per_unit,
        }
    )
    world = World(geo, params, shifts, tz)
    S, K = world.n_segments, world.n_shifts
    if cfg.units > S * cfg.per_shift_cap:
        raise ConfigError(
            f"{cfg.units} units cannot be placed on {S} segments with a per-shift cap of "
            f"{cfg.per_shift_cap}",
            where="--units",
            fix="use fewer units or a higher per-shift cap",
        )
    W = world.n_days * K
    windows = world.windows.sort_values(["date", "shift_idx"]).reset_index(drop=True)
    panel = Panel(
        windows,
        geo.segments,
        np.zeros((W, S), np.float32),
        np.zeros((W, S), np.float32),
        np.zeros((W, S), np.float32),
        K,
    )
    learner = _Learner(panel, static_features(geo, spec), spec, cfg, seed)
    # Burn-in: the simulator's own police patrol; the same CRN streams as the trial days.
    for d in range(cfg.burn_in_days):
        st = world.step_day(None, crn=_stream(seed, _S_WORLD, d))
        pers = _persons(st.recorded, params.mean_group_size, _stream(seed, _S_PERSONS, d))
        learner.record(d * K, st.recorded, pers, st.effort)
    learner.fit(cfg.burn_in_days * K)
    # The static plan's risk: the whole first week, from the data at the trial start.
    wk1 = learner.predict_neutral(cfg.burn_in_days * K, 7 * K)
    static_risk = wk1.reshape(7, K, S).mean(axis=0)
    route = None
    info: dict[str, Any] = {"enabled": False}
    if cfg.route_shift:
        seg_km = geo.segments["length_m"].to_numpy(float) / 1000.0
        src, tgt = _route_stretches(
            world.base, seg_km, cfg.route_km, 3 * params.displacement_km, seed
        )
        route = (src, tgt)
        ids = geo.segments["segment_id"].astype(str).to_numpy()
        moved = float(world.base[src].sum() * cfg.route_shift_share / world.base.sum())
        info = {
            "enabled": True,
            "week": cfg.shift_week,
            "date": (start + dt.timedelta(days=7 * cfg.shift_week)).isoformat(),
            "share_of_source_moved": cfg.route_shift_share,
            "share_of_total_moved": round(moved, 6),
            "source": [ids[src][0], ids[src][-1]],
            "target": [ids[tgt][0], ids[tgt][-1]],
        }
    return world, learner, info, route, static_risk


def run_trial(
    geo: Geography,
    config: TrialConfig | None = None,
    *,
    shifts: str = DEFAULT_SHIFTS,
    tz: str = "Europe/Ljubljana",
    spec: FeatureSpec | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrialResult:
    """Run the closed-loop trial of every policy on every world seed.

    Parameters
    ----------
    geo : Geography
        Border segments (the bundled SI-HR geography or a synthetic one).
    config : TrialConfig, optional
        Trial parameters (defaults: 26 weeks, 16 units, randomised/top-k/uniform, 1 seed).
    shifts : str
        Shift definitions (``name=HH:MM-HH:MM,...``).
    tz : str
        Local time zone.
    spec : FeatureSpec, optional
        Feature set (default: the bundled one).
    progress : callable, optional
        Called with a one-line message after each policy run.

    Returns
    -------
    TrialResult
        Deterministic for ``config.seed`` (and the rest of the configuration).
    """
    cfg = config or TrialConfig()
    spec = spec or FeatureSpec.load()
    t0 = time.perf_counter()
    lengths = geo.segments["length_m"].to_numpy(float)
    runs: dict[int, dict[str, PolicyRun]] = {}
    routes: dict[int, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    for i in range(cfg.seeds):
        seed = cfg.seed + i
        ts = time.perf_counter()
        world, learner, info, route, static_risk = _seed_world(geo, cfg, seed, shifts, tz, spec)
        timing[f"burn_in_seed_{seed}"] = round(time.perf_counter() - ts, 2)
        routes[seed] = info
        runs[seed] = {}
        for name in cfg.policies:
            ts = time.perf_counter()
            runs[seed][name] = _run_policy(
                name,
                copy.deepcopy(world),
                learner.fork(),
                cfg,
                seed,
                route,
                lengths,
                static_risk,
            )
            timing[f"{name}_seed_{seed}"] = round(time.perf_counter() - ts, 2)
            if progress is not None:
                tot = runs[seed][name].totals
                progress(
                    f"seed {seed} {name}: {tot['patrol_detections_per_patrol_hour']:.4f} patrol "
                    f"detections per patrol-hour, hit rate@10% {tot['hit_rate_10_start']:.3f} -> "
                    f"{tot['hit_rate_10_end']:.3f} ({timing[f'{name}_seed_{seed}']:.0f} s)"
                )
    summary = summarise(runs, cfg.policies)
    meta = {
        "segments": int(len(geo.segments)),
        "border_km": round(float(lengths.sum()) / 1000, 1),
        "geography": str(getattr(geo, "border_path", "")),
        "shifts": shifts,
        "timezone": tz,
        "feature_spec_sha256": spec.sha256,
        "runtime_s": round(time.perf_counter() - t0, 1),
        "timing_s": timing,
    }
    return TrialResult(cfg, runs, summary, routes, meta)


def summarise(
    runs: dict[int, dict[str, PolicyRun]], policies: Sequence[str]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean and 95 % t-interval over seeds of every whole-trial outcome, per policy.

    Flags (``*_recovered``) become the share of seeds (``*_recovered_share``); recovery weeks
    are averaged over the seeds that recovered.

    Parameters
    ----------
    runs : dict
        ``seed -> policy -> PolicyRun``.
    policies : sequence of str

    Returns
    -------
    dict
        ``policy -> metric -> {mean, sd, ci_low, ci_high, n}``.
    """
    summary: dict[str, dict[str, Any]] = {}
    for pol in policies:
        tot = [runs[s][pol].totals for s in sorted(runs)]
        summary[pol] = {}
        for m, v in tot[0].items():
            if isinstance(v, bool):
                key = m.replace("_recovered", "_recovered_share")
                summary[pol][key] = _ci([float(t[m]) for t in tot])
            else:
                summary[pol][m] = _ci([t.get(m) for t in tot])
    return _json_safe(summary)


# ----------------------------------------------------------------------------- report

_TABLE = (
    ("patrol_detections_per_patrol_hour", "patrol detections / patrol-h", 4),
    ("expected_patrol_detections_per_patrol_hour", "... expected (no Poisson noise)", 4),
    ("recorded_per_patrol_hour", "all recorded / patrol-h", 3),
    ("share_recorded", "share of true crossings recorded", 3),
    ("share_patrol_detected", "share detected thanks to patrols", 3),
    ("hit_rate_10_start", "HR@10% vs truth, weeks 1-4", 3),
    ("hit_rate_10_end", "HR@10% vs truth, last 4 weeks", 3),
    ("hit_rate_10_end_vs_start", "HR end / start", 3),
    ("truth_hit_rate_10_end_vs_start", "truth-ranked HR end / start", 3),
    ("oracle_ratio_10_start", "oracle ratio (HR / truth-ranked HR), weeks 1-4", 3),
    ("oracle_ratio_10_end", "oracle ratio, last 4 weeks", 3),
    ("oracle_ratio_10_end_vs_start", "oracle ratio end / start", 3),
    ("hit_rate_10_dip_vs_pre_shift", "lowest HR after shift / pre-shift", 3),
    ("hit_rate_10_recovery_weeks", "weeks until HR within 10 % of pre-shift", 1),
    ("oracle_ratio_10_recovery_weeks", "weeks until oracle ratio within 10 %", 1),
    ("entropy_mean", "coverage entropy (mean per shift)", 3),
    ("max_share_of_shifts", "max share of shifts a segment checked (trial)", 3),
    ("max_share_of_shifts_30d", "... worst 30 days", 3),
)


def _fmt(stat: dict[str, float | None], digits: int, flag: dict[str, Any] | None = None) -> str:
    m = stat.get("mean")
    if flag is not None:  # recovery weeks: only over the seeds that recovered
        n = int(flag.get("n") or 0)
        k = int(round((flag.get("mean") or 0.0) * n))
        return ("not recovered" if m is None else f"{m:.{digits}f}") + f" ({k}/{n} seeds)"
    if m is None:
        return "n/a"
    txt = f"{m:.{digits}f}"
    if stat.get("ci_low") is not None:
        half = (stat["ci_high"] - stat["ci_low"]) / 2
        txt += f" ± {half:.{digits}f}"
    return txt


def _verdict(res: TrialResult) -> list[str]:
    """Plain statements of who won what, computed from the numbers (whichever way they go)."""
    s = res.summary
    cfg = res.config
    pols = list(cfg.policies)
    lines = []

    def mean(pol: str, m: str) -> float:
        v = s[pol].get(m, {}).get("mean")
        return float("nan") if v is None else float(v)

    def overlap(a: str, b: str, m: str) -> bool:
        x, y = s[a].get(m, {}), s[b].get(m, {})
        if x.get("ci_low") is None or y.get("ci_low") is None:
            return True
        return not (x["ci_high"] < y["ci_low"] or y["ci_high"] < x["ci_low"])

    m = "patrol_detections_per_patrol_hour"
    ranked = sorted(pols, key=lambda p: -mean(p, m))
    lines.append(
        "Patrol detections per patrol-hour, best to worst: "
        + ", ".join(f"{p} {mean(p, m):.4f}" for p in ranked)
        + "."
    )
    for a, b in zip(ranked, ranked[1:], strict=False):
        lines.append(
            f"{a} vs {b}: ratio {mean(a, m) / max(mean(b, m), 1e-12):.2f}, "
            + (
                "no interval (one seed)"
                if cfg.seeds == 1
                else ("95 % intervals overlap" if overlap(a, b, m) else "95 % intervals separate")
            )
            + "."
        )
    if "randomised" in pols and "top-k" in pols:
        r, t = mean("randomised", m), mean("top-k", m)
        lines.append(
            f"randomised / top-k patrol detections per patrol-hour: {r / max(t, 1e-12):.2f} "
            f"({'randomised' if r > t else 'top-k'} detects more per patrol-hour); top-k checks "
            f"one segment in up to {mean('top-k', 'max_share_of_shifts_30d'):.0%} of the shifts "
            f"of 30 days, randomised in {mean('randomised', 'max_share_of_shifts_30d'):.0%}."
        )
    per_seed = {p: [res.runs[sd][p].totals for sd in sorted(res.runs)] for p in pols}
    tol = 1 - RECOVERY_TOLERANCE
    for p in pols:
        held = sum((t["hit_rate_10_end_vs_start"] or 0) >= tol for t in per_seed[p])
        held_r = sum((t["oracle_ratio_10_end_vs_start"] or 0) >= tol for t in per_seed[p])
        n = len(per_seed[p])
        lines.append(
            f"{p}: map HR@10 % vs truth {mean(p, 'hit_rate_10_start'):.3f} -> "
            f"{mean(p, 'hit_rate_10_end'):.3f} (end/start {mean(p, 'hit_rate_10_end_vs_start'):.2f}"
            f"; within 10 % of the start in {held}/{n} seeds); oracle ratio "
            f"{mean(p, 'oracle_ratio_10_start'):.3f} -> {mean(p, 'oracle_ratio_10_end'):.3f} "
            f"(within 10 % in {held_r}/{n} seeds); the truth-ranked HR itself went "
            f"{mean(p, 'truth_hit_rate_10_start'):.3f} -> {mean(p, 'truth_hit_rate_10_end'):.3f}."
        )
    return lines


def markdown_report(res: TrialResult) -> str:
    """The Markdown report (``trial.md``)."""
    cfg = res.config
    pols = list(cfg.policies)
    seeds = sorted(res.runs)
    head = ["outcome"] + pols
    lines = [
        "# Closed-loop policy trial (simulated world)",
        "",
        f"{cfg.weeks} weeks from {cfg.start} after a {cfg.burn_in_days}-day burn-in; "
        f"{cfg.units} patrols of {cfg.officers_per_unit} officers per shift; "
        f"{res.meta['segments']} segments ({res.meta['border_km']} km); retrain every "
        f"{cfg.retrain_weeks} weeks; world seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}). "
        + (
            "Values: mean ± half-width of the 95 % t-interval over seeds."
            if len(seeds) > 1
            else "One seed: no interval (use --seeds 3 or more)."
        ),
        "",
    ]
    for sd in seeds:
        r0 = res.route.get(sd, {})
        if r0.get("enabled"):
            lines.append(
                f"- Route shift, seed {sd}, start of week {r0['week'] + 1} ({r0['date']}): "
                f"{r0['share_of_source_moved']:.0%} of the attraction of "
                f"{r0['source'][0]}..{r0['source'][1]} moved to "
                f"{r0['target'][0]}..{r0['target'][1]} ({r0['share_of_total_moved']:.1%} of all "
                "crossings)."
            )
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, digits in _TABLE:
        if key not in res.summary[pols[0]]:
            continue
        flag_key = key.replace("_recovery_weeks", "_recovered_share")
        cells = [
            _fmt(
                res.summary[p][key],
                digits,
                res.summary[p].get(flag_key) if flag_key != key else None,
            )
            for p in pols
        ]
        lines.append("| " + " | ".join([label] + cells) + " |")
    lines += ["", "## Findings", ""] + [f"- {x}" for x in _verdict(res)]
    lines += [
        "",
        "## Definitions",
        "",
        "- *patrol detections*: recorded groups that would not have been recorded without the "
        "patrol (the baseline detection p0 removed; a counterfactual on common random numbers); "
        "*patrol-hour*: one patrol for one hour.",
        "- *HR@10% vs truth*: share of the true expected crossings on the 10 % of border length "
        "the model's effort-neutral prediction ranks highest, pooled over the week's shifts; "
        "start = mean of weeks 1-4, end = mean of the last 4 weeks. *oracle ratio*: HR divided "
        "by the HR of the truth-ranked segments that week (removes changes in how concentrated "
        "the crossings themselves are; BRIEF section 4).",
        "- *recovery*: weeks from the route shift until the weekly value is back within 10 % "
        "of its mean over the 4 weeks before the shift (0 = never dropped below); the mean is "
        "over the seeds that recovered before the trial ended.",
        "- *coverage entropy*: planning.normalised_entropy of the shift's inclusion "
        "probabilities (1 = uniform, 0 = deterministic).",
        "- *max share of shifts*: the largest share of shifts in which any one segment was "
        "checked, over the whole trial and over the worst 30 days (share of the 30 days' "
        "shifts, as the cap counts it).",
        "- The truth responds to each policy (displacement), so every policy is scored against "
        "its own world; the worlds share the seed, burn-in and random numbers.",
        "- The engine's map (used by randomised, top-k and static, and scored by the hit rate) "
        "is the retrained model times a residual correction: "
        + (
            f"recorded / forecast events of the last {cfg.recalibrate_days} days, pooled over "
            f"+-{cfg.recalibrate_km:g} km and shrunk by a prior of {cfg.recalibrate_prior:g} "
            "expected events (model.recent_residual_factor)."
            if cfg.recalibrate_days > 0
            else "off (--recalibrate-days 0)."
        ),
        "",
        f"Runtime {res.meta['runtime_s']} s. riskmodel {__version__}.",
        "",
    ]
    return "\n".join(lines)


def _figure(width: float, height: float) -> Any:
    # Figure + Agg canvas directly: no pyplot global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Any, path: Path) -> Path:
    # No Software/date metadata, so identical results give byte-identical PNGs.
    return atomic_write_with(
        path, lambda p: fig.savefig(p, format="png", metadata={"Software": None})
    )


def _plot_weekly(
    res: TrialResult, panels: Sequence[tuple[str, str]], title: str, path: Path
) -> Path:
    """Weekly mean over seeds per policy (band: min-max over seeds), one panel per column."""
    from matplotlib.ticker import MaxNLocator

    wk = res.weekly()
    cfg = res.config
    x = np.arange(cfg.weeks) + 1
    fig = _figure(8.0, 3.6 * len(panels))
    for j, (column, ylabel) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, j + 1)
        for i, pol in enumerate(cfg.policies):
            g = wk[wk["policy"] == pol].groupby("week")[column]
            style = {"color": "black", "linestyle": "--"} if pol == "oracle" else {"color": f"C{i}"}
            ax.plot(x, g.mean().to_numpy(), label=pol, linewidth=1.6, **style)
            if cfg.seeds > 1:
                ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), alpha=0.12, **style)
        if column == "hit_rate_10":
            ceil = wk.groupby("week")["hit_rate_10_ceiling"].mean().to_numpy()
            ax.plot(x, ceil, color="grey", linestyle=":", label="truth-ranked (all policies)")
        if cfg.route_shift:  # between the last week before and the first week after
            ax.axvline(cfg.shift_week + 0.5, color="grey", linestyle="-.", linewidth=1)
            ax.text(cfg.shift_week + 0.6, ax.get_ylim()[1], " route shift", va="top", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if j == 0:
            ax.set_title(title + (" (band: min-max over seeds)" if cfg.seeds > 1 else ""))
            ax.legend(fontsize=7, loc="best")
        if j == len(panels) - 1:
            ax.set_xlabel("week of the trial")
    fig.tight_layout()
    return _save_png(fig, path)


def _plot_legal(res: TrialResult, path: Path) -> Path:
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)

    def half(stat: dict[str, Any]) -> float:
        return 0.0 if stat.get("ci_low") is None else (stat["ci_high"] - stat["ci_low"]) / 2

    for i, pol in enumerate(res.config.policies):
        sx = res.summary[pol]["max_share_of_shifts_30d"]
        sy = res.summary[pol]["patrol_detections_per_patrol_hour"]
        ax.errorbar(
            [sx["mean"]],
            [sy["mean"]],
            xerr=[half(sx)],
            yerr=[half(sy)],
            fmt="o",
            capsize=3,
            color="black" if pol == "oracle" else f"C{i}",
            label=pol,
        )
    if res.config.max_share_of_shifts is not None:
        ax.axvline(res.config.max_share_of_shifts, color="grey", linestyle=":", label="share cap")
    ax.set_xlabel("largest share of shifts one segment was checked (worst 30 days)")
    ax.set_ylabel("patrol detections per patrol-hour")
    ax.set_title(
        "Detections vs intensity of checks" + (" (95 % intervals)" if res.config.seeds > 1 else "")
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)


def write_report(res: TrialResult, out: str | Path) -> dict[str, Path]:
    """Write ``trial.md``, ``trial.json``, ``trial_weekly.csv`` and three PNGs atomically.

    Parameters
    ----------
    res : TrialResult
    out : path-like
        Output folder (created if missing).

    Returns
    -------
    dict of str to Path
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wk = res.weekly()
    paths = {
        "weekly": atomic_write_text(
            out / "trial_weekly.csv",
            wk.to_csv(index=False, lineterminator="\n", float_format="%.6g"),
        ),
        "hit_rate_png": _plot_weekly(
            res,
            [
                ("hit_rate_10", "HR @10 % of border vs truth"),
                ("oracle_ratio_10", "oracle ratio (HR / truth-ranked HR)"),
            ],
            "Model map vs true crossings",
            out / "trial_hit_rate.png",
        ),
        "detections_png": _plot_weekly(
            res,
            [
                ("patrol_detections_per_patrol_hour", "patrol detections / patrol-h"),
                ("share_recorded", "share of true crossings recorded"),
            ],
            "Detections",
            out / "trial_detections.png",
        ),
        "legal_png": _plot_legal(res, out / "trial_legal.png"),
    }
    doc = res.as_dict()
    doc["files"] = {k: v.name for k, v in paths.items()}
    paths["json"] = atomic_write_json(out / "trial.json", doc)
    paths["markdown"] = atomic_write_text(out / "trial.md", markdown_report(res))
    return paths
