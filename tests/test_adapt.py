"""Adaptation in production (issue 16, items 3-4): the forecast store and the recent-residual
correction of ``riskmodel score``/``daily``; both ``expected`` and ``threat`` in every output.

Catalogue (attack -> expected behaviour -> test):

- A second score of a stored date rewrites history -> identical forecasts write nothing,
  different ones become a new part; readers take the earliest part
  -> test_store_round_trip_and_append_only
- A store from another border/workspace is read silently -> its parts are skipped and listed
  -> test_store_skips_parts_of_another_segment_set
- Production ignores its recent residuals -> scores are multiplied by
  ``recent_residual_factor`` (the trial's function and defaults) of stored forecasts vs recorded
  events; under-forecast stretches move up -> test_adaptation_moves_scores_towards_residuals
- ``--no-adapt`` changes something else -> the unadapted scores bit for bit; provenance says
  whether it ran -> test_no_adapt_is_bit_identical_and_provenance_records_it
- Residuals against the wrong effort (forecast assumed no patrol, a patrol came) -> the shift
  is forecast again with the effort spent; in-sample forecasts never count
  -> test_wrong_effort_is_refreshed_and_in_sample_ignored
- Outputs that do not say which number is which -> every risk table has ``expected`` and
  ``threat`` (+ ``exposure``, ``adapt_factor``), ranks follow ``threat``
  -> test_every_output_carries_expected_and_threat
- Two runs append at once -> the second waits for the store lock (a few seconds), then appends
  -> test_store_append_waits_for_a_concurrent_append
- `--no-adapt` missing on a verb -> score and daily both take it -> test_cli_score_and_daily_have_no_adapt
- ``daily`` does not keep or use its forecasts -> each morning appends to the store, the next
  morning adapts (provenance, briefing line), ``adapt=False`` gives factors of 1
  -> test_daily_stores_its_forecasts_and_adapts_the_next_morning
- The trial and production drift apart -> one set of defaults
  -> test_trial_and_production_share_the_rule
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.config.workspace import Workspace
from riskmodel.model import RESIDUAL_DAYS, RESIDUAL_KM, RESIDUAL_PRIOR
from riskmodel.model.counts import recent_residual_factor
from riskmodel.scoring.store import STORE_COLUMNS, ForecastStore

FAST = {"n_estimators": 40, "learning_rate": 0.2, "n_bags": 1, "n_jobs": 1}
UNTIL = "2024-11-30"


@pytest.fixture(scope="module")
def trained(dataset, settings, tmp_path_factory):
    from riskmodel.api import train_bundle
    from riskmodel.model.bundle import load_bundle

    root = tmp_path_factory.mktemp("ws")
    models = root / "models"
    path, _ = train_bundle(dataset, UNTIL, settings=settings, params=FAST, root=models)
    bundle = load_bundle(path, root=models, trust=True)
    return bundle


def _ws_settings(settings, root):
    return dataclasses.replace(settings, workspace=Workspace(root))


def _stored(settings, bundle, dataset, days, tamper=None):
    """Score ``days`` without adaptation and store them (optionally tampering the rows)."""
    from riskmodel.api import score_dates
    from riskmodel.api._score import store_forecasts

    for d in days:
        sc = score_dates(settings, bundle, dataset, d, reasons=False, adapt=False)
        if tamper is not None:
            sc = tamper(sc)
        store_forecasts(settings, bundle, sc)


def _rows(n=3, date="2024-12-01", seg="abc", value=1.0):
    return pd.DataFrame(
        {
            "date": date,
            "shift": "night",
            "shift_start": f"{date}T22:00:00+01:00",
            "segment_id": [f"S{i}" for i in range(n)],
            "model_id": "m1",
            "trained_until": "2024-11-30",
            "segment_set_sha256": seg,
            "expected": value,
            "threat": value / 2,
            "exposure": 0.0,
            "adapt_factor": 1.0,
        }
    )


def test_store_round_trip_and_append_only(tmp_path):
    store = ForecastStore(tmp_path / "forecasts", "abc")
    first = store.append(_rows())
    assert len(first) == 1 and first[0].name.startswith("part-00001-m1-")
    assert first[0].parent.name == "date=2024-12-01"
    assert store.append(_rows()) == []  # the same forecasts again: nothing written
    second = store.append(_rows(value=5.0))  # a different re-score: a new part, history kept
    assert len(second) == 1 and second[0].name.startswith("part-00002-")
    assert first[0].exists()
    got = store.read("2024-11-25", "2024-12-05")
    assert list(got.rows.columns) == [*STORE_COLUMNS, "part"]
    assert len(got.rows) == 3 and (got.rows["expected"] == 1.0).all()  # the earliest counts
    assert got.files == [str(p.relative_to(store.root)) for p in first + second]
    assert store.read("2024-12-02", "2024-12-05").rows.empty


def test_store_skips_parts_of_another_segment_set(tmp_path, caplog):
    ForecastStore(tmp_path, "other").append(_rows(seg="other"))
    got = ForecastStore(tmp_path, "abc").read("2024-12-01", "2024-12-01")
    assert got.rows.empty and got.files == []
    assert got.skipped and "another segment set" in got.skipped[0]["why"]
    assert "another segment set" in caplog.text


def test_adaptation_moves_scores_towards_residuals(trained, dataset, settings, tmp_path):
    from riskmodel.api import score_dates
    from riskmodel.scoring.adapt import residual_pool

    s = _ws_settings(settings, tmp_path)
    n = 8  # the model "under-forecast" the first segments by a factor 4 in the stored forecasts

    def tamper(sc):
        sc = sc.copy()
        low = sc["seq"] < n
        sc.loc[low, "expected_model"] = sc.loc[low, "expected_model"] / 4
        return sc

    days = [d.date().isoformat() for d in pd.date_range("2024-12-01", "2024-12-14")]
    _stored(s, trained, dataset, days, tamper)
    base = score_dates(s, trained, dataset, "2024-12-15", reasons=False, adapt=False)
    ad = score_dates(s, trained, dataset, "2024-12-15", reasons=False)
    info = ad.attrs["adaptation"]
    assert info["ran"] and info["shifts_used"] == 14 * 3 and info["models"] == [trained.model_id]
    assert info["window_days"] == RESIDUAL_DAYS and info["prior"] == RESIDUAL_PRIOR
    assert len(info["store_files"]) == 14
    # The factor is the trial's function of stored forecasts vs recorded events.
    w0, w1 = dataset.window_of_date("2024-12-01"), dataset.window_of_date("2024-12-15")
    m = np.stack(
        [
            g.sort_values("seq")["expected_model"].to_numpy()
            for _, g in tamper(
                pd.concat(
                    [score_dates(s, trained, dataset, d, reasons=False, adapt=False) for d in days]
                )
            ).groupby("window")
        ]
    )
    f = recent_residual_factor(
        dataset.panel.counts[w0:w1], m, residual_pool(dataset, RESIDUAL_KM), prior=RESIDUAL_PRIOR
    )
    S = dataset.n_segments
    np.testing.assert_allclose(ad["adapt_factor"].to_numpy()[:S], f[ad["seq"].to_numpy()[:S]])
    np.testing.assert_allclose(ad["threat"], base["threat"] * ad["adapt_factor"])
    np.testing.assert_allclose(ad["expected"], base["expected"] * ad["adapt_factor"])
    # Direction: the under-forecast stretch is corrected upwards and climbs the ranking.
    low = ad["seq"] < n
    assert ad.loc[low, "adapt_factor"].mean() > 1.5 * ad.loc[~low, "adapt_factor"].mean()
    assert ad.loc[low, "rank"].mean() < base.loc[low, "rank"].mean()


def test_no_adapt_is_bit_identical_and_provenance_records_it(trained, dataset, settings, tmp_path):
    from riskmodel.api import provenance, score_dates

    s = _ws_settings(settings, tmp_path)
    plain = score_dates(settings, trained, dataset, "2024-12-10", reasons=False)  # no workspace
    assert plain.attrs["adaptation"] == {"ran": False, "why": "no workspace: no forecast store"}
    empty = score_dates(s, trained, dataset, "2024-12-10", reasons=False)  # empty store
    assert not empty.attrs["adaptation"]["ran"]
    _stored(s, trained, dataset, ["2024-12-07", "2024-12-08", "2024-12-09"])
    off = score_dates(s, trained, dataset, "2024-12-10", reasons=False, adapt=False)
    on = score_dates(s, trained, dataset, "2024-12-10", reasons=False)
    assert off.attrs["adaptation"] == {"ran": False, "why": "turned off (--no-adapt)"}
    assert on.attrs["adaptation"]["ran"]
    pd.testing.assert_frame_equal(off, plain, check_exact=True)
    pd.testing.assert_frame_equal(empty, plain, check_exact=True)
    assert (off["adapt_factor"] == 1.0).all() and not (on["adapt_factor"] == 1.0).all()
    prov = provenance(trained, dataset, on.attrs["adaptation"])
    assert prov["adaptation"]["ran"] and prov["adaptation"]["factor"]["max"] > 0
    assert prov["adaptation"]["store_files"][0].startswith("date=2024-12-07/part-00001-")


def test_wrong_effort_is_refreshed_and_in_sample_ignored(trained, dataset, settings, tmp_path):
    from riskmodel.api import score_dates

    s = _ws_settings(settings, tmp_path)

    def no_patrol(sc):  # the forecast assumed nobody on the first segments
        sc = sc.copy()
        sc.loc[sc["seq"] < 5, "exposure"] = sc.loc[sc["seq"] < 5, "exposure"] + 16.0
        return sc

    _stored(s, trained, dataset, ["2024-12-08", "2024-12-09"], no_patrol)
    _stored(s, trained, dataset, ["2024-11-29", "2024-11-30"])  # inside the training window
    info = score_dates(s, trained, dataset, "2024-12-10", reasons=False).attrs["adaptation"]
    assert info["ran"] and info["refreshed_cells"] == 2 * 3 * 5
    assert info["shifts_used"] == 2 * 3  # the in-sample days do not count
    assert info["dropped_cells"] == 2 * 3 * dataset.n_segments


def test_every_output_carries_expected_and_threat(trained, dataset, settings, tmp_path):
    import geopandas as gpd

    from riskmodel.api import RISK_COLUMNS, write_score_outputs
    from riskmodel.api._score import FORECAST_COLUMNS, score_dates

    sc = score_dates(settings, trained, dataset, "2024-12-10", "2024-12-11", reasons=True)
    files = write_score_outputs(
        settings, sc, dataset, trained, tmp_path, date="2024-12-10", forecast=True, png=False
    )
    names = {p.name for p in files}
    both = {"expected", "threat", "exposure", "adapt_factor"}
    assert both <= set(RISK_COLUMNS) and both <= set(FORECAST_COLUMNS)
    for name in ("risk_2024-12-10.csv", "forecast.csv"):
        assert name in names and both <= set(pd.read_csv(tmp_path / name).columns)
    gj = gpd.read_file(tmp_path / "risk_2024-12-10_night.geojson")
    assert both <= set(gj.columns)
    for layer in ("morning", "afternoon", "night"):
        assert both <= set(gpd.read_file(tmp_path / "risk_2024-12-10.gpkg", layer=layer).columns)
    html = (tmp_path / "risk_2024-12-10.html").read_text()
    assert all(f'"{c}"' in html for c in both) and "effort-neutral" in html
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert "adaptation" in json.dumps(prov)
    # Ranks follow the effort-neutral threat.
    for _, g in sc.groupby("window"):
        assert (np.diff(g.sort_values("rank")["threat"].to_numpy()) <= 0).all()


def test_trial_and_production_share_the_rule():
    from riskmodel.sim.trial import TrialConfig, learner

    cfg = TrialConfig()
    assert (cfg.recalibrate_days, cfg.recalibrate_prior, cfg.recalibrate_km) == (
        RESIDUAL_DAYS,
        RESIDUAL_PRIOR,
        RESIDUAL_KM,
    )
    assert learner.recent_residual_factor is recent_residual_factor


def test_store_append_waits_for_a_concurrent_append(tmp_path):
    import threading
    import time

    from riskmodel.files import folder_lock

    store = ForecastStore(tmp_path / "forecasts", "abc")
    held, release = threading.Event(), threading.Event()

    def other_run():
        with folder_lock(store.root):
            held.set()
            release.wait(5)

    t = threading.Thread(target=other_run)
    t.start()
    held.wait(5)
    threading.Timer(0.5, release.set).start()
    t0 = time.monotonic()
    assert len(store.append(_rows())) == 1  # waited for the other run, then appended
    assert time.monotonic() - t0 >= 0.4
    t.join()


def test_cli_score_and_daily_have_no_adapt():
    from click.testing import CliRunner

    from riskmodel.cli import main

    for verb in ("score", "daily"):
        res = CliRunner().invoke(main, [verb, "--help"])
        assert res.exit_code == 0 and "--no-adapt" in res.output, res.output


def test_daily_stores_its_forecasts_and_adapts_the_next_morning(tmp_path):
    """The planner's morning in a workspace: day 1 stores its forecasts, day 2 reads them
    (provenance and briefing say so), ``adapt=False`` leaves the scores unadapted."""
    from riskmodel.api import (
        init_workspace,
        read_inputs,
        run_daily,
        run_simulation,
        train_bundle,
        use_model,
    )
    from riskmodel.config.settings import load_settings

    root = tmp_path / "ws"
    init_workspace(root)
    s = load_settings(workspace=root)
    run_simulation(s, out=root / "data", seed=2, start="2024-01-01", end="2024-05-31")
    ds = read_inputs(s, s.events, s.effort, end="2024-05-31")
    path, _ = train_bundle(ds, "2024-04-30", settings=s, params=FAST, root=s.models_root)
    use_model(s, path.name)
    one = run_daily(s, "2024-05-10", units=4, seed=1)
    parts = sorted((root / "forecasts").rglob("*.parquet"))
    assert [p.parent.name for p in parts] == ["date=2024-05-10"]
    two = run_daily(s, "2024-05-11", units=4, seed=1)
    prov = json.loads((two.folder / "maps" / "provenance.json").read_text())
    ad = json.dumps(prov)
    assert '"ran": true' in ad and "date=2024-05-10/part-00001-" in ad
    brief = (two.folder / "briefing_2024-05-11.html").read_text()
    assert "recent-residual factors" in brief
    off = run_daily(s, "2024-05-12", units=4, seed=1, adapt=False)
    risk = pd.read_csv(off.folder / "maps" / "risk_2024-05-12.csv")
    assert (risk["adapt_factor"] == 1.0).all()
    assert "off (turned off (--no-adapt))" in (off.folder / "briefing_2024-05-12.html").read_text()
    assert one.plans and len(list((root / "forecasts").glob("date=*"))) == 3


def test_in_sample_scores_are_said(trained, dataset, settings, caplog):
    """Scoring a day the model was trained on works (analysts look back) but says so."""
    import logging

    from riskmodel.api import score_dates

    until = trained.manifest["training_window"]["until"]
    before = (pd.Timestamp(until) - pd.Timedelta(days=3)).date().isoformat()
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        score_dates(settings, trained, dataset, before, reasons=False)
    assert any(f"trained on shifts up to {until}" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        score_dates(settings, trained, dataset, until, reasons=False)
    assert not any("in-sample" in r.getMessage() for r in caplog.records)
    assert not any("retrain" in r.getMessage() for r in caplog.records)


def test_old_model_is_said(trained, caplog):
    import logging

    from riskmodel.api._score import MODEL_OLD_DAYS, check_model_age

    until = pd.Timestamp(trained.manifest["training_window"]["until"])
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        check_model_age(trained, (until + pd.Timedelta(days=MODEL_OLD_DAYS)).date().isoformat())
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        check_model_age(trained, (until + pd.Timedelta(days=60)).date().isoformat())
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "60 days before" in msg and "retrain (riskmodel train)" in msg
