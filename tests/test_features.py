import numpy as np
import pandas as pd
import pytest

from riskmodel.errors import ConfigError
from riskmodel.features import (
    FeatureContext,
    FeatureSpec,
    Panel,
    build_features,
    build_features_blocked,
    feature_columns,
)


def _panel(ds, events):
    return Panel.build(ds.windows, ds.geo.segments, events, ds.effort)


def test_no_leakage_events_at_or_after_window_start(dataset):
    ds = dataset
    target = ds.window_of_date("2024-09-15") + 2  # a night window
    start = ds.windows["start_utc"].iloc[target]
    base = build_features(_panel(ds, ds.events), ds.static, ds.spec, np.array([target]))
    ev = ds.events.copy()
    later = ev["timestamp"] >= start
    assert later.sum() > 10
    # delete everything at/after the start
    gone = build_features(_panel(ds, ev[~later]), ds.static, ds.spec, np.array([target]))
    # move later events around and add a burst exactly at the start
    moved = ev.copy()
    moved.loc[later, "seq"] = (moved.loc[later, "seq"] + 7) % ds.n_segments
    burst = ev.iloc[:50].copy()
    burst["timestamp"] = start
    changed = build_features(
        _panel(ds, pd.concat([moved, burst])), ds.static, ds.spec, np.array([target])
    )
    hist = [c for c in feature_columns(base) if not c.startswith("effort_window")]
    pd.testing.assert_frame_equal(base[hist], gone[hist])
    pd.testing.assert_frame_equal(base[hist], changed[hist])
    # ... while an event just before the start does change them
    before = ev.iloc[:1].copy()
    before["timestamp"] = start - pd.Timedelta(minutes=1)
    moved2 = build_features(
        _panel(ds, pd.concat([ev, before])), ds.static, ds.spec, np.array([target])
    )
    assert not base[hist].equals(moved2[hist])


def test_feature_values(dataset):
    ds = dataset
    X = ds.features()
    S = ds.n_segments
    assert len(X) == len(ds.windows) * S
    w = ds.window_of_date("2024-10-01")
    row = X.iloc[w * S : (w + 1) * S]
    cnt = ds.panel.counts
    np.testing.assert_allclose(row["n_7d"].to_numpy(), cnt[w - 21 : w].sum(axis=0))
    np.testing.assert_allclose(row["n_1d"].to_numpy(), cnt[w - 3 : w].sum(axis=0))
    assert row["n_7d_pm3km"].ge(row["n_7d"]).all()
    assert set(np.unique(row["shift_idx"])) == {ds.windows["shift_idx"].iloc[w]}
    assert row["darkness"].between(0, 1).all()
    assert not X[feature_columns(X)].isna().any().any()


def test_spec_hash_and_errors(tmp_path):
    a = FeatureSpec.load()
    p = tmp_path / "f.toml"
    p.write_text("[history]\nwindows_days = [7, 28]\n")
    b = FeatureSpec.load(p)
    assert a.sha256 != b.sha256 and b.section("history")["windows_days"] == [7, 28]
    p.write_text("[history]\nwindow_days = [7]\n")
    with pytest.raises(ConfigError, match="unknown key"):
        FeatureSpec.load(p)
    p.write_text("[effort]\nenabled = false\n")
    c = FeatureSpec.load(p)
    assert not c.enabled("effort")


def test_groups_can_be_switched_off(dataset, tmp_path):
    p = tmp_path / "f.toml"
    p.write_text("[effort]\nenabled = false\n[time]\nenabled = false\n")
    spec = FeatureSpec.load(p)
    X = build_features(dataset.panel, dataset.static, spec, np.array([100]))
    assert not any(c.startswith("effort") for c in X.columns)
    assert "darkness" not in X.columns and "n_7d" in X.columns


def test_context_blocks_equal_build_features(dataset):
    """Time blocks x segment blocks (and an effort override) equal the full build bit for bit."""
    ref = dataset.features()
    ctx = FeatureContext(dataset.panel, dataset.static, dataset.spec)
    got = build_features_blocked(
        dataset.panel, dataset.static, dataset.spec, block_rows=5_000, seg_blocks=3, context=ctx
    )
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    for w in (0, dataset.panel.counts.shape[0] - 1):  # single windows at both ends
        one = build_features(dataset.panel, dataset.static, dataset.spec, np.array([w]))
        pd.testing.assert_frame_equal(one, ref[ref["window"] == w].reset_index(drop=True))
    tg = np.arange(400, 437)
    segs = np.arange(7, 40, 2)
    eff = np.random.default_rng(0).gamma(1.0, 8.0, (len(tg), dataset.n_segments))
    want = build_features(dataset.panel, dataset.static, dataset.spec, tg, effort_override=eff)
    want = want[want["seq"].isin(segs)].reset_index(drop=True)
    pd.testing.assert_frame_equal(ctx.frame(tg, segs, effort_now=eff), want, check_exact=True)


