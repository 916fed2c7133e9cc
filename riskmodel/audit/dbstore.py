"""The audit trail in PostgreSQL: an append-only table holding the same keyed chain as the
JSON-lines log (the database store).

``<schema>.audit_log`` has one row per entry::

    seq         bigint primary key   row number 1, 2, 3, ... (= line number of the export)
    entry       jsonb                the entry, for SQL readers
    entry_text  text                 the exact JSON text the MAC covers (byte for byte)
    prev, hash  text                 the entry's ``prev`` and ``mac`` (for SQL readers)
    created_at  timestamptz          when the row was inserted

:func:`riskmodel.audit.dbschema.init_schema` (``riskmodel db init``) creates the schema, the
table, its append-only trigger and the roles.

:class:`DbAuditLog` appends under a transaction-level advisory lock (one fixed key per
schema): the history is read, the plan drawn and its entries inserted in one transaction that
holds the lock, so two planners at once can neither fork the chain nor exceed a cap together;
the lock is released when the transaction commits. Verification (:func:`read_db_log`) reads
``entry_text`` and checks the chain with :func:`riskmodel.audit.chain.verify_records`, and also
that ``entry``, ``prev`` and ``hash`` still agree with that text: a row changed by someone who
got past the trigger is found. :func:`export_log` and :func:`import_log` copy between the file
and the table byte for byte.

psycopg is imported only through :mod:`riskmodel.io.db`, when a database is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskmodel.audit.chain import LogIntegrity, Record, verify_records
from riskmodel.audit.log import read_log
from riskmodel.audit.store import AuditStore
from riskmodel.config.workspace import Workspace
from riskmodel.errors import ConfigError, InputError, OutputError, RiskModelError
from riskmodel.files import atomic_write_with

log = logging.getLogger(__name__)

AUDIT_TABLE = "audit_log"
_LOCK_TIMEOUT_S = 60.0


def lock_key(schema: str) -> int:
    """The advisory-lock key of a schema's audit table (a signed 64-bit number)."""
    digest = hashlib.sha256(f"riskmodel.audit_log:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def db_id(uri: str, schema: str) -> str:
    """Which database and schema a store is, without user or password (the anchor's key)."""
    from riskmodel.io.db import describe

    d = describe(uri)
    where = f"service={d['service']}" if d.get("service") and not d.get("host") else None
    where = where or f"{d.get('host') or 'localhost'}:{d.get('port') or 5432}"
    return f"{where}/{d.get('dbname') or ''}/{schema}"


def sql_module() -> Any:
    """``psycopg.sql`` (imported only when a database is used)."""
    from riskmodel.io.db import require_psycopg

    require_psycopg()
    from psycopg import sql

    return sql


def table_ident(schema: str) -> Any:
    """The quoted identifier ``"<schema>".audit_log``."""
    sql = sql_module()
    return sql.Identifier(schema, AUDIT_TABLE)


def db_error(
    exc: BaseException, uri: str, doing: str, error: type[RiskModelError]
) -> RiskModelError:
    from riskmodel.io.db import translate

    return translate(exc, uri, doing=doing, error=error)


def _require_table(con: Any, uri: str, schema: str) -> None:
    ok = con.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".{AUDIT_TABLE}'])
    if not ok.fetchone()[0]:
        raise ConfigError(
            f"the database has no audit table {schema}.{AUDIT_TABLE}",
            where=f"database {db_id(uri, schema)}",
            fix=f"create it with 'riskmodel db init --db URI --schema {schema}' (as the "
            "database owner), or check database and db_schema",
        )


def _rows(con: Any, schema: str) -> Iterator[Record]:
    """The table's rows as chain records, with what the row's other columns say about them."""
    sql = sql_module()
    cur = con.execute(
        sql.SQL(
            "SELECT seq, entry_text, entry = entry_text::jsonb, prev, hash FROM {} ORDER BY seq"
        ).format(table_ident(schema))
    )
    expect = 1
    for seq, text, same, prev, mac in cur:
        notes = []
        if seq != expect:
            notes.append(f"row {seq} follows row {expect - 1}: rows were deleted")
        if not same:
            notes.append("its jsonb copy (entry) differs from the hashed text (entry_text)")
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and (obj.get("prev") != prev or obj.get("mac") != mac):
            notes.append("its prev/hash columns differ from the entry")
        expect = seq + 1
        yield Record(int(seq), text.encode("utf-8"), note="; ".join(notes) or None)


def _verify(
    records: list[Record], key: bytes | None, anchor: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], LogIntegrity]:
    """The chain check of the rows (see :func:`riskmodel.audit.chain.verify_records`): other
    planners' rows after this workspace's anchor are expected. When no row verifies with the
    key, say that the likely cause is another signing key."""
    entries, integ = verify_records(records, key=key, anchor=anchor, label="row", ahead_ok=True)
    bad = sum("MAC does not verify" in pr for pr in integ.problems)
    if integ.keyed and integ.lines and bad == integ.lines:
        integ.problems.append(
            "no row verifies with this signing key: every planner sharing the audit table "
            "needs the same key (RISKMODEL_SIGNING_KEY or the same workspace signing.key)"
        )
    return entries, integ


