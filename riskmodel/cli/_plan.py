"""``riskmodel plan`` and ``riskmodel audit``: thin wrappers over :func:`riskmodel.api.run_plan` and
:func:`riskmodel.api.audit_report`."""

from __future__ import annotations

import logging

import click

from riskmodel.cli import main
from riskmodel.cli._common import (
    DAY,
    Inputs,
    echo,
    get_settings,
    model_options,
    out_option,
    reader_options,
    seed_option,
)
from riskmodel.errors import EXIT_VIOLATION
from riskmodel.geo.shifts import parse_shifts

log = logging.getLogger(__name__)


@main.command()
@click.option(
    "--risk",
    type=click.Path(dir_okay=False),
    default=None,
    help="Risk table from 'riskmodel score' (CSV/Parquet/GeoJSON; shifts may be stacked).",
)
@click.option(
    "--units",
    type=click.IntRange(min=1),
    default=None,
    help="Checks (units) per shift, N. Optional with --units-per-area.",
)
@click.option(
    "--units-per-area",
    "units_per_area",
    type=click.Path(dir_okay=False),
    default=None,
    help="CSV area,units: split the units by area (coverage solved per area).",
)
@click.option(
    "--caps",
    type=click.Path(dir_okay=False),
    default=None,
    help="Caps TOML/JSON: per_shift, max_per_segment_per_7d, max_per_segment_per_30d, "
    "max_share_of_shifts, floor_factor, entropy_ratio_min, slot_hours.",
)
@click.option(
    "--include",
    default=None,
    metavar="IDS",
    help="Comma-separated segment ids forced into the plan (caps still apply).",
)
@click.option(
    "--exclude",
    default=None,
    metavar="IDS",
    help="Comma-separated segment ids left out of the plan.",
)
@click.option(
    "--shift",
    "shift_name",
    default=None,
    metavar="NAME",
    help="Plan only this shift (default: every shift in the risk table).",
)
@seed_option(help="Seed for drills/tests (default: OS entropy; always recorded).", default=None)
@click.option(
    "--segments",
    type=click.Path(dir_okay=False),
    default=None,
    help="Segments layer with geometry (enables the GeoJSON map and border sketch).",
)
@click.option(
    "--audit-log",
    "audit_log",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append-only audit log (default: setting audit_log).",
)
@click.option(
    "--date",
    "date",
    type=DAY,
    default=None,
    metavar="D",
    help="Score local date D first (needs --events; model: --model or the newest bundle).",
)
@reader_options(required=False)
@model_options(help_model="Model bundle for --date (default: the newest in the models root).")
@out_option()
def plan(
    risk: str | None,
    units: int | None,
    units_per_area: str | None,
    caps: str | None,
    include: str | None,
    exclude: str | None,
    shift_name: str | None,
    seed: int | None,
    segments: str | None,
    audit_log: str | None,
    date: str | None,
    inputs: Inputs,
    model: str | None,
    trust_model: bool,
    models_root: str | None,
    out: str,
) -> None:
    """Randomised, risk-weighted, capped spot-check plan(s) for the shift(s) of a risk table.

    Writes plan_<date>_<shift>.csv, briefing_<date>_<shift>.html (and .geojson/.qml with
    geometry) and appends one entry per plan to the audit log.
    """
    from riskmodel import api

    settings = get_settings().with_flags(models_root=models_root)
    if (risk is None) == (date is None):
        raise click.UsageError(
            "give either --risk FILE (from 'riskmodel score') or --date D with --events FILE"
        )
    if units is None and units_per_area is None:
        raise click.UsageError("give --units N or --units-per-area FILE")
    if date is not None and inputs.events is None:
        raise click.UsageError("--date needs --events FILE")
    model_id = None
    seg_gdf = api.read_segments(settings, segments) if segments else None
    if date is not None:
        risk_df, model_id, scored_segments = api.score_for_plan(
            settings,
            inputs.events,
            inputs.effort,
            date=date,
            shift=shift_name,
            model=model,
            trust=trust_model,
            border=inputs.border,
            read_kwargs=inputs.read_kwargs,
            quarantine_dir=out,
        )
        if seg_gdf is None:
            seg_gdf = scored_segments
    else:
        risk_df = api.read_risk(risk)
    upa = api.read_units_per_area(units_per_area) if units_per_area else None
    config = api.load_caps(caps, shifts_per_day=len(parse_shifts(settings.shifts)))
    log_path = audit_log or settings.audit_log
    results = api.run_plan(
        risk_df,
        out,
        log_path,
        units,
        units_per_area=upa,
        config=config,
        include=api.parse_ids(include),
        exclude=api.parse_ids(exclude),
        shift=shift_name,
        seed=seed,
        segments=seg_gdf,
        tz=settings.timezone,
        risk_file=risk,
        model_id=model_id,
    )
    for p, files in results:
        s = p.stats
        echo(
            f"{p.date} {p.shift}: {p.units} checks, entropy {s['entropy']:.2f} "
            f"(top-k {s['topk_entropy']:.2f}), max p {s['max_inclusion']:.2f}, expected "
            f"{s['expected_detections']:.2f} vs top-k {s['topk_expected_detections']:.2f}, "
            f"{s['blocked_by_caps']} capped, {len(p.warnings)} warning(s) -> "
            + ", ".join(f.name for f in files)
        )
    if results:
        # Keep this hash elsewhere (e-mail, paper log): it anchors the audit log's hash chain.
        echo(
            f"recorded {len(results)} plan(s) with seed in {log_path}; "
            f"log head sha256 {results[-1][0].audit_sha256}"
        )


@main.command()
@click.option("--from", "date_from", type=DAY, required=True, metavar="D", help="First plan date.")
@click.option("--to", "date_to", type=DAY, required=True, metavar="D", help="Last plan date.")
@click.option(
    "--audit-log",
    "audit_log",
    type=click.Path(dir_okay=False),
    default=None,
    help="Audit log (default: setting audit_log).",
)
@out_option(required=False, help="Write audit_<from>_<to>.json/.csv/.md here.")
@click.option(
    "--fail-on-violation",
    is_flag=True,
    help="Exit with code 6 if a cap was exceeded or the log is damaged (broken hash chain, "
    "corrupt lines).",
)
def audit(
    date_from: str, date_to: str, audit_log: str | None, out: str | None, fail_on_violation: bool
) -> None:
    """Compliance statistics of the plans in a period (Schengen Borders Code art. 23, CJEU C-9/16)."""
    from riskmodel.api import audit_report, audit_summary, write_audit_report

    settings = get_settings()
    log_path = audit_log or settings.audit_log
    report = audit_report(log_path, date_from, date_to)
    if report.summary["log_integrity"]["lines"] == 0:
        echo(f"riskmodel: warning: audit log {log_path} is empty or missing", err=True)
    for line in audit_summary(report):
        echo(line)
    if out:
        files = write_audit_report(report, out)
        echo("wrote " + ", ".join(str(f) for f in files))
    if fail_on_violation and not report.passed:
        raise click.exceptions.Exit(EXIT_VIOLATION)