# ----------------------------------------------------------------------------- registry


def _spec(tmp_path, text: str) -> FeatureSpec:
    p = tmp_path / "f.toml"
    p.write_text(text)
    return FeatureSpec.load(p)


def test_defaults_come_from_the_bundled_toml():
    import tomllib

    from riskmodel.features import spec as spec_mod

    data = tomllib.loads(spec_mod.default_spec_path().read_text(encoding="utf-8"))
    loaded = FeatureSpec.load().data
    for sec in ("history", "route", "time", "effort"):
        assert loaded[sec] == data[sec]
    assert not hasattr(spec_mod, "_DEFAULT_SPEC")


def test_frame_columns_are_the_registry_columns(dataset, tmp_path):
    from riskmodel.features import registry

    X = dataset.features()
    assert feature_columns(X) == [c.name for c in registry.columns(dataset.spec)]
    spec = _spec(tmp_path, "[history]\nenabled = false\n[route]\nenabled = false\n")
    static = static_features_for(dataset, spec)
    Y = build_features(dataset.panel, static, spec, np.array([100, 101]))
    assert feature_columns(Y) == [c.name for c in registry.columns(spec)]
    assert "n_7d" not in Y.columns and "dist_crossing_km" not in Y.columns
    assert {"effort_window", "darkness", "river", "chainage_km"} <= set(Y.columns)


def test_engine_follows_the_spec(dataset, tmp_path):
    """The near-repeat feature is computed with the spec's distance and hours."""
    tg = np.array([dataset.window_of_date("2024-09-15")])
    a = build_features(dataset.panel, dataset.static, dataset.spec, tg)["near_repeat"]
    wide = _spec(tmp_path, "[history]\nnear_repeat_km = 10\nnear_repeat_hours = 240\n")
    b = build_features(dataset.panel, dataset.static, wide, tg)["near_repeat"]
    assert (b.to_numpy() >= a.to_numpy()).all() and b.sum() > a.sum()


def static_features_for(ds, spec):
    from riskmodel.features import static_features

    return static_features(ds.geo, spec)


def test_reasons_use_the_numbers_of_the_spec(tmp_path):
    """An analyst who edits the TOML gets reasons with the new numbers."""
    from riskmodel.features.registry import describe

    base = FeatureSpec.load()
    edited = _spec(
        tmp_path,
        "[history]\nnear_repeat_km = 5\nnear_repeat_hours = 48\nmax_days_since = 365\n"
        "trend_days = [14, 182]\n",
    )
    a = describe("near_repeat", 2.0, base)
    b = describe("near_repeat", 2.0, edited)
    assert "within 3 km in the last 72 h" in a
    assert "within 5 km in the last 48 h" in b and "3 km" not in b
    assert "2 years" in describe("days_since", 730.0, base)
    assert "365 days" in describe("days_since", 365.0, edited)
    assert "14 days" in describe("trend", 1.5, edited) and "182 days" in describe(
        "trend", 1.5, edited
    )


def test_scored_reasons_follow_the_spec(tmp_path):
    """The scoring path (TreeSHAP -> reasons) words a near-repeat with the spec's numbers."""
    from riskmodel.scoring.score import top_reasons

    feats = ["near_repeat", "n_7d", "darkness"]
    contrib = pd.DataFrame([[0.9, 0.5, 0.2, -1.0]], columns=[*feats, "bias"])
    X = pd.DataFrame([[2.0, 4.0, 0.5]], columns=feats)
    where = [{"shift": "night", "month": 1}]
    base = top_reasons(contrib, X, where, FeatureSpec.load())[0]
    edited = top_reasons(contrib, X, where, _spec(tmp_path, "[history]\nnear_repeat_km = 5\n"))[0]
    assert base[0] == "2 incidents within 3 km in the last 72 h (near-repeat)"
    assert edited[0] == "2 incidents within 5 km in the last 72 h (near-repeat)"
    assert (
        base[1:]
        == edited[1:]
        == ["4 incidents on this segment in the last 7 days", "dark for 50% of the shift"]
    )


