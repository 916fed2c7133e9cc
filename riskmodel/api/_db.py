"""Database verbs of the audit trail: ``riskmodel db init`` (schema, audit table, roles) and the
export/import between the JSON-lines log and the audit table."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from riskmodel.audit.chain import LogIntegrity
from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError

log = logging.getLogger(__name__)


def audit_target(
    settings: Settings,
    audit_log: str | os.PathLike[str] | None = None,
    db: str | None = None,
    db_schema: str | None = None,
) -> tuple[str | None, str | None, str]:
    """Which audit store a command uses: ``(audit_log, db, schema)``, one of the first two set.

    ``db`` given: that database's table. ``audit_log`` given: that file. Neither: the
    workspace's store (``audit_store``: the table in ``database``, else ``audit_log``).

    Raises
    ------
    ConfigError
        Both a file and a database are given.
    """
    schema = db_schema or settings.db_schema or "riskmodel"
    if db and audit_log:
        raise ConfigError(
            "give either --audit-log FILE or --db URI, not both",
            fix="export/import copy between them: riskmodel audit export / import",
        )
    if db:
        return None, db, schema
    if audit_log:
        return str(audit_log), None, schema
    if settings.audit_store == "database":
        return None, settings.database, schema
    return str(settings.audit_log), None, schema


def _db_of(settings: Settings, db: str | None) -> str:
    uri = db or settings.database
    if not uri:
        raise ConfigError(
            "no database given", fix="give --db URI (or set database in riskmodel.toml)"
        )
    return uri


def db_init(
    settings: Settings,
    db: str | None = None,
    db_schema: str | None = None,
    *,
    planners: Sequence[str] = (),
    readers: Sequence[str] = (),
    publishers: Sequence[str] = (),
) -> list[str]:
    """Create the schema, the append-only audit table and the roles (idempotent).

    See :func:`riskmodel.audit.dbstore.init_schema`.

    Parameters
    ----------
    settings : Settings
        ``database`` and ``db_schema`` when ``db`` / ``db_schema`` are not given.
    db : str, optional
        libpq URI or ``service=NAME`` (a role that may create roles and schemas).
    db_schema : str, optional
        Schema name (default ``settings.db_schema``).
    planners, readers, publishers : sequence of str
        Existing login roles to grant ``riskmodel_planner`` / ``riskmodel_reader`` /
        ``riskmodel_publisher``.

    Returns
    -------
    list of str
        What was done (empty: everything was already in place).
    """
    from riskmodel.audit.dbschema import init_schema

    return init_schema(
        _db_of(settings, db),
        db_schema or settings.db_schema,
        planners=list(planners),
        readers=list(readers),
        publishers=list(publishers),
    )


def export_audit(
    settings: Settings,
    out: str | os.PathLike[str],
    db: str | None = None,
    db_schema: str | None = None,
) -> tuple[int, LogIntegrity]:
    """Write the audit table as a JSON-lines log, byte for byte (see
    :func:`riskmodel.audit.dbstore.export_log`); the chain is verified with the settings' key.

    Returns
    -------
    rows : int
    integrity : LogIntegrity
    """
    from riskmodel.audit.dbstore import db_anchor, export_log

    uri, schema = _db_of(settings, db), db_schema or settings.db_schema
    anchor = db_anchor(settings.workspace, uri, schema)
    return export_log(uri, schema, out, key=settings.key(), anchor=anchor)


def import_audit(
    settings: Settings,
    audit_log: str | os.PathLike[str],
    db: str | None = None,
    db_schema: str | None = None,
) -> int:
    """Copy a verified JSON-lines log into the audit table (see
    :func:`riskmodel.audit.dbstore.import_log`); the log is verified with the settings' key and,
    if it is the workspace's log, its anchor.

    Returns
    -------
    int
        Rows inserted.
    """
    from riskmodel.audit.dbstore import import_log
    from riskmodel.audit.log import anchor_of

    ws = settings.workspace
    return import_log(
        Path(audit_log),
        _db_of(settings, db),
        db_schema or settings.db_schema,
        key=settings.key(),
        anchor=anchor_of(ws, audit_log),
        workspace=ws,
    )
