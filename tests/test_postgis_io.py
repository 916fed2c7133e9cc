"""Events read from PostgreSQL/PostGIS and layers published to it (issue 14, items 1, 2, 4).

Catalogue (attack -> expected behaviour -> test):

- events in a table instead of a file -> the same validation, mapping and the same scores as
  the file; the published tables equal the file outputs -> test_round_trip_file_db_engine_publish
- geometry in EPSG:3794, EPSG:4326 or both mixed in one column -> the same accepted rows and
  coordinates -> test_srid_3794_4326_and_mixed_read_the_same
- a bad row in a table -> quarantined with its primary key, in the CSV and, with
  --quarantine-table, in that table -> test_bad_row_quarantined_with_its_key
- a query that tries to write, or a role that may only SELECT -> nothing written to the source
  (read-only transaction; the rows' xmin unchanged) -> test_source_tables_are_never_written
- a password in the URI -> never in stdout/stderr, outputs, provenance, published rows or
  error messages -> test_credentials_never_printed_or_recorded
- a connection killed in the middle of publishing -> the previous day stays intact, nothing
  of the new run visible -> test_dropped_connection_mid_publish_keeps_previous_day
- re-publishing a day -> replaced, not doubled -> test_republish_replaces_the_day
- settings database + events_table -> read without flags; a URI setting is not made a path
  -> test_settings_read_database_without_flags
- a table and a file for the same input, a URI without a table -> one-line usage errors
  -> test_conflicting_sources_are_usage_errors
- psycopg absent -> ConfigError naming the extra; importing the CLI never imports psycopg
  -> test_database_stack_is_lazy
- text with commas, quotes, line breaks, arrays, NULL in a table -> read exactly as a CSV
  export would give them -> test_text_values_survive_exactly
- publish with no database, or a folder without outputs; daily --publish with no database
  -> one-line errors (exit 2 / 3) -> test_publish_usage_errors
- QGIS opens the published layers styled from layer_styles -> tests/test_qgis_postgis.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

psycopg = pytest.importorskip("psycopg", reason="psycopg (riskmodel[postgis]) not installed")

from riskmodel.cli import main  # noqa: E402
from riskmodel.errors import ConfigError, OutputError  # noqa: E402
from riskmodel.io.read.events import read_events  # noqa: E402
from riskmodel.io.read.postgis import DbSource  # noqa: E402

DAY = "2025-03-11"
KEY = "pgio-test-key"
SECRET = "Sup3r-S3cret-pw"


def cli(*args: object, env: dict[str, str] | None = None, ok: bool = True):
    r = CliRunner().invoke(
        main, [str(a) for a in args], env={"RISKMODEL_SIGNING_KEY": KEY, **(env or {})}
    )
    if ok and r.exit_code != 0:
        raise AssertionError(f"riskmodel {args} -> {r.exit_code}\n{r.output}\n{r.exception!r}")
    return r


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated events/effort on the bundled border and a small signed model (module-wide)."""
    d = tmp_path_factory.mktemp("pgworld")
    cli("simulate", "--out", d / "sim", "--seed", 5, "--from", "2025-01-01", "--to", "2025-03-12")
    cli(
        "train", "--events", d / "sim" / "events.csv", "--to", "2025-03-10",
        "--models-root", d / "models", "--model-param", "n_estimators=8",
        "--model-param", "learning_rate=0.3",
    )  # fmt: skip
    return d


def load_events(uri: str, csv: Path, table: str = "public.events", srid: int | None = 3794) -> None:
    """Events CSV -> a PostGIS table (``id`` serial key, ``occurred``, point ``geom``)."""
    from pyproj import Transformer

    ev = pd.read_csv(csv, dtype=str)
    lon, lat = ev["lon"].astype(float).to_numpy(), ev["lat"].astype(float).to_numpy()
    srids = np.full(len(ev), srid or 4326)
    if srid is None:  # mixed: every other row in D96/TM, in a column without a typmod
        srids[::2] = 3794
    gtype = f"geometry(Point, {srid})" if srid else "geometry"
    with psycopg.connect(uri) as con:
        con.execute(
            f"CREATE TABLE {table} (id serial PRIMARY KEY, event_id text, occurred timestamptz, "
            f"persons int, type text, source text, geom {gtype})"
        )
        tr = Transformer.from_crs(4326, 3794, always_xy=True)
        x, y = tr.transform(lon, lat)
        with con.cursor().copy(
            f"COPY {table} (event_id, occurred, persons, type, source, geom) FROM STDIN"
        ) as cp:
            for i, r in enumerate(ev.itertuples()):
                px, py = (x[i], y[i]) if srids[i] == 3794 else (lon[i], lat[i])
                pt = f"SRID={srids[i]};POINT({float(px)!r} {float(py)!r})"
                cp.write_row((r.event_id, r.timestamp, int(r.persons), r.type, r.source, pt))


