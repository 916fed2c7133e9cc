"""Closed-loop trial: tiny worlds, a few weeks (fast)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from conftest import SHIFTS, synthetic_geography

from riskmodel.errors import ConfigError
from riskmodel.features import FeatureSpec, build_features
from riskmodel.sim.trial import POLICIES, TrialConfig, run_trial, write_report
from riskmodel.sim.trial.loop import _run_policy, _seed_world
from riskmodel.sim.world import ScenarioParams, World

# Small but busy: concentrated attraction and many crossings, so a few weeks say something.
SCEN = {"area_shares": {}, "persons_per_year": 150_000, "field_sd": 1.2}


def _cfg(**kw) -> TrialConfig:
    base = dict(
        weeks=3,
        units=4,
        burn_in_days=84,
        retrain_weeks=1,
        route_shift_week=1,
        start="2024-06-03",
        scenario=SCEN,
    )
    base.update(kw)
    return TrialConfig(**base)


@pytest.fixture(scope="module")
def tiny_geo():
    return synthetic_geography(km=24.0)


@pytest.fixture(scope="module")
def result(tiny_geo):
    return run_trial(tiny_geo, _cfg(policies=POLICIES), shifts=SHIFTS)


def _world(geo, **kw) -> World:
    p = ScenarioParams(seed=3, start="2024-06-01", end="2024-06-10", **{**SCEN, **kw})
    return World(geo, p, SHIFTS)


def test_no_crossers_no_detections(tiny_geo):
    w = _world(tiny_geo)
    w.base[:] = 0.0  # nobody crosses anywhere
    S, K = w.n_segments, w.n_shifts
    full = np.full((K, S), 16.0)  # a patrol on every segment in every shift
    for d in range(3):
        st = w.step_day(full, crn=np.random.default_rng(d))
        assert st.expected_crossings.sum() == 0
        assert st.groups.sum() == 0 and st.recorded.sum() == 0 and st.patrol_recorded.sum() == 0
    # the same world with crossers and the same patrols does record
    w2 = _world(tiny_geo)
    assert w2.step_day(full, crn=np.random.default_rng(0)).recorded.sum() > 0


def test_patrols_add_detections_on_common_random_numbers(tiny_geo):
    S, K = tiny_geo.segments.shape[0], 3
    a, b = _world(tiny_geo), _world(tiny_geo)
    eff = np.zeros((K, S))
    eff[:, ::2] = 16.0
    sa = a.step_day(np.zeros((K, S)), crn=np.random.default_rng(7))
    sb = b.step_day(eff, crn=np.random.default_rng(7))
    # same crossings (the patrols act on tomorrow's flows only), more recorded where patrolled
    np.testing.assert_array_equal(sa.groups, sb.groups)
    assert (sb.recorded >= sa.recorded).all()
    np.testing.assert_array_equal(sb.recorded - sa.recorded, sb.patrol_recorded)
    assert sb.patrol_recorded[:, 1::2].sum() == 0 and sb.patrol_recorded.sum() > 0
    # ... and the crossers react: tomorrow's intensity moves away from the patrolled segments
    ia, ib = a.intensity(), b.intensity()
    assert ib[:, ::2].sum() < ia[:, ::2].sum()
    assert ib[:, 1::2].sum() > ia[:, 1::2].sum()


def test_checks_change_next_week_and_training_data(tiny_geo):
    cfg = _cfg(weeks=2, policies=("top-k", "uniform"), route_shift=False)
    world, learner, _, _, static_risk = _seed_world(
        tiny_geo, cfg, 0, SHIFTS, "Europe/Ljubljana", FeatureSpec.load()
    )
    lengths = tiny_geo.segments["length_m"].to_numpy(float)
    # the learner predicts with the in-window effort set to zero (effort-neutral risk)
    w0 = cfg.burn_in_days * 3
    X = build_features(
        learner.panel,
        learner.static,
        learner.spec,
        np.arange(w0, w0 + 3),
        effort_override=np.zeros((3, lengths.size), np.float32),
    )
    np.testing.assert_allclose(
        learner.predict_neutral(w0, 3).ravel(), learner.model.predict(X[learner.cols]), rtol=1e-6
    )
    out = {}
    for pol in ("top-k", "uniform"):
        lr = learner.fork()
        run = _run_policy(pol, copy.deepcopy(world), lr, cfg, 0, None, lengths, static_risk)
        out[pol] = (run, lr)
    K = 3
    w0, w1 = cfg.burn_in_days * K, (cfg.burn_in_days + 14) * K
    ea = out["top-k"][1].panel.effort[w0:w1]
    eb = out["uniform"][1].panel.effort[w0:w1]
    # the training data hold exactly the policy's checks (officer-hours where it checked) ...
    assert ((ea > 0).sum(axis=1) == cfg.units).all() and ((eb > 0).sum(axis=1) == cfg.units).all()
    assert not np.array_equal(ea > 0, eb > 0)
    # ... the burn-in history is shared ...
    np.testing.assert_array_equal(
        out["top-k"][1].panel.counts[:w0], out["uniform"][1].panel.counts[:w0]
    )
    # ... and week 2 differs: other detections, other recorded training rows, other flows
    ra, rb = out["top-k"][0].weekly, out["uniform"][0].weekly
    ca = out["top-k"][1].panel.counts[w0 + 21 : w1]
    cb = out["uniform"][1].panel.counts[w0 + 21 : w1]
    assert not np.array_equal(ca, cb)
    assert ra.loc[1, "expected_crossings"] != rb.loc[1, "expected_crossings"]
    assert ra.loc[1, "patrol_detections"] != rb.loc[1, "patrol_detections"]
    # retraining happened on the new data
    assert out["top-k"][1].fits == 2 and out["uniform"][1].fits == 2


def test_deterministic_for_seed(tiny_geo):
    cfg = _cfg(weeks=2, policies=("randomised",))
    a = run_trial(tiny_geo, cfg, shifts=SHIFTS)
    b = run_trial(tiny_geo, cfg, shifts=SHIFTS)
    assert a.weekly().equals(b.weekly())
    assert a.summary == b.summary
    assert a.weekly()["model_fits"].tolist() == [1, 2]  # the retrain is covered too
    c = run_trial(
        tiny_geo, _cfg(weeks=1, policies=("randomised",), seed=5, route_shift=False), shifts=SHIFTS
    )
    assert c.weekly().loc[0, "recorded"] != a.weekly().loc[0, "recorded"]


def test_oracle_beats_uniform(result):
    s = result.summary
    key = "expected_patrol_detections_per_patrol_hour"
    assert s["oracle"][key]["mean"] > s["uniform"][key]["mean"]
    assert (
        s["oracle"]["patrol_detections_per_patrol_hour"]["mean"]
        >= s["uniform"]["patrol_detections_per_patrol_hour"]["mean"]
    )
    # legal side: caps hold for the engine's plan, top-k and static are deterministic
    cap = result.config.max_share_of_shifts
    assert s["randomised"]["max_share_of_shifts_30d"]["mean"] <= cap + 1e-9
    assert s["top-k"]["entropy_mean"]["mean"] == 0 and s["static"]["entropy_mean"]["mean"] == 0
    assert s["uniform"]["entropy_mean"]["mean"] == pytest.approx(1.0)
    assert 0 < s["randomised"]["entropy_mean"]["mean"] < 1


def test_report_files(result, tmp_path):
    paths = write_report(result, tmp_path / "rep")
    for k in ("markdown", "json", "weekly", "hit_rate_png", "detections_png", "legal_png"):
        assert paths[k].is_file() and paths[k].stat().st_size > 0
    doc = json.loads(paths["json"].read_text())
    assert set(doc["policies"]) == set(POLICIES)
    for pol in POLICIES:
        summ = doc["policies"][pol]["summary"]
        assert summ["patrol_detections_per_patrol_hour"]["mean"] is not None
        assert len(doc["policies"][pol]["weekly_mean"]["hit_rate_10"]) == result.config.weeks
    assert doc["route_shift"]["0"]["enabled"]
    md = paths["markdown"].read_text()
    assert all(p in md for p in POLICIES) and "## Findings" in md
    assert not list((tmp_path / "rep").glob("*.tmp*"))  # atomic writes left nothing behind


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown policy"):
        TrialConfig(policies=("random",))
    with pytest.raises(ConfigError, match="route_shift_week"):
        TrialConfig(weeks=4, route_shift_week=9)
    with pytest.raises(ConfigError, match="scenario parameter"):
        TrialConfig(scenario={"nope": 1})
    with pytest.raises(ConfigError, match="recalibrate_days"):
        TrialConfig(recalibrate_days=-1)


def test_recent_residual_factor_shrinks_and_pools():
    from scipy import sparse

    from riskmodel.model.counts import recent_residual_factor

    y = np.zeros((10, 3))
    m = np.full((10, 3), 0.1)  # 1 expected event per segment over the windows
    y[:, 0] = 1.0  # segment 0: 10 recorded where 1 was forecast
    f = recent_residual_factor(y, m, prior=20.0)
    assert f[0] == pytest.approx(30 / 21) and f[1] == pytest.approx(20 / 21)
    assert recent_residual_factor(y, m, prior=1e6) == pytest.approx(np.ones(3), abs=1e-4)
    assert recent_residual_factor(y, m, prior=1e-6)[0] == pytest.approx(10.0, rel=1e-4)
    pool = sparse.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], float))
    fp = recent_residual_factor(y, m, pool, prior=20.0)
    assert fp[1] == pytest.approx(30 / 23) and fp[2] == pytest.approx(
        20 / 22
    )  # neighbours' evidence
    with pytest.raises(ValueError):
        recent_residual_factor(y, m, prior=0)


def test_engine_corrects_its_map_by_recent_residuals(tiny_geo):
    """The learner keeps its own forecasts of recorded windows and scales the next map by the
    recorded/forecast ratio; with recalibrate_days=0 the map is the plain model."""
    cfg = _cfg(weeks=1, route_shift=False)
    spec = FeatureSpec.load()
    world, learner, _, _, _ = _seed_world(tiny_geo, cfg, 0, SHIFTS, "Europe/Ljubljana", spec)
    K = world.n_shifts
    w0 = cfg.burn_in_days * K
    assert np.allclose(learner.residual_factor(w0), 1.0)  # no forecasts yet
    base = learner.predict_neutral(w0, K)
    learner.note_forecast(w0 - 7 * K, 7 * K)  # the last recorded week
    assert learner.has_forecast[w0 - 7 * K : w0].all()
    f = learner.residual_factor(w0)
    assert not np.allclose(f, 1.0)
    np.testing.assert_allclose(learner.predict_neutral(w0, K), base * f[None, :], rtol=1e-6)
    off = copy.copy(learner)
    off.cfg = _cfg(weeks=1, route_shift=False, recalibrate_days=0)
    np.testing.assert_allclose(off.predict_neutral(w0, K), base, rtol=1e-6)


def test_randomised_policy_is_the_shipped_planner(tiny_geo):
    """The randomised policy's day is make_plans on the day's risk table with the trial's caps
    and its running checks history: same checks, same coverage."""
    from riskmodel.planning import make_plans
    from riskmodel.sim.trial.policies import _Policy

    cfg = _cfg(weeks=1, route_shift=False)
    world, learner, _, _, _ = _seed_world(
        tiny_geo, cfg, 0, SHIFTS, "Europe/Ljubljana", FeatureSpec.load()
    )
    K, S = world.n_shifts, world.n_segments
    win = learner.panel.windows
    pol = _Policy("randomised", cfg, learner.panel.segments, win, 0, "Europe/Ljubljana")
    d = cfg.burn_in_days
    risk = learner.predict_neutral(d * K, K)
    history = pol.history.copy()
    pick, cov = pol.decide_day(d, risk, risk, np.random.default_rng(0))
    plans = make_plans(
        pol._risk_frame(d, risk),
        cfg.units,
        config=pol.plan_config,
        seed=pol.plan_seed,
        history=history,
        tz="Europe/Ljubljana",
    )
    ids = learner.panel.segments["segment_id"].astype(str).to_numpy()
    for k, plan in enumerate(plans):
        assert set(ids[pick[k]]) == set(plan.checks["segment_id"])
        got = dict(zip(ids, cov[k], strict=True))
        for sid, c in plan.coverage["coverage"].items():
            assert got[str(sid)] == pytest.approx(c)
    assert pick.sum() == K * cfg.units and cov.max() <= cfg.per_shift_cap + 1e-9
    assert len(pol.history) == K * cfg.units  # the day's checks count for the caps
    assert pol.plan_config.max_share_of_shifts == cfg.max_share_of_shifts and S == len(ids)


def test_caps_hold_in_the_loop(result):
    """The legal statistic (worst 30 consecutive days, whole days as the cap counts them) never
    exceeds the share cap for the policies that plan with the caps."""
    cap = result.config.max_share_of_shifts
    for pol in ("randomised", "oracle"):
        for seed_runs in result.runs.values():
            assert seed_runs[pol].totals["max_share_of_shifts_30d"] <= cap + 1e-12
    assert result.runs[0]["top-k"].totals["max_share_of_shifts_30d"] > cap  # top-k ignores it
