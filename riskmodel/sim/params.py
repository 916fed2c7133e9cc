"""Scenario parameters of the simulator and its named worlds (``default``, ``patrolled``).

:class:`ScenarioParams` holds every parameter of a simulated world (recorded in
``scenario.json``); :func:`world_params` builds them for a named world, whose preset
(:data:`PATROLLED_WORLD`) is documented in METHODOLOGY.md, "The patrolled world".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

from riskmodel.errors import ConfigError

DEFAULT_AREA_SHARES = {
    "Novo mesto": 0.60,
    "Koper": 0.22,
    "Ljubljana": 0.07,
    "Celje": 0.05,
    "Maribor": 0.04,
    "Murska Sobota": 0.02,
}

WORLDS = ("default", "patrolled")

#: The patrolled world's preset (METHODOLOGY.md, "The patrolled world"): records made by
#: patrols that follow the records, crossers who avoid recent patrols, drifting routes.
#: Calibrated so that about 60 % of the records come from patrolled segment-shifts and the
#: recorded persons of year one stay near ``persons_per_year``.
PATROLLED_WORLD: dict[str, object] = {
    "world": "patrolled",
    "p0": 0.12,
    "detect_per_officer_hour": 0.10,
    "police_habit_days": 120.0,
    "police_reaction_days": 7.0,
    "police_reaction_weight": 0.5,
    "police_focus": 1.5,
    "patrol_exploration": 0.1,
    "displacement_strength": 1.0,
    "displacement_lag_days": 7.0,
    "displacement_km": 4.0,
    "drift_sd": 0.5,
    "drift_days": 120.0,
    "drift_km": 5.0,
    "detected_share": 0.33,
}


@dataclass
class ScenarioParams:
    """Parameters of a simulated scenario (all recorded in ``scenario.json``).

    Attributes
    ----------
    seed : int
        Random seed; the scenario is deterministic for a seed.
    start, end : str
        First and last local date (inclusive).
    persons_per_year : float
        Target *recorded* persons in the first year (public figures: 40-60 k in a high year).
    annual_trend : float
        Log-linear change per year of the volume (-0.25 = about -22 % a year).
    mean_group_size : float
        Mean persons per incident.
    smuggler_share : float
        Share of recorded incidents that are smuggler arrests (~300-400 a year).
    detection_share : float
        Share of the rest recorded as detections (camera/drone/report) rather than apprehensions.
    area_shares : dict
        Target share of crossings per police directorate.
    theta, excitation_days, excitation_km : float
        Near-repeat self-excitation: branching ratio, decay time, spatial scale.
    displacement_strength, displacement_lag_days, displacement_km : float
        Adaptive displacement: exponent on the perceived chance of getting through a stretch
        (0 = no displacement; 1 = flow proportional to that chance: a stretch checked every shift
        keeps about 28 % of its flow, one checked in a quarter of the shifts about 82 %), lag of
        that perception, how far the displaced flow moves.
    drift_sd, drift_days, drift_km : float
        Route drift: a log-intensity field along the border that wanders on its own
        (Ornstein-Uhlenbeck in time with time constant ``drift_days``, correlated over
        ``drift_km``, stationary standard deviation ``drift_sd``; 0 = static routes).
    units_per_shift : tuple of int
        Patrols placed per shift (one entry per shift; the last is reused).
    officers_per_unit : int
        Officers in a patrol (officer-hours = officers x shift hours).
    patrol_exploration : float
        Share of patrols the simulated police place uniformly at random.
    p0, detect_per_officer_hour : float
        Detection: ``p = 1 - (1 - p0) exp(-k * officer_hours)``.
    holiday_factor : float
        Intensity multiplier on SI or HR public holidays.
    field_sd : float
        Standard deviation of the log random attraction field.
    world : str
        ``"default"`` or ``"patrolled"``: a label recorded with the scenario; the values come
        from :func:`world_params` (the patrolled preset is :data:`PATROLLED_WORLD`).
    police_habit_days : float
        Time constant (days) of the simulated police's long memory of recorded events.
    police_reaction_days, police_reaction_weight : float
        Their short memory (time constant, days) and its weight in the deployment map
        (0 = habit only, as in the default world).
    police_focus : float
        Exponent on the smoothed deployment map (1 = proportional; > 1 concentrates the
        patrols on the police's hotspots).
    detected_share : float
        Share of the true crossing groups assumed recorded when scaling the volume, so that
        the *recorded* persons of year one are near ``persons_per_year``.
    """

    seed: int = 0
    start: str = ""
    end: str = ""
    persons_per_year: float = 50_000.0
    annual_trend: float = -0.25
    mean_group_size: float = 7.5
    smuggler_share: float = 0.05
    detection_share: float = 0.12
    area_shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_AREA_SHARES))
    theta: float = 0.35
    excitation_days: float = 3.0
    excitation_km: float = 2.0
    displacement_strength: float = 1.0
    displacement_lag_days: float = 14.0
    displacement_km: float = 6.0
    drift_sd: float = 0.0
    drift_days: float = 60.0
    drift_km: float = 5.0
    units_per_shift: tuple[int, ...] = (12, 14, 22)
    officers_per_unit: int = 2
    patrol_exploration: float = 0.3
    p0: float = 0.5
    detect_per_officer_hour: float = 0.08
    holiday_factor: float = 1.15
    field_sd: float = 0.6
    world: str = "default"
    police_habit_days: float = 28.0
    police_reaction_days: float = 7.0
    police_reaction_weight: float = 0.0
    police_focus: float = 1.0
    detected_share: float = 0.60

    def resolved(self) -> ScenarioParams:
        """Fill default dates (three years ending yesterday, local) and check every value.

        Raises
        ------
        ConfigError
            A value outside its range (:data:`RANGES`), or ``start`` after ``end``.
        """
        p = dataclasses.replace(self)
        if not p.end:
            p.end = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        if not p.start:
            e = dt.date.fromisoformat(p.end)
            p.start = (e.replace(year=e.year - 3) + dt.timedelta(days=1)).isoformat()
        p.check()
        return p

    def check(self) -> None:
        """Refuse values the simulator would crash on or silently misread (a negative rate, a
        branching ratio that explodes, a reversed period)."""
        for name, (lo, hi, lo_open) in RANGES.items():
            v = getattr(self, name)
            below = v <= lo if lo_open else v < lo
            if not math.isfinite(v) or below or v > hi:
                side = ">" if lo_open else ">="
                rng = f"{side} {lo:g}" + (f" and <= {hi:g}" if math.isfinite(hi) else "")
                raise ConfigError(f"scenario parameter {name} = {v!r} must be {rng}",
                                  fix=f"give {name} {rng}")  # fmt: skip
        if not 0 <= self.theta < 1:
            raise ConfigError(
                f"scenario parameter theta = {self.theta!r} must be >= 0 and < 1",
                fix="a branching ratio of 1 or more makes the near-repeats explode; e.g. 0.35",
            )
        if any(u < 0 for u in self.units_per_shift) or self.officers_per_unit < 1:
            raise ConfigError(
                "units_per_shift must be >= 0 and officers_per_unit >= 1",
                fix="e.g. units_per_shift=12,14,22 officers_per_unit=2",
            )
        shares = list(self.area_shares.values())
        if any(not math.isfinite(v) or v < 0 for v in shares) or (shares and not sum(shares) > 0):
            raise ConfigError(
                "area_shares must be >= 0 and not all 0 (empty: no targets)",
                fix='e.g. {"Novo mesto": 0.6, ...}',
            )
        try:
            a, b = dt.date.fromisoformat(self.start), dt.date.fromisoformat(self.end)
        except ValueError:
            raise ConfigError(
                f"scenario dates {self.start!r} .. {self.end!r} are not YYYY-MM-DD",
                fix="give --from/--to as YYYY-MM-DD",
            ) from None
        if b < a:
            raise ConfigError(
                f"scenario period {self.start} .. {self.end} ends before it starts",
                fix="give --from before --to",
            )


#: Range of every numeric scenario parameter: (low, high, low bound excluded).
RANGES: dict[str, tuple[float, float, bool]] = {
    "persons_per_year": (0.0, math.inf, True),
    "annual_trend": (-math.inf, math.inf, False),
    "mean_group_size": (1.0, math.inf, False),
    "smuggler_share": (0.0, 1.0, False),
    "detection_share": (0.0, 1.0, False),
    "excitation_days": (0.0, math.inf, True),
    "excitation_km": (0.0, math.inf, True),
    "displacement_strength": (0.0, math.inf, False),
    "displacement_lag_days": (0.0, math.inf, True),
    "displacement_km": (0.0, math.inf, True),
    "drift_sd": (0.0, math.inf, False),
    "drift_days": (0.0, math.inf, True),
    "drift_km": (0.0, math.inf, True),
    "patrol_exploration": (0.0, 1.0, False),
    "p0": (0.0, 1.0, False),
    "detect_per_officer_hour": (0.0, math.inf, False),
    "holiday_factor": (0.0, math.inf, True),
    "field_sd": (0.0, math.inf, False),
    "police_habit_days": (0.0, math.inf, True),
    "police_reaction_days": (0.0, math.inf, True),
    "police_reaction_weight": (0.0, 1.0, False),
    "police_focus": (0.0, math.inf, True),
    "detected_share": (0.0, 1.0, True),
}


def world_params(world: str = "default", /, **overrides: object) -> ScenarioParams:
    """Scenario parameters of a named world, with explicit ``overrides`` on top.

    Parameters
    ----------
    world : str
        ``"default"`` (the engine's unbiased-records world) or ``"patrolled"``
        (:data:`PATROLLED_WORLD`).
    **overrides
        Any :class:`ScenarioParams` field (e.g. ``seed``, ``start``, ``drift_sd``).

    Returns
    -------
    ScenarioParams

    Raises
    ------
    ValueError
        Unknown world, or an override ``world`` that contradicts ``world``.
    """
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r}: use one of {', '.join(WORLDS)}")
    if overrides.get("world", world) != world:
        raise ValueError(f"world {world!r} contradicts the parameter world={overrides['world']!r}")
    preset = dict(PATROLLED_WORLD) if world == "patrolled" else {}
    return ScenarioParams(**{**preset, **overrides, "world": world})  # type: ignore[arg-type]
