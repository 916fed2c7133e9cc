"""Benchmark: publish a day to PostGIS, and read 1 M events from it.

1. **Publish**: a day of the bundled border's segments (640 at 1 km) x 3 shifts as
   ``riskmodel score`` writes them (``risk_<date>_<shift>.geojson``), plus each shift's plan
   (``plan_<date>_<shift>.csv`` + ``.geojson``, 12 checks), published with
   :func:`riskmodel.api.publish` (reading the files back, one transaction, replacing the day).
   Timed: the whole verb, and the database part alone (:func:`publish_layers`).
2. **Read**: a table of N events (default 1 M) with point geometry in EPSG:3794 near the
   border, read with :func:`riskmodel.io.read.events.read_events` from a
   :class:`~riskmodel.io.read.postgis.DbSource` with the border-distance check, as
   ``riskmodel train --events postgresql://... --events-table ...`` does. Timed: the copy out of
   the database (``load_raw``) and the whole read; for comparison the same rows read from a CSV.

The database: ``--db URI``, else ``RISKMODEL_TEST_DB``, else a throw-away cluster started with
``tests/pgserver.py`` (and stopped). Each figure is the median of ``--repeat`` runs.

Usage::

    python bench/bench_db.py [--rows 1000000] [--repeat 3] [--db URI]

Writes ``bench/results/db.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAY = "2026-12-01"
SHIFTS = {"morning": ("06:00", "14:00", 0), "afternoon": ("14:00", "22:00", 0),
          "night": ("22:00", "06:00", 1)}  # fmt: skip


def _timed(fn, repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), runs


def write_day(folder: Path, segments) -> None:
    """A scored day (every segment x 3 shifts) and 12-check plans, as the CLI writes them."""
    import geopandas as gpd

    from riskmodel.io.write.geojson import write_geojson
    from riskmodel.io.write.qml import qml_plan_style, qml_risk_style

    rng = np.random.default_rng(0)
    n = len(segments)
    for i, (shift, (a, b, nxt)) in enumerate(SHIFTS.items()):
        exp = rng.gamma(2.0, 0.01, n)
        rank = (-exp).argsort(kind="stable").argsort(kind="stable") + 1
        pct = 100.0 * (n - rank) / (n - 1)
        end_day = f"2026-12-0{1 + nxt}"
        g = gpd.GeoDataFrame(
            {
                "segment_id": segments["segment_id"].to_numpy(),
                "area": segments["area"].astype(str).to_numpy() if "area" in segments else "A",
                "length_m": segments.geometry.length.round(1).to_numpy(),
                "date": DAY, "shift": shift,
                "shift_start": f"{DAY}T{a}:00+01:00", "shift_end": f"{end_day}T{b}:00+01:00",
                "expected": exp, "lower": exp * 0.5, "upper": exp * 1.9, "rank": rank,
                "percentile": pct,
                "risk_class": np.clip(np.ceil((pct + 1e-9) / 20).astype(int), 1, 5),
                "risk_label": "x", "reason_1": "recent activity within 3 km",
                "reason_2": "0.4 km from route", "reason_3": "dark for 80% of the shift",
                "threat": exp, "vulnerability": 1.0, "impact": rng.random(n),
                "chainage_from_km": np.arange(n, dtype=float),
                "chainage_to_km": np.arange(n, dtype=float) + 1, "river": np.arange(n) % 3 == 0,
            },
            geometry=segments.geometry.to_numpy(),
            crs=segments.crs,
        )  # fmt: skip
        write_geojson(g, folder / f"risk_{DAY}_{shift}.geojson", qml=qml_risk_style())
        top = g.nsmallest(12, "rank")
        plan = gpd.GeoDataFrame(
            {
                "check_no": np.arange(1, 13), "unit": [f"U{k:02d}" for k in range(1, 13)],
                "segment_id": top["segment_id"].to_numpy(), "area": top["area"].to_numpy(),
                "slot_start": f"{DAY}T{a}:00+01:00", "slot_end": f"{DAY}T{a}:00+01:00",
                "coverage": np.linspace(0.1, 0.4, 12), "expected": top["expected"].to_numpy(),
                "reasons": "recent activity", "plan_id": str(uuid.UUID(int=i)), "audit_seq": i + 1,
            },
            geometry=top.geometry.to_numpy(),
            crs=segments.crs,
        )  # fmt: skip
        plan.drop(columns="geometry").to_csv(folder / f"plan_{DAY}_{shift}.csv", index=False)
        write_geojson(plan, folder / f"plan_{DAY}_{shift}.geojson", qml=qml_plan_style())


def bench_publish(uri: str, segments, repeat: int) -> dict:
    from riskmodel.api import publish
    from riskmodel.api._publish import PLAN_TABLE, RISK_TABLE, _find, _plan_layers, _risk_layers
    from riskmodel.config.settings import Settings
    from riskmodel.io.write.postgis import PublishLayer, publish_layers
    from riskmodel.io.write.qml import qml_plan_style, qml_risk_style

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_day(folder, segments)
        settings = Settings()
        first = time.perf_counter()
        res = publish(settings, folder, db=uri, schema="bench")
        first = time.perf_counter() - first
        verb, verb_runs = _timed(lambda: publish(settings, folder, db=uri, schema="bench"), repeat)
        risk_p, plan_p = _find(folder)
        risk = _risk_layers(risk_p)
        layers = [
            PublishLayer(RISK_TABLE, risk, ("segment_id",), qml_risk_style(), "riskmodel risk"),
            PublishLayer(
                PLAN_TABLE, _plan_layers(plan_p, risk, settings), ("check_no",),
                qml_plan_style(), "riskmodel plan",
            ),
        ]  # fmt: skip
        dbonly, db_runs = _timed(lambda: publish_layers(uri, layers, schema="bench"), repeat)
    return {
        "rows": res.rows,
        "first_publish_s": round(first, 3),
        "republish_verb_s": round(verb, 3),
        "republish_verb_runs": [round(r, 3) for r in verb_runs],
        "database_part_s": round(dbonly, 3),
        "database_part_runs": [round(r, 3) for r in db_runs],
    }


def make_events_table(uri: str, segments, rows: int) -> None:
    """``public.bench_events``: ``rows`` events at jittered segment points, EPSG:3794."""
    import psycopg

    pts = segments.geometry.interpolate(0.5, normalized=True)
    with psycopg.connect(uri) as con:
        con.execute("DROP TABLE IF EXISTS public.bench_events, public.bench_points")
        con.execute("CREATE TABLE public.bench_points (k int, x float8, y float8)")
        with con.cursor().copy("COPY public.bench_points FROM STDIN") as cp:
            for k, p in enumerate(pts):
                cp.write_row((k, float(p.x), float(p.y)))
        con.execute(
            "CREATE TABLE public.bench_events (id bigint PRIMARY KEY, event_id text, "
            "occurred timestamptz, persons int, type text, source text, "
            "geom geometry(Point, 3794))"
        )
        con.execute(
            "INSERT INTO public.bench_events SELECT g, 'EV-' || g, "
            "timestamptz '2024-01-01 00:00+00' + (g * interval '47 seconds'), 1 + g %% 7, "
            "CASE WHEN g %% 10 = 0 THEN 'detection' ELSE 'apprehension' END, 'bench', "
            "ST_SetSRID(ST_MakePoint(p.x + (random() - 0.5) * 3000, "
            "p.y + (random() - 0.5) * 3000), 3794) "
            "FROM generate_series(1, %s) AS g JOIN public.bench_points p ON p.k = g %% %s",
            (rows, len(pts)),
        )
        con.execute("ANALYZE public.bench_events")


def bench_read(uri: str, geo, rows: int, repeat: int) -> dict:
    import psycopg

    from riskmodel.io.read.events import read_events
    from riskmodel.io.read.postgis import DbSource

    make_events_table(uri, geo.segments, rows)
    src = DbSource(uri, table="public.bench_events")
    kw = {"columns": {"timestamp": "occurred"}, "border": geo.border, "now": "2030-01-01"}
    copy_s, copy_runs = _timed(lambda: src.load_raw("events"), repeat)
    out: dict = {}

    def read() -> None:
        out["r"] = read_events(src, **kw)

    whole_s, whole_runs = _timed(read, repeat)
    res = out.pop("r")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "events.csv"
        with psycopg.connect(uri) as con, open(csv, "wb") as fh:
            with con.cursor().copy(
                "COPY (SELECT event_id, to_char(occurred AT TIME ZONE 'UTC', "
                '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\') AS timestamp, ST_X(geom) AS x, ST_Y(geom) AS y, '
                "persons, type, source FROM public.bench_events ORDER BY id) "
                "TO STDOUT (FORMAT csv, HEADER)"
            ) as cp:
                for chunk in cp:
                    fh.write(chunk)
        csv_s, csv_runs = _timed(
            lambda: read_events(csv, crs="EPSG:3794", border=geo.border, now="2030-01-01"), repeat
        )
    return {
        "rows": rows,
        "accepted": int(res.summary["accepted"]),
        "quarantined": int(res.summary["quarantined"]),
        "copy_out_s": round(copy_s, 3),
        "copy_out_runs": [round(r, 3) for r in copy_runs],
        "read_events_db_s": round(whole_s, 3),
        "read_events_db_runs": [round(r, 3) for r in whole_runs],
        "read_events_csv_s": round(csv_s, 3),
        "read_events_csv_runs": [round(r, 3) for r in csv_runs],
    }


def _database(arg: str | None, stack: list) -> str:
    if arg or os.environ.get("RISKMODEL_TEST_DB"):
        base = arg or os.environ["RISKMODEL_TEST_DB"]
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        import pgserver

        root = Path(tempfile.mkdtemp(prefix="bench_pg_"))
        base = pgserver.start(root)
        stack.append(lambda: pgserver.stop(root))
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    uri = psycopg.conninfo.make_conninfo(base, dbname=name)
    with psycopg.connect(uri, autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.insert(0, drop)
    return uri


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", default=None, help="server URI (default RISKMODEL_TEST_DB or own)")
    ap.add_argument("--out", default=str(HERE / "results" / "db.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from riskmodel.config.settings import Settings
    from riskmodel.geo.geodata import Geography

    cleanup: list = []
    try:
        uri = _database(args.db, cleanup)
        geo = Geography(Settings())
        load0 = os.getloadavg()[0]
        pub = bench_publish(uri, geo.segments, args.repeat)
        print(
            f"publish a day ({len(geo.segments)} segments x 3 shifts = "
            f"{pub['rows']['risk_segments']} rows + {pub['rows']['plan_checks']} checks): "
            f"riskmodel publish {pub['republish_verb_s']:.2f} s (first {pub['first_publish_s']:.2f}"
            f" s), of which the database transaction {pub['database_part_s']:.2f} s"
        )
        rd = bench_read(uri, geo, args.rows, args.repeat)
        print(
            f"read {rd['rows']:,} events from PostGIS: {rd['read_events_db_s']:.2f} s "
            f"(copy out {rd['copy_out_s']:.2f} s, the rest is the validation every file gets); "
            f"the same rows from CSV {rd['read_events_csv_s']:.2f} s"
        )
        result = {
            "publish": pub,
            "read": rd,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "load_1min_before": round(load0, 2),
                        "load_1min_after": round(os.getloadavg()[0], 2)},
            "repeat": args.repeat,
        }  # fmt: skip
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"-> {args.out}")
    finally:
        for fn in cleanup:
            fn()


if __name__ == "__main__":
    main()
