"""What keeps ``riskmodel score``/``daily`` fast (bench/bench_cli.py measures the seconds):

- scoring loads no training stack: the modules of the score and daily paths import neither
  XGBoost, scikit-learn, any of scipy (the feature engine's sparse neighbourhoods are
  numpy: ``riskmodel.features._sparse``), matplotlib nor holidays (its calendars
  are cached in the workspace)
  (``test_score_path_imports_no_training_stack``);
- a bundle's model is evaluated in numpy and predicts, explains (TreeSHAP) and bounds exactly
  what the trained XGBoost model does (``test_loaded_model_matches_the_trained_one``);
- the PNG map drawn in the background child is byte-identical to one drawn in line, its
  errors reach the parent as the same one-line error, and a child without a job or with
  fork off leaves nothing behind (``test_background_png_child``); with other threads
  running nothing is forked (``test_background_runs_in_line_while_other_threads_run``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from riskmodel.io.write.background import background

HEAVY = (
    "xgboost",
    "sklearn",
    "scipy",
    "matplotlib",
    "holidays",
)


def test_score_path_imports_no_training_stack():
    code = (
        "import sys\n"
        "import riskmodel.cli, riskmodel.api\n"
        "import riskmodel.api._score, riskmodel.api._daily, riskmodel.api._inputs\n"
        "import riskmodel.api._model, riskmodel.model.bundle, riskmodel.scoring.score\n"
        "import riskmodel.scoring.adapt, riskmodel.io.write.png, riskmodel.io.write.gpkg\n"
        "import riskmodel.io.write.geojson, riskmodel.io.write.html, riskmodel.io.read.border\n"
        "import riskmodel.features, riskmodel.model.pipeline, riskmodel.model.counts\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out


def test_loaded_model_matches_the_trained_one(dataset, tmp_path):
    from riskmodel.features import build_features
    from riskmodel.model.bundle import load_bundle, save_bundle
    from riskmodel.model.engine import InMemoryEngine
    from riskmodel.model.fitted import ScoringModel

    until = dataset.window_of_date("2024-12-21")
    model = InMemoryEngine().fit(dataset, until, {"n_estimators": 40, "n_bags": 2})
    path = save_bundle(
        model, {"feature_columns": list(model.feature_names_in_)}, {}, "#", tmp_path, "m1"
    )
    loaded = load_bundle(path, root=tmp_path, trust=True).model
    assert isinstance(loaded, ScoringModel) and len(loaded.ensembles_) == 2
    cols = list(model.feature_names_in_)
    X = build_features(dataset.panel, dataset.static, dataset.spec, np.arange(until, until + 9))
    X = X[cols]
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=2e-6)
    np.testing.assert_allclose(loaded.predict_neutral(X), model.predict_neutral(X), rtol=2e-6)
    np.testing.assert_allclose(
        loaded.predict_contributions(X).to_numpy(),
        model.predict_contributions(X).to_numpy(),
        atol=2e-4,
    )
    mu = model.predict(X)
    for a, b in zip(loaded.predict_interval(mu), model.predict_interval(mu), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.get_params() == model.get_params()
    gain = loaded.total_gain()
    assert list(gain.index) == cols and (gain >= 0).all() and gain.sum() > 0


def test_count_quantiles_equal_scipy():
    from scipy import stats

    from riskmodel.model.counts import count_quantile

    rng = np.random.default_rng(3)
    mu = np.concatenate([rng.gamma(0.5, 0.3, 3000), rng.uniform(0, 30, 1000), [0.0, 1e-9]])
    m = np.maximum(mu, 1e-12)
    for q in (0.1, 0.9):
        np.testing.assert_array_equal(count_quantile(mu, 0.0, q), stats.poisson.ppf(q, m))
        for a in (0.05, 0.7, 4.0):
            n = 1 / a
            ref = stats.nbinom.ppf(q, n, n / (n + m))
            np.testing.assert_array_equal(count_quantile(mu, a, q), ref)


# The background checks run in a fresh interpreter: the child is forked only when no other
# thread runs, and earlier tests of a session may leave threads behind (Dask, pools).
_BG_SCRIPT = r"""
import json, os, pickle, sys
from pathlib import Path
from riskmodel.errors import OutputError
from riskmodel.io.write.background import Background, background, submit
from riskmodel.io.write.png import warm_up, write_png_map

tmp = Path(sys.argv[1])
day = pickle.loads((tmp / "day.pkl").read_bytes())
title = "Border risk 2026-12-01"
out = {}
inline = write_png_map(tmp / "inline.png", title=title, **day)
with background(warm=warm_up) as bg:
    out["forked"] = bg.pid is not None
    job = bg.submit(write_png_map, tmp / "child.png", title=title, **day)
    res = job.result()
    out["reaped"] = bg.pid is None
out["same_bytes"] = res.read_bytes() == inline.read_bytes()
bad = dict(day, risk={k: v.drop(columns="risk_class") for k, v in day["risk"].items()})
try:
    write_png_map(tmp / "a.png", title=title, **bad)
except OutputError as exc:
    out["inline_error"] = str(exc).replace("a.png", "X.png")
with background() as bg:
    job = bg.submit(write_png_map, tmp / "b.png", title=title, **bad)
    try:
        job.result()
    except OutputError as exc:
        out["child_error"] = str(exc).replace("b.png", "X.png")
out["no_partial_file"] = not (tmp / "b.png").exists()
with background() as bg:
    pid = bg.pid
try:
    os.waitpid(pid, os.WNOHANG)
    out["idle_child_reaped"] = False
except ChildProcessError:
    out["idle_child_reaped"] = True
os.environ["RISKMODEL_NO_FORK"] = "1"
b = Background()
out["no_fork_inline"] = b.pid is None and b.submit(sum, [1, 2]).result() == 3
out["no_bg_inline"] = submit(None, max, 4, 5).result() == 5
with background(enabled=False) as none:
    out["disabled"] = none is None
print(json.dumps(out))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the child is forked on Linux only"
)
def test_background_png_child(crowded_day, tmp_path):
    import json
    import pickle

    (tmp_path / "day.pkl").write_bytes(pickle.dumps(crowded_day))
    env = {**os.environ}
    env.pop("RISKMODEL_NO_FORK", None)
    res = subprocess.run(
        [sys.executable, "-c", _BG_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # the PNG drawn in the child is the PNG drawn in line, and the child is reaped
    assert out["forked"] and out["reaped"] and out["same_bytes"]
    # an error in the child reaches the parent as the same one-line error; nothing half-written
    assert out["child_error"] == out["inline_error"] and "risk_class" in out["child_error"]
    assert out["no_partial_file"]
    # a child without a job ends with the block; fork can be turned off or left out
    assert out["idle_child_reaped"] and out["no_fork_inline"] and out["no_bg_inline"]
    assert out["disabled"]


def test_background_runs_in_line_while_other_threads_run(tmp_path):
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with background() as bg:
            assert bg is not None and bg.pid is None  # fork() with threads: never
            assert bg.submit(len, "abc").result() == 3
    finally:
        stop.set()
        t.join()
