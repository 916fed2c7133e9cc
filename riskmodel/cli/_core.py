"""Commands: config, segments, simulate (demo lives in _demo)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from riskmodel.cli import main
from riskmodel.cli._common import get_settings, out_option, seed_option


@main.command("config")
def config_cmd() -> None:
    """Print the effective configuration and where each value came from."""
    s = get_settings()
    rows = s.describe()
    w = max(len(r[0]) for r in rows)
    click.echo(f"{'setting':<{w}}  value  [source]")
    for key, val, src in rows:
        click.echo(f"{key:<{w}}  {val}  [{src}]")


@main.command("segments")
@click.option(
    "--border",
    type=click.Path(dir_okay=False),
    default=None,
    help="Border line file, any OGR format and CRS (default: bundled SI-HR border).",
)
@click.option(
    "--length-m", type=float, default=None, help="Segment length in metres (default 1000)."
)
@click.option(
    "--max-gap-m",
    type=float,
    default=200.0,
    show_default=True,
    help="Largest gap between border parts that is bridged.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Output file (.geojson, .gpkg, .csv).",
)
def segments_cmd(border: str | None, length_m: float | None, max_gap_m: float, out: str) -> None:
    """Split a border line into segments with stable ids."""
    from riskmodel.api import build_segments

    s = get_settings().with_flags(segment_length_m=length_m)
    t0 = time.perf_counter()
    info = build_segments(s, border=border, out=out, max_gap_m=max_gap_m)
    click.echo(
        f"{info['segments']} segments of ~{info['mean_length_m']:.0f} m; length sum "
        f"{info['segment_length_sum_m'] / 1000:.3f} km vs line {info['line_length_m'] / 1000:.3f} km "
        f"(diff {info['difference_m']:.3f} m); metric CRS {info['crs']} -> {out} "
        f"[{time.perf_counter() - t0:.2f} s]"
    )


@main.command("simulate")
@out_option()
@seed_option()
@click.option(
    "--start", default=None, help="First date YYYY-MM-DD (default: 3 years before --end)."
)
@click.option("--end", default=None, help="Last date YYYY-MM-DD (default: yesterday).")
@click.option(
    "--persons-per-year",
    type=float,
    default=None,
    help="Recorded persons in the first year (default 50000).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any other scenario parameter (repeatable), e.g. theta=0.5.",
)
def simulate_cmd(
    out: str,
    seed: int,
    start: str | None,
    end: str | None,
    persons_per_year: float | None,
    params: tuple[str, ...],
) -> None:
    """Simulate a truth-known multi-year history on the real border."""
    from riskmodel.api import run_simulation

    summary = run_simulation(
        get_settings(),
        out=Path(out),
        seed=seed,
        start=start,
        end=end,
        persons_per_year=persons_per_year,
        params=params,
    )
    _print_sim_summary(summary, out)


def _print_sim_summary(summary: dict, out: str | Path) -> None:
    click.echo(
        f"simulated {summary['incidents']} incidents, {summary['persons']} persons "
        f"on {summary['segments']} segments x {summary['windows']} shifts "
        f"in {summary['runtime_s']:.1f} s -> {out}"
    )
    for y, r in summary["per_year"].items():
        click.echo(
            f"  {y}: {r['incidents']:6d} incidents {r['persons']:7d} persons {r['smugglers']:4d} smugglers"
        )
    areas = ", ".join(f"{k or '?'} {v:.1%}" for k, v in summary["share_by_area"].items())
    click.echo(f"  persons by directorate: {areas}")
    click.echo(f"  share at night (22-06): {summary['share_night_22_06']:.1%}")
