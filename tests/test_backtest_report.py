"""The decision-ready backtest report (issue 13, item 7): intervals, breakdowns, verdict, progress.

Catalogue (attack -> expected behaviour -> test):

* numbers without uncertainty -> every headline metric of every method has a day-bootstrap
  interval that contains the point estimate, equals the pooled metric and narrows with more
  days -> ``test_ci_contains_point_and_matches_pooled_metrics``, ``test_ci_shrinks_with_more_days``
* a different answer on every run -> fixed seed: identical intervals; another seed moves them
  only a little -> ``test_ci_is_deterministic``
* a per-shift table that does not add up -> events and captured events of the shifts sum to the
  pooled totals -> ``test_by_shift_sums_to_pooled``
* a per-area table blind to quiet areas -> each area ranks its own segments; every segment and
  event counted once -> ``test_by_area_ranks_within_area``
* numbers without a verdict -> "better" when the intervals separate, "worse" when below,
  the honest "cannot tell" when they overlap -> ``test_verdict_switches_on_overlap``
* gap closed of -13 from a 0.005 oracle gap -> empty under the stated threshold (2 points),
  negative when the model is below the best baseline ->
  ``test_gap_closed_empty_under_threshold_negative_below``
* a report that explains nothing -> report.md opens with the verdict, names the target, the
  parameters, explains the oracle and the gap cells; metrics.json carries {value, lo, hi},
  the verdict and the breakdowns, and keeps the old keys ->
  ``test_run_backtest_report_and_progress``
* 141 s of silence -> one progress call per origin from the library (which prints nothing);
  the CLI writes log lines to stderr when piped and nothing with -q ->
  ``test_run_backtest_report_and_progress``, ``test_cli_progress_lines_piped_not_quiet``
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation.bootstrap import bootstrap_metrics, day_codes
from riskmodel.evaluation.report import by_area, by_shift, verdict

K = 3  # shifts per day
S = 40


def _world(
    days: int, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Poisson counts around a skewed truth; a good model, a weak baseline and the oracle."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.5, 0.4, size=(days * K, S))
    actual = rng.poisson(lam).astype(float)
    preds = {
        "model": lam * rng.lognormal(0, 0.3, lam.shape),
        "historical": lam * rng.lognormal(0, 1.5, lam.shape),
        "oracle": lam,
    }
    dates = np.repeat(pd.date_range("2024-01-01", periods=days).to_numpy(), K)
    return preds, actual, np.full(S, 1000.0), dates


def test_ci_contains_point_and_matches_pooled_metrics() -> None:
    preds, actual, lengths, dates = _world(60)
    ci = bootstrap_metrics(preds, actual, lengths, dates, baselines=["historical"], draws=400)
    res = ev.evaluate_all(preds, actual, lengths)
    for m, r in ci.items():
        for key in (
            "hr_5",
            "hr_10",
            "hr_20",
            "pai_10",
            "pei_10",
            "oracle_ratio_10",
            "deviance",
            "brier",
        ):
            iv = r[key]
            assert iv["value"] == pytest.approx(res[m][key], rel=1e-9), (m, key)
            assert iv["lo"] <= iv["value"] <= iv["hi"], (m, key, iv)
    assert ci["oracle"]["oracle_ratio_10"] == {"value": 1.0, "lo": 1.0, "hi": 1.0}
    # Paired difference and gap closed only for the model, against the best baseline.
    assert (
        "diff_best_baseline_10" in ci["model"] and "diff_best_baseline_10" not in ci["historical"]
    )
    d = ci["model"]["diff_best_baseline_10"]
    assert d["value"] == pytest.approx(res["model"]["hr_10"] - res["historical"]["hr_10"])


def test_ci_shrinks_with_more_days() -> None:
    widths = []
    for days in (15, 240):
        preds, actual, lengths, dates = _world(days, seed=1)
        iv = bootstrap_metrics(preds, actual, lengths, dates, draws=400)["model"]["hr_10"]
        widths.append(iv["hi"] - iv["lo"])
    assert widths[1] < widths[0] / 2  # ~ 1 / sqrt(days): 4x narrower expected


def test_ci_is_deterministic() -> None:
    preds, actual, lengths, dates = _world(30)
    a = bootstrap_metrics(preds, actual, lengths, dates, draws=300)
    b = bootstrap_metrics(preds, actual, lengths, dates, draws=300)
    c = bootstrap_metrics(preds, actual, lengths, dates, draws=300, seed=5)
    assert a == b
    assert a["model"]["hr_10"]["lo"] != c["model"]["hr_10"]["lo"]
    assert abs(a["model"]["hr_10"]["lo"] - c["model"]["hr_10"]["lo"]) < 0.05


def test_day_codes_follow_window_order() -> None:
    d = pd.to_datetime(["2024-03-02", "2024-03-02", "2024-03-01", "2024-03-03"]).to_numpy()
    np.testing.assert_array_equal(day_codes(d), [0, 0, 1, 2])


def test_by_shift_sums_to_pooled() -> None:
    preds, actual, lengths, dates = _world(20)
    shifts = np.tile(["morning", "afternoon", "night"], 20)
    methods = ["model", "historical", "oracle"]
    rows = by_shift(preds, actual, lengths, shifts, methods)
    assert [r["shift"] for r in rows] == ["morning", "afternoon", "night"]
    assert sum(r["windows"] for r in rows) == actual.shape[0]
    assert sum(r["events"] for r in rows) == pytest.approx(actual.sum())
    res = ev.evaluate_all(preds, actual, lengths)
    for m in methods:
        total = sum(r["captured"][m] for r in rows)
        assert total / actual.sum() == pytest.approx(res[m]["hr_10"])
        for r in rows:
            assert r["hr"][m] == pytest.approx(r["captured"][m] / r["events"])


def test_by_area_ranks_within_area() -> None:
    preds, actual, lengths, _ = _world(10)
    areas = ["West"] * 30 + ["East"] * 10
    # East has few, weak scores: globally it would never be picked; within itself it is.
    preds = {"model": preds["model"].copy()}
    preds["model"][:, 30:] *= 1e-6
    rows = by_area(preds, actual, lengths, areas, ["model"])
    assert [r["area"] for r in rows] == ["East", "West"]
    assert sum(r["segments"] for r in rows) == S
    assert sum(r["events"] for r in rows) == pytest.approx(actual.sum())
    east = rows[0]
    expect = ev.hit_rate_curve(preds["model"][:, 30:], actual[:, 30:], lengths[30:], [0.1])[0]
    assert east["hr"]["model"] == pytest.approx(expect) and east["km"] == 10.0


def _ci(model: tuple[float, float, float], base: tuple[float, float, float]) -> dict:
    iv = lambda t: dict(zip(("value", "lo", "hi"), t, strict=True))  # noqa: E731
    diff = (model[0] - base[0], model[1] - base[2], model[2] - base[1])
    return {
        "model": {"hr_10": iv(model), "diff_best_baseline_10": iv(diff)},
        "hotspot": {"hr_10": iv(base)},
        "kde": {"hr_10": iv((base[0] - 0.05, base[1] - 0.05, base[2] - 0.05))},
    }


def test_verdict_switches_on_overlap() -> None:
    better = verdict(_ci((0.47, 0.43, 0.52), (0.36, 0.33, 0.40)), ["hotspot", "kde"])
    assert better["outcome"] == "better" and better["best_baseline"] == "hotspot"
    assert "47 %" in better["text"] and "43–52 %" in better["text"]
    assert "1.3x the best baseline (prospective hotspot, 36 %" in better["text"]
    assert "do not overlap: the model is better" in better["text"]
    overlap = verdict(_ci((0.40, 0.35, 0.45), (0.38, 0.33, 0.43)), ["hotspot", "kde"])
    assert overlap["outcome"] == "overlap"
    assert "intervals overlap" in overlap["text"] and "better" not in overlap["text"]
    # Overlapping intervals but a paired difference clear of zero: "probably", not "cannot tell".
    ci = _ci((0.40, 0.35, 0.45), (0.38, 0.33, 0.43))
    ci["model"]["diff_best_baseline_10"] = {"value": 0.02, "lo": 0.005, "hi": 0.04}
    probably = verdict(ci, ["hotspot", "kde"])
    assert probably["outcome"] == "overlap" and probably["paired"] == "better"
    assert "the model is probably better" in probably["text"]
    worse = verdict(_ci((0.30, 0.27, 0.33), (0.38, 0.35, 0.42)), ["hotspot", "kde"])
    assert worse["outcome"] == "worse" and "the model is worse" in worse["text"]
    none = verdict({"model": {"hr_10": {"value": None, "lo": None, "hi": None}}}, [])
    assert none["outcome"] == "undefined"


def test_gap_closed_empty_under_threshold_negative_below() -> None:
    preds, actual, lengths, dates = _world(40)
    res = ev.evaluate_all(preds, actual, lengths)
    table = ev.results_table(res, baselines=["historical"])
    gap = res["oracle"]["hr_10"] - res["historical"]["hr_10"]
    assert gap > ev.GAP_MIN and np.isfinite(table.loc["model", "gap_closed_10"])
    # The same figures with a threshold above the gap: empty, in the table and the intervals.
    assert np.isnan(
        ev.results_table(res, baselines=["historical"], min_gap=gap + 1e-6).loc[
            "model", "gap_closed_10"
        ]
    )
    ci = bootstrap_metrics(
        preds, actual, lengths, dates, baselines=["historical"], draws=50, min_gap=gap + 1e-6
    )
    assert ci["model"]["gap_closed_10"] == {"value": None, "lo": None, "hi": None}
    # A model below the best baseline closes a negative share of the gap.
    worse = {**preds, "model": preds["historical"] * 0 + np.arange(S)[None, :]}
    t2 = ev.compare(worse, actual, lengths, baselines=["historical"])
    assert t2.loc["model", "gap_closed_10"] < 0


@pytest.mark.slow
def test_run_backtest_report_and_progress(dataset, tmp_path: Path) -> None:
    from riskmodel.evaluation.backtest import run_backtest, write_report

    calls: list[tuple[int, int, str]] = []
    res = run_backtest(
        dataset,
        "2024-11-20",
        "2024-12-31",
        step_days=21,
        params={"n_estimators": 30, "n_bags": 1, "n_jobs": 1},
        baselines=["historical", "hotspot"],
        progress=lambda d, t, m: calls.append((d, t, m)),
        draws=200,
    )
    assert [c[:2] for c in calls] == [(0, 2), (1, 2), (2, 2)]
    assert calls[1][2].startswith("origin 1/2 2024-11-20: trained in ")
    paths = write_report(res, tmp_path)
    doc = json.loads(paths["metrics"].read_text())
    # Old keys kept; new ones added.
    assert {"table", "results", "info"} <= doc.keys()
    assert {"verdict", "ci", "by_shift", "by_area", "methods"} <= doc.keys()
    assert set(doc["ci"]["model"]["hr_10"]) == {"value", "lo", "hi"}
    assert doc["ci"]["model"]["hr_10"]["value"] == pytest.approx(doc["results"]["model"]["hr_10"])
    assert doc["info"]["days"] == 42 and doc["info"]["params"]["n_estimators"] == 30
    assert sum(r["events"] for r in doc["by_shift"]) == doc["info"]["events_in_period"]
    assert {r["area"] for r in doc["by_area"]} == {"East", "West"}
    md = paths["report"].read_text()
    assert md.splitlines()[2].startswith("**Verdict.** The model captured ")
    assert "recorded events" in md and "n_estimators=30" in md
    assert "## Hit rate at 10 % by shift" in md and "## Hit rate at 10 % by area" in md
    hr = doc["ci"]["model"]["hr_10"]
    assert f"{hr['value']:.3f} ({hr['lo']:.3f}–{hr['hi']:.3f})" in md
    assert "no oracle" in md  # no truth file: said so


def _fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    import riskmodel.api as api

    def fake_backtest(ds, start, end, *, progress=None, **kw):  # noqa: ANN001, ANN202
        for i in range(3):
            if progress:
                progress(i, 2, f"origin {i}/2 2024-10-0{i + 1}: trained in 1.0 s")
        table = pd.DataFrame(
            {"role": ["model"], "hr_10": [0.4]}, index=pd.Index(["model"], name="method")
        )
        res = SimpleNamespace(
            table=table, info={"seconds": 1.0}, verdict=lambda: {"text": "The model captured 40 %."}
        )
        return res, {"report": Path(kw["out"]) / "report.md"}

    monkeypatch.setattr(api, "read_inputs", lambda *a, **k: None)
    monkeypatch.setattr(api, "backtest", fake_backtest)


def test_cli_progress_lines_piped_not_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from riskmodel.cli import main

    _fake_cli(monkeypatch)
    ev_csv = tmp_path / "events.csv"
    ev_csv.write_text("timestamp,lat,lon\n")
    args = ["backtest", "--events", str(ev_csv), "--from", "2024-10-01", "--to", "2024-10-31"]
    args += ["--out", str(tmp_path / "bt")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("riskmodel: backtest: origin")]
    assert lines == [
        f"riskmodel: backtest: origin {i}/2 2024-10-0{i + 1}: trained in 1.0 s" for i in range(3)
    ]
    assert "\r" not in r.stderr  # no bar in a pipe
    assert "The model captured 40 %." in r.stdout and "origin" not in r.stdout
    q = CliRunner().invoke(main, ["-q", *args])
    assert q.exit_code == 0 and q.stderr == "" and "origin" not in q.output


def test_backtest_refuses_a_period_it_cannot_judge(dataset, tmp_path: Path, caplog) -> None:
    """After the last event, or with too little history before the first origin: a clear
    error before any training, nothing written; a period running past the data is said."""
    import logging

    from riskmodel import api
    from riskmodel.api._evaluate import check_backtest_period
    from riskmodel.errors import InputError

    out = tmp_path / "bt"
    with pytest.raises(InputError, match=r"begins after the last event \(20"):
        api.backtest(dataset, "2025-02-01", "2025-02-10", out=out)
    with pytest.raises(InputError, match="too little history before 2024-01-10") as ei:
        api.backtest(dataset, "2024-01-10", "2024-01-20", out=out)
    assert "later --from" in ei.value.fix
    assert not out.exists()
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        check_backtest_period(dataset, "2024-12-20", "2025-01-05")
    assert any("past the last event" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        check_backtest_period(dataset, "2024-10-01", "2024-10-31")
    assert not caplog.records


def test_cli_backtest_out_defaults_to_the_workspace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from riskmodel.cli import main

    _fake_cli(monkeypatch)
    ev_csv = tmp_path / "events.csv"
    ev_csv.write_text("timestamp,lat,lon\n")
    period = ["--events", str(ev_csv), "--from", "2024-10-01", "--to", "2024-10-31"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RISKMODEL_WORKSPACE", raising=False)
    r = CliRunner().invoke(main, ["backtest", *period])
    assert r.exit_code == 2 and "give --out DIR" in r.output
    ws = tmp_path / "ws"
    assert CliRunner().invoke(main, ["init", str(ws)]).exit_code == 0
    r = CliRunner().invoke(main, ["--workspace", str(ws), "backtest", *period])
    assert r.exit_code == 0, r.output
    assert f"report: {ws / 'out' / 'backtest_2024-10-01_2024-10-31' / 'report.md'}" in r.output
