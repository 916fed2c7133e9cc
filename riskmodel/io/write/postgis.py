"""Publish risk layers and plans to PostgreSQL/PostGIS, styled for QGIS.

One table per layer kind in a schema (default ``riskmodel``): ``risk_segments`` (one row per
segment per shift) and ``plan_checks`` (one row per check), each with

- a surrogate ``fid`` primary key (QGIS needs one integer key) and a unique key on date,
  shift and the row's own key (``segment_id`` / ``check_no``);
- ``geom`` as ``geometry(MultiLineString, 3794)`` with a GIST index, ``published_at``;
- a view ``<kind>_latest`` showing the latest published date;
- a default QGIS style for the table and its view in ``public.layer_styles`` (the table QGIS
  itself creates, same columns; created if missing), with the same QML the file outputs carry.

A run is one transaction under an advisory lock: readers see the previous publication or the
new one, never half a day; re-publishing a (date, shift) deletes its rows and inserts the new
ones in that same transaction; a dropped connection rolls everything back. Each run appends
one row per (kind, date, shift) to ``publications`` with the outputs' provenance (which names
inputs by host, database and table or query hash, never credentials).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import OutputError
from riskmodel.io import db

log = logging.getLogger(__name__)

__all__ = ["SRID", "PublishLayer", "ensure_styles_table", "publish_layers"]

SRID = 3794
GEOMETRY_COLUMN = "geom"
STYLES_TABLE = ("public", "layer_styles")
# QGIS's own layer_styles columns (QgsPostgresUtils::createStylesTable).
_STYLES_DDL = (
    "CREATE TABLE IF NOT EXISTS public.layer_styles (id SERIAL PRIMARY KEY, "
    "f_table_catalog varchar, f_table_schema varchar, f_table_name varchar, "
    "f_geometry_column varchar, stylename text, styleqml xml, stylesld xml, "
    "useasdefault boolean, description text, owner varchar(63) DEFAULT CURRENT_USER, "
    "ui xml, update_time timestamp DEFAULT CURRENT_TIMESTAMP, type varchar, "
    "r_raster_column varchar)"
)


def ensure_styles_table(con: Any) -> bool:
    """Create QGIS's ``public.layer_styles`` if it is missing; True when it was created.

    Only when missing: a publishing role may lack CREATE on schema public (the default since
    PostgreSQL 15) and still write rows into QGIS's existing table.
    """
    if con.execute("SELECT to_regclass('public.layer_styles')").fetchone()[0] is not None:
        return False
    con.execute(_STYLES_DDL)
    return True


@dataclass
class PublishLayer:
    """One layer kind of one run.

    Attributes
    ----------
    table : str
        Table name in the schema (``risk_segments``, ``plan_checks``).
    frame : GeoDataFrame
        Rows with ``date`` (``datetime.date``), ``shift`` and a line geometry.
    key : tuple of str
        Unique key within a (date, shift), e.g. ``("segment_id",)``.
    style_qml : str
        Default QGIS style (the file outputs' QML).
    style_name : str
        Name of the style in ``layer_styles``.
    """

    table: str
    frame: Any
    key: tuple[str, ...]
    style_qml: str
    style_name: str


def _pg_type(s: pd.Series) -> str:
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "boolean"
    if pd.api.types.is_integer_dtype(dt):
        return "bigint"
    if pd.api.types.is_float_dtype(dt):
        return "double precision"
    if isinstance(dt, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(dt):
        return "timestamp"
    if s.name == "date":
        return "date"
    return "text"


def _python_values(s: pd.Series) -> list[Any]:
    """Column values as Python objects psycopg can send (None for missing)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    vals = s.astype(object).to_numpy()
    out = []
    for v in vals:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out


def _ewkb(geoms: Any) -> list[str | None]:
    """Hex EWKB with SRID 3794, lines as MultiLineString (one geometry type per table)."""
    import shapely

    g = np.asarray(geoms, dtype=object)
    single = shapely.get_type_id(g) == 1
    if single.any():
        g = g.copy()
        g[single] = [shapely.MultiLineString([x]) for x in g[single]]
    g = shapely.set_srid(g, SRID)
    return [None if v is None else v for v in shapely.to_wkb(g, hex=True, include_srid=True)]


def _geometry_type(geoms: Any) -> str:
    import shapely

    ids = set(shapely.get_type_id(np.asarray(geoms, dtype=object)).tolist()) - {-1}
    return "MultiLineString" if ids <= {1, 5} else "Geometry"


def publish_layers(
    uri: str,
    layers: Sequence[PublishLayer],
    *,
    schema: str = "riskmodel",
    provenance: dict[str, Any] | None = None,
    source: str = "",
) -> dict[str, int]:
    """Write the layers of one run in one transaction (see the module docs).

    Parameters
    ----------
    uri : str
        libpq URI or ``service=NAME`` (never printed).
    layers : sequence of PublishLayer
    schema : str
        Target schema (created if missing).
    provenance : dict, optional
        The run's provenance, stored in ``publications``.
    source : str
        What was published (the output folder), stored in ``publications``.

    Returns
    -------
    dict
        Rows written per table.

    Raises
    ------
    OutputError
        The server is unreachable, refuses a statement, or the connection drops: nothing of
        this run is visible then.
    """
    psycopg = db.require_psycopg()
    written: dict[str, int] = {}
    with db.connect(uri, error=OutputError) as con:
        try:
            with con.transaction():
                con.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('riskmodel.publish.' || %s))", (schema,)
                )
                _ensure_schema(con, schema)
                for layer in layers:
                    written[layer.table] = _replace(con, schema, layer)
                    _record(con, schema, layer, provenance, source)
                    _styles(con, schema, layer)
        except psycopg.Error as exc:
            raise db.translate(exc, uri, doing="publishing", error=OutputError) from None
    return written


