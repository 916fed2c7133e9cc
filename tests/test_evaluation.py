"""Tests of riskmodel.evaluation.metrics on hand-computed toy cases and synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation.plots import plot_calibration, plot_hit_rate_curves
from riskmodel.model.counts import poisson_deviance

# 3 windows x 5 segments, unequal lengths (L = 10).
LENGTHS = np.array([1.0, 2.0, 1.0, 3.0, 3.0])
PRED = np.array(
    [
        [5.0, 4.0, 3.0, 2.0, 1.0],  # strict order 0,1,2,3,4
        [0.0, 1.0, 1.0, 0.0, 2.0],  # ties: 4, then {1,2}, then {0,3}
        [1.0, 1.0, 1.0, 1.0, 1.0],  # all tied
    ]
)
ACTUAL = np.array(
    [
        [2.0, 0.0, 1.0, 3.0, 0.0],
        [1.0, 0.0, 2.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 0.0, 4.0],
    ]
)  # N = 6 + 4 + 5 = 15


def test_toy_capture_fractional_boundary_and_ties_by_order() -> None:
    n = ev.captured(PRED, ACTUAL, LENGTHS, [0.2, 0.5])
    # c = 20 %, budget 2 km:
    #  w0: seg0 (1 km, 2 ev) whole + half of seg1 (0 ev)            -> 2
    #  w1: seg4 first (3 km, 1 ev) taken 2/3                         -> 2/3
    #  w2: all tied -> segment order: seg0 (0 ev) + half seg1 (1 ev) -> 1/2
    np.testing.assert_allclose(n[0], [2.0, 2 / 3, 0.5])
    # c = 50 %, budget 5 km:
    #  w0: seg0+seg1+seg2 (4 km, 3 ev) + 1/3 of seg3 (3 ev)          -> 4
    #  w1: seg4 (3 km, 1) + seg1 (2 km, 0)  [tie 1 vs 2 by order]    -> 1
    #  w2: seg0+seg1+seg2 (4 km, 1) + 1/3 of seg3 (0)                -> 1
    np.testing.assert_allclose(n[1], [4.0, 1.0, 1.0])


def test_toy_spread_ties() -> None:
    n = ev.captured(PRED, ACTUAL, LENGTHS, [0.2, 0.5], ties="spread")
    # w2 (all tied): every segment gets c of its events -> 0.2 * 5 and 0.5 * 5.
    # w1 at 50 %: seg4 whole (1 ev), then the tied block {seg1, seg2} (3 km, 2 ev) gets the
    # remaining 2 km -> 2/3 of it -> 4/3.
    np.testing.assert_allclose(n[0], [2.0, 2 / 3, 1.0])
    np.testing.assert_allclose(n[1], [4.0, 1.0 + 4 / 3, 2.5])


def test_toy_hit_rate_pai_pei() -> None:
    res = ev.evaluate(PRED, ACTUAL, LENGTHS, fractions=[0.2, 0.5])
    n20 = 2.0 + 2 / 3 + 0.5
    # n* at 20 % (rank by events per km): w0 seg0 + seg2 -> 3; w1 seg2 + seg0 -> 3;
    # w2 seg4 (4 ev / 3 km) 2/3 -> 8/3.
    n_star20 = 3.0 + 3.0 + 8 / 3
    assert res["n_events"] == 15.0
    assert res["hr_20"] == pytest.approx(n20 / 15)
    assert res["pai_20"] == pytest.approx(n20 / 15 / 0.2)
    assert res["pei_20"] == pytest.approx(n20 / n_star20)
    assert res["curve"] == pytest.approx([n20 / 15, 6.0 / 15])
    assert res["fractions"] == [0.2, 0.5]
    # Headline fractions are always present even when not in the curve.
    assert res["hr_5"] is not None and res["hr_10"] is not None
    # 5 % = 0.5 km: w0 half of seg0 (1 ev); w1 1/6 of seg4 (1/6); w2 half of seg0 (0).
    assert res["hr_5"] == pytest.approx((1.0 + 1 / 6) / 15)
    assert res["oracle_ratio_10"] is None


def test_hit_rate_curve_matches_evaluate() -> None:
    fr = np.arange(1, 21) / 100
    curve = ev.hit_rate_curve(PRED, ACTUAL, LENGTHS, fr)
    res = ev.evaluate(PRED, ACTUAL, LENGTHS, fractions=fr)
    np.testing.assert_allclose(curve, res["curve"])
    assert np.all(np.diff(curve) >= -1e-12)


def test_ties_deterministic_and_sign_of_zero() -> None:
    pred = np.zeros((2, 5))
    pred[1] = -0.0
    n = ev.captured(pred, ACTUAL[:2], LENGTHS, [0.1])
    # 1 km budget: segment 0 (1 km) in both windows.
    np.testing.assert_allclose(n[0], ACTUAL[:2, 0])
    # Same answer when called again and when windows are permuted.
    n2 = ev.captured(pred[::-1], ACTUAL[:2][::-1], LENGTHS, [0.1])
    np.testing.assert_allclose(n2[0], n[0][::-1])


def test_oracle_has_pei_one() -> None:
    rng = np.random.default_rng(3)
    actual = rng.poisson(0.3, size=(50, 40)).astype(float)
    res = ev.evaluate(actual, actual, np.ones(40))  # equal lengths: rank by counts
    assert res["pei_curve"] == pytest.approx([1.0] * 20)
    lengths = rng.uniform(0.5, 2.0, 40)
    res = ev.evaluate(actual, actual, lengths, rank_by="density")
    assert res["pei_curve"] == pytest.approx([1.0] * 20)
    # Ranking unequal segments by raw counts can only do worse than the optimum.
    res = ev.evaluate(actual, actual, lengths)
    assert all(v <= 1.0 + 1e-12 for v in res["pei_curve"])


def test_random_prediction_hit_rate_is_c() -> None:
    rng = np.random.default_rng(11)
    w, s = 300, 650
    lengths = rng.uniform(0.8, 1.2, s)
    # Uniform risk per km: counts proportional to length.
    actual = rng.poisson(0.05 * lengths, size=(w, s)).astype(float)
    pred = rng.random((w, s))
    fr = np.array([0.05, 0.1, 0.2])
    hr = ev.hit_rate_curve(pred, actual, lengths, fr)
    np.testing.assert_allclose(hr, fr, atol=0.015)
    pai = ev.evaluate(pred, actual, lengths)["pai_10"]
    assert pai == pytest.approx(1.0, abs=0.12)


def test_deviance_brier_hand_computed() -> None:
    pred = np.array([[1.0, 0.0]])
    actual = np.array([[2.0, 0.0]])
    dev = (2 * (2 * np.log(2) - 1) + 2 * 1e-9) / 2
    assert poisson_deviance(actual, pred) == pytest.approx(dev)
    assert ev.evaluate(pred, actual, np.ones(2))["deviance"] == pytest.approx(dev)
    brier = ((1 - np.exp(-1.0)) - 1) ** 2 / 2
    assert ev.brier_score(pred, actual) == pytest.approx(brier)
    assert poisson_deviance(actual, actual) == pytest.approx(2e-9 / 2)
    # weighted: the mean of the cells repeated by their weights
    w = np.array([[3.0, 1.0]])
    rep = poisson_deviance(np.array([2.0, 2.0, 2.0, 0.0]), np.array([1.0, 1.0, 1.0, 0.0]))
    assert poisson_deviance(actual, pred, weight=w) == pytest.approx(rep)
    assert np.isnan(poisson_deviance(np.array([]), np.array([])))


def test_calibration_deciles() -> None:
    pred = np.arange(100, dtype=float).reshape(10, 10)
    table = ev.calibration_table(pred, 2 * pred)
    assert [r["bin"] for r in table] == list(range(1, 11))
    assert all(r["n_cells"] == 10 for r in table)
    assert table[0]["expected"] == 45.0 and table[0]["observed"] == 90.0
    assert all(r["obs_exp"] == pytest.approx(2.0) for r in table[1:])
    assert table[-1]["pred_min"] == 90.0 and table[-1]["pred_max"] == 99.0


def test_evaluate_json_and_oracle_ratio() -> None:
    rng = np.random.default_rng(5)
    truth = rng.gamma(0.5, 0.2, size=(40, 60))
    actual = rng.poisson(truth).astype(float)
    lengths = rng.uniform(0.8, 1.2, 60)
    res = ev.evaluate(
        truth * 0.5 + rng.random(truth.shape) * 0.1, actual, lengths, oracle_pred=truth
    )
    text = json.dumps(res, allow_nan=False)
    assert "calibration" in json.loads(text)
    o = ev.evaluate(truth, actual, lengths, oracle_pred=truth)
    assert o["oracle_ratio_10"] == pytest.approx(1.0)
    assert res["oracle_ratio_10"] == pytest.approx(res["hr_10"] / o["hr_10"])
    # No events at all: metrics undefined, still serialisable.
    empty = ev.evaluate(truth, np.zeros_like(truth), lengths)
    assert empty["hr_10"] is None
    json.dumps(empty, allow_nan=False)


def test_compare_gap_closed_and_markdown() -> None:
    rng = np.random.default_rng(8)
    truth = rng.gamma(0.4, 0.3, size=(60, 80))
    actual = rng.poisson(truth).astype(float)
    lengths = np.ones(80)
    noise = rng.random(truth.shape)
    preds = {
        "model": truth + 0.05 * noise,
        "historical": 0.5 * truth + 0.5 * noise * truth.mean(),
        "kde": noise,
        "oracle": truth,
    }
    df = ev.compare(preds, actual, lengths)
    assert list(df.index) == ["model", "historical", "kde", "oracle"]
    for col in (
        "hr_5",
        "hr_10",
        "hr_20",
        "pai_10",
        "pei_10",
        "oracle_ratio_10",
        "gap_closed_5",
        "gap_closed_10",
        "gap_closed_20",
        "deviance",
        "brier",
    ):
        assert col in df.columns
    assert df.loc["oracle", "role"] == "oracle" and df.loc["kde", "role"] == "baseline"
    best = df.loc[["historical", "kde"], "hr_10"].max()
    gap = df.loc["oracle", "hr_10"] - best
    expect = (df.loc["model", "hr_10"] - best) / gap
    # The oracle is under GAP_MIN ahead of the best baseline here: the ratio is noise, left empty.
    assert 0 < gap < ev.GAP_MIN and np.isnan(df.loc["model", "gap_closed_10"])
    df0 = ev.results_table(ev.evaluate_all(preds, actual, lengths), min_gap=0.0)
    assert df0.loc["model", "gap_closed_10"] == pytest.approx(expect)
    assert np.isnan(df.loc["historical", "gap_closed_10"])
    assert df.loc["oracle", "oracle_ratio_10"] == pytest.approx(1.0)
    md = ev.markdown_table(df)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 4 and lines[0].startswith("| method | role | hr_5")
    assert "| model | model |" in md


def test_plots_are_deterministic(tmp_path) -> None:
    rng = np.random.default_rng(2)
    truth = rng.gamma(0.5, 0.2, size=(20, 30))
    actual = rng.poisson(truth).astype(float)
    results = ev.evaluate_all(
        {"model": truth + 0.01 * rng.random(truth.shape), "oracle": truth}, actual, np.ones(30)
    )
    a = plot_hit_rate_curves(results, tmp_path / "a.png")
    b = plot_hit_rate_curves(results, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes() and a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    c = plot_calibration(results, tmp_path / "c.png")
    d = plot_calibration(results, tmp_path / "d.png")
    assert c.read_bytes() == d.read_bytes()


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="equal 2-D"):
        ev.evaluate(PRED[:2], ACTUAL, LENGTHS)
    with pytest.raises(ValueError, match="NaN"):
        ev.evaluate(np.full_like(PRED, np.nan), ACTUAL, LENGTHS)
    with pytest.raises(ValueError, match="positive"):
        ev.evaluate(PRED, ACTUAL, np.zeros(5))
    with pytest.raises(ValueError, match="fractions"):
        ev.hit_rate_curve(PRED, ACTUAL, LENGTHS, [0.0])
    empty = ev.results_table({})
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0 and "hr_10" in empty.columns
