"""The patrolled world and the records-vs-truth label (issue 16, items 1, 4 and 5).

Catalogue (attack -> expected behaviour -> test):

- The simulator's records are an unbiased sample, so the feedback loop is never tested ->
  ``--world patrolled``: most records come from the few patrolled segment-shifts ->
  ``test_patrolled_records_come_from_patrols``.
- A patrolled world that is not reproducible -> identical files for the same seed, different
  for another -> ``test_patrolled_world_is_deterministic_per_seed``.
- Truth that only holds the recorded crossings -> ``truth.parquet`` holds every realised
  crossing; records are a subset cell by cell, the events file is exactly the records ->
  ``test_records_are_a_subset_of_truth``.
- Detection that does not depend on the patrols -> more officer-hours, more detections per
  crossing (same random numbers) -> ``test_more_effort_more_detections_per_crossing``.
- Crossers who ignore the patrols -> a stretch patrolled every shift loses flow to its
  neighbours, the total is kept -> ``test_deterrence_moves_crossings_away``.
- Police who ignore the records -> the patrolled world's police react to last week's records
  -> ``test_police_react_to_recent_records``.
- A world switch that silently mixes presets -> ``world_params`` refuses unknown worlds and
  contradictions; the CLI takes ``--world`` and refuses ``--scenario-param world=`` ->
  ``test_world_params_and_cli``.
- A report that does not say whether it scored records or true crossings -> metrics.json
  ``info.target``, the report's "Scored against" line and verdict, side-by-side table with a
  truth file; ``--against truth`` without crossings refused ->
  ``test_backtest_labels_records_vs_truth``, ``test_against_truth_needs_crossings``.
- A model card whose metrics read like true-crossing figures -> it says "recorded events" ->
  ``test_model_card_says_records``.
- A map that chases the patrols goes unnoticed -> the trial's chase share (map vs truth) ->
  ``test_chase_share``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.sim.scenario import simulate, write_scenario
from riskmodel.sim.world import PATROLLED_WORLD, World, world_params

SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"


def _params(seed: int = 2, **kw):
    base = dict(
        seed=seed,
        start="2024-03-01",
        end="2024-06-30",
        area_shares={},
        persons_per_year=60000,
        units_per_shift=(3, 3, 5),
    )
    return world_params("patrolled", **{**base, **kw})


@pytest.fixture(scope="module")
def patrolled(geo):
    return simulate(geo, _params(), SHIFTS)


def test_patrolled_records_come_from_patrols(geo, patrolled):
    s = patrolled.summary
    assert s["world"] == "patrolled"
    default = simulate(geo, _params().__class__(**{**_default_kw(), "seed": 2}), SHIFTS).summary
    # few patrolled cells, most of the records; the default world records nearly unbiased
    assert s["patrolled_cell_share"] < 0.1
    assert s["records_from_patrolled_share"] > 0.4
    assert s["records_from_patrolled_share"] > 2 * default["records_from_patrolled_share"]
    assert s["recorded_share_of_true"] < default["recorded_share_of_true"]


def _default_kw():
    return dict(
        start="2024-03-01",
        end="2024-06-30",
        area_shares={},
        persons_per_year=60000,
        units_per_shift=(3, 3, 5),
    )


def test_patrolled_world_is_deterministic_per_seed(geo, patrolled, tmp_path):
    a = write_scenario(patrolled, tmp_path / "a")
    b = write_scenario(simulate(geo, _params(), SHIFTS), tmp_path / "b")
    for k in ("events", "effort"):
        assert a[k].read_bytes() == b[k].read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(a["truth"]), pd.read_parquet(b["truth"]))
    c = simulate(geo, _params(seed=3), SHIFTS)
    assert not c.truth["crossings"].equals(patrolled.truth["crossings"])
    meta = json.loads(a["scenario"].read_text())
    assert meta["params"]["world"] == "patrolled"
    assert meta["params"]["p0"] == PATROLLED_WORLD["p0"]


def test_records_are_a_subset_of_truth(patrolled):
    tr = patrolled.truth
    assert (tr["recorded"] <= tr["crossings"]).all()
    assert tr["crossings"].sum() > 2 * tr["recorded"].sum()  # many crossings are never seen
    ev = patrolled.events.assign(window=patrolled.events["window"].astype(np.int64))
    per_cell = ev.groupby(["window", "segment_id"]).size().astype(np.int64)
    t = tr[tr["recorded"] > 0].assign(window=lambda x: x["window"].astype(np.int64))
    rec = t.set_index(["window", "segment_id"])["recorded"].astype(np.int64)
    pd.testing.assert_series_equal(per_cell.sort_index(), rec.sort_index(), check_names=False)
    # the effort file is the deployment
    assert patrolled.effort["officer_hours"].sum() == pytest.approx(tr["officer_hours"].sum())


def test_more_effort_more_detections_per_crossing(geo):
    p = _params(start="2024-06-01", end="2024-06-30")
    w = World(geo, p, SHIFTS)
    w.base = w.base * 20  # many crossings: a clear signal in one short run
    S, K = w.n_segments, w.n_shifts
    ratios = []
    for hours in (0.0, 4.0, 16.0):
        wk = World(geo, p, SHIFTS)
        wk.base = w.base.copy()
        rec = grp = 0
        for d in range(5):  # the same random numbers for every effort level
            st = wk.step_day(np.full((K, S), hours), crn=np.random.default_rng(d))
            rec += st.recorded.sum()
            grp += st.groups.sum()
        ratios.append(rec / grp)
    assert ratios[0] < ratios[1] < ratios[2]
    assert ratios[0] == pytest.approx(p.p0, abs=0.05)
    assert ratios[2] > 0.6


def test_deterrence_moves_crossings_away(geo):
    p = _params(start="2024-05-01", end="2024-06-30", theta=0.0, drift_sd=0.0)
    w = World(geo, p, SHIFTS)
    S, K = w.n_segments, w.n_shifts
    mu0 = w._mu_eff(0)
    stretch = np.abs(w.chainage_km - w.chainage_km[S // 2]) < 1.5
    eff = np.zeros((K, S))
    eff[:, stretch] = 16.0
    for _ in range(30):
        w.step_day(eff)
    mu1 = w._mu_eff(w.day) / (w.daily[w.day] / w.daily[0])
    assert mu1[stretch].sum() < 0.5 * mu0[stretch].sum()  # crossers avoid the stretch
    near = (np.abs(w.chainage_km - w.chainage_km[S // 2]) < 6) & ~stretch
    assert mu1[near].sum() > mu0[near].sum()  # ... and cross nearby instead
    assert mu1.sum() == pytest.approx(mu0.sum(), rel=1e-6)  # displaced, not destroyed


def test_police_react_to_recent_records(geo):
    def picks(weight: float) -> int:
        p = _params(start="2024-05-01", end="2024-05-31", police_reaction_weight=weight)
        w = World(geo, p, SHIFTS)
        w.police_recent[:] = 0.01
        w.police_recent[7] = 50.0  # last week's records all on segment 7
        return sum(int(w.police_effort(2)[7] > 0) for _ in range(200))

    assert picks(0.5) > 2 * picks(0.0) + 10


def test_world_params_and_cli(tmp_path):
    from click.testing import CliRunner

    from riskmodel.cli import main

    assert world_params().world == "default" and world_params().p0 == 0.5
    pw = world_params("patrolled", p0=0.2)
    assert pw.p0 == 0.2 and pw.police_habit_days == PATROLLED_WORLD["police_habit_days"]
    with pytest.raises(ValueError, match="unknown world"):
        world_params("tropical")
    with pytest.raises(ValueError, match="contradicts"):
        world_params("patrolled", world="default")
    r = CliRunner().invoke(
        main, ["simulate", "--world", "patrolled", "--scenario-param", "world=default",
               "--from", "2024-01-01", "--to", "2024-01-31", "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert r.exit_code != 0 and "--world" in r.output


@pytest.fixture(scope="module")
def patrolled_ds(geo, patrolled):
    from riskmodel.config.settings import Settings
    from riskmodel.model.pipeline import prepare_dataset

    return prepare_dataset(
        Settings(), patrolled.events, patrolled.effort, geo=geo, end="2024-06-30"
    )


_FAST = {"n_estimators": 20, "n_bags": 1, "n_jobs": 1}


@pytest.mark.parametrize("against", ["records", "truth"])
def test_backtest_labels_records_vs_truth(patrolled, patrolled_ds, tmp_path, against):
    from riskmodel.evaluation.backtest import run_backtest, write_report

    res = run_backtest(
        patrolled_ds,
        "2024-06-17",
        "2024-06-30",
        step_days=14,
        truth=patrolled.truth,
        params=_FAST,
        baselines=["hotspot"],
        draws=50,
        against=against,
    )
    paths = write_report(res, tmp_path)
    doc = json.loads(paths["metrics"].read_text())
    info = doc["info"]
    assert info["target"] == against
    assert info["model_ranking"] == ("threat" if against == "truth" else "expected")
    sbs = info["side_by_side"]
    assert set(sbs) == {"records", "truth"}
    assert {"model_threat", "model_expected", "hotspot", "oracle"} <= set(sbs["truth"]["methods"])
    assert sbs["truth"]["events"] == info["true_crossings_in_period"] > info["events_in_period"]
    # the main table scores the chosen target: it equals that column of the side-by-side table
    main = "model_threat" if against == "truth" else "model_expected"
    assert doc["results"]["model"]["hr_10"] == pytest.approx(sbs[against]["methods"][main]["hr_10"])
    md = paths["report"].read_text()
    noun = "true crossings" if against == "truth" else "recorded events"
    assert f"**Scored against {noun}**" in md
    assert f"of {noun} in the 10 %" in md  # the verdict names it too
    assert "## Recorded events and true crossings, side by side" in md
    assert "HR 10 % vs recorded events" in md and "HR 10 % vs true crossings" in md


def test_against_truth_needs_crossings(patrolled, patrolled_ds, tmp_path):
    from click.testing import CliRunner

    from riskmodel.cli import main
    from riskmodel.errors import InputError
    from riskmodel.evaluation.backtest import run_backtest

    old = patrolled.truth.drop(columns=["crossings"])
    for tr in (None, old):
        with pytest.raises(InputError, match="realised crossings"):
            run_backtest(patrolled_ds, "2024-06-17", "2024-06-30", truth=tr, against="truth")
    with pytest.raises(InputError, match="unknown backtest target"):
        run_backtest(patrolled_ds, "2024-06-17", "2024-06-30", against="arrests")
    r = CliRunner().invoke(
        main, ["backtest", "--events", "e.csv", "--against", "truth", "--from", "2024-06-17",
               "--to", "2024-06-30", "--out", str(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 2 and "--against truth needs --truth" in r.output


def test_model_card_says_records():
    from riskmodel.api._model import model_card

    man = {
        "created": "x",
        "training_window": {"from": "a", "until": "b"},
        "segments": 3,
        "segment_length_m": 1000.0,
        "crs": "EPSG:3794",
        "segment_set_sha256": "0" * 64,
        "shifts": SHIFTS,
        "timezone": "Europe/Ljubljana",
        "feature_spec_source": "spec",
        "feature_spec_sha256": "0" * 64,
        "fit": {"best_iteration": 3},
        "metrics": {"period": ["a", "b"], "note": "n", "table": {"model": {"hr_10": 0.5}}},
    }
    card = model_card("m", man)
    assert "Scored against **recorded events**" in card and "--against truth" in card


def test_chase_share():
    from riskmodel.sim.trial.loop import chase_share

    lengths = np.ones(10)
    patrolled = np.zeros((2, 10), bool)
    patrolled[:, 0] = True
    on = np.zeros((2, 10))
    on[:, 0] = 5.0
    off = np.zeros((2, 10))
    off[:, 9] = 5.0
    assert chase_share(on, patrolled, lengths) == pytest.approx(1.0)
    assert chase_share(off, patrolled, lengths) == pytest.approx(0.0)
    half = patrolled.copy()
    half[1, 0] = False
    assert chase_share(on, half, lengths) == pytest.approx(0.5)


def test_trial_on_the_patrolled_world(tmp_path):
    """The trial's world option: the patrolled preset reaches the world; the report carries the
    chase share and the oracle ratio per policy."""
    from conftest import synthetic_geography

    from riskmodel.errors import ConfigError
    from riskmodel.sim.trial import TrialConfig, run_trial, write_report

    with pytest.raises(ConfigError, match="unknown world"):
        TrialConfig(world="tropical")
    with pytest.raises(ConfigError, match="unknown scenario parameter 'world'"):
        TrialConfig(scenario={"world": "patrolled"})
    cfg = TrialConfig(
        weeks=2,
        units=4,
        burn_in_days=56,
        retrain_weeks=2,
        route_shift=False,
        start="2024-06-03",
        policies=("uniform",),
        scenario={"area_shares": {}, "persons_per_year": 150_000},
        world="patrolled",
        n_estimators=20,
    )
    res = run_trial(synthetic_geography(km=24.0), cfg, shifts=SHIFTS)
    wk = res.weekly()
    assert wk["chase_share_10"].between(0, 1).all()
    assert wk["chase_share_10_truth"].between(0, 1).all()
    tot = res.runs[0]["uniform"].totals
    assert tot["share_recorded"] < 0.45  # low detection off patrol: the patrolled preset
    assert {"chase_share_10_mean", "oracle_ratio_10_mean", "oracle_ratio_10_min"} <= set(tot)
    md = write_report(res, tmp_path)["markdown"].read_text()
    assert "patrolled world" in md and "chase share" in md.lower()
    assert json.loads((tmp_path / "trial.json").read_text())["config"]["world"] == "patrolled"
