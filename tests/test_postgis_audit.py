"""The audit trail in PostgreSQL (issue 14, item 3): ``riskmodel db init``, the append-only
audit table, planning under its advisory lock, verification, export/import.

Catalogue: attack -> expected behaviour -> test.

1. Two planners at once (two ``riskmodel plan`` processes released together on one database,
   caps tight enough that plans drawn from the same history would break them) -> one unbroken
   chain, each run's rows contiguous, no cap exceeded, ``audit --fail-on-violation`` exit 0
   -> test_concurrent_plans_one_chain_caps_kept; a planner held up longer than the lock
   timeout -> exit 5 "locked by another riskmodel run", nothing written
   -> test_lock_wait_times_out
2. UPDATE / DELETE / TRUNCATE of the audit table as the planner role -> refused (no
   privilege); as the owner and as a superuser -> refused by the trigger
   -> test_audit_table_cannot_be_rewritten
3. A row changed by a superuser who disabled the trigger (entry text, its jsonb copy, a
   deleted last row) -> ``riskmodel audit`` exit 6 naming the row and why; ``plan`` refuses
   the damaged table (exit 3) -> test_tampered_row_is_detected
4. Export then import then export -> byte-identical files; a file-store log imported verifies
   in the table and exports to the same bytes; a tampered file is refused with nothing
   inserted; a table holding another chain is refused -> test_export_import_round_trip,
   test_import_refuses_a_broken_log_or_another_chain
5. ``db init`` run twice -> same schema, nothing new the second time; roles have exactly
   SELECT+INSERT (planner) and SELECT (reader) on the audit table, only the publisher may
   create tables in the schema -> test_db_init_is_idempotent
6. A planner logging in with only ``riskmodel_planner`` plans and audits (least privilege
   suffices) -> test_planner_role_suffices
7. Switching a workspace with a file history to the database without importing it (the caps
   would forget the history) -> refused, exit 3, naming ``audit import``; after the import the
   chain continues; ``plan --audit-log`` in a database workspace -> exit 2
   -> test_switch_to_database_needs_the_history
8. A second station planning with its own signing key on the shared table -> refused (exit 3),
   the audit says no row verifies with this key and that planners need the same key
   -> test_another_signing_key_is_named
9. The library path ``daily`` takes (``run_plan(settings=...)`` of a workspace with
   ``audit_store = "database"``) -> entries in the table, no log file written
   -> test_run_plan_follows_the_workspace_store
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from riskmodel.cli import main
from riskmodel.config.workspace import init_workspace
from riskmodel.errors import EXIT_DATA, EXIT_USAGE, EXIT_VIOLATION
from riskmodel.geo.shifts import shift_windows

psycopg = pytest.importorskip("psycopg", reason="psycopg (riskmodel[postgis]) not installed")

ROOT = Path(__file__).resolve().parents[1]
SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"
# Tight: a segment may be checked once in any 7 days, so two plans of neighbouring days drawn
# from the same history would overlap on the hot spots.
TIGHT_CAPS = """\
per_shift = 0.5
max_per_segment_per_7d = 1
max_per_segment_per_30d = 8
max_share_of_shifts = 0.1
floor_factor = 0.2
slot_hours = 2.0
"""


def make_risk(n: int = 40, day: str = "2025-12-05") -> pd.DataFrame:
    """A risk table with a few hot spots, every shift of ``day`` stacked."""
    rng = np.random.default_rng(0)
    seg = [f"SIHR-{i:04d}" for i in range(1, n + 1)]
    base = rng.gamma(0.6, 0.3, n)
    base[: n // 10] *= 8
    frames = []
    for rec in shift_windows(day, day, SHIFTS, "Europe/Ljubljana").itertuples():
        frames.append(
            pd.DataFrame(
                {
                    "segment_id": seg,
                    "date": rec.date.strftime("%Y-%m-%d"),
                    "shift": rec.shift,
                    "shift_start": rec.start_utc.tz_convert("Europe/Ljubljana").isoformat(),
                    "shift_end": rec.end_utc.tz_convert("Europe/Ljubljana").isoformat(),
                    "expected": base * rng.lognormal(0, 0.2, n),
                    "area": "Koper",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def use_database(ws, uri: str, schema: str = "riskmodel") -> None:
    """Point a workspace's audit at the database (top-level keys, before ``[workspace]``)."""
    cfg = ws.root / "riskmodel.toml"
    text = cfg.read_text()
    settings = f'database = "{uri}"\ndb_schema = "{schema}"\naudit_store = "database"\n'
    cfg.write_text(text.replace("[workspace]", settings + "\n[workspace]", 1))


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    """A fresh workspace with tight caps and risk tables for two days (file audit store)."""
    monkeypatch.delenv("RISKMODEL_SIGNING_KEY", raising=False)
    monkeypatch.delenv("RISKMODEL_WORKSPACE", raising=False)
    w, _ = init_workspace(tmp_path / "ws")
    (w.root / "caps.toml").write_text(TIGHT_CAPS)
    make_risk(day="2025-12-05").to_csv(w.root / "data" / "risk1.csv", index=False)
    make_risk(day="2025-12-06").to_csv(w.root / "data" / "risk2.csv", index=False)
    return w


