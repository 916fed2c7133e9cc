"""Attacks on the de-biasing and drift features of issue 16 (item 2) and what holds.

| attack | expected behaviour | test |
|---|---|---|
| a stacked self-exciting / level feature reads the window it forecasts (same-window leakage) | events at or after the window's start change no ``level``/``selfexc``/``rate_*`` value; one just before does | ``test_level_and_split_features_are_leakage_free`` |
| the patrolled / unpatrolled split reads the window's own patrol | the split rates use effort of past windows only: changing the in-window effort changes nothing but ``effort_window`` | ``test_split_rates_ignore_the_window_s_own_effort`` |
| the experimental features silently change the default model | the bundled spec leaves them off: the default frame has none of their columns | ``test_new_features_are_off_in_the_default_spec`` |
| a noisy tree inverts the self-exciting rate (more recent activity = less risk) | ``selfexc_*`` columns carry a monotone increasing constraint, like the exposure | ``test_selfexc_is_monotone_in_the_booster`` |
| a reason shows an internal column name for the new features | every new column is worded with the spec's numbers | ``test_new_features_are_worded`` |
| the patrolled split counts a record in both kinds of shift | patrolled + unpatrolled decayed records add up to the plain decayed count | ``test_split_adds_up`` |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.features import FeatureSpec, Panel, build_features, feature_columns
from riskmodel.features.registry import describe
from riskmodel.model.estimator import RiskRegressor

NEW = "[history]\nsmooth_decay_days = [7, 30]\nsmooth_km = 2.0\n[effort]\nsplit_decay_days = [14]\n"


def _spec(tmp_path) -> FeatureSpec:
    p = tmp_path / "f.toml"
    p.write_text(NEW)
    return FeatureSpec.load(p)


def _static(ds, spec):
    from riskmodel.features import static_features

    return static_features(ds.geo, spec)


def _new_cols(X) -> list[str]:
    return [c for c in feature_columns(X) if c.startswith(("rate_", "level_", "selfexc_"))]


def test_new_features_are_off_in_the_default_spec(dataset, tmp_path):
    X = build_features(dataset.panel, dataset.static, dataset.spec, np.array([400]))
    assert _new_cols(X) == []
    spec = _spec(tmp_path)
    Y = build_features(dataset.panel, _static(dataset, spec), spec, np.array([400]))
    assert set(_new_cols(Y)) == {
        "rate_7d_g2km",
        "level_7d_g2km",
        "selfexc_7d_g2km",
        "rate_30d_g2km",
        "level_30d_g2km",
        "selfexc_30d_g2km",
        "rate_unpatrolled_14d_pm3km",
        "rate_patrolled_14d_pm3km",
    }
    assert not Y[_new_cols(Y)].isna().any().any()


def test_level_and_split_features_are_leakage_free(dataset, tmp_path):
    ds = dataset
    spec = _spec(tmp_path)
    static = _static(ds, spec)
    target = ds.window_of_date("2024-09-15") + 2
    start = ds.windows["start_utc"].iloc[target]

    def feats(events):
        p = Panel.build(ds.windows, ds.geo.segments, events, ds.effort)
        X = build_features(p, static, spec, np.array([target]))
        return X[_new_cols(X)]

    base = feats(ds.events)
    ev = ds.events.copy()
    later = ev["timestamp"] >= start
    assert later.sum() > 10
    burst = ev.iloc[:50].copy()
    burst["timestamp"] = start  # a burst exactly at the start of the forecast window
    pd.testing.assert_frame_equal(base, feats(pd.concat([ev[~later], burst])))
    before = ev.iloc[:1].copy()
    before["timestamp"] = start - pd.Timedelta(minutes=1)
    assert not base.equals(feats(pd.concat([ev, before])))


def test_split_rates_ignore_the_window_s_own_effort(dataset, tmp_path):
    spec = _spec(tmp_path)
    static = _static(dataset, spec)
    tg = np.array([dataset.window_of_date("2024-09-15")])
    a = build_features(dataset.panel, static, spec, tg)
    b = build_features(
        dataset.panel, static, spec, tg, effort_override=np.full((1, dataset.n_segments), 50.0)
    )
    split = [c for c in _new_cols(a) if "patrolled" in c]
    pd.testing.assert_frame_equal(a[split], b[split])
    assert not a["effort_window"].equals(b["effort_window"])


def test_split_adds_up(dataset, tmp_path):
    from riskmodel.features.engine import FeatureContext

    spec = _spec(tmp_path)
    ctx = FeatureContext(dataset.panel, _static(dataset, spec), spec)
    (n0, _), (n1, _) = ctx.effort.split[(14, False)], ctx.effort.split[(14, True)]
    p = tmp_path / "d.toml"
    p.write_text("[history]\ndecay_days = [14]\n")
    d = FeatureSpec.load(p)
    ctx2 = FeatureContext(dataset.panel, _static(dataset, d), d)
    np.testing.assert_allclose(n0 + n1, ctx2.history.decay[14], rtol=1e-9, atol=1e-9)


def test_selfexc_is_monotone_in_the_booster():
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.gamma(1.0, 1.0, n)
    noise = rng.normal(size=n)
    # A target that falls with x where noise is high: an unconstrained tree would follow it.
    y = rng.poisson(np.exp(0.3 * x - 0.8 * x * (noise > 1.0)) * 0.2)
    X = pd.DataFrame({"selfexc_7d_g2km": x, "other": noise})
    m = RiskRegressor(n_estimators=60, zero_keep=1.0, validation_fraction=0.0).fit(X, y)
    grid = pd.DataFrame({"selfexc_7d_g2km": np.linspace(0, 6, 50), "other": 2.0})
    assert np.all(np.diff(m.predict(grid)) >= -1e-7)


def test_new_features_are_worded(tmp_path):
    spec = _spec(tmp_path)
    words = {
        "rate_7d_g2km": describe("rate_7d_g2km", 0.1, spec),
        "level_30d_g2km": describe("level_30d_g2km", 2.0, spec),
        "selfexc_7d_g2km": describe("selfexc_7d_g2km", 0.2, spec),
        "rate_unpatrolled_14d_pm3km": describe("rate_unpatrolled_14d_pm3km", 0.02, spec),
    }
    assert "2 km" in words["rate_7d_g2km"] and "7 days" in words["rate_7d_g2km"]
    assert "2.0x" in words["level_30d_g2km"]
    assert "unpatrolled" in words["rate_unpatrolled_14d_pm3km"]
    for name, text in words.items():
        assert name not in text and "_" not in text
