import json

import numpy as np
import pandas as pd

from riskmodel.sim.scenario import simulate, write_scenario
from riskmodel.sim.world import ScenarioParams

SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"


def test_deterministic_for_seed(geo, tmp_path):
    p = ScenarioParams(seed=7, start="2024-07-01", end="2024-08-31", area_shares={})
    a = write_scenario(simulate(geo, p, SHIFTS), tmp_path / "a")
    b = write_scenario(simulate(geo, p, SHIFTS), tmp_path / "b")
    for k in ("events", "effort"):
        assert a[k].read_bytes() == b[k].read_bytes()
    c = simulate(
        geo, ScenarioParams(seed=8, start="2024-07-01", end="2024-08-31", area_shares={}), SHIFTS
    )
    assert len(c.events) != len(pd.read_csv(a["events"])) or not c.events["lon"].equals(
        pd.read_csv(a["events"])["lon"]
    )
    meta = json.loads(a["scenario"].read_text())
    assert meta["params"]["seed"] == 7 and "sha256" in meta["files"]["events"]


def test_schema_and_truth(scenario, geo):
    ev = scenario.events
    assert {"event_id", "timestamp", "lon", "lat", "persons", "type", "source"} <= set(ev.columns)
    assert ev["event_id"].is_unique
    assert str(ev["timestamp"].dt.tz) == "Europe/Ljubljana"
    assert ev["persons"].between(1, 45).all()
    assert set(ev["type"]) <= {"apprehension", "detection", "smuggler_arrest"}
    tr = scenario.truth
    assert len(tr) == len(geo.segments) * len(scenario.windows)
    assert (tr["expected_recorded"] <= tr["expected_crossings"] + 1e-6).all()
    # recorded events match the expectation in total (Poisson thinning)
    exp = tr["expected_recorded"].sum()
    assert abs(len(ev) - exp) < 5 * np.sqrt(exp)


def test_night_peak_and_season(scenario):
    h = scenario.events["timestamp"].dt.hour
    night = ((h >= 22) | (h < 6)).mean()
    assert night > 0.5
    m = scenario.events["timestamp"].dt.month
    assert (m.isin([8, 9, 10])).mean() > 3 / 12 * 1.3


def test_detection_bias_effort_raises_recording(scenario):
    tr = scenario.truth
    patrolled = tr["officer_hours"] > 0
    ratio = tr["expected_recorded"] / tr["expected_crossings"].clip(lower=1e-12)
    assert ratio[patrolled].mean() > ratio[~patrolled].mean() + 0.2


def test_displacement_moves_flow(geo):
    base = dict(
        start="2024-05-01",
        end="2024-06-30",
        area_shares={},
        theta=0.0,
        units_per_shift=(10, 10, 10),
        patrol_exploration=0.0,
    )
    calm = simulate(geo, ScenarioParams(seed=3, displacement_strength=0.0, **base), SHIFTS)
    adapt = simulate(geo, ScenarioParams(seed=3, displacement_strength=2.0, **base), SHIFTS)

    def share_on_patrolled(sc):
        t = sc.truth
        eff = t.groupby("segment_id")["officer_hours"].sum()
        top = eff.nlargest(10).index
        lam = t.groupby("segment_id")["expected_crossings"].sum()
        return lam[top].sum() / lam.sum()

    assert share_on_patrolled(adapt) < share_on_patrolled(calm)
    # flow is displaced, not destroyed
    tot_a = adapt.truth["expected_crossings"].sum()
    tot_c = calm.truth["expected_crossings"].sum()
    assert 0.8 < tot_a / tot_c < 1.2


def test_near_repeat_raises_intensity(geo):
    base = dict(start="2024-05-01", end="2024-06-30", area_shares={}, displacement_strength=0.0)
    a = simulate(geo, ScenarioParams(seed=4, theta=0.0, **base), SHIFTS)
    b = simulate(geo, ScenarioParams(seed=4, theta=0.6, **base), SHIFTS)
    assert b.truth["expected_crossings"].sum() > 1.2 * a.truth["expected_crossings"].sum()