@pytest.fixture()
def dbws(ws, pg_db):
    """The workspace with its audit in a fresh database (``db init`` done)."""
    r = cli("db", "init", "--db", pg_db)
    assert r.exit_code == 0, r.output
    use_database(ws, pg_db)
    return SimpleNamespace(root=ws.root, uri=pg_db)


def plan(ws, risk: str = "risk1.csv", *extra: str, out: str = "out", seed: str = "1"):
    return cli(
        "--workspace", str(ws.root), "plan", "--risk", str(ws.root / "data" / risk),
        "--units", "4", "--seed", seed, "--out", str(ws.root / out), *extra,
    )  # fmt: skip


def audit(ws, *extra: str):
    return cli(
        "--workspace", str(ws.root), "audit", "--from", "2025-12-01", "--to", "2025-12-31",
        "--fail-on-violation", *extra,
    )  # fmt: skip


def rows(uri: str, schema: str = "riskmodel") -> list[tuple]:
    with psycopg.connect(uri) as con:
        return con.execute(
            f'SELECT seq, entry_text, prev, hash FROM "{schema}".audit_log ORDER BY seq'
        ).fetchall()


# ------------------------------------------------------------------------- 1. concurrency


def test_concurrent_plans_one_chain_caps_kept(dbws) -> None:
    from riskmodel.api import load_caps, make_plans, read_risk
    from riskmodel.audit.dbstore import lock_key

    # The caps are tight enough that the two runs, drawn from the same (empty) history, would
    # check a segment twice within 7 days: only the lock keeps them apart.
    caps = load_caps(dbws.root / "caps.toml", shifts_per_day=3)
    alone = [
        {s for p in make_plans(read_risk(dbws.root / "data" / r), 4, config=caps, seed=sd)
         for s in p.checks["segment_id"]}
        for r, sd in (("risk1.csv", 1), ("risk2.csv", 2))
    ]  # fmt: skip
    assert alone[0] & alone[1], "caps not tight enough for this test to mean anything"

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RISKMODEL_SIGNING_KEY", None)

    def start(risk: str, out: str, seed: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "riskmodel", "--workspace", str(dbws.root), "plan",
               "--risk", str(dbws.root / "data" / risk), "--units", "4", "--seed", seed,
               "--out", str(dbws.root / out)]  # fmt: skip
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # Hold the audit lock so that both planners are queued on it, then release them together.
    with psycopg.connect(dbws.uri) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key("riskmodel")])
        procs = [start("risk1.csv", "out1", "1"), start("risk2.csv", "out2", "2")]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            if waiting == 2 or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
        assert waiting == 2, [p.communicate() for p in procs if p.poll() is not None]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs

    got = rows(dbws.uri)
    entries = [json.loads(t) for _, t, _, _ in got]
    assert [s for s, _, _, _ in got] == list(range(1, 7))
    assert [e["seq"] for e in entries] == list(range(1, 7))
    assert [e["prev"] for e in entries[1:]] == [e["mac"] for e in entries[:-1]]
    # Each run's three plans are contiguous: the second run drew its plans after the first one
    # committed, from its history.
    days = [e["date"] for e in entries]
    assert days[:3] == [days[0]] * 3 and days[3:] == [days[3]] * 3 and days[0] != days[3]
    chosen = [s for e in entries for s in e["chosen"]]
    assert len(chosen) == 24 and len(set(chosen)) == 24  # no segment twice within 7 days
    r = audit(dbws)
    assert r.exit_code == 0, r.output
    assert "cap violations: 0" in r.output and "log integrity: ok (6 lines" in r.output


