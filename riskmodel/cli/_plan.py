"""``riskmodel plan`` and ``riskmodel audit``: thin wrappers over :func:`riskmodel.api.run_plan` and
:func:`riskmodel.api.audit_report`."""

from __future__ import annotations

import logging

import click

from riskmodel.cli import _command_verbosity, main
from riskmodel.cli._common import (
    DAY,
    Inputs,
    echo,
    get_settings,
    model_options,
    out_option,
    reader_options,
    replan_option,
    seed_option,
)
from riskmodel.cli._db import db_options
from riskmodel.config.shifts import parse_shifts
from riskmodel.errors import EXIT_VIOLATION

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
    "max_share_of_shifts, floor_factor, entropy_ratio_min, slot_hours (default: setting caps, "
    "else the built-in caps; caps always apply).",
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
@click.option(
    "--reason",
    default=None,
    metavar="TEXT",
    help="Why (recorded): required with --include/--exclude, --force, --replan, --new-log-segment.",
)
@click.option("--by", default=None, metavar="NAME", help="Who decides (recorded; default: login).")
@click.option(
    "--force",
    is_flag=True,
    help="Hand out a plan the caps refuse (systematic coverage, units beyond the caps); "
    "needs --reason, recorded in the audit log.",
)
@replan_option
@click.option(
    "--new-log-segment",
    "new_log_segment",
    is_flag=True,
    help="The audit log is damaged or new: record a new chain (needs --reason) and plan.",
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
    reason: str | None,
    by: str | None,
    force: bool,
    replan: bool,
    new_log_segment: bool,
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
    needs = [f for f, on in (("--include", include), ("--exclude", exclude), ("--force", force),
                             ("--replan", replan), ("--new-log-segment", new_log_segment))
             if on]  # fmt: skip
    if needs and not (reason or "").strip():
        raise click.UsageError(f"{needs[0]} needs --reason TEXT (it is recorded in the audit log)")
    if audit_log and settings.audit_store == "database":
        raise click.UsageError(
            "this workspace keeps its audit in the database (audit_store = database): "
            "--audit-log would plan without the shared history"
        )
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
        risk_df = api.read_risk(risk, timezone=settings.timezone)
    upa = api.read_units_per_area(units_per_area) if units_per_area else None
    config = api.load_caps(
        caps or settings.caps or None, shifts_per_day=len(parse_shifts(settings.shifts))
    )
    log_path, uri, schema = api.audit_target(settings, audit_log)
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
        key=settings.key(),
        workspace=settings.workspace,
        db=uri,
        db_schema=schema,
        reason=reason,
        by=by,
        force=force,
        replan=replan,
        new_log_segment=new_log_segment,
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
        last = results[-1][0]
        where = (
            "anchored in the workspace state"
            if settings.workspace is not None
            else "no workspace: keep this head elsewhere (e-mail, paper log) to anchor the log"
        )
        echo(
            f"recorded {len(results)} plan(s) with seed in "
            f"{log_path or f'the audit table {schema}.audit_log'}; audit head seq "
            f"{last.audit_seq} mac {last.audit_sha256} ({where})"
        )
        if settings.key() is None:
            from riskmodel.audit.log import UNKEYED_NOTE

            echo(f"riskmodel: warning: audit log {UNKEYED_NOTE}", err=True)


@main.group(invoke_without_command=True)
@click.option(
    "--from",
    "date_from",
    type=DAY,
    default=None,
    metavar="D",
    help="First plan date (default: 30 days ago, -30).",
)
@click.option(
    "--to",
    "date_to",
    type=DAY,
    default=None,
    metavar="D",
    help="Last plan date (default: +7, the plans already drawn for the coming week).",
)
@click.option(
    "--audit-log",
    "audit_log",
    type=click.Path(dir_okay=False),
    default=None,
    help="Audit log file (default: the workspace's store: setting audit_store).",
)
@db_options()
@click.option(
    "--caps",
    type=click.Path(dir_okay=False),
    default=None,
    help="Caps in force to judge the plans by (default: setting caps, else the built-in caps).",
)
@out_option(required=False, help="Write audit_<from>_<to>.json/.csv/.md here.")
@click.option(
    "--fail-on-violation",
    is_flag=True,
    help="Exit with code 6 if a cap was exceeded or the log is damaged (MAC, seq or anchor "
    "mismatch, corrupt or torn lines, a changed database row).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Move a torn last line (a write cut by a crash) to a quarantine file beside the log "
    "and record a repair entry (needs --reason).",
)
@click.option("--reason", default=None, metavar="TEXT", help="Why (recorded) for --repair.")
@click.option("--by", default=None, metavar="NAME", help="Who repairs (default: login).")
@click.pass_context
def audit(
    ctx: click.Context,
    date_from: str | None,
    date_to: str | None,
    audit_log: str | None,
    db: str | None,
    db_schema: str | None,
    caps: str | None,
    out: str | None,
    fail_on_violation: bool,
    repair: bool,
    reason: str | None,
    by: str | None,
) -> None:
    """Compliance statistics of the plans in a period (Schengen Borders Code art. 23, CJEU C-9/16),
    each next to its cap, and the integrity of the keyed, anchored audit log (file or database
    table). Sub-commands copy between the two stores."""
    from riskmodel import api

    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    log_path, uri, schema = api.audit_target(settings, audit_log, db, db_schema)
    if repair:
        if uri is not None:
            raise click.UsageError("--repair is for a log file; a database row is never torn")
        if not (reason or "").strip():
            raise click.UsageError("--repair needs --reason TEXT (it is recorded)")
        entry = api.repair_log(
            log_path, reason or "", by=by, key=settings.key(), workspace=settings.workspace
        )
        echo(
            f"moved the torn line ({entry['torn_bytes']} bytes, sha256 {entry['torn_sha256']}) "
            f"to {entry['quarantine']} and recorded repair entry seq {entry['seq']}"
        )
        if date_from is None:
            return
    # The usual question: the last month and whatever is already planned ahead.
    date_from = date_from or DAY.convert("-30", None, ctx)
    date_to = date_to or DAY.convert("+7", None, ctx)
    if date_from > date_to:
        raise click.UsageError(f"--to {date_to} is before --from {date_from}")
    config = api.load_caps(
        caps or settings.caps or None, shifts_per_day=len(parse_shifts(settings.shifts))
    )
    report = api.audit_report(
        log_path,
        date_from,
        date_to,
        key=settings.key(),
        workspace=settings.workspace,
        caps=config,
        db=uri,
        db_schema=schema,
    )
    if report.summary["log_integrity"]["lines"] == 0:
        what = f"audit log {log_path}" if uri is None else f"audit table {schema}.audit_log"
        echo(f"riskmodel: warning: {what} is empty or missing", err=True)
    for line in api.audit_summary(report):
        echo(line)
    if out:
        files = api.write_audit_report(report, out)
        echo("wrote " + ", ".join(str(f) for f in files))
    if fail_on_violation and not report.passed:
        raise click.exceptions.Exit(EXIT_VIOLATION)


@audit.command("export")
@click.argument("out_file", metavar="OUT.jsonl", type=click.Path(dir_okay=False))
@db_options()
@click.option(
    "--fail-on-violation",
    is_flag=True,
    help="Exit with code 6 if the table's chain does not verify (the file is written anyway).",
)
def audit_export(
    out_file: str, db: str | None, db_schema: str | None, fail_on_violation: bool
) -> None:
    """Write the database audit table to OUT.jsonl, one row per line, byte for byte (the file
    verifies like a log file; import gives back the same rows)."""
    from riskmodel import api

    settings = get_settings()
    rows, integ = api.export_audit(settings, out_file, db, db_schema)
    echo(f"exported {rows} rows to {out_file}; {integ.status_line()}")
    if fail_on_violation and not integ.ok:
        raise click.exceptions.Exit(EXIT_VIOLATION)


@audit.command("import")
@click.argument("log_file", metavar="LOG.jsonl", type=click.Path(dir_okay=False, exists=True))
@db_options()
def audit_import(log_file: str, db: str | None, db_schema: str | None) -> None:
    """Copy an audit log file into the database audit table, line N as row N. The log's chain
    (and the workspace anchor, if it is the workspace's log) is verified first; the table must
    be empty or hold the start of the same log."""
    from riskmodel import api

    settings = get_settings()
    rows = api.import_audit(settings, log_file, db, db_schema)
    echo(f"imported {rows} entries from {log_file} into the audit table")


_command_verbosity(audit)