def read_db_log(
    uri: str,
    schema: str = "riskmodel",
    *,
    key: bytes | None = None,
    anchor: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], LogIntegrity]:
    """Read and verify the audit table (a read-only connection, no lock).

    Parameters
    ----------
    uri : str
        libpq URI or ``service=NAME``.
    schema : str
        Schema of the audit table.
    key : bytes, optional
        The signing key of the chain.
    anchor : mapping, optional
        ``{"seq", "head"}`` the chain must reach (the workspace's ``audit_db`` anchor).

    Returns
    -------
    entries : list of dict
    integrity : LogIntegrity

    Raises
    ------
    ConfigError
        No audit table (run ``riskmodel db init``).
    InputError
        The database cannot be read.
    """
    records = _read_records(uri, schema)
    entries, integ = _verify(records, key, anchor)
    if integ.problems:
        log.warning("audit table %s in %s: %s", schema, db_id(uri, schema), integ.why)
    return entries, integ


def _read_records(uri: str, schema: str) -> list[Record]:
    """Every row of the audit table, in order, read in one read-only transaction."""
    from riskmodel.io.db import connect, require_psycopg

    psycopg = require_psycopg()
    try:
        with connect(uri, read_only=True) as con:
            _require_table(con, uri, schema)
            return list(_rows(con, schema))
    except psycopg.Error as exc:
        raise db_error(exc, uri, "reading the audit table", InputError) from None


def db_anchor(workspace: Workspace | None, uri: str, schema: str) -> dict[str, Any] | None:
    """The workspace's anchor of this database's audit table, if any."""
    if workspace is None:
        return None
    a = workspace.read_state().get(DbAuditLog.state_key)
    return a if isinstance(a, dict) and a.get("db") == db_id(uri, schema) else None


class DbAuditLog(AuditStore):
    """Exclusive, append-only handle on the audit table (use as a context manager).

    Entering opens a transaction and takes the schema's advisory lock
    (``pg_advisory_xact_lock``); :meth:`read`, the caller's planning and :meth:`append` run
    inside it; :meth:`commit` makes the appended rows durable and releases the lock (leaving
    the ``with`` block without it rolls them back). The workspace anchor
    (``audit_db: {seq, head, db}``) moves only after a commit.

    Parameters
    ----------
    uri : str
        libpq URI or ``service=NAME`` (the planner role needs SELECT and INSERT).
    schema : str
        Schema of the audit table.
    timeout : float
        Seconds to wait for another planner holding the lock.
    key, workspace
        As for :class:`riskmodel.audit.store.AuditStore`.
    """

    label = "row"
    state_key = "audit_db"
    writes_through = False

    def __init__(
        self,
        uri: str,
        schema: str = "riskmodel",
        timeout: float = _LOCK_TIMEOUT_S,
        *,
        key: bytes | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        super().__init__(key=key, workspace=workspace)
        self.uri, self.schema, self.timeout = uri, schema, timeout
        self.id = db_id(uri, schema)
        self._con: Any = None
        self._next_row = 1
        self._pending: dict[str, Any] | None = None

    @property
    def where(self) -> str:
        """``audit table <schema>.audit_log in <host:port/db>``."""
        return f"audit table {self.schema}.{AUDIT_TABLE} in {self.id.rsplit('/', 1)[0]}"

    @property
    def anchor(self) -> dict[str, Any] | None:
        """The workspace anchor of this table, if any."""
        return db_anchor(self.workspace, self.uri, self.schema)

    def anchor_value(self, seq: int, head: str) -> dict[str, Any]:
        """``{seq, head, db}``."""
        return {"seq": seq, "head": head, "db": self.id}

    def __enter__(self) -> DbAuditLog:
        from riskmodel.io.db import connect, require_psycopg

        psycopg = require_psycopg()
        self._con = connect(self.uri)
        try:
            # READ COMMITTED: every statement after the lock sees what the last holder committed.
            self._con.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            self._con.execute(f"SET LOCAL lock_timeout = '{int(self.timeout * 1000)}ms'")
            self._con.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(self.schema)])
            _require_table(self._con, self.uri, self.schema)
        except psycopg.errors.LockNotAvailable:
            self._close(rollback=True)
            raise OutputError(
                "the audit table is locked by another riskmodel run",
                where=self.where,
                fix="wait for the other plan to finish and run again",
            ) from None
        except psycopg.Error as exc:
            self._close(rollback=True)
            raise db_error(exc, self.uri, "locking the audit table", OutputError) from None
        except BaseException:
            self._close(rollback=True)
            raise
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._close(rollback=True)  # committed rows stay; anything uncommitted is dropped

    def _close(self, *, rollback: bool) -> None:
        if self._con is None:
            return
        try:
            if rollback:
                self._con.rollback()
        finally:
            self._con.close()
            self._con = None

    def _check_open(self, what: str) -> None:
        if self._con is None:
            raise RuntimeError(f"DbAuditLog.{what} outside of 'with'")

    def read(self) -> tuple[list[dict[str, Any]], LogIntegrity]:
        """Entries and integrity of the table, read inside the locked transaction."""
        from riskmodel.io.db import require_psycopg

        self._check_open("read")
        psycopg = require_psycopg()
        try:
            records = list(_rows(self._con, self.schema))
        except psycopg.Error as exc:
            raise db_error(exc, self.uri, "reading the audit table", InputError) from None
        self._next_row = records[-1].number + 1 if records else 1
        entries, self.integrity = _verify(records, self.key, self.anchor)
        if self.integrity.problems:
            log.warning("%s: %s", self.where, self.integrity.why)
        return entries, self.integrity

    def _write(self, entry: dict[str, Any], text: bytes) -> None:
        from riskmodel.io.db import require_psycopg

        psycopg = require_psycopg()
        sql = sql_module()
        try:
            self._con.execute(
                sql.SQL(
                    "INSERT INTO {} (seq, entry, entry_text, prev, hash) "
                    "VALUES (%s, %s::jsonb, %s, %s, %s)"
                ).format(table_ident(self.schema)),
                [self._next_row, text.decode(), text.decode(), entry.get("prev"), entry["mac"]],
            )
        except psycopg.Error as exc:
            raise db_error(exc, self.uri, "appending to the audit table", OutputError) from None
        self._next_row += 1

    def _move_anchor(self, entry: dict[str, Any]) -> None:  # type: ignore[override]
        self._pending = dict(entry)  # moved by commit(): a rolled-back row is no anchor

    def commit(self) -> None:
        """Commit the appended rows (this releases the advisory lock) and move the anchor."""
        from riskmodel.io.db import require_psycopg

        self._check_open("commit")
        psycopg = require_psycopg()
        try:
            self._con.commit()
        except psycopg.Error as exc:
            raise db_error(exc, self.uri, "committing to the audit table", OutputError) from None
        if self._pending is not None:
            super()._move_anchor(self._pending)
            self._pending = None