def db_args(uri: str) -> list[str]:
    return ["--events", uri, "--events-table", "public.events", "--column", "timestamp=occurred"]


def score(world: Path, out: Path, events: list[str]) -> None:
    cli(
        "score", *events, "--date", DAY, "--no-png", "--out", out,
        "--models-root", world / "models",
    )  # fmt: skip


def test_round_trip_file_db_engine_publish(world, pg_db, tmp_path):
    load_events(pg_db, world / "sim" / "events.csv")
    score(world, tmp_path / "file", ["--events", world / "sim" / "events.csv"])
    score(world, tmp_path / "db", db_args(pg_db))
    a = pd.read_csv(tmp_path / "file" / f"risk_{DAY}.csv")
    b = pd.read_csv(tmp_path / "db" / f"risk_{DAY}.csv")
    pd.testing.assert_frame_equal(a, b)  # the same engine result from either source
    prov = json.loads((tmp_path / "db" / "provenance.json").read_text())
    ev = prov["inputs"]["events"]
    assert "public.events" in ev["file"] and ev["accepted"] > 0 and ev["quarantined"] == 0
    cli(
        "plan", "--risk", tmp_path / "db" / f"risk_{DAY}.csv", "--units", 3, "--seed", 1,
        "--out", tmp_path / "db", "--audit-log", tmp_path / "audit.jsonl",
    )  # fmt: skip
    r = cli("publish", tmp_path / "db", "--db", pg_db, "--schema", "maps")
    assert "maps.risk_segments: 1920 rows" in r.output and "maps.plan_checks: 9 rows" in r.output

    import geopandas as gpd
    import shapely

    with psycopg.connect(pg_db) as con:
        cur = con.execute(
            "SELECT *, ST_AsBinary(ST_GeometryN(geom, 1)) AS line FROM maps.risk_segments "
            "ORDER BY shift_start, rank"
        )
        pub = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
        pub = gpd.GeoDataFrame(pub, geometry=shapely.from_wkb(pub["line"]), crs=3794)
        srid = con.execute("SELECT Find_SRID('maps', 'risk_segments', 'geom')").fetchone()[0]
        gist = con.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'maps' AND indexdef LIKE '%gist%'"
        ).fetchone()[0]
        latest = con.execute("SELECT count(*) FROM maps.plan_checks_latest").fetchone()[0]
    assert srid == 3794 and gist == 2 and latest == 9
    for sh in ("morning", "afternoon", "night"):
        f = gpd.read_file(tmp_path / "db" / f"risk_{DAY}_{sh}.geojson").to_crs(3794)
        p = pub[pub["shift"] == sh].reset_index(drop=True)
        assert list(p["segment_id"]) == list(f["segment_id"])
        for c in ("expected", "rank", "risk_class", "percentile", "threat"):
            np.testing.assert_allclose(p[c].to_numpy(float), f[c].to_numpy(float), rtol=1e-12)
        assert (p["reason_1"].fillna("") == f["reason_1"].fillna("")).all()
        assert (p["shift_start"] == pd.to_datetime(f["shift_start"], utc=True)).all()
        assert p.geometry.geom_equals_exact(f.geometry.reset_index(drop=True), 1e-3).all()


