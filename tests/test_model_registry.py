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


KEY = "registry-test-key"


@pytest.fixture(scope="module")
def bundle_path(dataset, tmp_path_factory, settings):
    from riskmodel.api import train_bundle

    root = tmp_path_factory.mktemp("models")
    s = settings.with_flags(signing_key=KEY)
    path, man = train_bundle(dataset, "2024-11-30", settings=s, params=FAST, root=root)
    return path


def test_bundle_roundtrip(bundle_path, dataset):
    """Format 2: no pickle, plain JSON preprocessing, signed by the key's fingerprint, the
    model rebuilt from the checked bytes predicts like the trained one."""
    from riskmodel.model.bundle import key_fingerprint

    b = load_bundle(bundle_path, root=bundle_path.parent, key=KEY.encode())
    man = b.manifest
    assert set(man["files"]) == {"booster.ubj", "preprocess.json", "MODEL_CARD.md"}
    assert not list(bundle_path.glob("*.joblib")) and man["format"] == 2
    assert man["signed_by"] == key_fingerprint(KEY.encode()) and KEY not in str(man)
    assert man["feature_spec_sha256"] == dataset.spec.sha256
    assert "hr_10" in man["metrics"]["table"]["model"]
    assert (bundle_path / "MODEL_CARD.md").read_text().startswith("# Model card")
    assert b.status == "verified" and not b.trusted_unsigned
    assert b.preprocess["feature_columns"] == list(b.model.feature_names_in_)
    rows = list_bundles(bundle_path.parent, key=KEY.encode())
    assert rows[0]["status"] == "verified"
    assert list_bundles(bundle_path.parent)[0]["status"].startswith("REFUSED: signed by key")


def test_tampered_file_refused_before_loading(bundle_path, tmp_path):
    import shutil

    root = tmp_path / "models"
    bad = root / bundle_path.name
    shutil.copytree(bundle_path, bad)
    (bad / "preprocess.json").write_text("{}")
    with pytest.raises(BundleError, match="changed after training"):
        load_bundle(bad, root=root, key=KEY.encode())
    rows = list_bundles(root, key=KEY.encode())
    assert rows[0]["status"].startswith("REFUSED")


def test_outside_root_and_signature(bundle_path, tmp_path):
    key = KEY.encode()
    with pytest.raises(BundleError, match="outside the models root"):
        verify_bundle(bundle_path, root=tmp_path, key=key)
    verify_bundle(bundle_path, root=tmp_path, key=key, trust=True)
    with pytest.raises(BundleError, match="does not match this key"):
        verify_bundle(bundle_path, root=bundle_path.parent, key=b"other-key-0123456")
    with pytest.raises(BundleError, match="no signing key is configured"):
        verify_bundle(bundle_path, root=bundle_path.parent)


def test_unsigned_bundle_needs_trust(dataset, settings, tmp_path, caplog):
    """Without any key training works but the bundle is unsigned: refused unless trusted,
    and a trusted load is logged and marked."""
    from riskmodel.api import train_bundle

    path, man = train_bundle(
        dataset, "2024-10-31", settings=settings, params={"n_estimators": 5}, root=tmp_path
    )
    assert man["status"] == "unsigned" and man["signed_by"] is None
    assert not (path / "manifest.sig").exists()
    with pytest.raises(BundleError, match="not signed"):
        load_bundle(path, root=tmp_path)
    b = load_bundle(path, root=tmp_path, trust=True)
    assert b.trusted_unsigned and b.status == "unsigned"
    assert "trusting model bundle" in caplog.text
    assert list_bundles(tmp_path)[0]["status"] == "unsigned"


def test_manifest_paths_are_relative(bundle_path):
    import json

    man = json.loads((bundle_path / "manifest.json").read_text())
    card = (bundle_path / "MODEL_CARD.md").read_text()
    for value in (
        man["feature_spec_source"],
        man["border"],
        man["inputs"].get("events", {}).get("file", ""),
    ):
        assert not str(value).startswith("/"), value
    assert "site-packages" not in json.dumps(man) + card


def test_default_training_end_is_the_last_full_day(dataset):
    """``train`` without --to: the last day whose shifts are all over by the clock, never
    after the last event (an old export)."""
    import pandas as pd

    from riskmodel.api._model import default_training_end

    # 12:00 local on 20 Dec: the night of the 19th ended at 06:00, the 20th's morning has not.
    noon = pd.Timestamp("2024-12-20T12:00", tz="Europe/Ljubljana").tz_convert("UTC")
    assert default_training_end(dataset, now=noon) == "2024-12-19"
    five = pd.Timestamp("2024-12-20T05:00", tz="Europe/Ljubljana").tz_convert("UTC")
    assert default_training_end(dataset, now=five) == "2024-12-18"
    # today is long after the data: its last day (whose night shift ends on 1 January)
    assert default_training_end(dataset) == "2024-12-31"
