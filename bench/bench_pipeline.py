"""Benchmark of the whole pipeline: time and peak memory per stage, per size tier.

Stages: ``segments`` (cut the border), ``simulate`` (truth-known history), ``read`` (validate
the events/effort files and bin them), ``features``, ``train``, ``score`` (one day, in the
process: :func:`riskmodel.api.score_dates`, then the writers), ``score_cli`` (``riskmodel
score`` from the command line with every output), ``plan`` (one day, every shift) and
``backtest`` (one 28-day origin with the baselines and the oracle).

Every run of a stage is a fresh subprocess: setup (loading the data the stage needs) is not
timed, the peak-RSS high-water mark is reset (``/proc/self/clear_refs``) after the setup, and
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the stage is the stage's peak memory (it
includes the inputs the stage holds, e.g. the binned panel). ``score_cli`` reports the child's
``ru_maxrss``. Medians over ``--repeat`` runs.

Tiers::

    S        the demo: SI-HR border at 1 km (~640 segments) x 3 shifts x 3 years (~2.1 M rows)
    M        250 m segments (~2,560) x 6 four-hour bands x 5 years (~28 M rows): bounded-memory
             feature build (riskmodel.features.engine, model.sample) and training with two empty-row shares
    scaling  features and training at 640 / 1,280 / 2,560 segments x 3 shifts x 3 years, plus
             the PNG scaling curve (bench/results/scaling.png)
    eu       ~12,000 km of external land border at 1 km x 3 shifts x 3 years (~39 M rows) on
             a synthetic line: as far as the machine allows

Usage::

    python bench/bench_pipeline.py --tier S [--repeat 3] [--reduced] [--workdir DIR]
    python bench/bench_pipeline.py --tier S --reduced       # CI: 1 year, small model, 1 run

Writes ``bench/results/<tier>.json`` (``S_reduced.json`` with ``--reduced``) and prints a
table. XGBoost runs with ``OMP_WAIT_POLICY=PASSIVE`` unless ``--omp-active`` (on a busy
2-core machine OpenMP spin-waiting makes 2-thread training 10-20x slower; see README).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BANDS6 = ",".join(f"b{h:02d}=%02d:00-%02d:00" % (h, (h + 4) % 24) for h in range(0, 24, 4))
SHIFTS3 = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"
SMALL_PARAMS = {"n_estimators": 150, "learning_rate": 0.15}

TIERS: dict[str, dict[str, Any]] = {
    "S": {
        "length_m": 1000.0,
        "shifts": SHIFTS3,
        "start": "2023-01-01",
        "end": "2025-12-31",
        "engine": "full",
        "stages": [
            "segments",
            "simulate",
            "read",
            "features",
            "features_chunked",
            "train",
            "score",
            "score_cli",
            "plan",
            "backtest",
        ],
    },
    "M": {
        "length_m": 250.0,
        "shifts": BANDS6,
        "start": "2021-01-01",
        "end": "2025-12-31",
        "engine": "chunked",
        "zero_keeps": [0.05, 0.01],
        "valid_keep": 0.25,
        "stage_timeout": {"score": 1800, "score_cli": 1800},
        # peak season of the last year, 2 origins: enough events to compare the two shares
        "backtest_from": "2025-08-01",
        "backtest_to": "2025-10-31",
        "backtest_step": 46,
        "stages": [
            "segments",
            "simulate",
            "read",
            "features",
            "train",
            "score",
            "score_cli",
            "plan",
            "backtest",
        ],
        "heavy": ["simulate", "features", "train", "backtest", "score_cli"],
    },
    "eu": {
        "geo": "synthetic",
        "km": 12000.0,
        "length_m": 1000.0,
        "shifts": SHIFTS3,
        "start": "2023-01-01",
        "end": "2025-12-31",
        "engine": "chunked",
        "zero_keeps": [0.05],
        "valid_keep": 0.1,
        "train_rounds": 100,
        "no_truth": True,
        "stages": ["segments", "simulate", "read", "features", "train"],
        "heavy": ["simulate", "read", "features", "train"],
    },
}
SCALING_SIZES = [1000.0, 500.0, 250.0]  # segment lengths: ~640, 1,280, 2,560 segments


# ============================================================================ stage side
def _rss_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def synthetic_geography(km: float, length_m: float) -> Any:
    """A synthetic border of ~``km`` for the EU-size tier: a serpentine of 12 east-west legs
    60 km apart (wiggling +-1 km) over central Europe in EPSG:3035 (LAEA Europe, valid
    everywhere on the line), with 6 areas, a crossing point every 25 km, one approach corridor
    and a pair of settlements every ~50 km (like ``tests/conftest.py``, scaled)."""
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import LineString, Point

    from riskmodel.geo.geodata import Geography
    from riskmodel.geo.segments import make_segments, read_border

    legs, gap = 12, 60_000.0
    leg = (km * 1000 - (legs - 1) * gap) / legs / 1.016  # wiggle adds ~1.6 %
    x0, y0 = 4_000_000.0, 2_600_000.0
    xs, ys = [], []
    for i in range(legs):
        t = np.linspace(0, leg, int(leg / 250) + 1)
        x = x0 + (t if i % 2 == 0 else leg - t)
        y = y0 + i * gap + 1000 * np.sin(t / 4000)
        xs.append(x)
        ys.append(y)
    line = LineString(np.c_[np.concatenate(xs), np.concatenate(ys)])
    g = object.__new__(Geography)
    g.border = read_border(gpd.GeoDataFrame(geometry=[line], crs=3035), metric_crs="EPSG:3035")
    g.border_path = "synthetic"
    g.crs = "EPSG:3035"
    cuts = np.linspace(0, line.length, 7)
    polys = [
        LineString([line.interpolate(d) for d in np.linspace(a, b, 400)]).buffer(25_000)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    g.areas = gpd.GeoDataFrame({"name": [f"A{i}" for i in range(6)]}, geometry=polys, crs=3035)
    n_x = int(km // 25)
    g.crossings = gpd.GeoDataFrame(
        {"name": [f"X{i}" for i in range(n_x)]},
        geometry=[line.interpolate(d) for d in np.linspace(5000, line.length - 5000, n_x)],
        crs=3035,
    )
    p = line.interpolate(20_000)
    g.corridors = gpd.GeoDataFrame(
        {"name": ["Route A"], "kind": ["approach_route"], "weight": [1.0]},
        geometry=[LineString([(p.x + 20_000, p.y - 20_000), (p.x, p.y)])],
        crs=3035,
    )
    rows = []
    for i, d in enumerate(np.linspace(2000, line.length - 2000, max(12, int(km // 50)))):
        q = line.interpolate(d)
        rows.append((f"SI-{i}", "SI", 2000 + 100 * (i % 50), Point(q.x - 3000, q.y + 3000)))
        rows.append((f"HR-{i}", "HR", 3000 + 500 * (i % 50), Point(q.x + 3000, q.y - 3000)))
    g.settlements = gpd.GeoDataFrame(
        {
            "name": [r[0] for r in rows],
            "country": [r[1] for r in rows],
            "population": [r[2] for r in rows],
        },
        geometry=[r[3] for r in rows],
        crs=3035,
    )
    g.rivers = gpd.GeoDataFrame(geometry=[], crs=3035)
    g.segment_length_m = length_m
    g.segments = make_segments(g.border, length_m, areas=g.areas)
    return g


def _settings(cfg: dict[str, Any]) -> Any:
    from riskmodel.config.settings import load_settings

    return load_settings(cfg["config"])


def _geo(cfg: dict[str, Any]) -> Any:
    from riskmodel.geo.geodata import Geography

    if cfg.get("geo") == "synthetic":
        return synthetic_geography(cfg["km"], cfg["length_m"])
    return Geography(_settings(cfg))


def _load_ds(cfg: dict[str, Any]) -> Any:
    import pickle

    with open(Path(cfg["work"]) / "ds.pkl", "rb") as f:
        return pickle.load(f)


def _params(cfg: dict[str, Any], **extra: Any) -> dict[str, Any]:
    p = dict(SMALL_PARAMS) if cfg.get("reduced") else {}
    if cfg.get("train_rounds"):
        p.update(n_estimators=int(cfg["train_rounds"]), early_stopping_rounds=10_000)
    if cfg.get("n_bags"):
        p.update(n_bags=int(cfg["n_bags"]))
    p.update(extra)
    return p


def _score_day(cfg: dict[str, Any]) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(cfg["end"]) + dt.timedelta(days=1)).isoformat()


def _stage(name: str, cfg: dict[str, Any]) -> dict[str, Any]:  # noqa: C901 - one branch per stage
    """Run one stage in this (fresh) process; return its measurements."""
    work = Path(cfg["work"])
    out: dict[str, Any] = {}
    first = cfg.get("run", 0) == 0

    def measured(fn: Any) -> Any:
        reset = _rss_reset()
        c0, t0 = _cpu_s(), time.perf_counter()
        res = fn()
        out.update(
            seconds=time.perf_counter() - t0,
            cpu_seconds=_cpu_s() - c0,
            peak_mb=_peak_mb(),
            peak_is_stage_only=reset,
        )
        return res

    if name == "segments":
        from riskmodel.geo.segments import make_segments

        geo = _geo(cfg)
        seg = measured(lambda: make_segments(geo.border, cfg["length_m"], areas=geo.areas))
        out["segments"] = len(seg)
    elif name == "simulate":
        from riskmodel.sim.scenario import simulate, write_scenario
        from riskmodel.sim.world import ScenarioParams

        geo = _geo(cfg)
        p = ScenarioParams(seed=0, start=cfg["start"], end=cfg["end"])
        if cfg.get("geo") == "synthetic":
            p.area_shares = {}
        sc = measured(lambda: simulate(geo, p, cfg["shifts"], "Europe/Ljubljana"))
        out.update(events=len(sc.events), effort_rows=len(sc.effort))
        if first:
            t0 = time.perf_counter()
            if cfg.get("no_truth"):  # EU size: the 39 M-row truth table is not needed
                sc.truth = sc.truth.iloc[:0]
            write_scenario(sc, work / "scenario")
            out["write_seconds"] = time.perf_counter() - t0
    elif name == "read":
        import pickle

        from riskmodel.model.pipeline import prepare_dataset, read_dataset

        s = _settings(cfg)
        sc = work / "scenario"
        if cfg.get("geo") == "synthetic":  # no files for the synthetic layers: frames
            import pandas as pd

            geo = _geo(cfg)

            def run() -> Any:
                ev = pd.read_csv(sc / "events.csv")
                ef = pd.read_csv(sc / "effort.csv")
                return prepare_dataset(s, ev, ef, geo=geo, end=_score_day(cfg))

            ds = measured(run)
        else:
            ds = measured(
                lambda: read_dataset(
                    s,
                    sc / "events.csv",
                    sc / "effort.csv",
                    end=_score_day(cfg),
                    quarantine_dir=work / "quarantine",
                )
            )
        out.update(
            rows=int(ds.panel.counts.size),
            segments=ds.n_segments,
            windows=len(ds.windows),
            events_on_border=int(ds.panel.counts.sum()),
        )
        if first:
            with open(work / "ds.pkl", "wb") as f:
                pickle.dump(ds, f, protocol=5)
    elif name == "features":
        ds = _load_ds(cfg)
        if cfg["engine"] == "full":
            X = measured(ds.features)
            out.update(rows=len(X), columns=X.shape[1] - 2, frame_mb=X.memory_usage().sum() / 2**20)
        else:
            from riskmodel.features import FeatureContext
            from riskmodel.model import sample as sample

            zk = cfg["zero_keeps"][0]
            until = ds.window_of_date(cfg["end"], side="right")

            def run() -> Any:
                t0 = time.perf_counter()
                ctx = FeatureContext(ds.panel, ds.static, ds.spec)
                t1 = time.perf_counter()
                smp = sample.training_sample(
                    ctx, until, zero_keep=zk, valid_keep=cfg.get("valid_keep", 1.0)
                )
                out.update(
                    context_seconds=t1 - t0,
                    sample_seconds=smp.seconds,
                    context_mb=ctx.nbytes / 2**20,
                )
                return smp

            smp = measured(run)
            pl = smp.train.plan
            out.update(
                rows=int(ds.panel.counts[: pl.until].size),
                rows_in_training_range=int((pl.until - pl.start) * ds.n_segments),
                kept_train=len(smp.train.y),
                kept_valid=len(smp.valid.y),
                sample_mb=smp.nbytes / 2**20,
                columns=len(smp.train.columns),
                zero_keep=zk,
                full_frame_mb_estimate=ds.panel.counts.size
                * (len(smp.train.columns) + 2)
                * 4
                / 2**20,
                note="context + one training draw + validation rows",
            )
    elif name == "features_chunked":
        from riskmodel.features import FeatureContext
        from riskmodel.model import sample as sample

        ds = _load_ds(cfg)
        until = ds.window_of_date(cfg["end"], side="right")

        def run() -> Any:
            ctx = FeatureContext(ds.panel, ds.static, ds.spec)
            return sample.training_sample(ctx, until)

        smp = measured(run)
        out.update(kept_rows=len(smp.train.y) + len(smp.valid.y), sample_mb=smp.nbytes / 2**20)
    elif name == "train":
        ds = _load_ds(cfg)
        zk = cfg.get("zero_keep")
        if cfg["engine"] == "full":
            from riskmodel.api import train_bundle

            ds.features()  # features are their own stage
            s = _settings(cfg)
            path, man = measured(
                lambda: train_bundle(
                    ds, cfg["end"], settings=s, params=_params(cfg), root=s.models_root
                )
            )
            fit = man["fit"]
            if first:
                (work / "bundle.txt").write_text(str(path))
            else:
                shutil.rmtree(path, ignore_errors=True)
        else:
            from riskmodel.features import FeatureContext
            from riskmodel.model.engine import ChunkedEngine, fit_chunked

            until = ds.window_of_date(cfg["end"], side="right")
            ctx = FeatureContext(ds.panel, ds.static, ds.spec)  # setup (own stage)
            model, _ = measured(
                lambda: fit_chunked(
                    ctx,
                    until,
                    params=_params(cfg, zero_keep=zk),
                    valid_keep=cfg.get("valid_keep", 1.0),
                )
            )
            del ctx
            fit = model.fit_info_
            out["feature_seconds"] = fit.get("feature_seconds")
            out["note"] = "fit_chunked: sample rows (features of kept rows) + XGBoost, all bags"
            if first and zk == cfg["zero_keeps"][0] and cfg.get("geo") != "synthetic":
                # Write the bundle of this model for the score stage (api.train_bundle adds the
                # validation metrics against the baselines; no second training).
                from riskmodel.api import train_bundle

                class Fitted(ChunkedEngine):  # serves the model just trained
                    def fit(self, *a: Any, **k: Any) -> Any:
                        return model

                s = _settings(cfg)
                t0 = time.perf_counter()
                path, _ = train_bundle(
                    ds,
                    cfg["end"],
                    settings=s,
                    params=_params(cfg, zero_keep=zk),
                    root=s.models_root,
                    engine=Fitted(),
                )
                out["bundle_seconds"] = time.perf_counter() - t0
                (work / "bundle.txt").write_text(str(path))
        out.update(
            rows_train=fit["rows_train"],
            rows_kept=fit["rows_kept"],
            rows_valid=fit.get("rows_valid"),
            trees=fit["best_iteration"] + 1,
            n_bags=fit.get("n_bags"),
            best_iterations=fit.get("best_iterations"),
            fit_seconds=fit.get("train_seconds"),
            zero_keep=fit.get("zero_keep"),
            valid_deviance=fit.get("valid_poisson_deviance"),
        )
    elif name == "score":
        from riskmodel.api import score_dates, write_score_outputs
        from riskmodel.model.bundle import load_bundle

        ds = _load_ds(cfg)
        s = _settings(cfg)
        bundle = load_bundle(Path((work / "bundle.txt").read_text()), root=s.models_root)
        day = _score_day(cfg)
        scored = measured(lambda: score_dates(s, bundle, ds, day))
        score_s, score_peak = out["seconds"], out["peak_mb"]
        t0 = time.perf_counter()
        files = write_score_outputs(s, scored, ds, bundle, work / "maps", date=day)
        out.update(
            write_seconds=time.perf_counter() - t0,
            files=len(files),
            rows=len(scored),
            seconds=score_s,
            peak_mb=score_peak,
        )
        if first:
            scored.drop(columns=["window", "seq"]).to_pickle(work / "scored.pkl")
    elif name == "plan":
        import pandas as pd

        from riskmodel.api import PlanConfig, run_plan

        risk = pd.read_pickle(work / "scored.pkl")
        s = _settings(cfg)
        geo = _geo(cfg)
        caps = {"per_shift": 1.0, "max_per_segment_per_7d": 5, "max_per_segment_per_30d": 15}
        run_dir = work / f"plans_{cfg.get('run', 0)}"
        shutil.rmtree(run_dir, ignore_errors=True)
        plans = measured(
            lambda: run_plan(
                risk,
                run_dir,
                run_dir / "audit.jsonl",
                12,
                config=PlanConfig(**caps),
                seed=None,
                segments=geo.segments,
            )
        )
        out.update(plans=len(plans), rows=len(risk))
    elif name == "backtest":
        import datetime as dt

        from riskmodel.evaluation.backtest import run_backtest
        from riskmodel.io.read.truth import read_truth
        from riskmodel.model.engine import ChunkedEngine

        ds = _load_ds(cfg)
        truth = read_truth(work / "scenario" / "truth.parquet")
        days = int(cfg.get("backtest_days", 28))
        b1 = cfg.get("backtest_to", cfg["end"])
        b0 = (
            cfg.get("backtest_from")
            or (dt.date.fromisoformat(b1) - dt.timedelta(days=days - 1)).isoformat()
        )
        step = int(cfg.get("backtest_step", days))
        zk = cfg.get("zero_keep")
        if cfg["engine"] == "full":
            ds.features()
            res = measured(
                lambda: run_backtest(ds, b0, b1, step_days=step, truth=truth, params=_params(cfg))
            )
        else:
            res = measured(
                lambda: run_backtest(
                    ds,
                    b0,
                    b1,
                    step_days=step,
                    truth=truth,
                    params=_params(cfg, zero_keep=zk),
                    engine=ChunkedEngine(valid_keep=cfg.get("valid_keep", 1.0)),
                )
            )
        tab = res.table
        out.update(
            period=[b0, b1],
            origins=len(res.info["origins"]),
            events=res.info["events_in_period"],
            zero_keep=zk,
            hr_10={m: float(tab.loc[m, "hr_10"]) for m in tab.index},
            hr_5={m: float(tab.loc[m, "hr_5"]) for m in tab.index},
            hr_20={m: float(tab.loc[m, "hr_20"]) for m in tab.index},
            baseline_seconds=res.info.get("baseline_seconds"),
            fit_seconds=[o.get("train_seconds") for o in res.info["origins"]],
        )
    else:
        raise SystemExit(f"unknown stage {name}")
    return out


def _stage_main(argv: list[str]) -> None:
    name, cfg_path = argv[0], argv[1]
    cfg = json.loads(Path(cfg_path).read_text())
    res = _stage(name, cfg)
    print("BENCH-RESULT " + json.dumps(res, default=float))


# ============================================================================ runner side
def _score_cli(cfg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """``riskmodel score`` as a user runs it (all outputs); wall time and child peak RSS."""
    work = Path(cfg["work"])
    out_dir = work / f"maps_cli_{cfg.get('run', 0)}"
    shutil.rmtree(out_dir, ignore_errors=True)
    exe = Path(sys.executable).with_name("riskmodel")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "riskmodel"]
    cmd += [
        "--config", cfg["config"], "score",
        "--events", str(work / "scenario" / "events.csv"),
        "--effort", str(work / "scenario" / "effort.csv"),
        "--model", Path((work / "bundle.txt").read_text()).name,
        "--date", _score_day(cfg), "--out", str(out_dir),
    ]  # fmt: skip
    err_path = work / "score_cli.stderr"
    t0 = time.perf_counter()
    with open(err_path, "wb") as err:
        p = subprocess.Popen(cmd, cwd=work, env=_env(cfg), stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(timeout, p.kill) if timeout else None
        if killer:
            killer.start()
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0  # reaped by wait4
        if killer:
            killer.cancel()
    secs = time.perf_counter() - t0
    if timeout and secs >= timeout:
        return {"seconds": float(timeout), "peak_mb": ru.ru_maxrss / 1024.0, "timed_out": True}
    files = sorted(x.name for x in out_dir.iterdir()) if out_dir.is_dir() else []
    if not files:
        raise RuntimeError(f"riskmodel score failed: {err_path.read_text()[-1500:]}")
    return {
        "seconds": secs,
        "cpu_seconds": ru.ru_utime + ru.ru_stime,
        "peak_mb": ru.ru_maxrss / 1024.0,
        "peak_is_stage_only": True,
        "files": len(files),
        "note": "whole command: interpreter start, imports, read+validate events, score, all writers",
    }


def _env(cfg: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    # riskmodel defaults to PASSIVE itself (riskmodel/__init__.py); --omp-active measures the
    # OpenMP default (spin-waiting) explicitly.
    env["OMP_WAIT_POLICY"] = (
        "ACTIVE" if cfg.get("omp_active") else env.get("OMP_WAIT_POLICY", "PASSIVE")
    )
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _run_stage(name: str, cfg: dict[str, Any], log: Any) -> dict[str, Any]:
    cfg_path = Path(cfg["work"]) / f"cfg_{name}.json"
    cfg_path.write_text(json.dumps(cfg))
    load0 = os.getloadavg()[0]
    timeout = cfg.get("stage_timeout", {}).get(name)
    if name == "score_cli":
        res = _score_cli(cfg, timeout)
    else:
        try:
            p = subprocess.run(
                [sys.executable, __file__, "--_stage", name, str(cfg_path)],
                capture_output=True, text=True, env=_env(cfg), cwd=cfg["work"], timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            log(f"  {name}: killed after {timeout} s")
            res = {"seconds": float(timeout), "peak_mb": float("nan"), "timed_out": True}
        else:
            lines = [x for x in p.stdout.splitlines() if x.startswith("BENCH-RESULT ")]
            if p.returncode != 0 or not lines:
                log(p.stderr[-3000:])
                raise RuntimeError(f"stage {name} failed (exit {p.returncode})")
            res = json.loads(lines[-1][len("BENCH-RESULT ") :])
    res["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return res


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in runs]
    peaks = [r["peak_mb"] for r in runs]
    return {
        "runs": len(runs),
        "seconds_median": statistics.median(secs),
        "seconds_min": min(secs),
        "seconds_max": max(secs),
        "cpu_seconds_median": statistics.median(r.get("cpu_seconds", 0.0) for r in runs),
        "peak_mb_median": statistics.median(peaks),
        "peak_mb_max": max(peaks),
        "details": runs,
    }


def _prepare(cfg: dict[str, Any]) -> None:
    work = Path(cfg["work"])
    work.mkdir(parents=True, exist_ok=True)
    lines = [
        f"segment_length_m = {cfg['length_m']}",
        f'shifts = "{cfg["shifts"]}"',
        f'models_root = "{work / "models"}"',
        f'audit_log = "{work / "plans" / "audit.jsonl"}"',
    ]
    Path(cfg["config"]).write_text("\n".join(lines) + "\n")


def _table(stages: dict[str, Any]) -> str:
    head = f"{'stage':<22}{'median s':>10}{'min s':>9}{'max s':>9}{'peak MB':>10}{'runs':>6}  notes"
    rows = [head, "-" * len(head)]
    for name, st in stages.items():
        d = st["details"][0]
        note = ""
        for k in ("segments", "rows", "kept_train", "trees", "files", "events", "plans"):
            if k in d:
                note += f"{k}={d[k]} "
        if d.get("timed_out"):
            note += "TIMED OUT "
        if "hr_10" in d:
            note += f"HR10 model={d['hr_10'].get('model', float('nan')):.3f} "
        if "zero_keep" in d and d["zero_keep"] is not None:
            note += f"zero_keep={d['zero_keep']} "
        rows.append(
            f"{name:<22}{st['seconds_median']:>10.2f}{st['seconds_min']:>9.2f}"
            f"{st['seconds_max']:>9.2f}{st['peak_mb_median']:>10.0f}{st['runs']:>6}  {note.strip()}"
        )
    return "\n".join(rows)


def run_tier(
    tier: str, cfg0: dict[str, Any], repeat: int, log: Any, only: list[str] | None = None
) -> dict[str, Any]:
    """Run every stage of a tier ``repeat`` times (heavy stages of big tiers once unless
    ``--repeat-heavy``); return the result document."""
    cfg = dict(cfg0)
    _prepare(cfg)
    stages: dict[str, Any] = {}
    heavy = set(cfg.get("heavy", [])) if not cfg.get("repeat_heavy") else set()
    for name in cfg["stages"]:
        if only and name not in only:
            continue
        variants = [(name, {})]
        if name in ("train", "backtest") and cfg.get("zero_keeps"):
            variants = [(f"{name}_zk{zk:g}", {"zero_keep": zk}) for zk in cfg["zero_keeps"]]
        for label, extra in variants:
            n = 1 if name in heavy else repeat
            runs = []
            for i in range(n):
                c = {**cfg, **extra, "run": i}
                t0 = time.perf_counter()
                r = _run_stage(name, c, log)
                runs.append(r)
                log(
                    f"  {label:<20} run {i + 1}/{n}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB "
                    f"[{time.perf_counter() - t0:.0f} s wall incl. setup, load {r['loadavg_1m']}]"
                )
            stages[label] = _summary(runs)
    return stages


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import xgboost

    import riskmodel

    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "mem_total_gb": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
            ),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "riskmodel": riskmodel.__version__,
            "xgboost": xgboost.__version__,
            "numpy": np.__version__,
        },
        "omp_wait_policy": "ACTIVE"
        if args.omp_active
        else os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "repeat": args.repeat,
        "reduced": args.reduced,
        "method": "each run a fresh subprocess; setup untimed; peak = ru_maxrss after resetting the "
        "high-water mark post-setup (includes the inputs held by the stage); medians over runs",
    }


def _scaling(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """Features (bounded-memory and, where it fits, the full frame) and training (100 rounds)
    at three segment counts; PNG curve."""
    points = []
    for L in SCALING_SIZES:
        cfg = {
            **TIERS["S"],
            "length_m": L,
            "tier": f"scaling_{int(L)}",
            "work": str(Path(args.workdir) / f"scaling_{int(L)}"),
            "stages": ["simulate", "read", "features", "train"],
            "engine": "chunked",
            "zero_keeps": [0.05],
            "valid_keep": 0.25,
            "train_rounds": 100,
            "n_bags": 1,
            "heavy": ["simulate", "read"],
            "omp_active": args.omp_active,
        }
        cfg["config"] = str(Path(cfg["work"]) / "riskmodel.toml")
        log(f"scaling: {L:g} m segments")
        st = run_tier(cfg["tier"], cfg, args.repeat, log)
        d = st["features"]["details"][0]
        rows = d["rows"]
        pt = {
            "segment_length_m": L,
            "segments": st["read"]["details"][0]["segments"] if "read" in st else None,
            "rows": rows,
            "features_chunked": {
                k: st["features"][k] for k in ("seconds_median", "peak_mb_median")
            },
            "train_100_rounds": {
                k: st["train_zk0.05"][k] for k in ("seconds_median", "peak_mb_median")
            },
            "kept_train": d["kept_train"],
            "kept_valid": d["kept_valid"],
            "stages": st,
        }
        if rows <= args.full_max_rows:
            c2 = {**cfg, "engine": "full", "stages": ["features"]}
            log(f"scaling: full build_features at {rows:,} rows")
            st2 = run_tier(cfg["tier"], c2, args.repeat, log)
            pt["features_full"] = {
                k: st2["features"][k] for k in ("seconds_median", "peak_mb_median")
            }
        points.append(pt)
    _plot_scaling(points, RESULTS / "scaling.png")
    return {"points": points, "png": "scaling.png"}


def _replot() -> None:
    """Redraw scaling.png (with the EU point if measured) and add the extrapolation to
    scaling.json, from the stored results."""
    f = RESULTS / "scaling.json"
    doc = json.loads(f.read_text())
    points = doc["scaling"]["points"]
    eu = _eu_point()
    if eu:
        doc["scaling"]["extrapolation_to_eu_rows"] = {
            "note": "least-squares line through the three measured points, evaluated at the "
            "EU-size row count: an extrapolation, compare with the measured eu point",
            **extrapolate(points, eu["rows"]),
        }
        doc["scaling"]["eu_measured"] = eu
    f.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    _plot_scaling(points, RESULTS / "scaling.png")


def _eu_point() -> dict[str, Any] | None:
    """The measured EU-size point (results/eu.json), in the scaling-point shape."""
    f = RESULTS / "eu.json"
    if not f.is_file():
        return None
    st = json.loads(f.read_text()).get("stages", {})
    if "features" not in st:
        return None
    pt: dict[str, Any] = {
        "rows": st["features"]["details"][0]["rows"],
        "features_chunked": {k: st["features"][k] for k in ("seconds_median", "peak_mb_median")},
    }
    tr = [v for k, v in st.items() if k.startswith("train")]
    if tr:
        pt["train_100_rounds"] = {k: tr[0][k] for k in ("seconds_median", "peak_mb_median")}
    return pt


def extrapolate(points: list[dict[str, Any]], rows: float) -> dict[str, Any]:
    """Least-squares line through the measured scaling points, evaluated at ``rows``
    (an extrapolation, labelled as such in the outputs)."""
    import numpy as np

    out: dict[str, Any] = {"rows": rows}
    for key in ("features_chunked", "features_full", "train_100_rounds"):
        have = [p for p in points if key in p]
        if len(have) < 2:
            continue
        x = np.array([p["rows"] for p in have], float)
        res = {}
        for m in ("seconds_median", "peak_mb_median"):
            y = np.array([p[key][m] for p in have], float)
            slope, icpt = np.polyfit(x, y, 1)
            res[m] = float(icpt + slope * rows)
            res[m.replace("_median", "_per_million_rows")] = float(slope * 1e6)
        out[key] = res
    return out


def _plot_scaling(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    eu = _eu_point()
    rows = np.array([p["rows"] for p in points]) / 1e6
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    series = [
        ("features_chunked", "features (features.engine, model.sample)", "tab:blue"),
        ("features_full", "features (build_features, full frame)", "tab:orange"),
        ("train_100_rounds", "training (1 booster x 100 rounds, sample)", "tab:green"),
    ]
    x_end = (eu["rows"] / 1e6) if eu else rows.max()
    ext = extrapolate(points, x_end * 1e6)
    for key, label, color in series:
        have = [i for i, p in enumerate(points) if key in p]
        if not have:
            continue
        x = rows[have]
        t = np.array([points[i][key]["seconds_median"] for i in have])
        m = np.array([points[i][key]["peak_mb_median"] for i in have]) / 1024
        a.plot(x, t, "o-", color=color, label=label)
        b.plot(x, m, "o-", color=color, label=label)
        if eu and key in ext:
            e = ext[key]
            a.plot([x[-1], x_end], [t[-1], e["seconds_median"]], "--", color=color, alpha=0.6)
            b.plot(
                [x[-1], x_end], [m[-1], e["peak_mb_median"] / 1024], "--", color=color, alpha=0.6
            )
        if eu and key in eu:
            a.plot(x_end, eu[key]["seconds_median"], "s", color=color, mfc="none", ms=9)
            b.plot(x_end, eu[key]["peak_mb_median"] / 1024, "s", color=color, mfc="none", ms=9)
    if eu:
        b.axhline(23.5, color="grey", lw=0.8, ls=":")
        b.text(0.5, 23.9, "RAM of this machine", fontsize=7, color="grey")
        a.plot([], [], "k--", alpha=0.6, label="linear extrapolation of the 3 points")
        a.plot([], [], "ks", mfc="none", label="measured: EU-size synthetic border")
    for ax, yl in ((a, "seconds (median)"), (b, "peak RSS (GB)")):
        ax.set_xlabel("rows = segments x shift windows (millions)")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    a.legend(fontsize=7)
    fig.suptitle(
        "riskmodel scaling, 3 shifts x 3 years: 640 / 1,280 / 2,561 segments (SI-HR)"
        + (" and 11,993 (EU-size, synthetic)" if eu else "")
        + ", 2 cores",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_stage"]:
        _stage_main(argv[1:])
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tier", choices=["S", "M", "scaling", "eu"])
    ap.add_argument(
        "--replot", action="store_true", help="redraw scaling.png from the stored results"
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per stage (median)")
    ap.add_argument("--reduced", action="store_true", help="CI: 1 year, small model, 1 run")
    ap.add_argument("--repeat-heavy", action="store_true", help="repeat heavy stages of M/eu too")
    ap.add_argument("--stages", default="", help="comma-separated subset of stages")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument(
        "--omp-active", action="store_true", help="OMP_WAIT_POLICY=ACTIVE (OpenMP's spin-wait)"
    )
    ap.add_argument(
        "--full-max-rows", type=int, default=4_500_000, help="scaling: largest full build"
    )
    ap.add_argument("--out", default=None, help="result JSON (default bench/results/<tier>.json)")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="with --stages: update only these stages in the existing result JSON",
    )
    args = ap.parse_args(argv)
    if args.replot:
        _replot()
        return
    if not args.tier:
        ap.error("--tier is required")
    import tempfile

    tmp = None
    if args.workdir is None:
        tmp = tempfile.mkdtemp(prefix="rm_bench_")
        args.workdir = tmp
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    doc: dict[str, Any] = {"tier": args.tier, **_meta(args)}
    if args.tier == "scaling":
        doc["scaling"] = _scaling(args, log)
        name = "scaling"
    else:
        cfg = {**TIERS[args.tier], "tier": args.tier, "omp_active": args.omp_active}
        if args.reduced:
            if args.tier != "S":
                raise SystemExit("--reduced is for tier S")
            args.repeat = 1
            cfg.update(start="2025-01-01", reduced=True, backtest_days=14)
            cfg["stages"] = [s for s in cfg["stages"] if s != "features_chunked"]
        cfg["repeat_heavy"] = args.repeat_heavy
        cfg["work"] = str(Path(args.workdir) / args.tier)
        cfg["config"] = str(Path(cfg["work"]) / "riskmodel.toml")
        doc["config"] = {k: v for k, v in cfg.items() if k not in ("work", "config")}
        only = [s for s in args.stages.split(",") if s] or None
        doc["stages"] = run_tier(args.tier, cfg, args.repeat, log, only)
        name = args.tier + ("_reduced" if args.reduced else "")
        print(_table(doc["stages"]))
    doc["total_seconds"] = time.perf_counter() - t_all
    out = Path(args.out) if args.out else RESULTS / f"{name}.json"
    if args.merge and out.is_file() and "stages" in doc:
        old = json.loads(out.read_text())
        stamp = {"created": doc["created"], "loadavg_at_start": doc["machine"]["loadavg_at_start"]}
        for v in doc["stages"].values():
            v["rerun"] = stamp
        old.setdefault("stages", {}).update(doc["stages"])
        old.setdefault("reruns", []).append({**stamp, "stages": list(doc["stages"])})
        old["config"] = doc.get("config", old.get("config"))
        doc = old
        print(_table(doc["stages"]))
    out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    print(f"-> {out} ({doc['total_seconds']:.0f} s)")
    if tmp and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