def _ident(*parts: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*parts)


def _ensure_schema(con: Any, schema: str) -> None:
    from psycopg import sql

    con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(schema)))
    con.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
            "published_at timestamptz NOT NULL DEFAULT now(), kind text NOT NULL, "
            "date date NOT NULL, shift text NOT NULL, rows integer NOT NULL, source text, "
            "model_id text, provenance jsonb)"
        ).format(_ident(schema, "publications"))
    )


def _columns(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(c), _pg_type(frame[c])) for c in frame.columns if c != frame.geometry.name]


def _ensure_table(con: Any, schema: str, layer: PublishLayer, cols: list[tuple[str, str]]) -> None:
    from psycopg import sql

    t = _ident(schema, layer.table)
    gtype = _geometry_type(layer.frame.geometry)
    defs = [sql.SQL("fid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY")]
    defs += [sql.SQL("{} {}").format(_ident(c), sql.SQL(ty)) for c, ty in cols]
    defs.append(
        sql.SQL("{} geometry({}, {})").format(_ident(GEOMETRY_COLUMN), sql.SQL(gtype), SRID)
    )
    defs.append(sql.SQL("published_at timestamptz NOT NULL DEFAULT now()"))
    ukey = ["date", "shift", *layer.key]
    defs.append(sql.SQL("UNIQUE ({})").format(sql.SQL(", ").join(map(_ident, ukey))))
    con.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(t, sql.SQL(", ").join(defs)))
    for c, ty in cols:  # a newer engine may add columns: the table grows with it
        con.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                t, _ident(c), sql.SQL(ty)
            )
        )
    con.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING GIST ({})").format(
            _ident(f"{layer.table}_geom_gist"), t, _ident(GEOMETRY_COLUMN)
        )
    )
    view = _ident(schema, f"{layer.table}_latest")
    con.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
    con.execute(
        sql.SQL(
            "CREATE VIEW {} AS SELECT * FROM {} WHERE date = (SELECT max(date) FROM {})"
        ).format(view, t, t)
    )


def _replace(con: Any, schema: str, layer: PublishLayer) -> int:
    """Delete the (date, shift) pairs of this layer and insert its rows (COPY)."""
    from psycopg import sql

    frame = layer.frame
    cols = _columns(frame)
    _ensure_table(con, schema, layer, cols)
    t = _ident(schema, layer.table)
    pairs = sorted({(d, str(s)) for d, s in zip(frame["date"], frame["shift"], strict=True)})
    for d, s in pairs:
        con.execute(sql.SQL("DELETE FROM {} WHERE date = %s AND shift = %s").format(t), (d, s))
    names = [c for c, _ in cols] + [GEOMETRY_COLUMN]
    values = [_python_values(frame[c]) for c, _ in cols] + [_ewkb(frame.geometry.to_numpy())]
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(t, sql.SQL(", ").join(map(_ident, names)))
    with con.cursor() as cur:
        copy_rows(cur, stmt, zip(*values, strict=True))
    return len(frame)


def copy_rows(cur: Any, stmt: Any, rows: Iterable[Sequence[Any]]) -> None:
    """COPY ``rows`` with ``stmt`` (one place, so a test can cut the connection mid-copy)."""
    with cur.copy(stmt) as cp:
        for row in rows:
            cp.write_row(row)


def _record(
    con: Any,
    schema: str,
    layer: PublishLayer,
    provenance: dict[str, Any] | None,
    source: str,
) -> None:
    from psycopg import sql

    frame = layer.frame
    counts = frame.groupby(["date", "shift"], sort=True).size()
    prov = json.dumps(provenance or {}, ensure_ascii=False, sort_keys=True, default=str)
    model = (provenance or {}).get("model_id")
    for (d, s), n in counts.items():
        con.execute(
            sql.SQL(
                "INSERT INTO {} (kind, date, shift, rows, source, model_id, provenance) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
            ).format(_ident(schema, "publications")),
            (layer.table, d, str(s), int(n), source, model, prov),
        )


def _styles(con: Any, schema: str, layer: PublishLayer) -> None:
    """The layer's QML as default style of its table and its ``_latest`` view (other styles
    of the layer are left alone: QGIS takes the newest default, which is this one)."""
    ensure_styles_table(con)
    dbname = con.execute("SELECT current_database()").fetchone()[0]
    for name in (layer.table, f"{layer.table}_latest"):
        where = (dbname, schema, name, GEOMETRY_COLUMN)
        con.execute(
            "DELETE FROM public.layer_styles WHERE f_table_catalog = %s AND f_table_schema = %s "
            "AND f_table_name = %s AND f_geometry_column = %s AND stylename = %s",
            (*where, layer.style_name),
        )
        # type stays NULL: QGIS matches it to the layer's geometry type or to NULL.
        con.execute(
            "INSERT INTO public.layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, stylename, styleqml, useasdefault, description) "
            "VALUES (%s, %s, %s, %s, %s, XMLPARSE(DOCUMENT %s), true, %s)",
            (*where, layer.style_name, layer.style_qml, "riskmodel default style"),
        )
