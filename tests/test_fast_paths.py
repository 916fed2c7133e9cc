"""What keeps ``riskmodel score``/``daily`` fast (bench/bench_cli.py measures the seconds):

- scoring loads no training stack: the modules of the score and daily paths import neither
  XGBoost, scikit-learn, scipy.stats/signal/spatial nor matplotlib
  (``test_score_path_imports_no_training_stack``);
- a bundle's model is evaluated in numpy and predicts, explains (TreeSHAP) and bounds exactly
  what the trained XGBoost model does (``test_loaded_model_matches_the_trained_one``);
- the PNG map drawn in the background child is byte-identical to one drawn in line, its
  errors reach the parent as the same one-line error, and a child without a job or with
  fork off leaves nothing behind (``test_background_png_*``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from riskmodel.errors import OutputError
from riskmodel.io.write.background import Background, background, submit

HEAVY = ("xgboost", "sklearn", "scipy.stats", "scipy.signal", "scipy.spatial", "matplotlib")


def test_score_path_imports_no_training_stack():
    code = (
        "import sys\n"
        "import riskmodel.cli, riskmodel.api\n"
        "import riskmodel.api._score, riskmodel.api._daily, riskmodel.api._inputs\n"
        "import riskmodel.api._model, riskmodel.model.bundle, riskmodel.scoring.score\n"
        "import riskmodel.scoring.adapt, riskmodel.io.write.png, riskmodel.io.write.gpkg\n"
        "import riskmodel.io.write.geojson, riskmodel.io.write.html, riskmodel.io.read.border\n"
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


def _png(path, day, **kw):
    from riskmodel.io.write.png import write_png_map

    return write_png_map(path, title="Border risk 2026-12-01", **day, **kw)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_background_png_is_the_inline_png(crowded_day, tmp_path):
    from riskmodel.io.write.png import warm_up, write_png_map

    inline = _png(tmp_path / "inline.png", crowded_day)
    with background(warm=warm_up) as bg:
        assert bg is not None and bg.pid is not None  # a child really runs it
        job = bg.submit(
            write_png_map, tmp_path / "child.png", title="Border risk 2026-12-01", **crowded_day
        )
        assert bg.pid is not None
        out = job.result()
        assert bg.pid is None  # reaped
    assert out == tmp_path / "child.png"
    assert out.read_bytes() == inline.read_bytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_background_png_errors_reach_the_parent(crowded_day, tmp_path):
    from riskmodel.io.write.png import write_png_map

    day = dict(crowded_day)
    day["risk"] = {k: v.drop(columns="risk_class") for k, v in day["risk"].items()}
    with pytest.raises(OutputError) as inline:
        _png(tmp_path / "a.png", day)
    with background() as bg:
        job = bg.submit(write_png_map, tmp_path / "b.png", title="Border risk 2026-12-01", **day)
        with pytest.raises(type(inline.value)) as child:
            job.result()
    assert str(child.value) == str(inline.value).replace("a.png", "b.png")
    assert not (tmp_path / "b.png").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_background_child_without_job_ends_and_fork_can_be_turned_off(monkeypatch, tmp_path):
    with background() as bg:
        pid = bg.pid
        assert pid is not None
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(pid, os.WNOHANG)
    monkeypatch.setenv("RISKMODEL_NO_FORK", "1")
    bg = Background()
    assert bg.pid is None
    assert bg.submit(sum, [1, 2]).result() == 3  # in line
    assert submit(None, max, 4, 5).result() == 5
    with background(enabled=False) as none:
        assert none is None
