"""``riskmodel demo``: the whole chain on the embedded default (real SI-HR border, simulated
history), in a station workspace that the planner can keep using afterwards.

simulate -> copy into the workspace's data/ -> read and validate -> backtest -> train (the
workspace's default model) -> score tomorrow -> plan every shift under the workspace caps ->
print the next commands, which work as printed.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskmodel.config.dates import local_today
from riskmodel.config.settings import Settings, load_settings

# The demo must finish in about two minutes on 2 cores: a faster learning rate than the
# library default that `riskmodel train` and `backtest` use.
SMALL_PARAMS = {"n_estimators": 150, "learning_rate": 0.15, "n_bags": 1}
DEFAULT_PARAMS: dict[str, Any] = {"learning_rate": 0.15, "n_bags": 1}

Echo = Callable[[str], None]


def _timed(echo: Echo, t0: float, text: str) -> None:
    echo(f"{text} [{time.perf_counter() - t0:.1f} s]")


def _workspace(out: Path) -> Settings:
    """Make ``out`` a workspace and return its settings (nothing from the caller's folder)."""
    from riskmodel.api import init_workspace

    ws, _ = init_workspace(out)
    return load_settings(workspace=ws.root)


def _simulate(s: Settings, out: Path, seed: int, first: dt.date, last: dt.date, echo: Echo) -> Any:
    """Simulate ``first..last`` into ``out/scenario`` and copy the station's files to data/."""
    from riskmodel.api import run_simulation

    sim_dir = out / "scenario"
    summ = run_simulation(s, out=sim_dir, seed=seed, start=first.isoformat(), end=last.isoformat())
    for name, dest in (("events.csv", s.events), ("effort.csv", s.effort)):
        shutil.copyfile(sim_dir / name, dest)
    per_year = ", ".join(
        f"{y}: {r['persons']} persons/{r['incidents']} incidents"
        for y, r in summ["per_year"].items()
    )
    echo(
        f"[1/6] simulated {first}..{last} (seed {seed}): {per_year}; night share "
        f"{summ['share_night_22_06']:.0%} [{summ['runtime_s']:.1f} s] -> {sim_dir}, "
        f"station files in {Path(s.events).parent}"
    )
    return summ


def _backtest(ds: Any, out: Path, last: dt.date, days: int, params: dict, echo: Echo) -> dict:
    from riskmodel.evaluation.backtest import run_backtest, short_table, write_report
    from riskmodel.io.read.truth import read_truth

    t = time.perf_counter()
    b0 = last - dt.timedelta(days=days - 1)
    res = run_backtest(
        ds, b0, last, step_days=days, truth=read_truth(out / "scenario" / "truth.parquet"),
        params=params,
    )  # fmt: skip
    write_report(res, out / "backtest", title=f"Demo backtest {b0}..{last}")
    _timed(echo, t, f"[3/6] backtest {b0}..{last} ({res.info['events_in_period']} events) "
           f"-> {out / 'backtest' / 'report.md'}")  # fmt: skip
    echo(short_table(res.table))
    return res.table.to_dict(orient="index")


def _plans(s: Settings, scored: Any, bundle: Any, plans_dir: Path, units: int, echo: Echo) -> None:
    from riskmodel.api import load_caps, run_plan
    from riskmodel.geo.geodata import Geography
    from riskmodel.geo.shifts import parse_shifts

    t = time.perf_counter()
    config = load_caps(s.caps, shifts_per_day=len(parse_shifts(s.shifts)))
    results = run_plan(
        scored.drop(columns=["window", "seq"]),
        plans_dir,
        s.audit_log,
        units,
        config=config,
        segments=Geography(s).segments,
        tz=s.timezone,
        model_id=bundle.model_id,
        settings=s,
    )
    for plan, _files in results:
        echo(
            f"  plan {plan.stem}: {len(plan.checks)} checks, entropy {plan.stats['entropy']:.2f}, "
            f"largest chance of a check {plan.stats['max_inclusion']:.0%}"
        )
    _timed(echo, t, f"[6/6] plans + briefings under {s.caps} -> {plans_dir} "
           f"(audit log {s.audit_log})")  # fmt: skip


def _next_steps(s: Settings, out: Path, day: str, echo: Echo) -> None:
    # The workspace knows its events, effort, caps and audit log: no data flags needed.
    ws = f"--workspace {out}"
    echo("next (each command works as printed):")
    echo(f"  riskmodel {ws} models list")
    nxt = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    echo(f"  riskmodel {ws} daily --date {nxt} --units 12")
    echo(f"  riskmodel {ws} score --date {day}")
    echo(f"  riskmodel {ws} audit")
    echo(f"({day} is planned already: daily plans the day after, into "
         f"{Path(s.out_dir) / nxt}; score writes {Path(s.out_dir) / day / 'score'}; audit "
         "covers the last 30 days and the week ahead)")  # fmt: skip


def run_demo(
    out: Path,
    *,
    seed: int = 0,
    years: float = 3.0,
    backtest_days: int = 28,
    units: int = 12,
    small: bool = False,
    echo: Echo = print,
) -> dict[str, Any]:
    """Run the demo in the workspace ``out`` and return its headline figures.

    The history ends the day before yesterday (local time), so that even its last night shift
    lies wholly in the past; tomorrow is scored, as a planner would on a real morning.
    """
    from riskmodel.api import score_dates, train_bundle, write_score_outputs
    from riskmodel.model.bundle import load_bundle
    from riskmodel.model.pipeline import read_dataset

    t_all = time.perf_counter()
    if small:
        years, backtest_days = min(years, 1.0), min(backtest_days, 14)
    params = SMALL_PARAMS if small else DEFAULT_PARAMS
    s = _workspace(out)
    today = local_today(s.timezone)
    last = today - dt.timedelta(days=2)
    first = last - dt.timedelta(days=int(round(365.25 * years)) - 1)
    tomorrow = today + dt.timedelta(days=1)
    result: dict[str, Any] = {"scenario": _simulate(s, out, seed, first, last, echo)}
    t = time.perf_counter()
    ds = read_dataset(
        s, s.events, s.effort, end=(tomorrow + dt.timedelta(days=1)).isoformat(), quarantine_dir=out
    )
    ev = ds.inputs.get("events", {})
    frame = ds.features()
    _timed(echo, t, f"[2/6] read {ev.get('accepted')} events ({ev.get('quarantined')} "
           f"quarantined), {len(ds.events)} on the border; features {frame.shape[0]} rows")  # fmt: skip
    if backtest_days > 0:
        result["backtest"] = _backtest(ds, out, last, backtest_days, params, echo)
    t = time.perf_counter()
    path, man = train_bundle(ds, last.isoformat(), settings=s, params=params, root=s.models_root)
    _timed(echo, t, f"[4/6] trained {path.name} on {man['fit']['rows_train']} segment-shifts "
           f"-> {path}")  # fmt: skip
    t = time.perf_counter()
    bundle = load_bundle(path, root=s.models_root, key=s.key())
    day = tomorrow.isoformat()
    scored = score_dates(s, bundle, ds, day)
    day_dir = Path(s.out_dir) / day
    files = write_score_outputs(s, scored, ds, bundle, day_dir / "maps", date=day)
    _timed(echo, t, f"[5/6] scored {day}: {len(files)} files -> {day_dir / 'maps'} (open "
           f"risk_{day}.html in a browser, risk_{day}.gpkg in QGIS)")  # fmt: skip
    for sh in dict.fromkeys(scored["shift"]):
        top = scored[scored["shift"] == sh].nsmallest(3, "rank")
        echo(f"  {sh:<10} top: " + "; ".join(
            f"{r.segment_id} ({r.area}) {r.expected:.2f} - {r.reason_1}" for r in top.itertuples()
        ))  # fmt: skip
    _plans(s, scored, bundle, day_dir / "plans", units, echo)
    _next_steps(s, out, day, echo)
    result["seconds"] = time.perf_counter() - t_all
    result["maps"] = str(day_dir / "maps")
    echo(f"demo finished in {result['seconds']:.0f} s")
    return result
