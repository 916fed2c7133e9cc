"""Command: publish (a run's risk layers and plans into PostGIS, styled for QGIS)."""

from __future__ import annotations

import logging

import click

from riskmodel.cli import main
from riskmodel.cli._common import echo, get_settings

log = logging.getLogger(__name__)


@main.command("publish")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option(
    "--db",
    "db",
    default=None,
    metavar="URI",
    help="postgresql://user@host:port/db or service=NAME (default: setting database); the "
    "password belongs in PGPASSWORD or ~/.pgpass.",
)
@click.option(
    "--schema", default=None, help="Target schema (default: setting db_schema, 'riskmodel')."
)
def publish_cmd(outdir: str, db: str | None, schema: str | None) -> None:
    """Publish what a score, plan or daily run wrote into OUTDIR to PostGIS: one table per
    layer kind (risk_segments, plan_checks) keyed by date and shift, a <kind>_latest view,
    QGIS default styles in public.layer_styles. One transaction: a re-published day replaces
    the old one, and readers never see half a day."""
    from riskmodel.api import publish

    res = publish(get_settings(), outdir, db=db, schema=schema)
    for table, n in res.rows.items():
        echo(f"{res.schema}.{table}: {n} rows")
    echo(f"published {', '.join(res.days)} to {res.database} (schema {res.schema})")
