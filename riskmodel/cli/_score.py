"""Commands: score, demo."""

from __future__ import annotations

import time
from pathlib import Path

import click

from riskmodel.cli import main
from riskmodel.cli._common import events_options, get_settings
from riskmodel.cli._model import read_kwargs


@main.command("score")
@events_options()
@click.option(
    "--model", default=None, help="Model bundle folder or id (default: newest in the models root)."
)
@click.option(
    "--trust-model",
    is_flag=True,
    help="Allow a bundle outside the models root (after checking it).",
)
@click.option("--date", "date", required=True, help="Local date to score (YYYY-MM-DD).")
@click.option("--to", "to", default=None, help="Last date of a range: also writes forecast.csv.")
@click.option("--shift", default=None, help="Only this shift (default: all).")
@click.option("--no-html", is_flag=True, help="Skip the HTML map.")
@click.option("--no-png", is_flag=True, help="Skip the PNG map.")
@click.option(
    "--out", "out", type=click.Path(file_okay=False), required=True, help="Output folder."
)
def score_cmd(
    events: str,
    effort: str | None,
    border: str | None,
    assume_tz: str | None,
    input_crs: str | None,
    columns: tuple[str, ...],
    strict: bool,
    model: str | None,
    trust_model: bool,
    date: str,
    to: str | None,
    shift: str | None,
    no_html: bool,
    no_png: bool,
    out: str,
) -> None:
    """Score every segment for the shifts of --date (.. --to) and write the risk maps."""
    from riskmodel.api import load_model, score_dates, write_score_outputs
    from riskmodel.io.atomic import folder_lock
    from riskmodel.model.pipeline import read_dataset

    t0 = time.perf_counter()
    s = get_settings()
    bundle = load_model(s, model, trust=trust_model)
    with folder_lock(out):
        ds = read_dataset(
            s,
            events,
            effort,
            border=border,
            end=to or date,
            read_kwargs=read_kwargs(assume_tz, input_crs, columns, strict),
            quarantine_dir=out,
        )
        scored = score_dates(s, bundle, ds, date, to, shift)
        files = write_score_outputs(
            s,
            scored,
            ds,
            bundle,
            out,
            date=date,
            forecast=to is not None,
            html=not no_html,
            png=not no_png,
        )
    _print_top(scored[scored["date"] == date])
    click.echo(
        f"model {bundle.model_id}; {len(files)} files in {out} ({time.perf_counter() - t0:.1f} s)"
    )


def _print_top(day, n: int = 5) -> None:  # noqa: ANN001
    for sh in dict.fromkeys(day["shift"]):
        part = day[day["shift"] == sh].nsmallest(n, "rank")
        click.echo(f"{sh}: top {n}")
        for _, r in part.iterrows():
            click.echo(
                f"  {int(r['rank']):>3} {r['segment_id']} {r['area'][:14]:<14} {r['expected']:.3f}  {r['reason_1']}"
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
        get_settings(),
        Path(out),
        seed=seed,
        years=years,
        backtest_days=backtest_days,
        units=units,
        small=small,
        echo=click.echo,
    )
