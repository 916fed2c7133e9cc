"""Simulation verbs: scenario parameters and truth-known histories."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError
from riskmodel.geo.geodata import Geography

log = logging.getLogger(__name__)


def scenario_params(
    seed: int,
    start: str | None,
    end: str | None,
    persons_per_year: float | None,
    params: tuple[str, ...] | dict[str, Any] = (),
    world: str = "default",
) -> Any:
    """Build :class:`~riskmodel.sim.world.ScenarioParams` from flags.

    ``world`` picks the preset (``default`` or ``patrolled``, see
    :func:`riskmodel.sim.world.world_params`); ``params`` is a dict of overrides (values as parsed from ``--scenario-param``: numbers,
    lists, dicts or strings) or raw ``NAME=VALUE`` strings; values are converted to each
    field's type (a tuple field takes ``12,14,22`` or ``[12, 14, 22]``).
    """
    from riskmodel.sim.world import WORLDS, world_params

    if world not in WORLDS:
        raise ConfigError(f"unknown world {world!r}", fix=f"use one of {', '.join(WORLDS)}")
    p = world_params(world, seed=seed, start=start or "", end=end or "")
    if persons_per_year is not None:
        p.persons_per_year = float(persons_per_year)
    items = params.items() if isinstance(params, dict) else [kv.split("=", 1) for kv in params]
    fields = {f.name: f for f in dataclasses.fields(p)}
    for kv in items:
        if len(kv) != 2 or kv[0] not in fields:
            raise ConfigError(
                f"unknown scenario parameter {kv[0]!r}",
                fix=f"use one of {', '.join(sorted(fields))}",
            )
        name, val = kv
        if name == "world":
            raise ConfigError(
                "the world is not a scenario parameter", fix="use --world default|patrolled"
            )
        cur = getattr(p, name)
        try:
            if isinstance(cur, tuple):
                seq = val if isinstance(val, list | tuple) else str(val).split(",")
                val = tuple(int(v) for v in seq)
            elif isinstance(cur, dict):
                val = json.loads(val) if isinstance(val, str) else dict(val)
            else:
                val = type(cur)(val)
        except (TypeError, ValueError):
            raise ConfigError(
                f"bad value for {name}: {val!r}", fix=f"give a {type(cur).__name__}"
            ) from None
        setattr(p, name, val)
    return p.resolved()


def run_simulation(
    settings: Settings,
    *,
    out: Path,
    seed: int = 0,
    start: str | None = None,
    end: str | None = None,
    persons_per_year: float | None = None,
    params: tuple[str, ...] | dict[str, Any] = (),
    geo: Geography | None = None,
    world: str = "default",
) -> dict[str, Any]:
    """Simulate and write a scenario; return its summary.

    ``world`` is ``"default"`` or ``"patrolled"`` (records made by patrols that follow the
    records; :data:`riskmodel.sim.world.PATROLLED_WORLD`); ``params`` override its values.
    """
    from riskmodel.sim.scenario import simulate, write_scenario

    p = scenario_params(seed, start, end, persons_per_year, params, world=world)
    geo = geo or Geography(settings)
    sc = simulate(geo, p, settings.shifts, settings.timezone)
    write_scenario(sc, out)
    return sc.summary


def run_field_trial(
    settings: Settings,
    *,
    out: str | Path,
    border: str | None = None,
    progress: Callable[[str], None] | None = None,
    **config: Any,
) -> tuple[Any, dict[str, Path]]:
    """Run the closed-loop field trial and write its report into ``out`` (locked meanwhile).

    Parameters
    ----------
    settings : Settings
        Shifts, time zone, feature spec and layers.
    out : path-like
        Report folder.
    border : str, optional
        Border line file (default: setting ``border``, else bundled).
    progress : callable, optional
        Receives one progress line at a time.
    **config
        Fields of :class:`~riskmodel.sim.trial.TrialConfig` (``scenario`` is a dict of
        :class:`~riskmodel.sim.world.ScenarioParams` overrides).

    Returns
    -------
    (TrialResult, dict of str to Path)
    """
    from riskmodel.features import FeatureSpec
    from riskmodel.files import folder_lock
    from riskmodel.sim.trial import TrialConfig, run_trial, write_report

    cfg = TrialConfig(**config)
    res = run_trial(
        Geography(settings, border=border),
        cfg,
        shifts=settings.shifts,
        tz=settings.timezone,
        spec=FeatureSpec.load(settings.feature_spec or None),
        progress=progress,
    )
    with folder_lock(out):
        paths = write_report(res, out)
    return res, paths
