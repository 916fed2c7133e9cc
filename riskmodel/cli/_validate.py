"""``riskmodel validate``: read the input files, check them, report; change nothing."""

from __future__ import annotations

import click

from riskmodel.cli import main
from riskmodel.cli._common import events_options, get_settings, log, out_option, parse_columns
from riskmodel.errors import InputError
from riskmodel.io.read.effort import read_effort
from riskmodel.io.read.events import read_events
from riskmodel.io.read.result import ReadResult
from riskmodel.io.read.times import DST_POLICIES


@main.command("validate")
@events_options(required=True)
@out_option(required=False, help="Write rejected_<input>.csv here (default: write no files).")
@click.option(
    "--max-distance-m",
    type=float,
    default=None,
    help="Quarantine events farther from the border (default from settings: 20000).",
)
@click.option(
    "--swap-latlon",
    is_flag=True,
    help="Swap lat/lon in rows where only the swapped pair lies in Slovenia.",
)
@click.option(
    "--dst",
    type=click.Choice(DST_POLICIES),
    default="raise",
    show_default=True,
    help="Local times that do not exist / occur twice at DST changes: raise an error; "
    "shift (read with the pre-change offset; ambiguous quarantined); "
    "earliest/latest occurrence; drop (quarantine).",
)
@click.option(
    "--encoding", default=None, help="Text encoding of the CSV inputs (default: detected)."
)
@click.option(
    "--delimiter",
    default=None,
    help="Delimiter of the CSV inputs: , ; tab | (default: sniffed per file).",
)
@click.pass_context
def validate(
    ctx: click.Context,
    events: str,
    effort: str | None,
    border: str | None,
    assume_tz: str | None,
    input_crs: str | None,
    columns: tuple[str, ...],
    strict: bool,
    out: str | None,
    max_distance_m: float | None,
    swap_latlon: bool,
    dst: str,
    encoding: str | None,
    delimiter: str | None,
) -> None:
    """Read the events (and effort) files, check every row and report: rows read, accepted,
    quarantined by reason, time span, extent and share near the border. Exit 0 when the files
    are usable; 3 on a file-level problem, or with --strict when any row is quarantined."""
    settings = get_settings(ctx).with_flags(max_distance_m=max_distance_m)
    mapping = parse_columns(columns, settings)
    border_gdf = _border(border or settings.border or None, settings.metric_crs)
    common = dict(
        columns=mapping,
        assume_tz=assume_tz,
        crs=input_crs,
        swap_latlon=swap_latlon,
        dst=dst,
        encoding=encoding,
        delimiter=delimiter,
        metric_crs=settings.metric_crs,
    )
    results: list[ReadResult] = [
        read_events(events, border=border_gdf, max_distance_m=settings.max_distance_m, **common)
    ]
    if effort:
        results.append(read_effort(effort, **common))
    for res in results:
        for line in res.report_lines():
            click.echo(line)
        if out:
            written = res.write_quarantine(out)
            if written:
                click.echo(f"  wrote {written}")
    if strict:
        for res in results:
            err = res.first_rejection_error()
            if err is not None:
                raise err


def _border(path: str | None, crs: str) -> object | None:
    """The border line: the user's file, else the bundled one (skipped with a warning if absent)."""
    from riskmodel.geo import geodata as geodata

    if path:
        return geodata.load_layer("border", override=path, crs=crs)
    try:
        return geodata.load_layer("border", crs=crs)
    except InputError as exc:
        log.warning("bundled border not available (%s); distance checks skipped", exc.what)
        return None
