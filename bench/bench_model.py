"""Model benchmark: backtest table (model, 4 baselines, oracle) on simulated scenarios, the
effect of exposure-awareness and of rare-event subsampling.

    python bench/bench_model.py --seeds 0 1 2 [--exposure] [--subsampling] [--months 6]

Writes bench/results/model_seed<N>.json and prints the tables. Long: several minutes per seed
on 2 cores (3 retrainings per backtest).
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
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    s = load_settings()  # riskmodel.toml and RISKMODEL_* apply (e.g. RISKMODEL_FEATURE_SPEC)
    geo = Geography(s)
    start = str(np.datetime64(END) - np.timedelta64(int(a.months * 30.4), "D"))
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summ = run_simulation(
                s,
                out=Path(tmp),
                seed=seed,
                start="2023-11-23",
                end=END,
                geo=geo,
                params=tuple(a.param),
            )
            t_sim = time.perf_counter() - t0
            ds = read_dataset(s, Path(tmp) / "events.csv", Path(tmp) / "effort.csv", end=END)
            t0 = time.perf_counter()
            ds.features()
            t_feat = time.perf_counter() - t0
            truth = read_truth(Path(tmp) / "truth.parquet")
            res = run_backtest(
                ds, start, END, step_days=a.step_days, truth=truth, compare_exposure=a.exposure
            )
            out = {
                "seed": seed,
                "period": [start, END],
                "simulate_seconds": round(t_sim, 1),
                "features_seconds": round(t_feat, 1),
                "scenario": summ,
                "table": json.loads(res.table.to_json(orient="index")),
                "info": res.info,
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            }
            print(f"== seed {seed}: {start} .. {END}, {res.info['events_in_period']} events")
            print(short_table(res.table))
            if "exposure" in res.info:
                print(
                    "true-crossing HR (exposure-aware effort-neutral vs no-exposure):",
                    res.info["exposure"],
                )
            if a.subsampling:
                w0, w1 = (
                    ds.window_of_date(start),
                    ds.window_of_date(np.datetime64(END) + np.timedelta64(1, "D")),
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
            (Path(a.out) / f"model_seed{seed}.json").write_text(
                json.dumps(out, indent=2, default=str) + "\n"
            )


if __name__ == "__main__":
    main()