def test_lock_wait_times_out(dbws) -> None:
    from riskmodel.audit.dbstore import DbAuditLog, lock_key
    from riskmodel.errors import EXIT_OUTPUT, OutputError

    with psycopg.connect(dbws.uri) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key("riskmodel")])
        with pytest.raises(OutputError, match="locked by another riskmodel run") as exc:
            with DbAuditLog(dbws.uri, timeout=0.3):
                pass
        assert exc.value.exit_code == EXIT_OUTPUT
    assert rows(dbws.uri) == []


# ------------------------------------------------------------------------- 2. append-only


def test_audit_table_cannot_be_rewritten(dbws) -> None:
    assert plan(dbws).exit_code == 0
    for role, error in (
        ("riskmodel_planner", psycopg.errors.InsufficientPrivilege),
        ("riskmodel_owner", psycopg.errors.InsufficientPrivilege),  # the trigger's errcode
        (None, psycopg.errors.InsufficientPrivilege),  # superuser: the trigger still refuses
    ):
        for stmt in (
            "UPDATE riskmodel.audit_log SET entry_text = entry_text || ' '",
            "DELETE FROM riskmodel.audit_log WHERE seq = 3",
            "TRUNCATE riskmodel.audit_log",
        ):
            with psycopg.connect(dbws.uri) as con:
                if role:
                    con.execute(f"SET ROLE {role}")
                with pytest.raises(error) as exc:
                    con.execute(stmt)
                if role != "riskmodel_planner":
                    assert "append-only" in str(exc.value)
    with psycopg.connect(dbws.uri) as con:  # the planner may read and append
        con.execute("SET ROLE riskmodel_planner")
        assert con.execute("SELECT count(*) FROM riskmodel.audit_log").fetchone()[0] == 3
    assert audit(dbws).exit_code == 0


# ------------------------------------------------------------------------- 3. tampering

