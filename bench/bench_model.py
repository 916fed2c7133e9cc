"""Model benchmark: backtest table (model, 4 baselines, oracle) on simulated scenarios, the
effect of exposure-awareness and of rare-event subsampling.

    python bench/bench_model.py --seeds 0 1 2 [--exposure] [--subsampling] [--months 6]
    python bench/bench_model.py --world patrolled --against truth --seeds 0 1 2 --exposure \
        --sim-from 2024-03-01 --from 2025-09-01 --to 2025-11-30 --step-days 91

``--world patrolled`` simulates the world whose records are made by patrols that follow the
records (METHODOLOGY.md, "The patrolled world"); ``--against truth`` makes the main table score
all true crossings instead of the recorded events (the model ranked by its threat). With a truth
file every run also scores every method against both, side by side (``side_by_side`` in the
JSON, printed as HR@5/10/20).

Writes bench/results/model_seed<N>.json (``<world>_<against>_seed<N>.json`` for another world
or target) and prints the tables. Long: several minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from riskmodel.api import run_simulation
from riskmodel.config.settings import load_settings
from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation.backtest import run_backtest, short_table, truth_matrix
from riskmodel.geo.geodata import Geography
from riskmodel.io.read.truth import read_truth
from riskmodel.model.pipeline import fit_model, predict_windows, read_dataset

END = "2026-11-22"  # fixed so results are reproducible


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--step-days", type=int, default=61)
    ap.add_argument("--exposure", action="store_true", help="also compare with a no-effort model")
    ap.add_argument(
        "--subsampling", action="store_true", help="also compare zero_keep=1 vs default"
    )
    ap.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="scenario parameter"
    )
    ap.add_argument("--world", choices=["default", "patrolled"], default="default")
    ap.add_argument(
        "--against", choices=["records", "truth"], default="records", help="what is scored"
    )
    ap.add_argument("--sim-from", default="2023-11-23", help="first simulated day")
    ap.add_argument("--from", dest="date_from", default=None, help="first scored day")
    ap.add_argument("--to", default=END, help="last scored (and simulated) day")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    s = load_settings()  # riskmodel.toml and RISKMODEL_* apply (e.g. RISKMODEL_FEATURE_SPEC)
    geo = Geography(s)
    end = a.to
    start = a.date_from or str(np.datetime64(end) - np.timedelta64(int(a.months * 30.4), "D"))
    tag = "model" if (a.world, a.against) == ("default", "records") else f"{a.world}_{a.against}"
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summ = run_simulation(
                s,
                out=Path(tmp),
                seed=seed,
                start=a.sim_from,
                end=end,
                geo=geo,
                params=tuple(a.param),
                world=a.world,
            )
            t_sim = time.perf_counter() - t0
            ds = read_dataset(s, Path(tmp) / "events.csv", Path(tmp) / "effort.csv", end=end)
            t0 = time.perf_counter()
            ds.features()
            t_feat = time.perf_counter() - t0
            truth = read_truth(Path(tmp) / "truth.parquet")
            res = run_backtest(
                ds,
                start,
                end,
                step_days=a.step_days,
                truth=truth,
                compare_exposure=a.exposure,
                against=a.against,
            )
            out = {
                "seed": seed,
                "world": a.world,
                "against": a.against,
                "period": [start, end],
                "simulate_seconds": round(t_sim, 1),
                "features_seconds": round(t_feat, 1),
                "scenario": summ,
                "table": json.loads(res.table.to_json(orient="index")),
                "info": res.info,
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            }
            print(
                f"== seed {seed} ({a.world} world): {start} .. {end}, "
                f"{res.info['events_in_period']} events; scored against {res.info['target_text']}"
            )
            print(short_table(res.table))
            for tgt, sb in res.info.get("side_by_side", {}).items():
                print(f"-- vs {tgt} ({sb['events']:.0f}): HR@5/10/20, ratio to oracle at 10 %")
                for m, r in sb["methods"].items():
                    print(
                        f"   {m:<16} {r['hr_5']:.3f} {r['hr_10']:.3f} {r['hr_20']:.3f}"
                        f"  {r['oracle_ratio_10'] or float('nan'):.3f}"
                    )
            if "exposure" in res.info:
                print(
                    "true-crossing HR (exposure-aware effort-neutral vs no-exposure):",
                    res.info["exposure"],
                )
            if a.subsampling:
                w0, w1 = (
                    ds.window_of_date(start),
                    ds.window_of_date(np.datetime64(end) + np.timedelta64(1, "D")),
                )
                act = ds.panel.counts[w0:w1]
                orc = truth_matrix(truth, ds, w0, w1)
                lengths = ds.geo.segments["length_m"].to_numpy()
                sub = {}
                for zk in (1.0, 0.05):
                    m, cols = fit_model(ds, w0, params={"zero_keep": zk})
                    p = predict_windows(ds, m, cols, w0, w1)
                    r = ev.evaluate(p, act, lengths, oracle_pred=orc)
                    sub[str(zk)] = {
                        "train_seconds": m.fit_info_["train_seconds"],
                        "rows_kept": m.fit_info_["rows_kept"],
                        "hr_5": r["hr_5"],
                        "hr_10": r["hr_10"],
                        "hr_20": r["hr_20"],
                        "deviance": r["deviance"],
                    }
                    print(f"zero_keep={zk}: {sub[str(zk)]}")
                out["subsampling"] = sub
            Path(a.out).mkdir(parents=True, exist_ok=True)
            (Path(a.out) / f"{tag}_seed{seed}.json").write_text(
                json.dumps(out, indent=2, default=str) + "\n"
            )


if __name__ == "__main__":
    main()