# ---------------------------------------------------------------------------------------------
# Export and import
# ---------------------------------------------------------------------------------------------


def export_log(
    uri: str,
    schema: str,
    out: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    anchor: dict[str, Any] | None = None,
) -> tuple[int, LogIntegrity]:
    """Write the audit table as a JSON-lines log, each row's ``entry_text`` as one line.

    The file is written atomically; it holds the table's rows byte for byte whether or not
    the chain verifies (the integrity is returned for the caller to report).

    Returns
    -------
    rows : int
    integrity : LogIntegrity
    """
    records = _read_records(uri, schema)
    data = b"".join(r.raw + b"\n" for r in records)
    atomic_write_with(Path(out), lambda tmp: tmp.write_bytes(data))
    return len(records), _verify(records, key, anchor)[1]


def import_log(
    path: str | os.PathLike[str],
    uri: str,
    schema: str = "riskmodel",
    *,
    key: bytes | None = None,
    anchor: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> int:
    """Copy a verified JSON-lines log into the audit table, line ``n`` as row ``n``.

    The log must verify (MACs with ``key``, ``seq``, ``anchor``). The table must be empty or
    hold a prefix of the same log byte for byte (an interrupted import is finished); anything
    else is refused. Runs under the table's advisory lock in one transaction.

    Returns
    -------
    int
        Rows inserted.

    Raises
    ------
    InputError
        The log does not verify, or the table holds another chain.
    """
    entries, integ = read_log(path, key=key, anchor=anchor)
    if not integ.ok:
        raise InputError(
            f"the log does not verify, nothing imported: {integ.why}",
            where=str(path),
            fix="import only an intact log (repair or restore it first)",
        )
    data = Path(path).read_bytes()
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    if b"".join(ln + b"\n" for ln in lines) != data:
        log.warning("%s: blank lines are not kept in the table", path)
    with DbAuditLog(uri, schema, key=key, workspace=workspace) as store:
        have = list(_rows(store._con, schema))
        if [r.raw for r in have] != lines[: len(have)]:
            raise InputError(
                f"the audit table already holds {len(have)} rows that are not the start of "
                "this log: nothing imported",
                where=store.where,
                fix="import into an empty schema (riskmodel db init --schema NEW)",
            )
        store.read()
        rest = lines[len(have) :]
        for raw in rest:
            obj = json.loads(raw)
            store._write(obj, raw)
            store.integrity.last_seq, store.integrity.last_mac = obj["seq"], obj["mac"]
            store._move_anchor(obj)
        store.commit()
    return len(rest)