TAMPER = {
    "entry_text": (
        "UPDATE riskmodel.audit_log SET entry_text = replace(entry_text, '\"schema\":1', "
        "'\"schema\":2'), entry = replace(entry_text, '\"schema\":1', '\"schema\":2')::jsonb "
        "WHERE seq = 2",
        "row 2: MAC does not verify",
    ),
    "jsonb": (
        "UPDATE riskmodel.audit_log SET entry = jsonb_set(entry, '{chosen}', '[]') WHERE seq = 2",
        "row 2: its jsonb copy (entry) differs from the hashed text",
    ),
    "last_row": (
        "DELETE FROM riskmodel.audit_log WHERE seq = 3",
        "does not reach its anchor",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_tampered_row_is_detected(dbws, how) -> None:
    assert plan(dbws).exit_code == 0
    assert audit(dbws).exit_code == 0
    stmt, says = TAMPER[how]
    with psycopg.connect(dbws.uri) as con:  # a superuser gets past the trigger on purpose
        con.execute("ALTER TABLE riskmodel.audit_log DISABLE TRIGGER audit_log_append_only")
        assert con.execute(stmt).rowcount == 1
        con.execute("ALTER TABLE riskmodel.audit_log ENABLE TRIGGER audit_log_append_only")
    r = audit(dbws)
    assert r.exit_code == EXIT_VIOLATION, r.output
    assert "log integrity: BROKEN" in r.output and says in r.output
    r = cli("--workspace", str(dbws.root), "audit", "--db", dbws.uri, "--from", "2025-12-01",
            "--to", "2025-12-31", "--fail-on-violation")  # fmt: skip
    assert r.exit_code == EXIT_VIOLATION and says in r.output
    r = plan(dbws, "risk2.csv")
    assert r.exit_code == EXIT_DATA and "audit log is damaged" in r.output
    assert len(rows(dbws.uri)) == (2 if how == "last_row" else 3)  # nothing appended


# ------------------------------------------------------------------------- 4. export/import


def test_export_import_round_trip(ws, pg_db, tmp_path) -> None:
    # A file-store history, imported into the table, exports to the same bytes.
    assert plan(ws).exit_code == 0 and plan(ws, "risk2.csv").exit_code == 0
    log = ws.root / "audit" / "audit.jsonl"
    assert cli("db", "init", "--db", pg_db).exit_code == 0
    r = cli("--workspace", str(ws.root), "audit", "import", str(log), "--db", pg_db)
    assert r.exit_code == 0 and "imported 6 entries" in r.output, r.output
    out = tmp_path / "export.jsonl"
    r = cli("--workspace", str(ws.root), "audit", "export", str(out), "--db", pg_db)
    assert r.exit_code == 0 and "exported 6 rows" in r.output and "HMAC verified" in r.output
    assert out.read_bytes() == log.read_bytes()
    # ... and the table's rows into another schema and back: byte-identical again.
    assert cli("db", "init", "--db", pg_db, "--schema", "copy").exit_code == 0
    r = cli("--workspace", str(ws.root), "audit", "import", str(out), "--db", pg_db,
            "--schema", "copy")  # fmt: skip
    assert r.exit_code == 0, r.output
    again = tmp_path / "again.jsonl"
    r = cli("--workspace", str(ws.root), "audit", "export", str(again), "--db", pg_db,
            "--schema", "copy")  # fmt: skip
    assert r.exit_code == 0 and again.read_bytes() == log.read_bytes()
    assert [t for _, t, _, _ in rows(pg_db, "copy")] == log.read_text().splitlines()
    # Importing the same log again finds it already there: nothing doubled.
    r = cli("--workspace", str(ws.root), "audit", "import", str(log), "--db", pg_db)
    assert r.exit_code == 0 and "imported 0 entries" in r.output
    r = cli("--workspace", str(ws.root), "audit", "--db", pg_db, "--from", "2025-12-01",
            "--to", "2025-12-31", "--fail-on-violation")  # fmt: skip
    assert r.exit_code == 0 and "log integrity: ok (6 lines" in r.output, r.output


def test_import_refuses_a_broken_log_or_another_chain(ws, pg_db, tmp_path) -> None:
    assert plan(ws).exit_code == 0
    log = ws.root / "audit" / "audit.jsonl"
    assert cli("db", "init", "--db", pg_db).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(log.read_text().replace('"schema":1', '"schema":2', 1))
    r = cli("--workspace", str(ws.root), "audit", "import", str(bad), "--db", pg_db)
    assert r.exit_code == EXIT_DATA and "does not verify, nothing imported" in r.output
    assert rows(pg_db) == []
    # Another chain already in the table: refused.
    r = cli("--workspace", str(ws.root), "audit", "import", str(log), "--db", pg_db)
    assert r.exit_code == 0
    ws2, _ = init_workspace(tmp_path / "ws2")
    (ws2.root / "caps.toml").write_text(TIGHT_CAPS)
    assert plan(ws2, str(ws.root / "data" / "risk1.csv")).exit_code == 0
    r = cli("--workspace", str(ws2.root), "audit", "import",
            str(ws2.root / "audit" / "audit.jsonl"), "--db", pg_db)  # fmt: skip
    assert r.exit_code == EXIT_DATA and "not the start of this log" in r.output
    assert len(rows(pg_db)) == 3


# ------------------------------------------------------------------------- 5./6. roles


def test_db_init_is_idempotent(pg_db) -> None:
    r = cli("db", "init", "--db", pg_db)
    assert r.exit_code == 0 and "created table riskmodel.audit_log" in r.output, r.output
    r = cli("db", "init", "--db", pg_db)
    assert r.exit_code == 0 and "already in place" in r.output and "created" not in r.output
    with psycopg.connect(pg_db) as con:
        priv = {
            (role, p): con.execute(
                "SELECT has_table_privilege(%s, 'riskmodel.audit_log', %s)", [role, p]
            ).fetchone()[0]
            for role in ("riskmodel_planner", "riskmodel_reader")
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        }
        assert {k for k, v in priv.items() if v} == {
            ("riskmodel_planner", "SELECT"),
            ("riskmodel_planner", "INSERT"),
            ("riskmodel_reader", "SELECT"),
        }
        create = {
            role: con.execute(
                "SELECT has_schema_privilege(%s, 'riskmodel', 'CREATE')", [role]
            ).fetchone()[0]
            for role in ("riskmodel_planner", "riskmodel_reader", "riskmodel_publisher")
        }
        assert create == {
            "riskmodel_planner": False,
            "riskmodel_reader": False,
            "riskmodel_publisher": True,
        }
        owner = con.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'riskmodel'"
        ).fetchall()
        assert owner == [("riskmodel_owner",)]
        trig = con.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'riskmodel.audit_log'::regclass "
            "AND NOT tgisinternal"
        ).fetchone()[0]
        assert trig == 2
        # QGIS's styles table: readers load default styles, publishers replace theirs.
        styles = {
            (role, p)
            for role in ("riskmodel_planner", "riskmodel_reader", "riskmodel_publisher")
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE")
            if con.execute(
                "SELECT has_table_privilege(%s, 'public.layer_styles', %s)", [role, p]
            ).fetchone()[0]
        }
        assert styles == {
            ("riskmodel_reader", "SELECT"),
            ("riskmodel_publisher", "SELECT"),
            ("riskmodel_publisher", "INSERT"),
            ("riskmodel_publisher", "DELETE"),
        }


