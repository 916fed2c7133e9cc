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
