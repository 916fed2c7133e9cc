"""End-to-end on the bundled border: simulate -> train -> score (twice, in two processes) -> plan.

Checks reproducibility (byte-identical outputs across processes), the one-step-ahead forecast
range, provenance, and that a changed or mismatched bundle is refused.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def run(*args, cwd=None, check=True):
    p = subprocess.run(
        [sys.executable, "-m", "riskmodel", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "RISKMODEL_SIGNING_KEY": "end-to-end-key"},  # bundles are signed
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"riskmodel {' '.join(map(str, args))} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        )
    return p


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    run("simulate", "--out", d / "sim", "--seed", 3, "--from", "2025-01-01", "--to", "2025-06-30")
    run(
        "train",
        "--events",
        d / "sim" / "events.csv",
        "--effort",
        d / "sim" / "effort.csv",
        "--to",
        "2025-06-20",
        "--models-root",
        d / "models",
        "--model-param",
        "n_estimators=25",
        "--model-param",
        "learning_rate=0.3",
    )
    return d


def _digest(folder: Path, pattern: str) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))
    }


def test_score_reproducible_across_processes(world):
    d = world
    env_args = [
        "--events",
        d / "sim" / "events.csv",
        "--from",
        "2025-06-21",
        "--to",
        "2025-06-23",
        "--no-png",
    ]
    for out in ("a", "b"):
        p = run("score", *env_args, "--out", d / out, cwd=d)  # models/ found under cwd
        assert "model rm-" in p.stdout
    a, b = d / "a", d / "b"
    for pat in ("*.geojson", "*.csv", "*.qml", "*.html"):
        da, db = _digest(a, pat), _digest(b, pat)
        assert da and da == db, pat
    # GeoPackage: same content (GDAL stamps times into metadata tables)
    import geopandas as gpd

    for layer in ("morning", "afternoon", "night"):
        ga = gpd.read_file(a / "risk_2025-06-21.gpkg", layer=layer)
        gb = gpd.read_file(b / "risk_2025-06-21.gpkg", layer=layer)
        pd.testing.assert_frame_equal(ga, gb)
    fc = pd.read_csv(a / "forecast.csv")
    assert set(fc["shift"]) == {"morning", "afternoon", "night"}
    assert fc["shift_start"].str.contains(r"\+0[12]:00").all()
    assert len(fc) == 3 * 3 * fc["segment_id"].nunique()
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["model_id"].startswith("rm-") and prov["inputs"]["events"]["sha256"]
    risk = pd.read_csv(a / "risk_2025-06-21.csv")
    assert risk["rank"].min() == 1 and set(risk["risk_class"]) == {1, 2, 3, 4, 5}
    assert risk["reason_1"].str.len().gt(0).all()
    assert (risk["lower"] <= risk["expected"] + 1e-9).all() and (
        risk["upper"] + 1e-9 >= risk["lower"]
    ).all()


def test_score_is_one_step_ahead(world):
    """Scoring a day with later events in the file gives the same risk as without them."""
    d = world
    ev = pd.read_csv(d / "sim" / "events.csv")
    cut = ev[pd.to_datetime(ev["timestamp"], utc=True) < pd.Timestamp("2025-06-22T04:00:00Z")]
    cut.to_csv(d / "cut.csv", index=False)
    run(
        "score",
        "--events",
        d / "sim" / "events.csv",
        "--date",
        "2025-06-22",
        "--shift",
        "morning",
        "--no-png",
        "--no-html",
        "--out",
        d / "full",
        cwd=d,
    )
    run(
        "score",
        "--events",
        d / "cut.csv",
        "--date",
        "2025-06-22",
        "--shift",
        "morning",
        "--no-png",
        "--no-html",
        "--out",
        d / "cut",
        cwd=d,
    )
    a = pd.read_csv(d / "full" / "risk_2025-06-22.csv")
    b = pd.read_csv(d / "cut" / "risk_2025-06-22.csv")
    pd.testing.assert_series_equal(a["expected"], b["expected"])


def test_plan_from_date_and_audit(world):
    d = world
    p = run(
        "plan",
        "--date",
        "2025-06-21",
        "--events",
        d / "sim" / "events.csv",
        "--units",
        5,
        "--seed",
        11,
        "--audit-log",
        d / "audit.jsonl",
        "--out",
        d / "plans",
        cwd=d,
    )
    assert p.stdout.count("checks") >= 3
    checks = pd.read_csv(d / "plans" / "plan_2025-06-21_night.csv")
    assert len(checks) == 5
    entries = [json.loads(x) for x in (d / "audit.jsonl").read_text().splitlines()]
    assert len(entries) == 3 and all(e["seed"] is not None for e in entries)
    a = run("audit", "--from", "2025-06-21", "--to", "2025-06-21", "--audit-log", d / "audit.jsonl")
    assert a.returncode == 0


def test_tampered_bundle_refused_by_score(world, tmp_path):
    import shutil

    d = world
    models = tmp_path / "models"
    shutil.copytree(d / "models", models)
    bundle = next(p for p in models.iterdir() if p.is_dir())
    with open(bundle / "booster.ubj", "ab") as fh:
        fh.write(b"x")
    p = run(
        "score",
        "--events",
        d / "sim" / "events.csv",
        "--date",
        "2025-06-21",
        "--out",
        tmp_path / "o",
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 4
    assert "changed after training" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o" / "risk_2025-06-21.csv").exists()


def test_segment_mismatch_refused(world, tmp_path):
    d = world
    (d / "rm500.toml").write_text("segment_length_m = 500\n")
    p = run(
        "--config",
        d / "rm500.toml",
        "score",
        "--events",
        d / "sim" / "events.csv",
        "--date",
        "2025-06-21",
        "--out",
        tmp_path / "o",
        cwd=d,
        check=False,
    )
    assert p.returncode == 4 and "segment set mismatch" in p.stderr


def test_reader_options_same_on_every_command(world, tmp_path):
    """A naive local-time file that validate accepts with --assume-tz/--dst is read the same way
    by train, score and plan --date (the reader's own fix suggestions are all accepted)."""
    d = world
    ev = pd.read_csv(d / "sim" / "events.csv")
    local = pd.to_datetime(ev["timestamp"], utc=True).dt.tz_convert("Europe/Ljubljana")
    ev["timestamp"] = local.dt.strftime("%Y-%m-%d %H:%M:%S")
    gap = ev.iloc[[0]].assign(event_id="GAP-1", timestamp="2025-03-30 02:30:00")  # no such time
    naive = tmp_path / "naive.csv"
    pd.concat([ev, gap]).to_csv(naive, index=False)
    flags = ["--events", naive, "--assume-tz", "Europe/Ljubljana"]
    p = run("score", *flags, "--date", "2025-06-21", "--out", tmp_path / "x", cwd=d, check=False)
    assert p.returncode == 3 and "--dst" in p.stderr  # the fix it suggests ...
    flags += ["--dst", "earliest"]  # ... is accepted by every command
    run("validate", *flags)
    run(
        "train",
        *flags,
        "--to",
        "2025-06-20",
        "--models-root",
        tmp_path / "models",
        "--model-param",
        "n_estimators=5",
    )
    p = run(
        "score", *flags, "--date", "2025-06-21", "--no-png", "--no-html", "--out", tmp_path / "s",
        cwd=d,
    )  # fmt: skip
    assert (tmp_path / "s" / "risk_2025-06-21.csv").is_file()
    run(
        "plan", "--date", "2025-06-21", *flags, "--units", 3, "--seed", 1,
        "--audit-log", tmp_path / "audit.jsonl", "--out", tmp_path / "p", cwd=d,
    )  # fmt: skip
    assert (tmp_path / "p" / "plan_2025-06-21_night.csv").is_file()


def test_demo_builds_a_workspace_whose_next_commands_work_as_printed(tmp_path):
    """The demo ends by printing the next commands; a planner copies them and they run."""
    out = tmp_path / "demo"
    p = run("demo", "--small", "--backtest-days", 0, "--out", out, cwd=tmp_path)
    assert (out / "riskmodel.toml").is_file() and (out / "caps.toml").is_file()
    assert list((out / "out").glob("*/maps/provenance.json"))
    assert list((out / "out").glob("*/plans/plan_*_night.csv"))
    assert (out / "audit" / "audit.jsonl").stat().st_size > 0
    assert "0 quarantined" in p.stdout  # its own simulated events all lie in the past
    lines = p.stdout.split("next (each command works as printed):", 1)[1].splitlines()
    commands = [ln.split()[1:] for ln in lines if ln.strip().startswith("riskmodel ")]
    assert len(commands) >= 3
    elsewhere = tmp_path / "elsewhere"  # not inside the workspace: --workspace finds it
    elsewhere.mkdir()
    (demo_day,) = [p.parent for p in (out / "out").glob("*/plans")]
    demo_map = next(iter((demo_day / "maps").glob("risk_*.html")))
    before = hashlib.sha256(demo_map.read_bytes()).hexdigest()
    outs = {args[2]: run(*args, cwd=elsewhere).stdout for args in commands}
    # the demo planned its day: the printed daily plans the next one (no silent redraw)
    (daily_day,) = [p.parent for p in (out / "out").glob("*/briefing_*.html")]
    assert daily_day.name > demo_day.name
    assert '"plans":{}' not in next(iter((daily_day / "maps").glob("risk_*.html"))).read_text()
    # score writes beside the maps, never over them
    assert list((demo_day / "score").glob("risk_*.html"))
    assert hashlib.sha256(demo_map.read_bytes()).hexdigest() == before
    # the audit's default period holds both days' plans
    m = re.search(r": (\d+) plans \((\d+) re-planned\)", outs["audit"])
    assert m and int(m[1]) == 6 and int(m[2]) == 0, outs["audit"]
