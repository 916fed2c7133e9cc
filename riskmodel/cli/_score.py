"""Commands: score, demo."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from riskmodel.cli import main
from riskmodel.cli._common import (
    DAY,
    Inputs,
    echo,
    get_settings,
    model_options,
    one_day_or_range,
    reader_options,
    workspace_out,
)

log = logging.getLogger(__name__)

no_adapt_option = click.option(
    "--no-adapt",
    is_flag=True,
    help="Do not correct the scores by the recent residuals of the workspace's forecast store "
    "(the forecasts are still stored; provenance records it).",
)


@main.command("score")
@reader_options()
@model_options()
@click.option(
    "--date", "date", type=DAY, default=None, help="Local date to score (default: tomorrow)."
)
@click.option(
    "--from",
    "date_from",
    type=DAY,
    default=None,
    help="First date of a range (with --to): forecast.csv.",
)
@click.option("--to", "to", type=DAY, default=None, help="Last date of a range (with --from).")
@click.option("--shift", default=None, help="Only this shift (default: all).")
@click.option("--no-html", is_flag=True, help="Skip the HTML map.")
@click.option("--no-png", is_flag=True, help="Skip the PNG map.")
@no_adapt_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default in a workspace: out/<date>/score, beside the daily maps).",
)
def score_cmd(
    inputs: Inputs,
    model: str | None,
    trust_model: bool,
    models_root: str | None,
    date: str | None,
    date_from: str | None,
    to: str | None,
    shift: str | None,
    no_html: bool,
    no_png: bool,
    no_adapt: bool,
    out: str | None,
) -> None:
    """Score every segment for the shifts of --date D (default tomorrow; or of --from D --to E,
    also writing forecast.csv) and write the risk maps of the first day."""
    from riskmodel.api import run_score

    if date is None and date_from is None and to is None:  # the morning's question, as daily
        date = DAY.convert("tomorrow", None, click.get_current_context())
    first, last = one_day_or_range(date, date_from, to)
    settings = get_settings().with_flags(models_root=models_root)
    if out is None:
        # Not maps/: that is the daily's, with the plans drawn; score must not replace it.
        out = workspace_out(settings, first if last is None else f"{first}_{last}", "score")
    t0 = time.perf_counter()
    scored, bundle, files = run_score(
        settings,
        inputs.events,
        inputs.effort,
        date=first,
        to=last,
        shift=shift,
        model=model,
        trust=trust_model,
        border=inputs.border,
        read_kwargs=inputs.read_kwargs,
        out=out,
        html=not no_html,
        png=not no_png,
        adapt=not no_adapt,
    )
    _print_top(scored[scored["date"] == first])
    echo(f"model {bundle.model_id}; {len(files)} files in {out} ({time.perf_counter() - t0:.1f} s)")


def _print_top(day, n: int = 5) -> None:  # noqa: ANN001
    for sh in dict.fromkeys(day["shift"]):
        part = day[day["shift"] == sh].nsmallest(n, "rank")
        echo(f"{sh}: top {n}")
        for _, r in part.iterrows():
            echo(
                f"  {int(r['rank']):>3} {r['segment_id']} {r['area'][:14]:<14} "
                f"threat {r['threat']:.3f} expected {r['expected']:.3f}  {r['reason_1']}"
            )


@main.command("demo")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="demo_out",
    show_default=True,
    help="Output folder.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Scenario seed.")
@click.option(
    "--years", type=float, default=3.0, show_default=True, help="Years of simulated history."
)
@click.option(
    "--backtest-days",
    type=int,
    default=28,
    show_default=True,
    help="Days held out for the short backtest (0 skips it).",
)
@click.option(
    "--units", type=int, default=12, show_default=True, help="Patrol units per shift for the plans."
)
@click.option(
    "--small", is_flag=True, help="Reduced size for CI: 1 year, 14-day backtest, fewer trees."
)
def demo_cmd(
    out: str, seed: int, years: float, backtest_days: int, units: int, small: bool
) -> None:
    """Run the whole chain on the embedded default: simulate -> train -> backtest -> score
    tomorrow -> plan every shift."""
    from riskmodel.demo import run_demo

    run_demo(
        Path(out),
        seed=seed,
        years=years,
        backtest_days=backtest_days,
        units=units,
        small=small,
        echo=echo,
    )