def test_srid_3794_4326_and_mixed_read_the_same(world, pg_db):
    csv = world / "sim" / "events.csv"
    load_events(pg_db, csv, "public.ev3794", 3794)
    load_events(pg_db, csv, "public.ev4326", 4326)
    load_events(pg_db, csv, "public.evmixed", None)
    cols = {"timestamp": "occurred"}
    res = [read_events(DbSource(pg_db, table=t), columns=cols) for t in
           ("public.ev3794", "public.ev4326", "public.evmixed")]  # fmt: skip
    file = read_events(csv)
    for r in res:
        assert r.ok and len(r.frame) == len(file.frame)
        assert (r.frame["event_id"] == file.frame["event_id"]).all()
        assert (r.frame["timestamp"] == file.frame["timestamp"]).all()
        np.testing.assert_allclose(r.frame["lon"], file.frame["lon"], atol=1e-9)
        np.testing.assert_allclose(r.frame["x"], file.frame["x"], atol=1e-3)
    assert any("SRIDs" in w for w in res[2].summary["warnings"])
    # A query reads like a table; its provenance names the query by hash, not by text.
    q = read_events(DbSource(pg_db, sql="SELECT * FROM public.ev4326 WHERE id <= 50"), columns=cols)
    assert q.summary["rows_read"] == 50 and len(q.summary["database"]["query_sha256"]) == 64


def test_bad_row_quarantined_with_its_key(world, pg_db, tmp_path):
    load_events(pg_db, world / "sim" / "events.csv")
    with psycopg.connect(pg_db) as con:
        con.execute("UPDATE public.events SET persons = -4 WHERE id = 17")
        con.execute("UPDATE public.events SET geom = NULL WHERE id = 23")
        before = con.execute("SELECT count(*) FROM public.events").fetchone()[0]
    r = cli("validate", *db_args(pg_db), "--out", tmp_path, "--quarantine-table", "qa.rejected")
    assert "quarantined 2" in r.output
    rej = pd.read_csv(tmp_path / "rejected_events.csv", dtype=str)
    assert dict(zip(rej["key"], rej["reason"], strict=True)) == {
        "17": "bad_persons",
        "23": "empty_geometry",
    }
    with psycopg.connect(pg_db) as con:
        rows = con.execute("SELECT key, reason, original->>'persons' FROM qa.rejected ORDER BY key")
        assert [r[:2] for r in rows.fetchall()] == [("17", "bad_persons"), ("23", "empty_geometry")]
        assert con.execute("SELECT count(*) FROM public.events").fetchone()[0] == before
    # Validating again replaces this source's rows in the quarantine table (no duplicates).
    cli("validate", *db_args(pg_db), "--out", tmp_path, "--quarantine-table", "qa.rejected")
    with psycopg.connect(pg_db) as con:
        assert con.execute("SELECT count(*) FROM qa.rejected").fetchone()[0] == 2
    # Without a folder the table still receives them.
    cli("validate", *db_args(pg_db), "--quarantine-table", "qa.only")
    with psycopg.connect(pg_db) as con:
        assert con.execute("SELECT count(*) FROM qa.only").fetchone()[0] == 2


def test_source_tables_are_never_written(world, pg_db, tmp_path):
    load_events(pg_db, world / "sim" / "events.csv")
    with psycopg.connect(pg_db) as con:
        con.execute("CREATE ROLE rm_reader LOGIN")
        con.execute("GRANT SELECT ON public.events TO rm_reader")
        con.execute(
            "CREATE FUNCTION public.sneaky() RETURNS bigint LANGUAGE sql AS "
            "$$ DELETE FROM public.events WHERE id < 10 RETURNING 1::bigint $$"
        )
        xmin0 = con.execute(
            "SELECT sum(xmin::text::bigint), count(*) FROM public.events"
        ).fetchone()
    try:
        reader = psycopg.conninfo.make_conninfo(pg_db, user="rm_reader")
        # A role that may only SELECT is enough to read.
        cli("validate", *db_args(reader))
        # A query that tries to write is refused by the read-only transaction.
        bad = cli(
            "validate", "--events", pg_db, "--events-sql",
            "SELECT e.*, public.sneaky() AS s FROM public.events e", "--column",
            "timestamp=occurred", ok=False,
        )  # fmt: skip
        assert bad.exit_code == 3 and "read-only transaction" in bad.output
        with psycopg.connect(pg_db) as con:
            after = con.execute("SELECT sum(xmin::text::bigint), count(*) FROM public.events")
            assert after.fetchone() == xmin0
    finally:
        with psycopg.connect(pg_db) as con:
            con.execute("DROP OWNED BY rm_reader")
            con.execute("DROP ROLE rm_reader")


