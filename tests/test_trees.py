"""riskmodel.model.trees: the numpy evaluator agrees with XGBoost (predictions and TreeSHAP)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")

from riskmodel.model import _ubjson  # noqa: E402
from riskmodel.model.trees import TreeEnsemble  # noqa: E402

RTOL, ATOL_CONTRIB = 1e-5, 1e-4


def _data(n: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    X[:, -1] = rng.integers(0, 4, n)  # few distinct values: many rows equal to a threshold
    X[rng.random(X.shape) < 0.15] = np.nan
    lin = 0.6 * np.nan_to_num(X[:, 0]) - 0.4 * np.nan_to_num(X[:, 1]) + 0.3 * X[:, -1] - 1
    return X, rng.poisson(np.exp(np.nan_to_num(lin, nan=-1.0))).astype(np.float32)


def _train(params: dict, X: np.ndarray, y: np.ndarray, rounds: int, **kw) -> xgb.Booster:
    base = {"nthread": 1, "verbosity": 0, "seed": 0}
    return xgb.train(base | params, xgb.DMatrix(X, y), rounds, **kw)


def _probe_rows(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    """Rows of X plus rows whose values sit exactly on split thresholds, and all-NaN rows."""
    doc = json.loads(booster.save_raw("json"))
    rng = np.random.default_rng(7)
    extra = []
    for tree in doc["learner"]["gradient_booster"]["model"]["trees"][:10]:
        for node, left in enumerate(tree["left_children"]):
            if left >= 0:
                row = X[rng.integers(len(X))].copy()
                row[tree["split_indices"][node]] = np.float32(tree["split_conditions"][node])
                extra.append(row)
    nan_row = np.full((1, X.shape[1]), np.nan, dtype=np.float32)
    return np.vstack([X, np.array(extra, dtype=np.float32).reshape(-1, X.shape[1]), nan_row])


def _assert_matches(booster: xgb.Booster, X: np.ndarray, n_iter: int | None = None, fmt="ubj"):
    rows = _probe_rows(booster, X)
    te = TreeEnsemble.from_bytes(bytes(booster.save_raw(fmt)), n_iterations=n_iter)
    dm = xgb.DMatrix(rows)
    rng = (0, n_iter) if n_iter else (0, 0)
    want = booster.predict(dm, iteration_range=rng)
    want_margin = booster.predict(dm, iteration_range=rng, output_margin=True)
    want_contrib = booster.predict(dm, iteration_range=rng, pred_contribs=True)
    np.testing.assert_allclose(te.margin(rows), want_margin, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(te.predict(rows), want, rtol=RTOL)
    contrib = te.contributions(rows)
    assert contrib.shape == (len(rows), X.shape[1] + 1)
    np.testing.assert_allclose(contrib, want_contrib, rtol=0, atol=ATOL_CONTRIB)
    np.testing.assert_allclose(contrib.sum(axis=1), te.margin(rows), rtol=0, atol=ATOL_CONTRIB)
    return te


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("objective", ["count:poisson", "reg:squarederror"])
def test_matches_xgboost(depth: int, objective: str) -> None:
    X, y = _data(600, 8, seed=depth)
    params = {"objective": objective, "max_depth": depth, "eta": 0.3, "min_child_weight": 0.5}
    booster = _train(params, X, y, rounds=20 + 10 * depth)
    te = _assert_matches(booster, X)
    assert te.objective == objective and te.n_features == 8
    # global importance: XGBoost's total gain over all trees, features without splits left out
    want = booster.get_score(importance_type="total_gain")
    got = te.total_gain()
    assert set(got) == set(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-5)
    assert te.n_trees == 20 + 10 * depth


def test_monotone_hist_and_json_format() -> None:
    X, y = _data(800, 6, seed=11)
    params = {
        "objective": "count:poisson",
        "max_depth": 4,
        "tree_method": "hist",
        "max_bin": 16,
        "monotone_constraints": "(1,0,0,0,0,-1)",
        "subsample": 0.8,
        "colsample_bytree": 0.7,
    }
    booster = _train(params, X, y, rounds=40)
    _assert_matches(booster, X, fmt="ubj")
    _assert_matches(booster, X, fmt="json")
    # Same trees from either format.
    a = TreeEnsemble.from_bytes(bytes(booster.save_raw("ubj")))
    b = TreeEnsemble.from_bytes(bytes(booster.save_raw("json")))
    assert np.array_equal(a.margin(X), b.margin(X))


def test_early_stopping_keeps_first_rounds() -> None:
    X, y = _data(1000, 6, seed=3)
    dtrain = xgb.DMatrix(X[:700], y[:700])
    dvalid = xgb.DMatrix(X[700:], y[700:])
    params = {"objective": "count:poisson", "max_depth": 6, "eta": 0.5, "nthread": 1, "seed": 0}
    booster = xgb.train(
        params, dtrain, 80, evals=[(dvalid, "v")], early_stopping_rounds=3, verbose_eval=False
    )
    n_iter = booster.best_iteration + 1
    assert n_iter < booster.num_boosted_rounds()  # the test needs a truncated model
    te = _assert_matches(booster, X, n_iter=n_iter)
    assert te.n_trees == n_iter
    full = TreeEnsemble.from_bytes(bytes(booster.save_raw("ubj")))
    assert full.n_trees == booster.num_boosted_rounds()
    assert not np.allclose(full.margin(X), te.margin(X))
    for bad in (0, -1, booster.num_boosted_rounds() + 1):
        with pytest.raises(ValueError, match="n_iterations"):
            TreeEnsemble.from_bytes(bytes(booster.save_raw("ubj")), n_iterations=bad)


@pytest.mark.parametrize(
    "params",
    [
        {"max_depth": 3, "gamma": 1e9},  # every tree a single leaf: bias only
        {"max_depth": 6, "gamma": 0.5, "tree_method": "exact"},  # pruned: deleted nodes
        {"grow_policy": "lossguide", "max_leaves": 12, "max_depth": 0, "tree_method": "hist"},
    ],
    ids=["stumps", "pruned", "lossguide"],
)
def test_tree_shapes(params: dict) -> None:
    X, y = _data(500, 6, seed=9)
    booster = _train(params | {"objective": "count:poisson"}, X, y, rounds=30)
    doc = json.loads(booster.save_raw("json"))
    trees = doc["learner"]["gradient_booster"]["model"]["trees"]
    if "gamma" in params and params["gamma"] < 1:
        assert sum(int(t["tree_param"]["num_deleted"]) for t in trees) > 0
    te = _assert_matches(booster, X)
    if params.get("gamma") == 1e9:
        assert np.all(te.contributions(X)[:, :-1] == 0)


def test_parallel_trees_per_round() -> None:
    X, y = _data(500, 5, seed=5)
    params = {"objective": "reg:squarederror", "max_depth": 3, "num_parallel_tree": 3}
    params |= {"subsample": 0.7, "colsample_bynode": 0.8}
    booster = _train(params, X, y, rounds=6)
    te = _assert_matches(booster, X, n_iter=4)
    assert te.n_trees == 12


def test_feature_names_and_defaults() -> None:
    X, y = _data(300, 3, seed=2)
    named = xgb.train({"max_depth": 2}, xgb.DMatrix(X, y, feature_names=["a", "b", "c"]), 3)
    assert TreeEnsemble.from_bytes(bytes(named.save_raw("ubj"))).feature_names == ["a", "b", "c"]
    anon = _train({"max_depth": 2}, X, y, rounds=3)
    te = TreeEnsemble.from_bytes(bytes(anon.save_raw("ubj")))
    assert te.feature_names == ["f0", "f1", "f2"] and te.objective == "reg:squarederror"
    with pytest.raises(ValueError, match="shape"):
        te.predict(X[:, :2])
    with pytest.raises(ValueError, match="shape"):
        te.contributions(X[0])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"objective": "binary:logistic"}, "objective"),
        ({"objective": "multi:softprob", "num_class": 3}, "objective|multi"),
        ({"objective": "count:poisson", "booster": "dart"}, "booster"),
        ({"objective": "count:poisson", "booster": "gblinear"}, "booster"),
    ],
)
def test_unsupported_models_are_refused(params: dict, match: str) -> None:
    X, y = _data(300, 4, seed=4)
    if params["objective"] == "binary:logistic":
        y = (y > 0).astype(np.float32)
    if params["objective"].startswith("multi"):
        y = np.minimum(y, 2)
    booster = _train(params | {"max_depth": 2}, X, y, rounds=3)
    with pytest.raises(ValueError, match=match):
        TreeEnsemble.from_bytes(bytes(booster.save_raw("ubj")))


def test_categorical_splits_are_refused() -> None:
    rng = np.random.default_rng(0)
    import pandas as pd

    frame = pd.DataFrame({"c": pd.Categorical(rng.integers(0, 5, 400)), "x": rng.normal(size=400)})
    dm = xgb.DMatrix(frame, rng.poisson(1.0, 400), enable_categorical=True)
    booster = xgb.train({"objective": "count:poisson", "max_depth": 3, "nthread": 1}, dm, 5)
    with pytest.raises(ValueError, match="categorical"):
        TreeEnsemble.from_bytes(bytes(booster.save_raw("ubj")))


def test_malformed_bytes_raise_value_error() -> None:
    X, y = _data(300, 4, seed=6)
    raw = bytes(_train({"objective": "count:poisson", "max_depth": 3}, X, y, 5).save_raw("ubj"))
    TreeEnsemble.from_bytes(raw)  # the intact model loads
    rng = np.random.default_rng(0)
    cuts = [0, 1, 2, 10, len(raw) // 3, len(raw) // 2, len(raw) - 1]
    cuts += list(rng.integers(1, len(raw), 20))
    for cut in cuts:
        with pytest.raises(ValueError):
            TreeEnsemble.from_bytes(raw[:cut])
    with pytest.raises(ValueError, match="trailing"):
        TreeEnsemble.from_bytes(raw + b"Z")
    bad = [b"", b"\x00", b"junk", b'{"learner": 1}', b"{", b'{"a": [1, 2', b"[]", b"{}"]
    for data in bad:
        with pytest.raises(ValueError):
            TreeEnsemble.from_bytes(data)
    # Corrupting single bytes never escapes as anything but ValueError (or loads a model).
    for i in rng.integers(0, len(raw), 200):
        flipped = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]
        try:
            TreeEnsemble.from_bytes(flipped)
        except ValueError:
            pass


def test_corrupt_tree_structure_is_refused() -> None:
    X, y = _data(300, 4, seed=8)
    doc = json.loads(_train({"max_depth": 3}, X, y, 3).save_raw("json"))
    tree = doc["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["left_children"][0] = 0  # the root as its own child: a cycle
    with pytest.raises(ValueError, match="malformed"):
        TreeEnsemble.from_bytes(json.dumps(doc).encode())
    tree["left_children"][0] = 10_000
    with pytest.raises(ValueError, match="malformed"):
        TreeEnsemble.from_bytes(json.dumps(doc).encode())


def _ubj_key(key: str) -> bytes:
    return b"U" + bytes([len(key)]) + key.encode()


def test_ubjson_decoder() -> None:
    doc = (
        b"{"
        + _ubj_key("a")
        + b"[$d#U\x02"
        + struct.pack(">ff", 1.5, -2.0)
        + _ubj_key("b")
        + b"[i\x01I\x01\x00l\x00\x00\x00\x02L"
        + struct.pack(">q", -3)
        + b"]"
        + _ubj_key("c")
        + b"[#U\x05TFZSU\x02hiCx"
        + _ubj_key("d")
        + b"D"
        + struct.pack(">d", 0.1)
        + _ubj_key("e")
        + b"NHU\x041e-3"
        + _ubj_key("f")
        + b"{$i#U\x01"
        + _ubj_key("g")
        + b"\x07"
        + b"}"
    )
    out = _ubjson.loads(doc)
    assert out["a"].dtype == np.float32 and out["a"].tolist() == [1.5, -2.0]
    assert out["b"] == [1, 256, 2, -3]
    assert out["c"] == [True, False, None, "hi", "x"]
    assert out["d"] == 0.1 and out["e"] == 1e-3 and out["f"] == {"g": 7}
    big = _ubjson.loads(b"[$l#L" + struct.pack(">q", 3) + struct.pack(">iii", 1, -1, 2**31 - 1))
    assert big.dtype == np.int32 and big.tolist() == [1, -1, 2**31 - 1]
    bad = [
        b"",
        b"Q",  # unknown marker
        b"[$d#U\x02\x00",  # truncated typed array
        b"[#L" + struct.pack(">q", -1),  # negative count
        b"[#L" + struct.pack(">q", 2**62),  # impossible count
        b"[$X#U\x01\x00",  # unknown type
        b"[$i\x01",  # $ without #
        b"[i\x01",  # unterminated
        b"Si\x05ab",  # short string
        b"SU\x02\xff\xfe",  # not UTF-8
        b"{U\x01aT",  # unterminated object
        b"{U\x01aTU\x01aF}",  # duplicate key
        b"{SU\x01aT}",  # key with a marker
        b"HU\x02xy",  # not a number
        b"T T",  # trailing bytes
        b"[" * 100 + b"]" * 100,  # too deep
    ]
    for data in bad:
        with pytest.raises(ValueError, match="UBJSON"):
            _ubjson.loads(data)


def test_import_pulls_no_xgboost() -> None:
    code = (
        "import sys, riskmodel.model.trees\n"
        "bad = [m for m in ('xgboost', 'sklearn', 'scipy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _best_ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def test_realistic_model_and_timings() -> None:
    """The production shape: Poisson, depth 5, eta 0.06, 75 features, hist, max_bin 64."""
    X, y = _data(4000, 75, seed=42)
    params = {
        "objective": "count:poisson",
        "max_depth": 5,
        "eta": 0.06,
        "max_delta_step": 0.7,
        "tree_method": "hist",
        "max_bin": 64,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "monotone_constraints": "(" + ",".join(["1"] + ["0"] * 74) + ")",
    }
    booster = _train(params, X, y, rounds=100)
    te = _assert_matches(booster, X[:1920])
    raw = bytes(booster.save_raw("ubj"))
    rows = X[:1920]
    te.contributions(rows)  # tables built once
    ms = {
        "from_bytes": _best_ms(lambda: TreeEnsemble.from_bytes(raw)),
        "predict": _best_ms(lambda: te.predict(rows)),
        "contributions": _best_ms(lambda: te.contributions(rows)),
        "first contributions (tables)": _best_ms(
            lambda: TreeEnsemble.from_bytes(raw).contributions(rows), repeat=3
        ),
    }
    print(f"\n{len(raw)} bytes, {te.n_trees} trees, 1920 x 75:", ms)


def test_empty_input() -> None:
    X, y = _data(300, 4, seed=12)
    te = TreeEnsemble.from_bytes(bytes(_train({"max_depth": 3}, X, y, 5).save_raw("ubj")))
    empty = np.empty((0, 4), dtype=np.float32)
    assert te.predict(empty).shape == (0,)
    assert te.contributions(empty).shape == (0, 5)
