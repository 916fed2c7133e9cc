"""Adaptation in production: does ``riskmodel score`` with the forecast store follow a route
shift? (issue 16, must-show: oracle ratio back within 10 % of its pre-shift level in 3 weeks)

    nice -n 10 python bench/bench_adapt.py --seeds 0 1 2 [--pre-weeks 4 --post-weeks 6]

A simulated world (the simulator's own police, who patrol where the records were) runs a year
of burn-in; a model is trained on it (the trial's cheap retraining parameters) and is NOT
retrained. Then the production path runs day by day in a workspace: ``score_dates`` of the
day (with or without adaptation) -> ``store_forecasts`` (the workspace's forecast store) ->
the next day's score reads the store. ``--pre-weeks`` after the training end the route moves
(the trial's route shift: the busiest 10-km stretch gives its whole attraction to a quiet
stretch at least 3 displacement lengths away).

The dataset holds the whole period, read once through ``read_inputs``: equivalent to
appending each day's events before the next score, because a shift's features use only data
before its start and the adaptation only looks at shifts before the scored date. The effort
file holds each day's patrols (as if the plan were known in the morning): the forecasts'
assumed effort is the effort spent.

Reported per arm (adapt / no-adapt): the weekly oracle ratio = HR@10 of the map (``threat``)
vs the true intensity / HR@10 of the truth-ranked segments (the trial's measure), the pre-shift
level (mean of the pre-shift weeks) and the recovery week (0 = the shift week itself; the
first week back within 10 % of the pre-shift level, the trial's rule). Writes
bench/results/adapt_seed<N>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.api import init_workspace, read_inputs, score_dates, train_bundle
from riskmodel.api._score import store_forecasts
from riskmodel.config.settings import load_settings
from riskmodel.evaluation.metrics import hit_rate_curve
from riskmodel.geo.geodata import Geography
from riskmodel.model.bundle import load_bundle
from riskmodel.sim.scenario import Scenario, _make_effort, _make_events, write_scenario
from riskmodel.sim.trial.config import HIT_FRACTION, RECOVERY_TOLERANCE
from riskmodel.sim.trial.loop import _route_stretches
from riskmodel.sim.world import ScenarioParams, World

START = dt.date(2024, 4, 1)  # first production day (the trial's default start)
PARAMS = {"n_estimators": 150, "learning_rate": 0.15, "zero_keep": 0.05, "n_bags": 1, "n_jobs": 1}


def simulate_with_shift(
    geo: Geography, settings: Any, seed: int, burn_in: int, pre: int, post: int, units: int
) -> tuple[Scenario, np.ndarray, dict[str, Any]]:
    """Burn-in + pre-shift + post-shift days; the route moves at the start of the post period.
    Returns the scenario, the true intensity ``(days * K, S)`` and the route info."""
    first = START - dt.timedelta(days=burn_in)
    last = START + dt.timedelta(days=7 * (pre + post) - 1)
    p = ScenarioParams(
        seed=seed, start=first.isoformat(), end=last.isoformat(), units_per_shift=(units,)
    )
    world = World(geo, p, settings.shifts, settings.timezone)
    S, K, D = world.n_segments, world.n_shifts, world.n_days
    seg_km = geo.segments["length_m"].to_numpy(float) / 1000.0
    src, tgt = _route_stretches(world.base, seg_km, 10.0, 3 * world.params.displacement_km, seed)
    shift_day = burn_in + 7 * pre
    lam = np.zeros((D, K, S))
    rec = np.zeros((D, K, S), np.int32)
    eff = np.zeros((D, K, S), np.float32)
    for d in range(D):
        if d == shift_day:
            moved = world.relocate(src, tgt, 1.0)
        st = world.step_day()
        lam[d], rec[d], eff[d] = st.expected_crossings, st.recorded, st.effort
    win = world.windows.sort_values(["date", "shift_idx"]).reset_index(drop=True)
    win["window"] = np.arange(len(win))
    W = D * K
    events = _make_events(
        geo, rec.reshape(W, S), win, world.shifts, settings.timezone, world.params, world.rng
    )
    effort = _make_effort(geo.segments, eff.reshape(W, S), win)
    sc = Scenario(events, effort, pd.DataFrame(), win, world.params, world.attraction, {})
    ids = geo.segments["segment_id"].astype(str).to_numpy()
    info = {
        "shift_date": (first + dt.timedelta(days=shift_day)).isoformat(),
        "source": [ids[src][0], ids[src][-1]],
        "target": [ids[tgt][0], ids[tgt][-1]],
        "share_of_total_moved": round(float(moved), 4),
    }
    return sc, lam.reshape(W, S), info


def run_arm(
    settings: Any, bundle: Any, ds: Any, lam: np.ndarray, days: list[str], adapt: bool
) -> tuple[list[float], list[dict[str, Any]]]:
    """Score day by day through the store; weekly oracle ratios and the adaptation records."""
    lengths = ds.geo.segments["length_m"].to_numpy(float)
    S = ds.n_segments
    maps, truths, infos = [], [], []
    for day in days:
        sc = score_dates(settings, bundle, ds, day, reasons=False, adapt=adapt)
        store_forecasts(settings, bundle, sc)
        w = np.sort(sc["window"].unique())
        part = sc.sort_values(["window", "seq"])
        maps.append(part["threat"].to_numpy(float).reshape(len(w), S))
        truths.append(lam[w])
        a = sc.attrs["adaptation"]
        infos.append({"date": day, "ran": a["ran"], **a.get("factor", {})})
    # Oracle ratio of every trailing 7-day window (index k: days k-6 .. k; NaN for k < 6).
    rolling = [np.nan] * len(days)
    for k in range(6, len(days)):
        m, t = np.concatenate(maps[k - 6 : k + 1]), np.concatenate(truths[k - 6 : k + 1])
        hr = float(hit_rate_curve(m, t, lengths, [HIT_FRACTION])[0])
        ceil = float(hit_rate_curve(t, t, lengths, [HIT_FRACTION])[0])
        rolling[k] = hr / ceil
    return rolling, infos


def recovery(rolling: list[float], pre_weeks: int) -> dict[str, Any]:
    """The trial's recovery rule on the calendar weeks, and its finer daily version.

    ``recovery_weeks``: index of the first calendar week from the shift (0 = the shift week)
    whose oracle ratio is back within 10 % of the pre-shift level (mean of the pre-shift
    weeks), as the trial reports it. ``recovery_days``: days from the shift to the end of the
    first trailing 7-day window back within 10 % (7 = the shift week itself).
    """
    r = np.asarray(rolling, float)
    weekly = r[6::7]  # calendar weeks: windows ending on day 6, 13, ...
    pre = float(weekly[max(0, pre_weeks - 4) : pre_weeks].mean())
    after = weekly[pre_weeks:]
    ok = np.flatnonzero(after >= (1 - RECOVERY_TOLERANCE) * pre)
    shift_day = 7 * pre_weeks
    daily = r[shift_day + 6 :]
    ok_d = np.flatnonzero(daily >= (1 - RECOVERY_TOLERANCE) * pre)
    return {
        "pre_shift": round(pre, 4),
        "min_after_shift": round(float(after.min()), 4),
        "recovery_weeks": int(ok[0]) if ok.size else None,
        "recovery_days": int(ok_d[0]) + 7 if ok_d.size else None,
        "weekly_oracle_ratio": [round(float(v), 4) for v in weekly],
        "rolling_oracle_ratio_after_shift": [round(float(v), 4) for v in daily],
    }


def one_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        settings = load_settings(workspace=root)
        geo = Geography(settings)
        sc, lam, info = simulate_with_shift(
            geo, settings, seed, args.burn_in, args.pre_weeks, args.post_weeks, args.units
        )
        data = root / "data"
        write_scenario(sc, data)
        days = [
            (START + dt.timedelta(days=i)).isoformat()
            for i in range(7 * (args.pre_weeks + args.post_weeks))
        ]
        ds = read_inputs(settings, data / "events.csv", data / "effort.csv", end=days[-1])
        # The dataset's windows start at the first event: align the truth on them.
        w_first = sc.windows["start_utc"].searchsorted(ds.windows["start_utc"].iloc[0])
        aligned = np.zeros((len(ds.windows), lam.shape[1]))
        n = min(len(aligned), len(lam) - int(w_first))
        aligned[:n] = lam[int(w_first) : int(w_first) + n]
        lam = aligned
        until = (START - dt.timedelta(days=1)).isoformat()
        path, _ = train_bundle(
            ds, until, settings=settings, params=PARAMS, root=settings.models_root
        )
        bundle = load_bundle(path, root=settings.models_root, key=settings.key())
        t_setup = time.perf_counter() - t0
        out: dict[str, Any] = {"seed": seed, "route": info, "setup_s": round(t_setup, 1)}
        arms = (("adapt", True),) if args.adapt_only else (("adapt", True), ("no_adapt", False))
        for name, adapt in arms:
            store = root / "forecasts"
            if store.exists():  # each arm starts from an empty store
                store.rename(root / "forecasts_previous_arm")
            t1 = time.perf_counter()
            rolling, infos = run_arm(settings, bundle, ds, lam, days, adapt)
            out[name] = recovery(rolling, args.pre_weeks)
            out[name]["seconds"] = round(time.perf_counter() - t1, 1)
            if adapt:
                out[name]["factor_by_day"] = infos
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--burn-in", type=int, default=364)
    ap.add_argument("--pre-weeks", type=int, default=4)
    ap.add_argument("--post-weeks", type=int, default=6)
    ap.add_argument("--units", type=int, default=16, help="simulated patrols per shift")
    ap.add_argument(
        "--prior",
        type=float,
        default=None,
        help="sensitivity only: another prior than RESIDUAL_PRIOR (the trial's; results "
        "written as adapt_prior<P>_seed<N>.json)",
    )
    ap.add_argument("--adapt-only", action="store_true", help="skip the no-adapt arm")
    args = ap.parse_args()
    tag = ""
    if args.prior is not None:  # an experiment, not the product's rule: patch the default
        from riskmodel.scoring import adapt as _adapt

        _adapt.residual_correction.__kwdefaults__["prior"] = args.prior
        tag = f"_prior{args.prior:g}"
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    rows = []
    for seed in args.seeds:
        r = one_seed(seed, args)
        r["prior"] = args.prior
        (res_dir / f"adapt{tag}_seed{seed}.json").write_text(json.dumps(r, indent=1))
        for arm in [a for a in ("adapt", "no_adapt") if a in r]:
            a = r[arm]
            rows.append(
                (
                    seed,
                    arm,
                    a["pre_shift"],
                    a["min_after_shift"],
                    a["recovery_weeks"],
                    a["recovery_days"],
                )
            )
            print(
                f"seed {seed} {arm:<9} pre {a['pre_shift']:.3f} min {a['min_after_shift']:.3f} "
                f"recovery week {a['recovery_weeks']} day {a['recovery_days']}  "
                f"weekly {a['weekly_oracle_ratio']}",
                flush=True,
            )
    print(
        "| seed | arm | pre-shift ratio | lowest week after | recovery week (trial rule) | days |"
    )
    print("|---|---|---|---|---|---|")
    for s, arm, pre, lo, rw, rd in rows:
        print(
            f"| {s} | {arm} | {pre:.3f} | {lo:.3f} | {rw if rw is not None else 'not'} "
            f"| {rd if rd is not None else 'not'} |"
        )


if __name__ == "__main__":
    main()
