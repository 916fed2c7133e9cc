import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from riskmodel.errors import BundleError
from riskmodel.model.bundle import list_bundles, load_bundle, verify_bundle
from riskmodel.model.estimator import RiskRegressor
from riskmodel.model.pipeline import fit_model, predict_windows

FAST = {"n_estimators": 60, "learning_rate": 0.2}


def test_sklearn_contract():
    m = RiskRegressor(max_depth=3)
    assert clone(m).get_params()["max_depth"] == 3
    with pytest.raises(NotFittedError):
        m.predict(np.zeros((2, 3)))


def test_estimator_owns_the_draw_and_the_neutral_prediction(dataset):
    """keep_rows of any slice equals the same rows of the whole draw (what lets engines build
    samples block by block); fit validates and returns self; predict_neutral zeroes the
    in-window effort."""
    from riskmodel.model.estimator import EXPOSURE_FEATURE

    y = np.random.default_rng(1).poisson(0.05, 5000)
    m = RiskRegressor(zero_keep=0.1, random_state=4)
    whole = [m.keep_rows(y, b) for b in (0, 1)]
    assert not np.array_equal(whole[0], whole[1]) and (whole[0][y > 0]).all()
    for b in (0, 1):
        part = m.keep_rows(y[1234:3000], b, offset=1234, total=len(y))
        np.testing.assert_array_equal(part, whole[b][1234:3000])
    np.testing.assert_allclose(m.row_weights(np.array([0, 2])), [10.0, 1.0])
    with pytest.raises(ValueError, match="zero_keep"):
        RiskRegressor(zero_keep=0.0).fit(np.zeros((4, 2)), np.zeros(4))
    w = dataset.window_of_date("2024-11-01")
    model, cols = fit_model(dataset, w, params=FAST)
    X = dataset.features().iloc[w * dataset.n_segments : (w + 3) * dataset.n_segments][cols]
    X0 = X.copy()
    X0[EXPOSURE_FEATURE] = 0.0
    np.testing.assert_array_equal(model.predict_neutral(X), model.predict(X0))
    np.testing.assert_array_equal(model.predict_neutral(X.to_numpy()), model.predict(X0))
    assert X[EXPOSURE_FEATURE].abs().sum() > 0  # the input is left as it was


def test_deterministic_and_exposure_monotone(dataset):
    w = dataset.window_of_date("2024-11-01")
    m1, cols = fit_model(dataset, w, params=FAST)
    m2, _ = fit_model(dataset, w, params=FAST)
    p1 = predict_windows(dataset, m1, cols, w, w + 9)
    p2 = predict_windows(dataset, m2, cols, w, w + 9)
    np.testing.assert_array_equal(p1, p2)
    neutral = predict_windows(dataset, m1, cols, w, w + 9, effort_neutral=True)
    assert (p1 >= neutral - 1e-9).all()  # more patrol never lowers expected recorded events
    assert np.isfinite(p1).all() and (p1 > 0).all()


@pytest.fixture(scope="module")
def bundle_path(dataset, tmp_path_factory, settings):
    from riskmodel.api import train_bundle

    root = tmp_path_factory.mktemp("models")
    path, man = train_bundle(dataset, "2024-11-30", settings=settings, params=FAST, root=root)
    return path


def test_bundle_roundtrip(bundle_path, dataset):
    b = load_bundle(bundle_path, root=bundle_path.parent)
    man = b.manifest
    assert set(man["files"]) >= {"booster.ubj", "preprocess.joblib", "MODEL_CARD.md"}
    assert man["feature_spec_sha256"] == dataset.spec.sha256
    assert "hr_10" in man["metrics"]["table"]["model"]
    assert (bundle_path / "MODEL_CARD.md").read_text().startswith("# Model card")
    rows = list_bundles(bundle_path.parent)
    assert rows[0]["status"] == "verified"


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_tampered_joblib_refused_without_executing(bundle_path, tmp_path):
    import shutil

    root = tmp_path / "models"
    bad = root / bundle_path.name
    shutil.copytree(bundle_path, bad)
    marker = tmp_path / "PWNED"
    with open(bad / "preprocess.joblib", "wb") as fh:
        pickle.dump(_Evil(str(marker)), fh)
    with pytest.raises(BundleError, match="changed after training"):
        load_bundle(bad, root=root)
    assert not marker.exists()
    rows = list_bundles(root)
    assert rows[0]["status"].startswith("REFUSED")


def test_outside_root_and_signature(bundle_path, tmp_path, monkeypatch):
    with pytest.raises(BundleError, match="outside the models root"):
        verify_bundle(bundle_path, root=tmp_path)
    verify_bundle(bundle_path, root=tmp_path, trust=True)
    monkeypatch.setenv("RISKMODEL_SIGNING_KEY", "k1")
    with pytest.raises(BundleError, match="not signed"):
        verify_bundle(bundle_path, root=bundle_path.parent)


def test_signed_bundle(dataset, settings, tmp_path, monkeypatch):
    from riskmodel.api import train_bundle

    monkeypatch.setenv("RISKMODEL_SIGNING_KEY", "k1")
    path, _ = train_bundle(
        dataset, "2024-10-31", settings=settings, params={"n_estimators": 5}, root=tmp_path
    )
    verify_bundle(path, root=tmp_path)
    monkeypatch.setenv("RISKMODEL_SIGNING_KEY", "other")
    with pytest.raises(BundleError, match="signature"):
        verify_bundle(path, root=tmp_path)
    man = Path(path / "manifest.json")
    assert man.is_file()