def test_credentials_never_printed_or_recorded(world, pg_db, tmp_path):
    load_events(pg_db, world / "sim" / "events.csv")
    d = psycopg.conninfo.conninfo_to_dict(pg_db)
    with_pw = f"postgresql://postgres:{SECRET}@/{d['dbname']}?host={d['host']}&port={d['port']}"
    out = tmp_path / "out"
    r = cli(
        "score", *db_args(with_pw), "--date", DAY, "--no-png", "--out", out,
        "--models-root", world / "models", "-v",
    )  # fmt: skip
    assert SECRET not in r.output
    for p in out.rglob("*"):
        assert SECRET.encode() not in p.read_bytes(), p
    cli("publish", out, "--db", with_pw)
    with psycopg.connect(pg_db) as con:
        dump = con.execute(
            "SELECT string_agg(p::text, '') FROM riskmodel.publications p"
        ).fetchone()[0]
    assert SECRET not in dump and "public.events" in dump
    # Errors name the database, never the password.
    refused = f"postgresql://postgres:{SECRET}@127.0.0.1:1/x"
    e = cli("validate", "--events", refused, "--events-table", "a.b", ok=False)
    assert e.exit_code == 3 and SECRET not in e.output and "127.0.0.1" in e.output
    e = cli("publish", out, "--db", refused, ok=False)
    assert e.exit_code == 5 and SECRET not in e.output  # an output that cannot be written
    from riskmodel.config.settings import load_settings

    toml = tmp_path / "riskmodel.toml"
    toml.write_text(
        f'events = "{with_pw}"\nevents_table = "public.events"\ndatabase = "{with_pw}"\n'
    )
    shown = {k: v for k, v, _ in load_settings(toml, env={}).describe()}
    assert SECRET not in shown["events"] and "***" in shown["events"]
    # The database setting shows where it goes (host, database), never the password.
    assert SECRET not in shown["database"] and "@" in shown["database"]
    assert "***" in shown["database"]
    assert SECRET not in repr(DbSource(with_pw, table="public.events"))


def _publish(outdir: Path, uri: str) -> None:
    from riskmodel.api import publish
    from riskmodel.config.settings import Settings

    publish(Settings(), outdir, db=uri)


def _day_state(uri: str) -> list[tuple]:
    with psycopg.connect(uri) as con:
        return con.execute(
            "SELECT shift, count(*), min(published_at), sum(expected) FROM riskmodel.risk_segments "
            "GROUP BY shift ORDER BY shift"
        ).fetchall()


