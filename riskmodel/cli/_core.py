"""Commands: config, segments, simulate (demo lives in _score)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from riskmodel.cli import main
from riskmodel.cli._common import (
    DAY,
    echo,
    get_settings,
    note,
    out_option,
    pairs_option,
    renamed_option,
    renamed_pairs,
    seed_option,
    world_option,
)

log = logging.getLogger(__name__)

SEGMENT_FORMATS = {"geojson": ".geojson", "gpkg": ".gpkg", "csv": ".csv"}
# The old `segments --out FILE` form, recognised by its extension.
_FILE_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".csv": "csv"}


@main.command("init")
@click.argument("folder", type=click.Path(file_okay=False))
def init_cmd(folder: str) -> None:
    """Create a station workspace in FOLDER: settings, documented legal caps, data/, models/,
    out/, the audit log folder and a private signing key. Existing files are kept."""
    from riskmodel.api import init_workspace

    ws, made = init_workspace(folder)
    for p in made:
        echo(f"  created {p.relative_to(ws.root)}")
    echo(f"workspace {ws.root} ({'new' if made else 'already complete'})")
    echo("next:")
    echo(f"  copy your events and patrol log to {ws.root / 'data'} (events.csv, effort.csv)")
    echo(f"  review the legal caps in {ws.root / 'caps.toml'}")
    echo(f"  riskmodel --workspace {ws.root} validate")
    echo(f"  riskmodel --workspace {ws.root} train")
    echo(f"  riskmodel --workspace {ws.root} daily")


@main.command("config")
def config_cmd() -> None:
    """Print the effective configuration and where each value came from."""
    rows = get_settings().describe()
    w = max(len(r[0]) for r in rows)
    echo(f"{'setting':<{w}}  value  [source]")
    for key, val, src in rows:
        echo(f"{key:<{w}}  {val}  [{src}]")


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
    type=click.Path(),
    required=True,
    help="Output folder (created if missing): writes segments.<format>.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(SEGMENT_FORMATS)),
    default=None,
    help="geojson (RFC 7946, default), gpkg (metric CRS) or csv (attributes and WKT).",
)
def segments_cmd(
    border: str | None, length_m: float | None, max_gap_m: float, out: str, fmt: str | None
) -> None:
    """Split a border line into segments with stable ids."""
    from riskmodel.api import build_segments

    old_form = _FILE_SUFFIXES.get(Path(out).suffix.lower())
    if old_form is not None:
        if fmt is not None and fmt != old_form:
            raise click.UsageError(f"--out {out} and --format {fmt} disagree")
        path = Path(out)
    else:
        path = Path(out) / f"segments{SEGMENT_FORMATS[fmt or 'geojson']}"
    s = get_settings().with_flags(segment_length_m=length_m)
    t0 = time.perf_counter()
    info = build_segments(s, border=border, out=str(path), max_gap_m=max_gap_m)
    echo(
        f"{info['segments']} segments of ~{info['mean_length_m']:.0f} m; length sum "
        f"{info['segment_length_sum_m'] / 1000:.3f} km vs line {info['line_length_m'] / 1000:.3f} km "
        f"(diff {info['difference_m']:.3f} m); metric CRS {info['crs']} -> {path} "
        f"[{time.perf_counter() - t0:.2f} s]"
    )
    if old_form is not None:  # after the work, so errors stay one line
        note(f"--out FILE is deprecated; use --out {path.parent} [--format {old_form}]")


@main.command("simulate")
@out_option()
@seed_option()
@click.option(
    "--from",
    "date_from",
    type=DAY,
    default=None,
    help="First date (default: 3 years before --to).",
)
@click.option("--to", "to", type=DAY, default=None, help="Last date (default: yesterday).")
@renamed_option("--start", "--from", "date_from", type=DAY)
@renamed_option("--end", "--to", "to", type=DAY)
@click.option(
    "--persons-per-year",
    type=float,
    default=None,
    help="Recorded persons in the first year (default 50000).",
)
@pairs_option(
    "--scenario-param",
    "scenario",
    help="Any other scenario parameter (repeatable), e.g. theta=0.5.",
)
@renamed_pairs("--param", "--scenario-param", "scenario")
@world_option()
def simulate_cmd(
    out: str,
    seed: int,
    date_from: str | None,
    to: str | None,
    persons_per_year: float | None,
    scenario: dict,
    world: str,
) -> None:
    """Simulate a truth-known multi-year history on the real border.

    events.csv holds the recorded crossings, effort.csv the deployment, truth.parquet all
    crossings and the true intensity per segment and shift.
    """
    from riskmodel.api import run_simulation

    summary = run_simulation(
        get_settings(),
        out=Path(out),
        seed=seed,
        start=date_from,
        end=to,
        persons_per_year=persons_per_year,
        params=scenario,
        world=world,
    )
    _print_sim_summary(summary, out)


def _print_sim_summary(summary: dict, out: str | Path) -> None:
    echo(
        f"simulated {summary['incidents']} incidents, {summary['persons']} persons "
        f"on {summary['segments']} segments x {summary['windows']} shifts "
        f"in {summary['runtime_s']:.1f} s -> {out}"
    )
    for y, r in summary["per_year"].items():
        echo(
            f"  {y}: {r['incidents']:6d} incidents {r['persons']:7d} persons {r['smugglers']:4d} smugglers"
        )
    areas = ", ".join(f"{k or '?'} {v:.1%}" for k, v in summary["share_by_area"].items())
    echo(f"  persons by directorate: {areas}")
    echo(f"  share at night (22-06): {summary['share_night_22_06']:.1%}")
    if "records_from_patrolled_share" in summary:
        echo(
            f"  world {summary['world']}: {summary['recorded_share_of_true']:.1%} of "
            f"{summary['true_crossing_groups']} true crossing groups recorded; "
            f"{summary['records_from_patrolled_share']:.1%} of the records from the "
            f"{summary['patrolled_cell_share']:.2%} patrolled segment-shifts"
        )