def test_planner_role_suffices(ws, pg_db) -> None:
    with psycopg.connect(pg_db, autocommit=True) as con:
        con.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ana') "
            "THEN CREATE ROLE ana LOGIN; END IF; END $$"
        )
    r = cli("db", "init", "--db", pg_db, "--planner", "ana")
    assert r.exit_code == 0 and "granted riskmodel_planner to ana" in r.output, r.output
    ana = psycopg.conninfo.make_conninfo(pg_db, user="ana")
    use_database(ws, ana)
    r = plan(ws)
    assert r.exit_code == 0 and "the audit table riskmodel.audit_log" in r.output, r.output
    assert audit(ws).exit_code == 0
    with psycopg.connect(ana) as con, pytest.raises(psycopg.errors.InsufficientPrivilege):
        con.execute("UPDATE riskmodel.audit_log SET prev = NULL")


# ------------------------------------------------------------------------- 7. switching


def test_switch_to_database_needs_the_history(ws, pg_db) -> None:
    assert plan(ws).exit_code == 0  # three plans in the file log
    log = ws.root / "audit" / "audit.jsonl"
    assert cli("db", "init", "--db", pg_db).exit_code == 0
    use_database(ws, pg_db)
    r = plan(ws, "risk2.csv")
    assert r.exit_code == EXIT_DATA and "audit import" in r.output, r.output
    assert rows(pg_db) == []
    r = plan(ws, "risk2.csv", "--audit-log", str(log))
    assert r.exit_code == EXIT_USAGE and "audit_store = database" in r.output
    r = cli("--workspace", str(ws.root), "audit", "import", str(log))
    assert r.exit_code == 0, r.output
    r = plan(ws, "risk2.csv")
    assert r.exit_code == 0, r.output
    entries = [json.loads(t) for _, t, _, _ in rows(pg_db)]
    assert [e["seq"] for e in entries] == list(range(1, 7))
    chosen = [s for e in entries for s in e["chosen"]]
    assert len(set(chosen)) == len(chosen)  # the day-2 plans counted the imported history
    r = audit(ws)
    assert r.exit_code == 0 and "ends at its anchor" in r.output, r.output


# ------------------------------------------------------------------------- 8./9.


def test_another_signing_key_is_named(dbws, tmp_path) -> None:
    assert plan(dbws).exit_code == 0
    other, _ = init_workspace(tmp_path / "station2")  # its own, different key
    (other.root / "caps.toml").write_text(TIGHT_CAPS)
    use_database(other, dbws.uri)
    r = plan(other, str(dbws.root / "data" / "risk2.csv"))
    assert r.exit_code == EXIT_DATA and "no row verifies with this signing key" in r.output
    r = audit(other)
    assert r.exit_code == EXIT_VIOLATION and "needs the same key" in r.output
    assert len(rows(dbws.uri)) == 3


def test_run_plan_follows_the_workspace_store(dbws) -> None:
    from riskmodel.api import load_caps, read_risk, run_plan
    from riskmodel.config.settings import load_settings

    settings = load_settings(workspace=str(dbws.root))
    results = run_plan(
        read_risk(dbws.root / "data" / "risk1.csv"),
        dbws.root / "out",
        settings.audit_log,
        4,
        config=load_caps(settings.caps, shifts_per_day=3),
        seed=3,
        settings=settings,
    )
    got = rows(dbws.uri)
    assert [json.loads(t)["plan_id"] for _, t, _, _ in got] == [p.plan_id for p, _ in results]
    assert not Path(settings.audit_log).exists()
    state = json.loads((dbws.root / ".riskmodel" / "state.json").read_text())
    assert state["audit_db"]["seq"] == 3 and state["audit_db"]["head"] == got[-1][3]