@pytest.fixture(scope="module")
def scored(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scored")
    score(world, out, ["--events", world / "sim" / "events.csv"])
    return out


def test_dropped_connection_mid_publish_keeps_previous_day(scored, pg_db, monkeypatch):
    from riskmodel.io.write import postgis as pgw

    _publish(scored, pg_db)
    before = _day_state(pg_db)
    assert [n for _, n, *_ in before] == [640, 640, 640]
    real = pgw.copy_rows

    def killed_halfway(cur, stmt, rows):
        rows = list(rows)
        pid = cur.connection.info.backend_pid
        real(cur, stmt, rows[: len(rows) // 2])
        with psycopg.connect(pg_db, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        real(cur, stmt, rows[len(rows) // 2 :])

    monkeypatch.setattr(pgw, "copy_rows", killed_halfway)
    with pytest.raises(OutputError) as err:
        _publish(scored, pg_db)
    assert "publishing failed" in str(err.value)
    assert _day_state(pg_db) == before  # the previous publication, untouched

    def fails_halfway(cur, stmt, rows):
        rows = list(rows)
        real(cur, stmt, rows[: len(rows) // 2])
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pgw, "copy_rows", fails_halfway)
    with pytest.raises(RuntimeError):
        _publish(scored, pg_db)
    assert _day_state(pg_db) == before


def test_republish_replaces_the_day(scored, pg_db):
    _publish(scored, pg_db)
    first = _day_state(pg_db)
    _publish(scored, pg_db)
    again = _day_state(pg_db)
    assert [n for _, n, *_ in again] == [640, 640, 640]
    assert all(b[2] > a[2] for a, b in zip(first, again, strict=True))  # new rows
    with psycopg.connect(pg_db) as con:
        styles = con.execute(
            "SELECT f_table_name, useasdefault, styleqml::text FROM public.layer_styles "
            "ORDER BY f_table_name"
        ).fetchall()
        pubs = con.execute("SELECT count(*) FROM riskmodel.publications").fetchone()[0]
    from riskmodel.io.write.qml import qml_risk_style

    assert [s[0] for s in styles] == ["risk_segments", "risk_segments_latest"]
    assert all(s[1] for s in styles)
    assert all('attr="risk_class"' in s[2] and "categorizedSymbol" in s[2] for s in styles)
    assert qml_risk_style().split("<qgis", 1)[1][:200] in styles[0][2]
    assert pubs == 6  # one log row per (kind, date, shift) and run


def test_settings_read_database_without_flags(world, pg_db, tmp_path):
    load_events(pg_db, world / "sim" / "events.csv")
    env = {"RISKMODEL_DATABASE": pg_db, "RISKMODEL_EVENTS_TABLE": "public.events"}
    r = cli("validate", "--column", "timestamp=occurred", env=env)
    assert "public.events" in r.output and "accepted" in r.output
    from riskmodel.config.settings import load_settings

    toml = tmp_path / "riskmodel.toml"
    toml.write_text(f'events = "{pg_db}"\nevents_table = "public.events"\n')
    s = load_settings(toml, env={})
    assert s.events == pg_db  # a connection string is not made a path
    toml.write_text('events = "service=station"\neffort = "data/effort.csv"\n')
    s = load_settings(toml, env={})
    assert s.events == "service=station" and s.effort == str(tmp_path / "data" / "effort.csv")


def test_conflicting_sources_are_usage_errors(world, pg_db):
    csv = world / "sim" / "events.csv"
    r = cli("validate", "--events", csv, "--events-table", "public.events", ok=False)
    assert r.exit_code == 2 and "is a file" in r.output
    r = cli("validate", "--events", pg_db, ok=False)
    assert r.exit_code == 2 and "--events-table" in r.output
    r = cli("validate", "--events", pg_db, "--events-table", "a.b.c", ok=False)
    assert r.exit_code == 2 and "not a table name" in r.output
    r = cli("validate", "--events", pg_db, "--events-table", "public.nope", ok=False)
    assert r.exit_code == 3 and "nope" in r.output


def test_database_stack_is_lazy(monkeypatch):
    code = "import sys, riskmodel.cli, riskmodel.api; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from riskmodel.io import db

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError) as err:
        db.require_psycopg()
    assert "riskmodel[postgis]" in str(err.value)


def test_text_values_survive_exactly(world, pg_db):
    load_events(pg_db, world / "sim" / "events.csv")
    tricky = 'a,"b"\nc;\\d ž'
    with psycopg.connect(pg_db) as con:
        con.execute("ALTER TABLE public.events ADD COLUMN note text, ADD COLUMN tags int[]")
        con.execute(
            "UPDATE public.events SET source = %s, note = %s WHERE id = 5", (tricky, tricky)
        )
        con.execute("UPDATE public.events SET tags = '{1,2}' WHERE id = 6")
    r = read_events(DbSource(pg_db, table="public.events"), columns={"timestamp": "occurred"})
    row = r.frame.set_index("id").loc["5"]
    assert row["source"] == tricky and row["note"] == tricky
    assert r.frame.set_index("id").loc["6", "tags"] == "{1,2}"
    assert r.frame.set_index("id").loc["7", "note"] == ""  # NULL reads as blank, as in a CSV


def test_publish_usage_errors(tmp_path):
    r = cli("daily", "--units", 3, "--publish", ok=False, env={"RISKMODEL_DATABASE": ""})
    assert r.exit_code == 2 and "database" in r.output
    r = cli("publish", tmp_path, "--db", "postgresql://nobody@localhost/x", ok=False)
    assert r.exit_code == 3 and "no risk layers" in r.output
    r = cli("publish", tmp_path, ok=False, env={"RISKMODEL_DATABASE": ""})
    assert r.exit_code == 2 and "no database" in r.output
