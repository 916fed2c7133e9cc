"""Events and effort read from PostgreSQL/PostGIS through the same door as files.

A :class:`DbSource` names a table (``schema.table``) or a ``SELECT`` of a database. The
readers (:func:`~riskmodel.io.read.events.read_events`, :func:`~riskmodel.io.read.effort.read_effort`)
accept it wherever they accept a path: :meth:`DbSource.load_raw` turns the rows into the same
:class:`~riskmodel.io.read.tables.RawTable` a file gives, and from there the validation,
column mapping and quarantine are the files' own.

- Rows are copied out with ``COPY (SELECT ...) TO STDOUT`` as CSV, so every value reaches
  the checks as the same string a CSV export of the table would hold (NULL blank; times in
  UTC with their offset; a ``timestamp without time zone`` stays naive and needs
  ``--assume-tz`` exactly like a naive CSV column).
- The first geometry (or geography) column becomes the row geometry, in any SRID: each
  row's SRID travels in its EWKB, rows of one SRID keep it (and the reader reprojects as for
  a vector file), mixed SRIDs are brought to EPSG:4326 first, SRID 0 counts as "no CRS".
- Tables are read in primary-key order (else physical order) and the quarantine CSV gives
  each rejected row's ``key`` (primary-key values; the row number for a query).
- Reading runs in a READ ONLY transaction: the source tables are never written, whatever
  the query calls. The one write is :meth:`DbSource.write_quarantine` into the table named by
  ``--quarantine-table`` (created if missing; its rows of this source are replaced).
- Provenance names host, port, database and the table or the sha256 of the query, and the
  sha256 of the rows read; never the user or the password.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config.dsn import is_database
from riskmodel.errors import ConfigError, InputError, OutputError
from riskmodel.io import db
from riskmodel.io.read.tables import RawTable, dedupe_names

log = logging.getLogger(__name__)

__all__ = ["DbSource", "parse_table_name", "resolve_source"]

# Geometry columns preferred as the row geometry when a table has several.
_GEOMETRY_NAMES = ("geom", "geometry", "the_geom", "wkb_geometry", "geog", "shape")


def parse_table_name(name: str, what: str = "--events-table") -> tuple[str | None, str]:
    """``schema.table`` (or ``table``; ``"Quoted"."Names"`` allowed) as (schema, table).

    Raises
    ------
    ConfigError
        An empty name or more than two parts.
    """
    parts: list[str] = []
    cur, quoted, i = "", False, 0
    s = (name or "").strip()
    while i < len(s):
        ch = s[i]
        if ch == '"':
            if quoted and i + 1 < len(s) and s[i + 1] == '"':
                cur, i = cur + '"', i + 2
                continue
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if quoted or not all(p.strip() for p in parts) or len(parts) > 2:
        raise ConfigError(
            f"{name!r} is not a table name",
            where=what,
            fix="give schema.table (or table), e.g. public.events",
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


@dataclass(frozen=True)
class DbSource:
    """A table or query of a database, read like a file.

    Parameters
    ----------
    uri : str
        libpq URI, key/value conninfo or ``service=NAME`` (never shown).
    table : str, optional
        ``schema.table``.
    sql : str, optional
        A ``SELECT`` (exactly one of ``table`` and ``sql``).
    kind : str
        ``events`` or ``effort`` (names files and messages).
    quarantine_table : str, optional
        ``schema.table`` that also receives the rejected rows.
    """

    uri: str = field(repr=False)
    table: str | None = None
    sql: str | None = None
    kind: str = "events"
    quarantine_table: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.sql is None):
            raise ConfigError(
                f"give one of --{self.kind}-table and --{self.kind}-sql for a database",
                where=f"--{self.kind}",
            )
        if self.table is not None:
            parse_table_name(self.table, f"--{self.kind}-table")
        if self.quarantine_table is not None:
            parse_table_name(self.quarantine_table, "--quarantine-table")
        db.describe(self.uri)  # a bad connection string fails here, before any work

    # --- naming (never the user or the password) ---------------------------------------

    @property
    def query_sha256(self) -> str | None:
        """sha256 of the query text (``None`` for a table)."""
        return None if self.sql is None else hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def where(self) -> dict[str, Any]:
        """host, port, database and table or query hash: what provenance may record."""
        d = db.describe(self.uri)
        out: dict[str, Any] = {
            "host": d.get("host") or d.get("service") and f"service={d['service']}",
            "port": d.get("port"),
            "dbname": d.get("dbname"),
        }
        if self.table is not None:
            out["table"] = self.table
        else:
            out["query_sha256"] = self.query_sha256
        return out

    @property
    def stem(self) -> str:
        """Short name for files (``rejected_<stem>.csv``) and generated ids."""
        if self.table is not None:
            return parse_table_name(self.table)[1]
        return f"{self.kind}_query"

    def __str__(self) -> str:
        w = self.where
        host = w["host"] or "localhost"
        port = f":{w['port']}" if w["port"] else ""
        what = w.get("table") or f"query sha256:{w['query_sha256']}"
        return f"postgresql://{host}{port}/{w['dbname'] or ''} {what}"

    def __repr__(self) -> str:
        return f"DbSource({str(self)!r})"

    # --- reading ---------------------------------------------------------------------------

    def load_raw(self, kind: str | None = None) -> RawTable:
        """Read the rows (READ ONLY transaction) into a :class:`RawTable`.

        Returns
        -------
        RawTable
            Every value a string (blank for NULL), the geometry decoded from EWKB,
            ``meta`` with ``format`` ``postgresql``, ``sha256`` of the rows and ``database``.

        Raises
        ------
        InputError
            Unreachable server, missing table, bad query, or no rows.
        """
        psycopg = db.require_psycopg()
        with db.connect(self.uri, read_only=True) as con:
            try:
                with con.transaction():
                    con.execute("SET LOCAL TimeZone = 'UTC'")
                    con.execute("SET LOCAL DateStyle = 'ISO, YMD'")
                    con.execute("SET LOCAL IntervalStyle = 'iso_8601'")
                    names, query, geom_col, keys = self._plan(con)
                    buf = io.BytesIO()
                    with con.cursor().copy(query) as cp:
                        for chunk in cp:
                            buf.write(chunk)
            except psycopg.Error as exc:
                raise db.translate(exc, self.uri, doing=f"reading {self.kind}") from None
        raw = buf.getvalue()
        del buf
        table = _raw_table(raw, names, geom_col)
        if len(table.data) == 0:
            raise InputError(
                "the table holds no rows" if self.table else "the query returned no rows",
                where=str(self),
                fix="check the table / query (and your role's row-level access)",
            )
        table.meta.update(
            format="postgresql",
            sha256=hashlib.sha256(raw).hexdigest(),
            database={**self.where, "rows": len(table.data), "key": keys or None},
            key_columns=keys,
        )
        return table

    def _plan(self, con: Any) -> tuple[list[str], Any, str | None, list[str]]:
        """Column names, the query, the geometry column and the key columns."""
        from psycopg import sql

        if self.table is not None:
            schema, name = parse_table_name(self.table)
            ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
            src: Any = sql.SQL("SELECT * FROM {}").format(ident)
        else:
            src = sql.SQL(self.sql.strip().rstrip(";"))  # type: ignore[union-attr]
        cur = con.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(src))
        desc = cur.description or []
        raw_names = [d.name for d in desc]
        geo_oids = dict(
            con.execute(
                "SELECT oid, typname FROM pg_type WHERE typname IN ('geometry', 'geography')"
            ).fetchall()
        )
        geoms = [d.name for d in desc if d.type_code in geo_oids]
        geom_col = next((g for n in _GEOMETRY_NAMES for g in geoms if g.lower() == n), None)
        geom_col = geom_col or (geoms[0] if geoms else None)
        cols = []
        for d in desc:
            c = sql.Identifier("q", d.name)
            if d.name == geom_col:
                c = sql.SQL("encode(ST_AsEWKB({}::geometry), 'hex')").format(c)
            elif d.type_code in geo_oids:
                c = sql.SQL("ST_AsEWKT({}::geometry)").format(c)
            cols.append(c)
        keys = self._primary_key(con) if self.table is not None else []
        order = (
            sql.SQL(" ORDER BY ") + sql.SQL(", ").join(sql.Identifier("q", k) for k in keys)
            if keys
            else sql.SQL("")
        )
        if self.table is not None and not keys:
            log.info("%s has no primary key: rows read in physical order", self)
        # COPY: the server writes the CSV (measured faster end to end than building blocks of
        # lines in SQL, whose sort spills to disk).
        query = sql.SQL("COPY (SELECT {} FROM ({}) AS q{}) TO STDOUT (FORMAT csv)").format(
            sql.SQL(", ").join(cols), src, order
        )
        return raw_names, query, geom_col, keys

    def _primary_key(self, con: Any) -> list[str]:
        from psycopg import sql

        schema, name = parse_table_name(self.table)  # type: ignore[arg-type]
        ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        rows = con.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            (ident.as_string(con),),
        ).fetchall()
        return [r[0] for r in rows]

    # --- the quarantine -------------------------------------------------------------------

    def keyed(self, rejected: pd.DataFrame, key_columns: list[str] | None) -> pd.DataFrame:
        """The rejected rows with a ``key`` column after ``row``: the primary-key value(s)
        (``a,b`` for a composite key) or, for a query or a table without one, the row number."""
        out = rejected.copy()
        cols = [c if c not in ("row", "reason") else f"{c}_original" for c in key_columns or []]
        if cols and all(c in out.columns for c in cols):
            key = out[cols[0]].astype(str)
            for c in cols[1:]:
                key = key + "," + out[c].astype(str)
        else:
            key = out["row"].astype(str)
        out.insert(1, "key", key.to_numpy())
        return out

    def write_quarantine(self, rejected: pd.DataFrame) -> int:
        """Replace this source's rows in the quarantine table by ``rejected`` (one transaction).

        Table columns: ``source``, ``kind``, ``row``, ``key``, ``reason``, ``original`` (the
        row's values as JSON), ``geometry_wkt``, ``quarantined_at``.

        Returns
        -------
        int
            Rows written.
        """
        from psycopg import sql

        psycopg = db.require_psycopg()
        schema, name = parse_table_name(self.quarantine_table or "", "--quarantine-table")
        ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        skip = {"row", "key", "reason", "geometry_wkt"}
        values = [c for c in rejected.columns if c not in skip]
        rows = [
            (
                str(self),
                self.kind,
                int(r["row"]),
                str(r.get("key", r["row"])),
                str(r["reason"]),
                json.dumps({c: r[c] for c in values}, ensure_ascii=False, default=str),
                str(r.get("geometry_wkt", "")) or None,
            )
            for r in rejected.to_dict("records")
        ]
        with db.connect(self.uri, error=OutputError) as con:
            try:
                with con.transaction():
                    if schema:
                        con.execute(
                            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                        )
                    con.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                            "source text NOT NULL, kind text NOT NULL, row bigint, key text, "
                            "reason text NOT NULL, original jsonb, geometry_wkt text, "
                            "quarantined_at timestamptz NOT NULL DEFAULT now())"
                        ).format(ident)
                    )
                    con.execute(
                        sql.SQL("DELETE FROM {} WHERE source = %s AND kind = %s").format(ident),
                        (str(self), self.kind),
                    )
                    with con.cursor().copy(
                        sql.SQL(
                            "COPY {} (source, kind, row, key, reason, original, geometry_wkt) "
                            "FROM STDIN"
                        ).format(ident)
                    ) as cp:
                        for row in rows:
                            cp.write_row(row)
            except psycopg.Error as exc:
                raise db.translate(
                    exc, self.uri, doing="writing the quarantine table", error=OutputError
                ) from None
        log.info("%s: %d quarantined row(s) written to table %s", self, len(rows), name)
        return len(rows)


def _raw_table(raw: bytes, names: list[str], geom_col: str | None) -> RawTable:
    """Parse the COPY output (CSV, no header) into a RawTable of strings (+ geometry)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    from riskmodel.io.read.values import str_series

    cols = dedupe_names(names)
    if not raw:
        return RawTable(data=pd.DataFrame({c: pd.Series([], dtype="string") for c in cols}))
    tbl = pv.read_csv(
        io.BytesIO(raw),
        read_options=pv.ReadOptions(column_names=cols, block_size=1 << 24),
        parse_options=pv.ParseOptions(newlines_in_values=b"\n" in raw and b'"' in raw),
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(cols, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    data = pd.DataFrame({c: str_series(tbl.column(i)) for i, c in enumerate(cols)})
    if geom_col is None:
        return RawTable(data=data)
    gname = cols[names.index(geom_col)]
    geometry, bad, crs, notes = _geometry(data.pop(gname).to_numpy(dtype=object))
    return RawTable(
        data=data,
        geometry=geometry,
        bad_geometry=bad,
        geometry_crs=crs,
        meta={"geometry_column": geom_col},
        warnings=notes,
    )


def _geometry(hex_wkb: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None, list[str]]:
    """EWKB hex -> shapely geometries, their common CRS (mixed SRIDs -> EPSG:4326)."""
    import shapely

    present = np.array([bool(v) for v in hex_wkb], dtype=bool)
    # bytes.fromhex + binary WKB: ~3x faster than shapely's hex path.
    vals = np.array([_unhex(v) if v else None for v in hex_wkb], dtype=object)
    geom = shapely.from_wkb(vals, on_invalid="ignore")
    bad = present & pd.isna(geom)
    srid = np.where(pd.isna(geom), 0, shapely.get_srid(geom))
    codes = sorted({int(s) for s in srid[~pd.isna(geom)]})
    notes: list[str] = []
    if not codes or codes == [0]:
        return np.asarray(geom, dtype=object), bad, None, notes
    if len(codes) == 1:
        return np.asarray(geom, dtype=object), bad, f"EPSG:{codes[0]}", notes
    from pyproj import Transformer

    out = np.asarray(geom, dtype=object).copy()
    for code in codes:
        rows = (srid == code) & ~pd.isna(geom)
        if code == 0:
            out[rows] = None
            bad |= rows  # no SRID among SRIDs: cannot be placed
            continue
        if code == 4326:
            continue
        tr = Transformer.from_crs(f"EPSG:{code}", "EPSG:4326", always_xy=True)
        out[rows] = shapely.transform(out[rows], lambda xy, t=tr: np.c_[t.transform(*xy.T)])
    notes.append(
        f"geometries in {len(codes)} SRIDs ({', '.join(map(str, codes))}) brought to EPSG:4326"
    )
    return out, bad, "EPSG:4326", notes


def _unhex(v: str) -> bytes:
    try:
        return bytes.fromhex(v)
    except ValueError:
        return b"\x00"  # not hex: decoded as an invalid geometry


def resolve_source(
    settings: Any,
    kind: str,
    given: str | None = None,
    *,
    table: str | None = None,
    sql: str | None = None,
    quarantine_table: str | None = None,
) -> str | DbSource | None:
    """What ``--events``/``--effort`` (with ``--<kind>-table``/``--<kind>-sql``) and the
    settings name: a file path, a :class:`DbSource` or nothing.

    Flags win over settings. A database is used when a table or query is given (by flag or by
    setting ``<kind>_table``/``<kind>_sql``) with no file flag; its connection is the flag
    value when that is a connection string, else setting ``<kind>`` when it is one, else
    setting ``database``.

    Parameters
    ----------
    settings : Settings
    kind : {"events", "effort"}
    given : str, optional
        The ``--events``/``--effort`` flag.
    table, sql, quarantine_table : str, optional
        The flags.

    Returns
    -------
    str, DbSource or None

    Raises
    ------
    ConfigError
        A connection without a table or query, a table or query without a connection, or
        both a table and a query.
    """
    flag_db = is_database(given)
    if given and not flag_db and (table or sql):
        raise ConfigError(
            f"--{kind}-table/--{kind}-sql read a database, but --{kind} is a file ({given})",
            where=f"--{kind}",
            fix=f"give --{kind} postgresql://... (or set database) with the table, or drop it",
        )
    if given and not flag_db:
        return given  # a file: the settings' table/query do not apply
    if not (table or sql):
        table = getattr(settings, f"{kind}_table", "") or None
        sql = getattr(settings, f"{kind}_sql", "") or None
        if not (table or sql or flag_db):
            return None
    if table and sql:
        raise ConfigError(
            f"give --{kind}-table or --{kind}-sql, not both",
            where=f"--{kind}-table",
            fix="a table, or a SELECT",
        )
    if not (table or sql):
        raise ConfigError(
            f"--{kind} names a database but no table or query",
            where=f"--{kind}",
            fix=f"add --{kind}-table schema.table or --{kind}-sql 'SELECT ...'",
        )
    setting = getattr(settings, kind, "") or ""
    uri = given if flag_db else (setting if is_database(setting) else settings.database)
    if not uri:
        raise ConfigError(
            f"--{kind}-table/--{kind}-sql need a database",
            where=f"--{kind}",
            fix=f"give --{kind} postgresql://user@host/db (or service=NAME), or set database",
        )
    return DbSource(uri, table=table, sql=sql, kind=kind, quarantine_table=quarantine_table)
