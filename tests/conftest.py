"""Shared fixtures: a small synthetic border world (fast) and helpers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from riskmodel.config.settings import Settings
from riskmodel.geo.geodata import Geography
from riskmodel.geo.segments import make_segments, read_border

SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"


def synthetic_geography(km: float = 60.0, length_m: float = 1000.0) -> Geography:
    """A wiggly border of ``km`` in EPSG:3794 with two areas, a corridor, a crossing and
    settlements on both sides (no bundled files involved)."""
    t = np.linspace(0, km, 4000)
    line = LineString(np.c_[480000 + t * 900, 60000 + t * 300 + 2000 * np.sin(t / 4)])
    g = object.__new__(Geography)
    g.border = read_border(gpd.GeoDataFrame(geometry=[line], crs=3794))
    g.border_path = "synthetic"
    g.crs = "EPSG:3794"
    mid = line.interpolate(0.5, normalized=True)
    left = gpd.GeoDataFrame(
        {"name": ["West"]},
        geometry=[
            line.buffer(30000)
            .difference(gpd.GeoSeries([mid], crs=3794).buffer(1).iloc[0])
            .intersection(
                gpd.GeoSeries([Point(mid.x - 100000, mid.y)], crs=3794).buffer(100000 + 1).iloc[0]
            )
        ],
        crs=3794,
    )
    right = gpd.GeoDataFrame(
        {"name": ["East"]},
        geometry=[line.buffer(30000).difference(left.geometry.iloc[0])],
        crs=3794,
    )
    g.areas = pd.concat([left, right], ignore_index=True)
    pts = [line.interpolate(d) for d in (5000, 20000, 40000)]
    g.crossings = gpd.GeoDataFrame({"name": ["Alpha", "Beta", "Gamma"]}, geometry=pts, crs=3794)
    g.corridors = gpd.GeoDataFrame(
        {"name": ["Route A"], "kind": ["approach_route"], "weight": [1.0]},
        geometry=[LineString([(pts[1].x + 20000, pts[1].y - 20000), (pts[1].x, pts[1].y)])],
        crs=3794,
    )
    sett = []
    for i, d in enumerate(np.linspace(2000, km * 1000 - 2000, 12)):
        p = line.interpolate(d)
        sett.append((f"SI-{i}", "SI", 2000 + 100 * i, Point(p.x - 3000, p.y + 3000)))
        sett.append((f"HR-{i}", "HR", 3000 + 500 * i, Point(p.x + 3000, p.y - 3000)))
    g.settlements = gpd.GeoDataFrame(
        {
            "name": [s[0] for s in sett],
            "country": [s[1] for s in sett],
            "population": [s[2] for s in sett],
        },
        geometry=[s[3] for s in sett],
        crs=3794,
    )
    g.rivers = gpd.GeoDataFrame(
        {"name": ["River"]}, geometry=[LineString(line.coords[:1000])], crs=3794
    )
    g.segment_length_m = length_m
    g.segments = make_segments(g.border, length_m, areas=g.areas, rivers=g.rivers)
    return g


@pytest.fixture(scope="session")
def geo() -> Geography:
    return synthetic_geography()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def scenario(geo):
    from riskmodel.sim.scenario import simulate
    from riskmodel.sim.world import ScenarioParams

    p = ScenarioParams(
        seed=1,
        start="2024-01-01",
        end="2024-12-31",
        persons_per_year=60000,
        area_shares={},
        units_per_shift=(3, 3, 5),
    )
    return simulate(geo, p, SHIFTS)


@pytest.fixture(scope="session")
def dataset(geo, scenario, settings):
    from riskmodel.model.pipeline import prepare_dataset

    return prepare_dataset(settings, scenario.events, scenario.effort, geo=geo, end="2024-12-31")


# --- PostgreSQL/PostGIS (tests/pgserver.py) -------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    """libpq URI of a running PostgreSQL + PostGIS server (the ``postgres`` database).

    ``RISKMODEL_TEST_DB`` (exported by ``.ci/run``) wins; otherwise a throw-away cluster is
    started for this session and stopped after it; otherwise the test is skipped, naming what
    was missing.
    """
    import os
    import sys

    uri = os.environ.get("RISKMODEL_TEST_DB")
    if uri:
        yield uri
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import pgserver

    root = tmp_path_factory.mktemp("pg")
    try:
        uri = pgserver.start(root)
    except pgserver.ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL/PostGIS server: {exc}")
    try:
        yield uri
    finally:
        pgserver.stop(root)


@pytest.fixture
def pg_db(pg_server: str):
    """URI of a fresh database with PostGIS, dropped after the test."""
    import uuid

    psycopg = pytest.importorskip("psycopg", reason="psycopg (riskmodel[postgis]) not installed")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    uri = psycopg.conninfo.make_conninfo(pg_server, dbname=name)
    with psycopg.connect(uri, autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        yield uri
    finally:
        with psycopg.connect(pg_server, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def crowded_day():
    """A day on the real border and places: risk per shift and plans whose checks sit on
    neighbouring segments (their markers and numbers would pile up at national scale)."""
    import geopandas as gpd
    import numpy as np

    from riskmodel.config.settings import Settings
    from riskmodel.geo.geodata import Geography

    g = Geography(Settings())
    seg = g.segments
    rng = np.random.default_rng(0)
    risk, plans = {}, {}
    times = {"morning": ("06", "08"), "afternoon": ("14", "16"), "night": ("22", "23")}
    picks = {
        "morning": list(range(300, 312)),  # twelve neighbours: one pile
        "afternoon": [10, 11, 12, 200, 201, 202, 450, 451],
        "night": list(range(560, 566)) + list(range(100, 104)),
    }
    for shift, (a, b) in times.items():
        expected = rng.gamma(1.5, 0.01 * (1 + 4 * (shift == "night")), len(seg))
        rank = (-expected).argsort().argsort() + 1
        risk[shift] = gpd.GeoDataFrame(
            {
                "segment_id": seg["segment_id"],
                "date": "2026-12-01",
                "shift": shift,
                "shift_start": f"2026-12-01T{a}:00:00+01:00",
                "shift_end": f"2026-12-01T{b}:00:00+01:00",
                "expected": expected,
                "rank": rank,
                "risk_class": np.clip(5 - (rank - 1) * 5 // len(seg), 1, 5),
            },
            geometry=seg.geometry.to_numpy(),
            crs=seg.crs,
        )
        chosen = seg.iloc[picks[shift]]
        plans[shift] = gpd.GeoDataFrame(
            {
                "check_no": np.arange(1, len(chosen) + 1),
                "unit": [f"U{i % 3 + 1:02d}" for i in range(len(chosen))],
                "segment_id": chosen["segment_id"].to_numpy(),
                "slot_start": f"2026-12-01T{a}:00:00+01:00",
                "slot_end": f"2026-12-01T{b}:00:00+01:00",
                "coverage": 0.3,
            },
            geometry=chosen.geometry.to_numpy(),
            crs=seg.crs,
        )
    return {"risk": risk, "plans": plans, "border": g.border, "settlements": g.settlements}


def pdf_pages(html: Path, pdf: Path) -> list[str]:
    """Print ``html`` to ``pdf`` in headless Chromium (no network) and return the text of its
    non-blank pages (pdftotext). Callers check that both programs are there."""
    import shutil
    import subprocess

    subprocess.run(
        [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", html.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert pdf.is_file() and pdf.stat().st_size > 1000
    pages = subprocess.run(
        [shutil.which("pdftotext"), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\f")
    return [p for p in pages if p.strip()]
