"""Bounded-memory and Dask paths (riskmodel.model.scale): identical features, equivalent models.

Skipped when Dask is not installed (``pip install 'riskmodel[dask]'``). Runs on an in-process
``LocalCluster(processes=False, n_workers=1, threads_per_worker=2)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")

from riskmodel.features import FeatureContext, build_features  # noqa: E402
from riskmodel.model import pipeline as pipeline  # noqa: E402
from riskmodel.model import scale as scale  # noqa: E402

# The backtest comparison: 7 months, 3 origins, on the small synthetic world. Measured over
# random_state 0-4 (2026-11-23): single-machine HR@10 0.190-0.204, Dask-trained 0.169-0.199
# (seeds 0-3; different row subsamples): the engines agree within their seed-to-seed spread,
# whose range is ~0.03. The tolerance is that range plus a little.
BT_FROM, BT_TO, BT_STEP = "2024-06-01", "2024-12-31", 71
HR_TOL = 0.035
FAST = {"n_jobs": 1}  # single-threaded XGBoost: immune to OpenMP spin-waits on busy machines


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        processes=False,
        n_workers=1,
        threads_per_worker=2,
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_distributed_features_equal_single_machine(dataset, client):
    """Features built as Dask tasks per (time block, segment block) equal build_features."""
    dfe = scale.DaskFeatures(client, dataset.panel, dataset.static, dataset.spec)
    got = dfe.frame(block_rows=4_000, seg_blocks=3)  # ~17 time blocks x 3 segment blocks
    pd.testing.assert_frame_equal(got, dataset.features(), check_exact=True)


def test_sample_independent_of_blocking(dataset):
    """The kept rows depend on (seed, bag, window) only, not on the blocks."""
    until = dataset.window_of_date("2024-09-01")

    def rows(plan):
        out = set()
        for tb, sb, keep in plan.blocks:
            t, s = np.nonzero(keep)
            out |= set(zip(tb[t].tolist(), sb[s].tolist(), strict=True))
        return out

    for kind in ("train", "valid"):
        kw = {"share": 0.1, "seed": 3}
        a = scale.plan_sample(dataset.panel, until, kind, block_rows=2_000, **kw)
        b = scale.plan_sample(dataset.panel, until, kind, block_rows=50_000, seg_blocks=4, **kw)
        assert rows(a) == rows(b)
    a0 = scale.plan_sample(dataset.panel, until, "train", share=0.1, seed=3)
    a1 = scale.plan_sample(dataset.panel, until, "train", share=0.1, seed=3, bag=1)
    tr = rows(a0)
    assert rows(a1) != tr  # another bag, another draw
    y = dataset.panel.counts[a.start : a.cut]
    assert {(a.start + w, s) for w, s in zip(*np.nonzero(y > 0), strict=True)} <= tr
    assert 0.07 < (len(tr) - (y > 0).sum()) / (y == 0).sum() < 0.13
    ctx = FeatureContext(dataset.panel, dataset.static, dataset.spec)
    s = scale.training_sample(ctx, until, zero_keep=0.1, seed=3, block_rows=3_000)
    assert len(s.train.y) == len(tr) and len(s.valid.y) == (
        dataset.panel.counts[a.cut : until].size
    )
    empty_w = np.unique(s.train.weight[s.train.y == 0])
    np.testing.assert_allclose(empty_w, [10.0])
    assert set(np.unique(s.valid.weight)) == {np.float32(1.0)}


def test_dask_backtest_matches_single_machine(dataset, client):
    """HR@10 of the Dask-trained model is within HR_TOL of the single-machine model."""
    from riskmodel.evaluation.backtest import run_backtest

    kw = {"step_days": BT_STEP, "baselines": ["historical"], "params": FAST}
    single = run_backtest(dataset, BT_FROM, BT_TO, **kw)
    dist = scale.run_backtest_scaled(dataset, BT_FROM, BT_TO, client=client, **kw)
    hr1, hrd = single.table.loc["model", "hr_10"], dist.table.loc["model", "hr_10"]
    assert abs(hrd - hr1) <= HR_TOL, (hrd, hr1)
    assert all(o["engine"] == "dask" for o in dist.info["origins"])
    # the patch is undone
    import riskmodel.evaluation.backtest as bt

    assert pipeline.fit_model.__module__ == "riskmodel.model.pipeline"
    assert bt.fit_model is pipeline.fit_model


def test_dask_model_equals_chunked_and_loads_exactly(dataset, client, tmp_path):
    """Same training rows -> the Dask model is the single-machine chunked model; its booster
    is a plain xgboost.Booster, the bundle loads and predicts bit for bit like the in-memory
    model, and scoring works unchanged."""
    import xgboost as xgb

    from riskmodel.model.bundle import load_bundle, save_bundle
    from riskmodel.scoring.score import score_windows

    until = dataset.window_of_date("2024-12-21")
    params = {"n_estimators": 60, **FAST}
    dfe = scale.DaskFeatures(client, dataset.panel, dataset.static, dataset.spec)
    model, cols = dfe.fit(until, params=params, seg_blocks=3)
    ctx = FeatureContext(dataset.panel, dataset.static, dataset.spec)
    local, cols_l = scale.fit_chunked(ctx, until, params=params)
    assert cols == cols_l and isinstance(model.booster_, xgb.Booster)
    tg = np.arange(until, until + 6)
    X = build_features(dataset.panel, dataset.static, dataset.spec, tg)[cols]
    p_d, p_l = model.predict(X), local.predict(X)
    assert model.fit_info_["rows_kept"] == local.fit_info_["rows_kept"]
    np.testing.assert_allclose(p_d, p_l, rtol=1e-6)  # identical rows, order and seeds
    path = save_bundle(
        model, {"feature_columns": cols}, {"fit": model.fit_info_}, "#", tmp_path, "m1"
    )
    bundle = load_bundle(path, root=tmp_path)
    np.testing.assert_array_equal(bundle.model.predict(X), p_d)
    scored = score_windows(bundle, dataset, tg, reasons=False)
    np.testing.assert_array_equal(scored["expected"].to_numpy(), p_d.astype(float))


def test_cli_scheduler_flag_and_no_dask_without_it(scenario, geo, tmp_path):
    """`train` without --scheduler imports no Dask module; with --scheduler local it trains on
    the in-process cluster and records the engine in the bundle."""
    from riskmodel.sim.world import write_scenario

    write_scenario(scenario, tmp_path / "sc")
    border = tmp_path / "border.geojson"
    geo.border.to_crs(4326).to_file(border, driver="GeoJSON")
    models = tmp_path / "models"
    common = [
        "train",
        "--events",
        str(tmp_path / "sc" / "events.csv"),
        "--effort",
        str(tmp_path / "sc" / "effort.csv"),
        "--border",
        str(border),
        "--until",
        "2024-05-31",
        "--models-root",
        str(models),
        "--param",
        "n_estimators=15",
        "--param",
        "n_jobs=1",
    ]
    code = textwrap.dedent(
        f"""
        import json, sys
        from riskmodel.cli import main

        def dask_mods():
            return sorted(m for m in sys.modules
                          if m.split(".")[0] in ("dask", "distributed") or m == "xgboost.dask")

        main({common!r}, standalone_mode=False)
        before = dask_mods()
        main({common + ["--scheduler", "local"]!r}, standalone_mode=False)
        print(json.dumps({{"before": before, "after": len(dask_mods())}}))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["before"] == [], res
    assert res["after"] > 0
    engines = sorted(
        json.loads((p / "manifest.json").read_text())["fit"].get("engine", "xgboost")
        for p in Path(models).iterdir()
        if (p / "manifest.json").is_file()
    )
    assert engines == ["dask", "xgboost"], engines
