"""ETAS with a recency-weighted background (``mu_half_life_days``): the static default is
unchanged, the time-varying background follows a step in the rate, and it stays leakage-free."""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel.evaluation import etas

sys.path.insert(0, str(Path(__file__).parent))
from test_baselines import make_events, make_segments, make_windows, simulate_hawkes  # noqa: E402


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def hawkes() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    seg = make_segments(120, seed=3)
    ev = simulate_hawkes(seg, 400, mu_per_day=2.0, theta=0.4, omega=0.5, sigma=1.5, seed=11)
    return ev, seg, make_windows("2022-01-20", 20)


@pytest.fixture(scope="module")
def step() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """600 days of unclustered background, 0.02 / km / day; on km 40-50 it steps up to
    0.2 / km / day at day 300. Windows: the 10 days after the history."""
    rng = np.random.default_rng(7)
    seg = make_segments(100, equal=True)
    n = rng.poisson(0.02 * 100 * 600)
    t, x = rng.uniform(0, 600, n), rng.uniform(0, 100, n)
    m = rng.poisson(0.18 * 10 * 300)
    t = np.concatenate([t, rng.uniform(300, 600, m)])
    x = np.concatenate([x, rng.uniform(40, 50, m)])
    ev = make_events(t, x, seg, "2021-01-01")
    win = make_windows((pd.Timestamp("2021-01-01") + pd.Timedelta(days=600)).date().isoformat(), 10)
    return ev, seg, win


def test_none_reproduces_the_static_forecast_bit_for_bit(hawkes) -> None:
    ev, seg, win = hawkes
    # Hashes of the forecasts of the code before mu_half_life_days existed (commit 7c8fe2e).
    default = etas.self_exciting(ev, seg, win)
    assert _sha(default) == "c95c8255fa6ed12437110f8b8384f0a81cf0691d405f097bdf0b75f70608db1b"
    got = etas.self_exciting(ev, seg, win, mu_half_life_days=None)
    assert np.array_equal(got, default)
    short = etas.self_exciting(ev, seg, win, train_days=200.0)
    assert _sha(short) == "9fec36f4dea12a08cbc1fae593f603a252bb4f72a30ecac18f4285266535a4ed"
    fit = etas.fit_etas(ev, seg, win["start_utc"].iloc[0])
    assert _sha(fit.mu) == "5d893cb2c6dcdf9fa7820351007598d558b675b5c6675234098b1d2af039051f"
    assert fit.loglik == -5137.783345895644
    assert fit.mu_half_life_days is None


def test_time_varying_background_starts_at_the_fitted_mu(hawkes) -> None:
    ev, seg, win = hawkes
    for h in (60.0, math.inf):
        fit = etas.fit_etas(ev, seg, win["start_utc"].iloc[0], mu_half_life_days=h)
        mu0 = etas._tv_background(etas._prepare(ev, seg, win), fit)[0]
        # identical up to the EM's stopping tolerance (q_i at the final vs previous iterate)
        np.testing.assert_allclose(mu0, fit.mu, rtol=1e-3, atol=1e-3 * fit.mu.max())


def test_half_life_follows_a_step_in_the_background(step) -> None:
    ev, seg, win = step
    days = 8 / 24
    inside = slice(42, 48)  # away from the edges of the stretch (1 km smoothing)
    static = etas.self_exciting(ev, seg, win)[:, inside].mean() / days
    tv_map = etas.self_exciting(ev, seg, win, mu_half_life_days=60.0) / days
    tv = tv_map[:, inside].mean()
    new_rate = 0.2
    # static: about the mean over the history (0.11); half-life 60 d: the new rate
    assert abs(static - new_rate) > 0.06
    assert abs(tv - new_rate) < 0.25 * abs(static - new_rate)
    # far from the stretch the unchanged rate
    assert tv_map[:, 5:30].mean() == pytest.approx(0.02, rel=0.25)


def test_half_life_selection_prefers_forgetting_after_a_step(step) -> None:
    ev, seg, win = step
    choice = etas.select_mu_half_life(ev, seg, win["start_utc"].iloc[0], eval_days=120)
    assert set(choice.scores) == {30.0, 60.0, 120.0, 240.0, math.inf}
    assert math.isfinite(choice.best)
    assert choice.scores[choice.best] > choice.scores[math.inf]
    assert choice.fits[choice.best].mu_half_life_days == choice.best


@pytest.mark.parametrize("h", [60.0, math.inf])
def test_time_varying_forecast_is_leakage_free(hawkes, h: float) -> None:
    ev, seg, win = hawkes
    full = etas.self_exciting(ev, seg, win, mu_half_life_days=h)
    ts = pd.to_datetime(ev["timestamp"], utc=True)
    for k in (5, 30, 59):
        start = win["start_utc"].iloc[k]
        # drop everything from the window's start on, add events exactly at and after it
        extra = ev.iloc[:40].copy()
        extra["timestamp"] = start + pd.to_timedelta(np.arange(40) * 0.1, unit="h")
        cut = pd.concat([ev[ts < start], extra], ignore_index=True)
        got = etas.self_exciting(cut, seg, win, mu_half_life_days=h)
        np.testing.assert_allclose(got[k], full[k], rtol=1e-12, atol=0)
        np.testing.assert_allclose(got[:k], full[:k], rtol=1e-12, atol=0)


def test_invalid_half_life_is_rejected(hawkes) -> None:
    ev, seg, win = hawkes
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(ValueError, match="mu_half_life_days"):
            etas.fit_etas(ev, seg, win["start_utc"].iloc[0], mu_half_life_days=bad)
