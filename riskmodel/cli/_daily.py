"""Command: daily (the planner's morning in one command)."""

from __future__ import annotations

import logging

import click

from riskmodel.cli import main
from riskmodel.cli._common import DAY, echo, get_settings, replan_option, seed_option
from riskmodel.cli._score import no_adapt_option

log = logging.getLogger(__name__)


@main.command("daily")
@click.option(
    "--date",
    "date",
    type=DAY,
    default="tomorrow",
    show_default=True,
    metavar="D",
    help="Day to plan: YYYY-MM-DD, today, tomorrow, yesterday or +N/-N.",
)
@click.option("--units", type=click.IntRange(min=1), required=True, help="Checks per shift.")
@seed_option(help="Seed for drills/tests (default: OS entropy; always recorded).", default=None)
@click.option("--model", default=None, help="Model id or folder (default: the workspace's).")
@click.option(
    "--trust-model", is_flag=True, help="Allow a bundle outside the models root (after checks)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Draw a plan the caps refuse (systematic or over the per-shift cap); needs --reason.",
)
@replan_option
@click.option(
    "--reason", default=None, help="Why (recorded in the audit log with --force or --replan)."
)
@click.option("--by", default=None, help="Who decided (recorded in the audit log).")
@click.option(
    "--publish",
    "publish_db",
    is_flag=True,
    help="Also publish the day's layers and plans to the database (setting database, schema "
    "db_schema), as riskmodel publish does.",
)
@no_adapt_option
def daily_cmd(
    date: str,
    units: int,
    seed: int | None,
    model: str | None,
    trust_model: bool,
    force: bool,
    replan: bool,
    reason: str | None,
    by: str | None,
    publish_db: bool,
    no_adapt: bool,
) -> None:
    """Score a day from the workspace's data, draw every shift's plan under the workspace caps,
    write the daily map (plans drawn) and the A4 daily briefing, and record the plans in the
    audit log. Everything lands in <out_dir>/<date>/."""
    from riskmodel.api import run_daily

    for flag, on in (("--force", force), ("--replan", replan)):
        if on and not (reason or "").strip():
            raise click.UsageError(f"{flag} needs --reason TEXT (it is recorded in the audit log)")
    settings = get_settings()
    if publish_db and not settings.database:
        raise click.UsageError("--publish needs the setting database (riskmodel.toml or env)")
    res = run_daily(
        settings,
        date,
        units=units,
        seed=seed,
        model=model,
        trust=trust_model,
        force=force,
        replan=replan,
        reason=reason,
        by=by,
        adapt=not no_adapt,
    )
    for p in res.plans:
        echo(
            f"{p.date} {p.shift}: {p.units} checks, largest chance of a check "
            f"{p.stats['max_inclusion']:.0%}, plan {p.plan_id}"
        )
    echo(f"briefing: {res.folder / f'briefing_{res.date}.html'}")
    echo(f"map with plans: {res.folder / 'maps' / f'risk_{res.date}.html'}")
    echo(f"{len(res.files)} files in {res.folder}")
    if publish_db:
        from riskmodel.api import publish

        pub = publish(settings, res.folder)
        echo(f"published {', '.join(pub.days)} to {pub.database} (schema {pub.schema})")
