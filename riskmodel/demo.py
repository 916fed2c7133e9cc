"""``riskmodel demo``: the whole chain on the embedded default (real SI-HR border, simulated
history): simulate -> validate/read -> backtest -> train -> score tomorrow -> plan every shift."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskmodel.config.settings import Settings

DEMO_CAPS = {
    "per_shift": 1.0,
    "max_per_segment_per_7d": 5,
    "max_per_segment_per_30d": 15,
    "max_share_of_shifts": 0.2,
}
# The demo must finish in about two minutes on 2 cores: a faster learning rate than the
# library default that `riskmodel train` and `backtest` use.
SMALL_PARAMS = {"n_estimators": 150, "learning_rate": 0.15, "n_bags": 1}
DEFAULT_PARAMS: dict[str, Any] = {"learning_rate": 0.15, "n_bags": 1}


def run_demo(
    settings: Settings,
    out: Path,
    *,
    seed: int = 0,
    years: float = 3.0,
    backtest_days: int = 28,
    units: int = 12,
    small: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo and return its headline figures (see module doc)."""
    from riskmodel.api import (
        PlanConfig,
        run_plan,
        run_simulation,
        score_dates,
        train_bundle,
        write_score_outputs,
    )
    from riskmodel.evaluation.backtest import run_backtest, short_table, write_report
    from riskmodel.geo.geodata import Geography
    from riskmodel.geo.segments import segment_summary
    from riskmodel.io.read.truth import read_truth
    from riskmodel.model.bundle import load_bundle
    from riskmodel.model.pipeline import read_dataset

    t_all = time.perf_counter()
    if small:
        years, backtest_days = min(years, 1.0), min(backtest_days, 14)
    params = SMALL_PARAMS if small else DEFAULT_PARAMS
    out.mkdir(parents=True, exist_ok=True)
    s = settings.with_flags(
        models_root=str(out / "models"),
        audit_log=str(out / "plans" / "audit.jsonl"),
        # Without a workspace key the demo signs its own throwaway models with a one-off key.
        signing_key=None if settings.key() else secrets.token_hex(16),
    )
    t = time.perf_counter()
    geo = Geography(s)
    info = segment_summary(geo.segments, geo.border)
    echo(
        f"[1/6] geography: border {info['line_length_m'] / 1000:.1f} km ({geo.crs}), "
        f"{info['segments']} segments of ~{info['line_length_m'] / info['segments']:.0f} m, "
        f"{len(geo.settlements)} settlements, {len(geo.crossings)} crossing points, "
        f"{len(geo.corridors)} corridors, {len(geo.areas)} areas [{time.perf_counter() - t:.1f} s]"
    )
    yesterday = dt.date.today() - dt.timedelta(days=1)
    start = yesterday - dt.timedelta(days=int(round(365.25 * years)) - 1)
    sim_dir = out / "scenario"
    summ = run_simulation(
        s, out=sim_dir, seed=seed, start=start.isoformat(), end=yesterday.isoformat(), geo=geo
    )
    per_year = ", ".join(
        f"{y}: {r['persons']} persons/{r['incidents']} incidents"
        for y, r in summ["per_year"].items()
    )
    echo(
        f"[2/6] simulated {start}..{yesterday} (seed {seed}): {per_year}; "
        f"night share {summ['share_night_22_06']:.0%} [{summ['runtime_s']:.1f} s] -> {sim_dir}"
    )
    t = time.perf_counter()
    tomorrow = yesterday + dt.timedelta(days=2)
    ds = read_dataset(
        s,
        sim_dir / "events.csv",
        sim_dir / "effort.csv",
        end=tomorrow.isoformat(),
        quarantine_dir=out,
    )
    ev_sum = ds.inputs.get("events", {})
    ds.features()
    echo(
        f"[3/6] read {ev_sum.get('accepted')} events ({ev_sum.get('quarantined')} quarantined), "
        f"{len(ds.events)} on the border; features {ds.features().shape[0]} rows x {ds.features().shape[1] - 2} "
        f"[{time.perf_counter() - t:.1f} s]"
    )
    result: dict[str, Any] = {"scenario": summ}
    if backtest_days > 0:
        t = time.perf_counter()
        b0 = yesterday - dt.timedelta(days=backtest_days - 1)
        res = run_backtest(
            ds,
            b0,
            yesterday,
            step_days=backtest_days,
            truth=read_truth(sim_dir / "truth.parquet"),
            params=params,
        )
        write_report(res, out / "backtest", title=f"Demo backtest {b0}..{yesterday}")
        echo(
            f"[4/6] backtest {b0}..{yesterday} ({res.info['events_in_period']} events) "
            f"[{time.perf_counter() - t:.1f} s] -> {out / 'backtest' / 'report.md'}"
        )
        echo(short_table(res.table))
        result["backtest"] = res.table.to_dict(orient="index")
    t = time.perf_counter()
    path, man = train_bundle(
        ds, yesterday.isoformat(), settings=s, params=params, root=s.models_root
    )
    echo(
        f"[5/6] trained {path.name} on {man['fit']['rows_train']} segment-shifts "
        f"[{time.perf_counter() - t:.1f} s] -> {path}"
    )
    t = time.perf_counter()
    bundle = load_bundle(path, root=s.models_root, key=s.key())
    day = (yesterday + dt.timedelta(days=1)).isoformat()
    scored = score_dates(s, bundle, ds, day)
    maps = out / "maps"
    files = write_score_outputs(s, scored, ds, bundle, maps, date=day)
    echo(
        f"[6/6] scored {day}: {len(files)} files -> {maps} (open risk_{day}.html in a browser, "
        f"risk_{day}.gpkg in QGIS) [{time.perf_counter() - t:.1f} s]"
    )
    for sh in dict.fromkeys(scored["shift"]):
        top = scored[scored["shift"] == sh].nsmallest(3, "rank")
        echo(
            f"  {sh:<10} top: "
            + "; ".join(
                f"{r.segment_id} ({r.area}) {r.expected:.2f} - {r.reason_1}"
                for r in top.itertuples()
            )
        )
    t = time.perf_counter()
    risk = scored.drop(columns=["window", "seq"])
    cfg = PlanConfig(**DEMO_CAPS)
    plans = run_plan(
        risk,
        out / "plans",
        s.audit_log,
        units,
        config=cfg,
        seed=None,
        segments=geo.segments,
        tz=s.timezone,
        model_id=bundle.model_id,
    )
    for plan, _files in plans:
        echo(
            f"  plan {plan.stem}: {len(plan.checks)} checks, entropy {plan.stats['entropy']:.2f}, "
            f"max inclusion {plan.stats['max_inclusion']:.2f}"
        )
    echo(
        f"plans + briefings -> {out / 'plans'} (audit log {s.audit_log}) [{time.perf_counter() - t:.1f} s]"
    )
    echo(f"demo finished in {time.perf_counter() - t_all:.0f} s")
    result["seconds"] = time.perf_counter() - t_all
    return result