def test_deterrence_follows_chance_of_getting_through(geo):
    """A stretch checked every shift keeps exp(-k * officer-hours) of its flow (strength 1),
    the rest goes to its neighbours; a stretch checked in a quarter of the shifts keeps more."""
    from riskmodel.sim.world import World

    p = ScenarioParams(
        seed=5, start="2024-05-01", end="2024-08-31", area_shares={}, theta=0.0, p0=0.5
    )
    world = World(geo, p, SHIFTS)
    S, K = world.n_segments, world.n_shifts
    always, quarter = 10, 40
    for d in range(120):
        eff = np.zeros((K, S))
        eff[:, always] = 16.0
        if d % 4 == 0:
            eff[:, quarter] = 16.0
        world.step_day(eff)
    e = np.exp(-p.detect_per_officer_hour * 16.0)  # 0.28
    assert abs(world.escape[always] - e) < 0.01
    assert abs(world.escape[quarter] - (0.25 * e + 0.75)) < 0.05
    mu = world.base * world.daily[world.day]
    eff_mu = world._mu_eff(world.day)
    # the checked stretch keeps about e of its own flow (plus a little displaced into it)
    assert e * 0.95 < eff_mu[always] / mu[always] < e + 0.05
    assert eff_mu[always] / mu[always] < eff_mu[quarter] / mu[quarter] < 1.0
    # displaced, not destroyed: total flow unchanged, neighbours within ~6 km gain
    assert abs(eff_mu.sum() - mu.sum()) < 1e-9 * mu.sum()
    near = np.abs(world.chainage_km - world.chainage_km[always]) < 6
    near[always] = False
    assert (eff_mu[near] > mu[near]).all()


def test_route_drift_moves_intensity_over_time(geo):
    """drift_sd > 0: stretches wax and wane (OU in time, smooth along the border) while the
    total stays about the same; drift_sd = 0 leaves the static world unchanged."""
    from riskmodel.sim.world import World

    kw = dict(seed=6, start="2024-01-01", end="2024-12-31", area_shares={}, theta=0.0)
    still = World(geo, ScenarioParams(**kw), SHIFTS)
    moving = World(geo, ScenarioParams(drift_sd=0.5, drift_days=30.0, **kw), SHIFTS)
    shares_still, shares_moving, totals = [], [], []
    for _ in range(240):
        for w, out in ((still, shares_still), (moving, shares_moving)):
            lam = w.intensity().sum(axis=0)
            out.append(lam / lam.sum())
            w.step_day(np.zeros((w.n_shifts, w.n_segments)))
        totals.append(moving.intensity().sum() / still.intensity().sum())
    a, b = np.array(shares_still), np.array(shares_moving)
    assert np.allclose(a[0], a[-1])  # no patrols, no excitation: a static map
    assert np.corrcoef(b[0], b[-1])[0, 1] < np.corrcoef(b[0], b[5])[0, 1]  # it wanders
    assert 0.6 < np.mean(totals) < 1.4
    # stationary sd ~ drift_sd (few independent stretches on a 60 km border: loose bounds)
    assert 0.2 < moving.drift.std() < 0.8
    # neighbours move together (correlated over ~drift_km), far stretches independently
    d = moving.drift
    assert np.corrcoef(d[:-1], d[1:])[0, 1] > 0.8


def test_scenario_values_are_checked():
    """Every numeric parameter has a range; out of it (or a reversed period) is a one-line
    configuration error before anything is simulated, not a numpy traceback."""
    import dataclasses

    import pytest

    from riskmodel.errors import ConfigError
    from riskmodel.sim.params import RANGES, ScenarioParams

    floats = {f.name for f in dataclasses.fields(ScenarioParams) if f.type == "float"}
    assert floats - {"theta"} == set(RANGES)
    ok = ScenarioParams(start="2025-01-01", end="2025-01-31")
    assert ok.resolved().end == "2025-01-31"
    for change, msg in (
        ({"persons_per_year": -5.0}, "persons_per_year = -5.0 must be > 0"),
        ({"drift_sd": -1.0}, "drift_sd = -1.0 must be >= 0"),
        ({"p0": 1.5}, "p0 = 1.5 must be >= 0 and <= 1"),
        ({"theta": 1.0}, "theta = 1.0 must be >= 0 and < 1"),
        ({"excitation_days": 0.0}, "excitation_days = 0.0 must be > 0"),
        ({"annual_trend": float("nan")}, "annual_trend"),
        ({"units_per_shift": (3, -1)}, "units_per_shift"),
        ({"area_shares": {"Koper": 0.0}}, "area_shares"),
        ({"end": "2024-12-01"}, "ends before it starts"),
        ({"start": "1.1.2025"}, "not YYYY-MM-DD"),
    ):
        with pytest.raises(ConfigError, match=msg):
            dataclasses.replace(ok, **change).resolved()
