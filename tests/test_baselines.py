"""Tests of riskmodel.evaluation.baselines: exact small cases, leakage, ETAS recovery, runtime."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.evaluation import _events
from riskmodel.evaluation import baselines as bl
from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation._events import _to_ns

DAY = pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------------
# synthetic data helpers
# --------------------------------------------------------------------------------------------


def make_segments(n: int, seed: int = 0, equal: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    length = np.ones(n) if equal else rng.uniform(0.8, 1.2, n)
    to = np.cumsum(length)
    return pd.DataFrame(
        {
            "seq": np.arange(n),
            "segment_id": [f"S{i:04d}" for i in range(n)],
            "length_m": length * 1000,
            "chainage_from_km": to - length,
            "chainage_to_km": to,
        }
    )


def make_windows(start: str, n_days: int) -> pd.DataFrame:
    """Three 8-hour shifts a day (06-14, 14-22, 22-06 local CET as fixed UTC offsets)."""
    days = pd.date_range(start, periods=n_days, freq="D", tz="UTC")
    st = np.concatenate([days + pd.Timedelta(hours=h) for h in (5, 13, 21)])
    df = pd.DataFrame({"start_utc": st, "shift_idx": np.repeat([0, 1, 2], n_days)})
    df = df.sort_values("start_utc", kind="stable").reset_index(drop=True)
    df["end_utc"] = df["start_utc"] + pd.Timedelta(hours=8)
    df["shift"] = np.array(["morning", "afternoon", "night"])[df["shift_idx"]]
    df["hours"] = 8.0
    df.insert(0, "window", np.arange(len(df)))
    return df


def make_events(t_days: np.ndarray, x: np.ndarray, segments: pd.DataFrame, t0: str) -> pd.DataFrame:
    to = segments["chainage_to_km"].to_numpy()
    seq = np.minimum(np.searchsorted(to, x, side="right"), len(to) - 1)
    ts = pd.Timestamp(t0, tz="UTC") + pd.to_timedelta(t_days, unit="D")
    df = pd.DataFrame({"timestamp": ts, "seq": seq, "chainage_km": x, "persons": 1})
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def simulate_hawkes(
    segments: pd.DataFrame,
    days: float,
    *,
    mu_per_day: float,
    theta: float,
    omega: float,
    sigma: float,
    seed: int,
    t0: str = "2021-01-01",
) -> pd.DataFrame:
    """Branching simulation of a 1-D space-time Hawkes process with hot background zones."""
    rng = np.random.default_rng(seed)
    length = float(segments["chainage_to_km"].iloc[-1])
    n0 = rng.poisson(mu_per_day * days)
    centres = np.array([0.15, 0.4, 0.55, 0.8]) * length
    comp = rng.integers(0, 5, n0)  # 4 hot zones + uniform background
    x = np.where(
        comp < 4, centres[np.minimum(comp, 3)] + rng.normal(0, 6, n0), rng.uniform(0, length, n0)
    )
    t = rng.uniform(0, days, n0)
    xs, ts = [x], [t]
    while len(t):  # one pass per generation (a handful)
        k = rng.poisson(theta, len(t))
        t = np.repeat(t, k) + rng.exponential(1 / omega, k.sum())
        x = np.repeat(x, k) + rng.normal(0, sigma, k.sum())
        xs.append(x)
        ts.append(t)
    x, t = np.concatenate(xs), np.concatenate(ts)
    ok = (x >= 0) & (x < length) & (t < days)
    return make_events(t[ok], x[ok], segments, t0)


def actual_counts(events: pd.DataFrame, windows: pd.DataFrame, n_seg: int) -> np.ndarray:
    t = _to_ns(events["timestamp"])
    st, en = _to_ns(windows["start_utc"]), _to_ns(windows["end_utc"])
    w = np.searchsorted(st, t, side="right") - 1
    ok = (w >= 0) & (t < en[np.clip(w, 0, None)])
    out = np.zeros((len(windows), n_seg))
    np.add.at(out, (w[ok], events["seq"].to_numpy()[ok]), 1.0)
    return out


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    seg = make_segments(60, seed=1)
    ev_ = simulate_hawkes(
        seg, 200, mu_per_day=4, theta=0.4, omega=0.5, sigma=1.0, seed=2, t0="2023-01-01"
    )
    win = make_windows("2023-06-01", 20)
    return ev_, seg, win


# --------------------------------------------------------------------------------------------
# leakage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(bl.BASELINES))
def test_leakage_free(small, name: str) -> None:
    events, seg, win = small
    base = bl.compute_baselines(events, seg, win, [name])[name]
    assert base.shape == (len(win), len(seg))
    k = 25
    start = win["start_utc"].iloc[k]
    ts = events["timestamp"]
    rng = np.random.default_rng(0)
    changed = events[ts < start].copy()
    later = events[ts > start].sample(frac=0.5, random_state=1).copy()  # delete half
    later["chainage_km"] = rng.uniform(0, 60, len(later))  # move the rest
    later["seq"] = np.minimum(later["chainage_km"].astype(int), 59)
    burst = pd.DataFrame(  # add a burst exactly at the window start
        {"timestamp": [start] * 5, "seq": [10] * 5, "chainage_km": [10.5] * 5, "persons": 1}
    )
    mod = pd.concat([changed, later, burst], ignore_index=True)
    got = bl.compute_baselines(mod, seg, win, [name])[name]
    np.testing.assert_allclose(got[: k + 1], base[: k + 1], rtol=1e-12, atol=1e-15)
    # ...and the burst is used from the next window on (strictly-before rule, not >=).
    assert not np.allclose(got[k + 1], base[k + 1])


def test_blocked_evaluation_matches_single_block(small, monkeypatch) -> None:
    events, seg, win = small
    ref = bl.compute_baselines(events, seg, win, ["kde", "hotspot", "etas"])
    monkeypatch.setattr(_events, "_MAX_PAIRS", 97)  # many window blocks and pair chunks
    got = bl.compute_baselines(events, seg, win, ["kde", "hotspot", "etas"])
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-9, atol=1e-15)


def test_events_at_start_excluded_exactly() -> None:
    seg = make_segments(5, equal=True)
    win = make_windows("2024-01-10", 1)
    start = win["start_utc"].iloc[0]
    events = pd.DataFrame(
        {
            "timestamp": [start - pd.Timedelta(microseconds=1), start],
            "seq": [1, 2],
            "chainage_km": [1.5, 2.5],
            "persons": [1, 1],
        }
    )
    h = bl.historical_frequency(events, seg, win, days=30)
    assert h[0, 1] > 0 and h[0, 2] == 0


# --------------------------------------------------------------------------------------------
# exact small cases
# --------------------------------------------------------------------------------------------


def test_historical_counts_brute_force(small) -> None:
    events, seg, win = small
    days = 30.0
    got = bl.historical_frequency(events, seg, win, days=days)
    counts = np.zeros_like(got)
    for w, st in enumerate(win["start_utc"]):  # brute force reference
        m = (events["timestamp"] < st) & (events["timestamp"] >= st - days * DAY)
        counts[w] = np.bincount(events.loc[m, "seq"], minlength=len(seg))
    np.testing.assert_allclose(got * days * 24 / win["hours"].to_numpy()[:, None], counts)


def test_historical_by_shift() -> None:
    seg = make_segments(10, equal=True)
    win = make_windows("2024-03-01", 2)
    # All history in the local night shift (22-06 CET = 21-05 UTC).
    t = np.arange(60) + 23.5 / 24  # 23:30 UTC = 00:30 CET
    events = make_events(t, np.full(60, 3.5), seg, "2023-12-01")
    s = bl.historical_frequency(events, seg, win, days=365, by_shift=True)
    night = win["shift_idx"].to_numpy() == 2
    assert s[night, 3].min() > 10 * s[~night, 3].max()
    # count * Laplace-smoothed share / days of history available (all 60 events are older).
    hist_days = (win["start_utc"] - events["timestamp"].min()) / DAY
    share = np.where(night, 61 / 63, 1 / 63)
    np.testing.assert_allclose(s[:, 3], 60 * share / hist_days.to_numpy(), rtol=1e-9)
    assert not s[:, [0, 1, 2, 4]].any()


def test_hotspot_weights_exact() -> None:
    seg = make_segments(12, equal=True)  # cells = segments (1 km)
    win = make_windows("2024-02-01", 2)
    t = np.array([0.5, 10.0, 20.2, 50.0, 58.9, 60.3])  # days after 2024-01-01
    x = np.array([3.2, 4.9, 7.7, 5.5, 0.1, 11.9])
    events = make_events(t, x, seg, "2024-01-01")
    got = bl.prospective_hotspot(
        events, seg, win, bandwidth_km=3.0, bandwidth_weeks=8, normalize=False
    )
    ts = events["timestamp"]
    mids = 0.5 * (seg["chainage_from_km"] + seg["chainage_to_km"]).to_numpy()
    expect = np.zeros_like(got)
    for w, st in enumerate(win["start_utc"]):  # the textbook formula, term by term
        for i in range(len(events)):
            if ts[i] >= st:
                continue
            tw = int((st - ts[i]) / pd.Timedelta(weeks=1))
            for s in range(len(seg)):
                d = abs(int(np.floor(events["chainage_km"][i])) - int(np.floor(mids[s])))
                if d < 3 and tw < 8:
                    expect[w, s] += 1.0 / ((1 + d) * (1 + tw))
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert np.count_nonzero(expect) > 10
    np.testing.assert_allclose(bl.hotspot_weight(2, 7, 3, 8), 1 / 24)
    assert bl.hotspot_weight(3, 0, 3, 8) == 0 and bl.hotspot_weight(0, 8, 3, 8) == 0


def test_kde_exact_single_event() -> None:
    seg = make_segments(20, equal=True)
    win = make_windows("2024-01-31", 1)
    events = make_events(np.array([0.0]), np.array([10.3]), seg, "2024-01-01")
    got = bl.kde_time_decay(events, seg, win, bandwidth_km=2.0, half_life_days=30, horizon_days=365)
    from scipy.special import ndtr

    lag = (win["start_utc"].iloc[0] - events["timestamp"].iloc[0]) / DAY
    lam = np.log(2) / 30
    # Gaussian mass per segment, kernel cut at 4 bandwidths (8 km) around the event.
    lo = np.clip(np.arange(20), 10.3 - 8, 10.3 + 8)
    hi = np.clip(np.arange(1, 21), 10.3 - 8, 10.3 + 8)
    mass = ndtr((hi - 10.3) / 2) - ndtr((lo - 10.3) / 2)
    t_mass = (1 - np.exp(-lam * lag)) / lam  # only `lag` days of history exist
    np.testing.assert_allclose(got[0], np.exp(-lam * lag) * mass / t_mass * 8 / 24, rtol=1e-9)


def test_etas_prediction_formula() -> None:
    seg = make_segments(20, equal=True)
    win = make_windows("2024-01-02", 1)
    events = make_events(np.array([0.75]), np.array([5.0]), seg, "2024-01-01")
    fit = bl.EtasFit(
        theta=0.5,
        omega=0.8,
        sigma_km=1.0,
        mu=np.full(20, 0.01),
        time_cutoff_days=14.0,
        space_cutoff_km=10.0,
        n_train=1,
        train_days=1.0,
        n_iter=0,
        converged=True,
        loglik=0.0,
    )
    got = bl.self_exciting(events, seg, win, fit=fit)
    from scipy.special import ndtr

    lag = (win["start_utc"].iloc[0] - events["timestamp"].iloc[0]) / DAY
    d = 8 / 24
    g = 0.5 * (np.exp(-0.8 * lag) - np.exp(-0.8 * (lag + d))) / (1 - np.exp(-0.8 * 14))
    mass = (ndtr(np.arange(1, 21) - 5.0) - ndtr(np.arange(20) - 5.0)) / (2 * ndtr(10.0) - 1)
    np.testing.assert_allclose(got[0], 0.01 * d + g * mass, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# ETAS recovery and comparison on a synthetic Hawkes process
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hawkes() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    seg = make_segments(300, seed=4)
    events = simulate_hawkes(
        seg, 2 * 365 + 60, mu_per_day=3.0, theta=0.5, omega=0.5, sigma=1.5, seed=5
    )
    win = make_windows("2023-01-01", 60)  # 2 years of training, 60 days of evaluation
    return events, seg, win


def test_etas_recovers_parameters(hawkes) -> None:
    events, seg, win = hawkes
    fit = bl.fit_etas(events, seg, win["start_utc"].iloc[0])
    assert fit.converged
    assert fit.theta == pytest.approx(0.5, abs=0.1)
    assert fit.omega == pytest.approx(0.5, rel=0.3)
    assert fit.sigma_km == pytest.approx(1.5, rel=0.25)
    # Background total ~ mu_per_day (the 4 zones sit well inside the border).
    assert fit.mu.sum() == pytest.approx(3.0, rel=0.2)


def test_etas_on_unclustered_data() -> None:
    seg = make_segments(100, seed=6)
    events = simulate_hawkes(seg, 365, mu_per_day=3.0, theta=0.0, omega=0.5, sigma=1.5, seed=9)
    fit = bl.fit_etas(events, seg, pd.Timestamp("2022-01-01", tz="UTC"))
    assert fit.converged and fit.theta < 0.05
    assert fit.mu.sum() == pytest.approx(3.0, rel=0.15)


def test_etas_beats_historical(hawkes) -> None:
    events, seg, win = hawkes
    preds = bl.compute_baselines(events, seg, win, ["historical", "etas"])
    actual = actual_counts(events, win, len(seg))
    lengths = (seg["chainage_to_km"] - seg["chainage_from_km"]).to_numpy()
    res = ev.evaluate_all(preds, actual, lengths)
    assert res["etas"]["hr_10"] > res["historical"]["hr_10"] + 0.05
    assert res["etas"]["deviance"] < res["historical"]["deviance"]
    # Both are calibrated in the large (expected events per window).
    assert res["etas"]["obs_exp"] == pytest.approx(1.0, abs=0.2)
    assert res["historical"]["obs_exp"] == pytest.approx(1.0, abs=0.2)


# --------------------------------------------------------------------------------------------
# registry, oracle, edge cases, runtime
# --------------------------------------------------------------------------------------------


def test_registry_and_oracle(small) -> None:
    events, seg, win = small
    out = bl.compute_baselines(events, seg, win, params={"kde": {"bandwidth_km": 1.0}})
    assert list(out) == ["historical", "hotspot", "kde", "etas"]
    for arr in out.values():
        assert arr.shape == (len(win), len(seg)) and np.all(arr >= 0)
    with pytest.raises(ValueError, match="unknown baseline"):
        bl.compute_baselines(events, seg, win, ["nope"])
    truth = np.ones((3, 4))
    o = bl.oracle(truth)
    assert o is not truth and np.array_equal(o, truth)
    with pytest.raises(ValueError):
        bl.oracle(np.ones(3))


def test_no_events_gives_zeros(small) -> None:
    _, seg, win = small
    empty = pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "seq": pd.Series([], dtype=int),
            "chainage_km": pd.Series([], dtype=float),
            "persons": pd.Series([], dtype=int),
        }
    )
    for name, arr in bl.compute_baselines(empty, seg, win).items():
        assert arr.shape == (len(win), len(seg)) and not arr.any(), name