def test_no_reason_contains_an_internal_name():
    """Every feature of the default spec is described in plain words (no column names)."""
    import re

    from riskmodel.features import registry

    spec = FeatureSpec.load()
    cols = registry.columns(spec)
    internal = {c.name for c in cols if "_" in c.name or any(ch.isdigit() for ch in c.name)}
    where = {
        "shift": "night",
        "month": 3,
        "area": "Novo mesto",
        "crossing_name": "Obrežje",
        "corridor_name": "Route A",
        "settlement_far_name": "Samobor",
        "settlement_si_name": "Brežice",
        "dist_corridor_km": 1.5,
        "dist_settlement_far_km": 2.0,
        "dist_settlement_si_km": 3.0,
    }
    for c in cols:
        for v in (0.0, 1.0, 3.5, 900.0):
            for w in (where, {}):
                text = registry.describe(c.name, v, spec, w)
                assert text and text == text.strip(), (c.name, text)
                assert not (set(re.findall(r"[A-Za-z0-9_]+", text)) & internal), (c.name, text)
                assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b", text), (c.name, text)
    with pytest.raises(ConfigError, match="not produced"):
        registry.describe("no_such_feature", 1.0, spec)


def test_holiday_calendars_cached_in_the_workspace(tmp_path) -> None:
    """The holiday calendar is read from the workspace cache when there (the package imports
    every country to look one up); the cached and computed calendars are the same, a broken
    cache file is recomputed and rewritten."""
    import datetime as dt

    from riskmodel.features.timing import holiday_dates

    years = range(2024, 2027)
    plain = holiday_dates("SI", years)
    assert dt.date(2025, 6, 25) in plain and dt.date(2025, 6, 26) not in plain  # Statehood Day
    cached = holiday_dates("SI", years, tmp_path)
    (f,) = tmp_path.glob("holidays-*-SI-2024-2027.json")
    assert cached == plain == holiday_dates("SI", years, tmp_path)
    f.write_text("{not json", "utf-8")
    assert holiday_dates("SI", years, tmp_path) == plain
    assert f.read_text("utf-8").startswith('["2024-')
    assert holiday_dates("HR", years, tmp_path) != plain


@pytest.mark.parametrize("scipy_loop", [False, True])
def test_sparse_neighbourhoods_equal_scipy_bit_for_bit(geo, monkeypatch, scipy_loop):
    """The numpy neighbourhood matrices add in scipy's order: bundles trained with the
    scipy.sparse engine see the same features to the last bit (band, radius, area sums,
    the row-normalised Gaussian kernel with its descending order and pairwise row sums),
    on the numpy path (scoring) and on scipy's loop (training, where scipy is loaded)."""
    from scipy import sparse

    from riskmodel.features import _sparse
    from riskmodel.features._sparse import RowSparse

    monkeypatch.setattr(_sparse, "USE_SCIPY_WHEN_LOADED", scipy_loop)
    monkeypatch.setattr(_sparse, "CACHE_ELEMENTS", 5000)  # several column blocks
    from riskmodel.features.kernels import band, gauss, radius

    seg = geo.segments
    chain = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy()
    S = len(chain)
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.3, (S, 300)).astype(np.float64)
    frac = counts * rng.random((S, 300))  # non-integer: the order of the sums matters

    def scipy_csr(m: RowSparse) -> sparse.csr_matrix:
        r, c, v = m.entries()
        return sparse.csr_matrix((v, (r, c)), shape=m.shape)

    for km in (1, 3, 10):
        ours = band(chain, km)
        ref = scipy_csr(ours)
        for x in (counts, frac, counts.astype(np.int64), frac.astype(np.float32)):
            a, b = ref @ x, ours @ x
            assert a.dtype == b.dtype and np.array_equal(a, b)
        rows = np.array([5, 3, S // 2, S - 1])
        assert np.array_equal(ref[rows] @ frac, ours[rows] @ frac)
        assert np.array_equal(ref @ frac[:, 0], ours @ frac[:, 0])  # 1-D
    for sig in (1.0, 3.0):
        r, c, _ = band(chain, 3 * sig).entries()
        d = chain[r] - chain[c]
        m = sparse.csr_matrix((np.exp(-0.5 * (d / sig) ** 2), (r, c)), shape=(S, S))
        ref = sparse.diags(1.0 / np.asarray(m.sum(axis=1)).ravel()) @ m  # the old kernel
        assert np.array_equal(ref @ frac, gauss(chain, sig) @ frac)
    rad = radius(seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy(), 5.0)
    assert np.array_equal(scipy_csr(rad) @ frac, rad @ frac)
    codes = rng.integers(0, 6, S)
    A = sparse.csr_matrix((np.ones(S), (np.arange(S), codes)), shape=(S, 6))
    ours = RowSparse.from_entries(np.arange(S), codes, np.ones(S), (S, 6))
    At = A.transpose()
    assert np.array_equal(At.transpose() @ (At @ frac), ours.T.T @ (ours.T @ frac))
    with pytest.raises(ValueError, match="duplicate"):
        RowSparse.from_entries([0, 0], [1, 1], [1.0, 2.0], (2, 2))
