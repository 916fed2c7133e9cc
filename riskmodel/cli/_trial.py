"""Command: trial (closed-loop comparison of patrol policies on a simulated world)."""

from __future__ import annotations

import json

import click

from riskmodel.cli import main
from riskmodel.cli._common import get_settings, out_option, seed_option


def _scenario_params(pairs: tuple[str, ...]) -> dict[str, object]:
    """``NAME=VALUE`` scenario overrides; values are JSON where they parse (numbers, ``{}``,
    ``[12, 14, 22]``), else strings."""
    out: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        k, v = (x.strip() for x in pair.split("=", 1))
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


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
@click.option("--start", default="2024-04-01", show_default=True, help="First trial date.")
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
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Scenario parameter (repeatable), e.g. displacement_strength=1.0.",
)
@out_option(required=False, help="Output folder (default ./trial).")
def trial_cmd(
    weeks: int,
    units: int,
    policies: tuple[str, ...],
    seed: int,
    seeds: int,
    retrain_weeks: int,
    burn_in_days: int,
    start: str,
    officers_per_unit: int,
    route_shift_week: int | None,
    route_shift_share: float,
    no_route_shift: bool,
    per_shift_cap: float,
    max_share_of_shifts: float,
    recalibrate_days: int,
    border: str | None,
    params: tuple[str, ...],
    out: str | None,
) -> None:
    """Run patrol policies in a closed loop on a simulated world and compare them.

    Each shift a policy places the units; detection depends on where they are; crossers
    displace away from stretches checked often; the model is retrained on what was recorded.
    Writes trial.md, trial.json, trial_weekly.csv and PNG plots into --out.
    """
    from riskmodel.features import FeatureSpec
    from riskmodel.geo.geodata import Geography
    from riskmodel.io.atomic import folder_lock
    from riskmodel.sim.trial import DEFAULT_POLICIES, TrialConfig, run_trial, write_report

    s = get_settings()
    cfg = TrialConfig(
        weeks=weeks,
        units=units,
        policies=tuple(policies) or DEFAULT_POLICIES,
        seed=seed,
        seeds=seeds,
        retrain_weeks=retrain_weeks,
        burn_in_days=burn_in_days,
        start=start,
        officers_per_unit=officers_per_unit,
        route_shift=not no_route_shift,
        route_shift_week=route_shift_week,
        route_shift_share=route_shift_share,
        per_shift_cap=per_shift_cap,
        max_share_of_shifts=max_share_of_shifts,
        recalibrate_days=recalibrate_days,
        scenario=_scenario_params(params),
    )
    geo = Geography(s, border=border)
    quiet = click.get_current_context().find_root().obj.get("quiet")
    res = run_trial(
        geo,
        cfg,
        shifts=s.shifts,
        tz=s.timezone,
        spec=FeatureSpec.load(s.feature_spec or None),
        progress=None if quiet else (lambda m: click.echo(m, err=True)),
    )
    folder = out or "trial"
    with folder_lock(folder):
        paths = write_report(res, folder)
    for p in cfg.policies:
        sm = res.summary[p]
        click.echo(
            f"{p:>10}: {sm['patrol_detections_per_patrol_hour']['mean']:.4f} patrol detections "
            f"per patrol-hour, HR@10% vs truth {sm['hit_rate_10_start']['mean']:.3f} -> "
            f"{sm['hit_rate_10_end']['mean']:.3f}, max share of shifts in 30 days "
            f"{sm['max_share_of_shifts_30d']['mean']:.2f}"
        )
    click.echo(f"report -> {paths['markdown']} ({res.meta['runtime_s']} s)")
