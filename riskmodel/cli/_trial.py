"""Command: trial (closed-loop comparison of patrol policies on a simulated world)."""

from __future__ import annotations

import logging

import click

from riskmodel.cli import main
from riskmodel.cli._common import (
    DAY,
    echo,
    get_settings,
    is_quiet,
    out_option,
    pairs_option,
    renamed_option,
    renamed_pairs,
    seed_option,
    world_option,
)

log = logging.getLogger(__name__)


@main.command("trial")
@click.option("--weeks", type=int, default=26, show_default=True, help="Trial length in weeks.")
@click.option("--units", type=int, default=16, show_default=True, help="Patrols per shift.")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Choice(["randomised", "top-k", "uniform", "static", "oracle"]),
    help="Policy to compare (repeatable; default randomised, top-k, uniform).",
)
@seed_option(help="First world seed (the trial is deterministic for it).")
@click.option(
    "--seeds", type=int, default=1, show_default=True, help="World seeds (>= 3 for intervals)."
)
@click.option(
    "--retrain-weeks", type=int, default=4, show_default=True, help="Retrain every K weeks."
)
@click.option(
    "--burn-in-days",
    type=int,
    default=364,
    show_default=True,
    help="Simulated history before the trial (the simulator's own police patrol it).",
)
@click.option(
    "--from", "date_from", type=DAY, default=None, help="First trial date (default 2024-04-01)."
)
@renamed_option("--start", "--from", "date_from", type=DAY)
@click.option(
    "--officers-per-unit", type=int, default=2, show_default=True, help="Officers per patrol."
)
@click.option(
    "--route-shift-week",
    type=int,
    default=None,
    help="Week (0-based) at whose start a route moves (default: half-way).",
)
@click.option(
    "--route-shift-share",
    type=float,
    default=1.0,
    show_default=True,
    help="Share of the busiest stretch's attraction that moves.",
)
@click.option("--no-route-shift", is_flag=True, help="Do not inject a route shift.")
@click.option(
    "--per-shift-cap",
    type=float,
    default=0.5,
    show_default=True,
    help="Largest coverage of one segment in one shift (randomised, oracle).",
)
@click.option(
    "--max-share-of-shifts",
    type=float,
    default=0.25,
    show_default=True,
    help="Largest share of shifts in 30 days one segment is checked (randomised, oracle).",
)
@click.option(
    "--recalibrate-days",
    type=int,
    default=28,
    show_default=True,
    help="Correct the map by its recorded-vs-forecast residuals of this many days (0 = off).",
)
@click.option("--border", type=click.Path(dir_okay=False), default=None, help="Border line file.")
@pairs_option(
    "--scenario-param",
    "scenario",
    help="Scenario parameter (repeatable), e.g. displacement_strength=1.0.",
)
@renamed_pairs("--param", "--scenario-param", "scenario")
@world_option()
@out_option(required=False, help="Output folder (default ./trial).")
def trial_cmd(
    weeks: int,
    units: int,
    policies: tuple[str, ...],
    seed: int,
    seeds: int,
    retrain_weeks: int,
    burn_in_days: int,
    date_from: str | None,
    officers_per_unit: int,
    route_shift_week: int | None,
    route_shift_share: float,
    no_route_shift: bool,
    per_shift_cap: float,
    max_share_of_shifts: float,
    recalibrate_days: int,
    border: str | None,
    scenario: dict,
    world: str,
    out: str | None,
) -> None:
    """Run patrol policies in a closed loop on a simulated world and compare them.

    Each shift a policy places the units; detection depends on where they are; crossers
    displace away from stretches checked often; the model is retrained on what was recorded.
    Writes trial.md, trial.json, trial_weekly.csv and PNG plots into --out.
    """
    from riskmodel.api import run_field_trial
    from riskmodel.sim.trial import DEFAULT_POLICIES, TrialConfig

    res, paths = run_field_trial(
        get_settings(),
        out=out or "trial",
        border=border,
        progress=None if is_quiet() else (lambda m: echo(m, err=True)),
        weeks=weeks,
        units=units,
        policies=tuple(policies) or DEFAULT_POLICIES,
        seed=seed,
        seeds=seeds,
        retrain_weeks=retrain_weeks,
        burn_in_days=burn_in_days,
        start=date_from or TrialConfig.start,
        officers_per_unit=officers_per_unit,
        route_shift=not no_route_shift,
        route_shift_week=route_shift_week,
        route_shift_share=route_shift_share,
        per_shift_cap=per_shift_cap,
        max_share_of_shifts=max_share_of_shifts,
        recalibrate_days=recalibrate_days,
        scenario=scenario,
        world=world,
    )
    for p in res.config.policies:
        sm = res.summary[p]
        echo(
            f"{p:>10}: {sm['patrol_detections_per_patrol_hour']['mean']:.4f} patrol detections "
            f"per patrol-hour, HR@10% vs truth {sm['hit_rate_10_start']['mean']:.3f} -> "
            f"{sm['hit_rate_10_end']['mean']:.3f} (oracle ratio "
            f"{sm['oracle_ratio_10_mean']['mean']:.3f}), chase share "
            f"{sm['chase_share_10_mean']['mean']:.2f} vs truth "
            f"{sm['chase_share_10_truth_mean']['mean']:.2f}, max share of shifts in 30 days "
            f"{sm['max_share_of_shifts_30d']['mean']:.2f}"
        )
    echo(f"report -> {paths['markdown']} ({res.meta['runtime_s']} s)")
