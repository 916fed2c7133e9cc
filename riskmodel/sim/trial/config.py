"""Trial configuration, results and the shared helpers of :mod:`riskmodel.sim.trial`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.errors import ConfigError
from riskmodel.model import RESIDUAL_DAYS, RESIDUAL_KM, RESIDUAL_PRIOR
from riskmodel.sim.world import WORLDS, ScenarioParams

POLICIES = ("randomised", "top-k", "uniform", "static", "oracle")
DEFAULT_POLICIES = ("randomised", "top-k", "uniform")
HIT_FRACTION = 0.10  # share of border length for the map-drift hit rate
RECOVERY_TOLERANCE = 0.10  # "back within 10 % of the pre-shift level"
MIN_BURN_IN_DAYS = 56  # shortest simulated history to train the first model on

# Streams of the trial's randomness (SeedSequence spawn keys): fixed per purpose so that every
# policy of a world seed sees the same world noise.
_S_WORLD, _S_PERSONS, _S_ROUTE, _S_POLICY = 1, 2, 3, 4

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
    "chase_share_10",
    "chase_share_10_truth",
    "entropy",
    "route_shifted",
    "model_fits",
)
WEEKLY_MEAN = (
    "patrol_detections_per_patrol_hour",
    "expected_patrol_detections_per_patrol_hour",
    "recorded_per_patrol_hour",
    "share_recorded",
    "share_patrol_detected",
    "hit_rate_10",
    "hit_rate_10_ceiling",
    "oracle_ratio_10",
    "chase_share_10",
    "chase_share_10_truth",
    "entropy",
)


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
        (:func:`~riskmodel.model.counts.recent_residual_factor` on its own forecasts made with the
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
    world : str
        ``"default"`` or ``"patrolled"`` (:func:`~riskmodel.sim.world.world_params`: records
        made by the patrols; its police patrol the burn-in, the policies the trial weeks).
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
    recalibrate_days: int = RESIDUAL_DAYS
    recalibrate_prior: float = RESIDUAL_PRIOR
    recalibrate_km: float = RESIDUAL_KM
    n_estimators: int = 150
    learning_rate: float = 0.15
    zero_keep: float = 0.05
    n_jobs: int = 1
    scenario: dict[str, Any] = field(default_factory=dict)
    world: str = "default"

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
        if self.burn_in_days < MIN_BURN_IN_DAYS:
            raise bad("burn_in_days", f">= {MIN_BURN_IN_DAYS}")
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
        if self.world not in WORLDS:
            raise ConfigError(
                f"unknown world {self.world!r}", where="--world", fix=f"use one of {WORLDS}"
            )
        known = {f.name for f in dataclasses.fields(ScenarioParams)} - {"world"}
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
                        .groupby("week")[list(WEEKLY_MEAN)]
                        .mean()
                        .reset_index()
                        .to_dict(orient="list")
                    ),
                }
                for pol in self.config.policies
            },
        }


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
