"""``riskmodel db init``: the schema, the append-only audit table and the roles in
PostgreSQL (thin wrapper over :func:`riskmodel.api.db_init`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from riskmodel.cli import main
from riskmodel.cli._common import echo, get_settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def db_options(required: bool = False) -> Callable[[F], F]:
    """``--db URI`` and ``--schema NAME`` (defaults: settings ``database``, ``db_schema``)."""

    def deco(f: F) -> F:
        f = click.option(
            "--schema",
            "db_schema",
            default=None,
            metavar="NAME",
            help="Schema of the audit table (default: setting db_schema, 'riskmodel').",
        )(f)
        return click.option(  # type: ignore[return-value]
            "--db",
            "db",
            default=None,
            required=required,
            metavar="URI",
            help="PostgreSQL: postgresql://user@host:port/db or service=NAME (password from "
            "PGPASSWORD or ~/.pgpass, never on the command line; default: setting database).",
        )(f)

    return deco


@main.group("db")
def db_group() -> None:
    """The station's PostgreSQL/PostGIS database: schema, audit table and roles."""


@db_group.command("init")
@db_options()
@click.option(
    "--planner",
    "planners",
    multiple=True,
    metavar="LOGIN",
    help="Grant riskmodel_planner (SELECT, INSERT on the audit table) to this existing login "
    "role (repeatable).",
)
@click.option(
    "--reader",
    "readers",
    multiple=True,
    metavar="LOGIN",
    help="Grant riskmodel_reader (SELECT only) to this existing login role (repeatable).",
)
@click.option(
    "--publisher",
    "publishers",
    multiple=True,
    metavar="LOGIN",
    help="Grant riskmodel_publisher (may create the published layer tables in the schema) to "
    "this existing login role (repeatable).",
)
def init_cmd(
    db: str | None,
    db_schema: str | None,
    planners: tuple[str, ...],
    readers: tuple[str, ...],
    publishers: tuple[str, ...],
) -> None:
    """Create the schema, the append-only audit table and the roles riskmodel_owner (owns
    them), riskmodel_planner (SELECT, INSERT on the audit table), riskmodel_reader (SELECT)
    and riskmodel_publisher (creates the published layer tables). UPDATE, DELETE
    and TRUNCATE of the audit table are refused by a trigger, even for the owner. Idempotent:
    run it again after an upgrade or to grant more logins. Run it as a role that may create
    roles and schemas (a superuser, or the database owner with CREATEROLE)."""
    from riskmodel import api

    settings = get_settings()
    done = api.db_init(
        settings, db, db_schema, planners=planners, readers=readers, publishers=publishers
    )
    for line in done:
        echo(f"  {line}")
    schema = db_schema or settings.db_schema
    echo(
        f"database ready: schema {schema}, audit table {schema}.audit_log "
        f"({'already in place' if not done else 'set up'}); planners log in as a role granted "
        "riskmodel_planner"
    )
