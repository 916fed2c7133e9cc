"""Schema, append-only audit table and roles in PostgreSQL (``riskmodel db init``).

:func:`init_schema` creates, idempotently:

* the schema and ``<schema>.audit_log`` (columns in :mod:`riskmodel.audit.dbstore`), owned by
  ``riskmodel_owner``;
* a trigger that refuses UPDATE, DELETE and TRUNCATE of the audit table, even for the owner (a
  second wall behind the privileges; whoever disables it is found by the chain check);
* the roles (no login; ``GRANT role TO login``): ``riskmodel_owner`` owns the objects,
  ``riskmodel_planner`` may SELECT and INSERT on the audit table and nothing else,
  ``riskmodel_reader`` may SELECT (also the tables ``riskmodel_publisher`` creates),
  ``riskmodel_publisher`` may create the published layer tables in the schema.
"""

from __future__ import annotations

import logging
from typing import Any

from riskmodel.audit.dbstore import AUDIT_TABLE, db_error, db_id, lock_key, sql_module, table_ident
from riskmodel.errors import ConfigError, OutputError

log = logging.getLogger(__name__)

#: The roles ``riskmodel db init`` creates (names are cluster-wide).
OWNER_ROLE, PLANNER_ROLE, READER_ROLE = "riskmodel_owner", "riskmodel_planner", "riskmodel_reader"
PUBLISHER_ROLE = "riskmodel_publisher"
ROLES = (OWNER_ROLE, PLANNER_ROLE, READER_ROLE, PUBLISHER_ROLE)
_COLUMNS = ("seq", "entry", "entry_text", "prev", "hash", "created_at")


_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    entry jsonb NOT NULL,
    entry_text text NOT NULL,
    prev text,
    hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {table} IS
    'riskmodel plan audit trail: append-only, keyed hash chain over entry_text (riskmodel audit)';
CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'riskmodel audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$f$;
DROP TRIGGER IF EXISTS audit_log_append_only ON {table};
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {func}();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON {table};
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {func}();
"""


def _grants(schema: Any, table: Any, func: Any) -> list[Any]:
    sql = sql_module()
    owner, planner, reader, publisher = (sql.Identifier(r) for r in ROLES)
    q = [
        "ALTER SCHEMA {schema} OWNER TO {owner}",
        "ALTER TABLE {table} OWNER TO {owner}",
        "ALTER FUNCTION {func}() OWNER TO {owner}",
        "REVOKE ALL ON TABLE {table} FROM PUBLIC",
        "REVOKE ALL ON FUNCTION {func}() FROM PUBLIC",
        "GRANT USAGE ON SCHEMA {schema} TO {planner}, {reader}",
        "REVOKE ALL ON TABLE {table} FROM {planner}, {reader}",
        "GRANT SELECT, INSERT ON TABLE {table} TO {planner}",
        "GRANT SELECT ON TABLE {table} TO {reader}",
        # Published layers: created by the publisher role, readable by readers.
        "GRANT USAGE, CREATE ON SCHEMA {schema} TO {publisher}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {publisher} IN SCHEMA {schema} "
        "GRANT SELECT ON TABLES TO {reader}",
        # QGIS's styles table: readers load the default styles, publishers replace theirs.
        "GRANT SELECT ON TABLE public.layer_styles TO {reader}, {publisher}",
        "GRANT INSERT, DELETE ON TABLE public.layer_styles TO {publisher}",
        "GRANT USAGE ON SEQUENCE public.layer_styles_id_seq TO {publisher}",
    ]
    names = dict(
        schema=schema,
        table=table,
        func=func,
        owner=owner,
        planner=planner,
        reader=reader,
        publisher=publisher,
    )
    return [sql.SQL(s).format(**names) for s in q]


def init_schema(
    uri: str,
    schema: str = "riskmodel",
    *,
    planners: tuple[str, ...] | list[str] = (),
    readers: tuple[str, ...] | list[str] = (),
    publishers: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """Create (or bring up to date) the schema, the audit table, its trigger and the roles.

    Idempotent: running it again changes nothing that is already right. Needs a role that may
    create roles and schemas (a superuser or the database owner with CREATEROLE).

    Parameters
    ----------
    uri : str
        libpq URI or ``service=NAME``.
    schema : str
        Schema to create.
    planners, readers, publishers : sequence of str
        Existing login roles to grant ``riskmodel_planner`` / ``riskmodel_reader`` /
        ``riskmodel_publisher``.

    Returns
    -------
    list of str
        What was done, in words.
    """
    from riskmodel.io.db import connect, require_psycopg
    from riskmodel.io.write.postgis import ensure_styles_table

    psycopg = require_psycopg()
    sql = sql_module()
    table, func = table_ident(schema), sql.Identifier(schema, "audit_log_append_only")
    done: list[str] = []
    try:
        with connect(uri) as con:
            con.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(schema)])
            for role in ROLES:
                if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    con.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                    done.append(f"created role {role}")
            me, superuser = con.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not superuser:  # to hand objects to the owner role one must be a member of it
                con.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(OWNER_ROLE), sql.Identifier(me))
                )
            if not con.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]
            ).fetchone():
                done.append(f"created schema {schema}")
            con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            if not con.execute(
                "SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".{AUDIT_TABLE}']
            ).fetchone()[0]:
                done.append(f"created table {schema}.{AUDIT_TABLE}")
            con.execute(sql.SQL(_DDL).format(table=table, func=func))
            _check_columns(con, uri, schema)
            if ensure_styles_table(con):
                done.append("created table public.layer_styles (QGIS styles)")
            for stmt in _grants(sql.Identifier(schema), table, func):
                con.execute(stmt)
            for role, logins in (
                (PLANNER_ROLE, planners),
                (READER_ROLE, readers),
                (PUBLISHER_ROLE, publishers),
            ):
                for login in logins:
                    con.execute(
                        sql.SQL("GRANT {} TO {}").format(
                            sql.Identifier(role), sql.Identifier(login)
                        )
                    )
                    done.append(f"granted {role} to {login}")
    except psycopg.Error as exc:
        raise db_error(exc, uri, "initialising the database", OutputError) from None
    return done


def _check_columns(con: Any, uri: str, schema: str) -> None:
    got = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [schema, AUDIT_TABLE],
        )
    }
    missing = [c for c in _COLUMNS if c not in got]
    if missing:
        raise ConfigError(
            f"table {schema}.{AUDIT_TABLE} exists but lacks columns {', '.join(missing)}",
            where=f"database {db_id(uri, schema)}",
            fix="it is not a riskmodel audit table: use another --schema",
        )
