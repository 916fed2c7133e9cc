"""De-biasing and drift: each idea of issue 16 (item 2) measured against the baselines and the oracle.

    nice -n 10 python bench/bench_debias.py --worlds drift07 drift10 default --seeds 0 1 2 \
        --variants base recency etasfeat ...

One world per (world, seed): two years of simulated history ending ``--end``; every variant is
trained once on the windows before the last ``--test-days`` days and forecasts each shift of
them one step ahead (features from the events strictly before the shift). The four baselines
(historical, prospective hotspot, KDE, ETAS fitted by EM on the same past) score the same
windows. Hit rates at 5 / 10 / 20 % of the border length are measured against

* ``rec``:  the recorded events of the test period (what a backtest on records measures);
* ``exp``:  the simulator's expected recorded events (the same target without Poisson noise);
* ``true``: the simulator's expected true crossings (recorded or not).

The oracle ranks by the same truth it is scored against (expected recorded events for ``rec``
and ``exp``, expected true crossings for ``true``). Models rank by ``threat`` (effort-neutral).
``gap`` = (model - best baseline) / (oracle - best baseline), the baselines scored on the same
target. Writes ``bench/results/debias/<world>_seed<N>.json`` and prints one table per world
(mean over seeds) and a summary.

Besides the four baselines, three ETAS forecasters with a time-varying (recency-weighted)
background are scored (:data:`TV_NAMES`): half-lives of 60 and 120 days and ``etas_tv``, whose
half-life is chosen by predictive likelihood on the training history
(:func:`riskmodel.evaluation.etas.select_mu_half_life`); they are not part of the baselines of
"gap closed". Every variant is also stacked with ``etas`` and with each of them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config.settings import load_settings
from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation._events import _prepare, _window_days
from riskmodel.evaluation.backtest import truth_matrix
from riskmodel.evaluation.baselines import compute_baselines
from riskmodel.evaluation.etas import fit_etas, select_mu_half_life, self_exciting
from riskmodel.features import FeatureSpec, static_features
from riskmodel.features.spec import _with_defaults
from riskmodel.geo.geodata import Geography
from riskmodel.model.pipeline import fit_model, predict_windows, prepare_dataset
from riskmodel.sim.scenario import simulate
from riskmodel.sim.world import world_params

FRACTIONS = np.array([0.05, 0.10, 0.20])
WORLDS: dict[str, dict[str, Any]] = {
    "default": {},
    "drift07": {"drift_sd": 0.7},
    "drift10": {"drift_sd": 1.0},
    # the patrolled world (riskmodel.sim.world.PATROLLED_WORLD): records follow the patrols
    "patrolled": {"world": "patrolled"},
}

# Every idea is a variant: feature-spec overrides (laid over features/default.toml), model
# parameters, training options of fit_model.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "noeffort": {"drop": ("effort",)},
    # ETAS-like local level: Gaussian-smoothed decayed counts and their ratio to the long run
    "level": {"spec": {"history": {"smooth_decay_days": [7, 30], "smooth_km": 3.0}}},
    "level3": {"spec": {"history": {"smooth_decay_days": [3, 14, 45], "smooth_km": 2.0}}},
    # recent training rows weigh more: weight 2^(-age / half-life)
    "recent180": {"half_life_days": 180},
    "recent90": {"half_life_days": 90},
    # model capacity / regularisation
    "shallow": {"params": {"max_depth": 3, "min_child_weight": 20}},
    "zk20": {"params": {"zero_keep": 0.2}},
    "bags3": {"params": {"n_bags": 3}},
    "lvl_shallow": {
        "spec": {"history": {"smooth_decay_days": [7, 30], "smooth_km": 3.0}},
        "params": {"max_depth": 3, "min_child_weight": 20},
    },
    # history split into patrolled / unpatrolled shifts (records per shift of each kind)
    "split": {"spec": {"effort": {"split_decay_days": [14, 60]}}},
    "split_lvl": {
        "spec": {
            "effort": {"split_decay_days": [14, 60]},
            "history": {"smooth_decay_days": [7, 30], "smooth_km": 3.0},
        },
        "params": {"max_depth": 3, "min_child_weight": 20},
    },
    # fixed-kernel ETAS rate as a feature (monotone), with its parts
    "selfexc": {
        "spec": {"history": {"smooth_decay_days": [7], "smooth_km": 2.0}},
        "params": {"max_depth": 3, "min_child_weight": 20},
    },
    "selfexc2": {
        "spec": {"history": {"smooth_decay_days": [7, 30], "smooth_km": 2.0}},
        "params": {"max_depth": 3, "min_child_weight": 20},
    },
    # histogram resolution: 64 bins are coarse at the top of a ranking
    "bins256": {
        "spec": {"history": {"smooth_decay_days": [7, 30], "smooth_km": 2.0}},
        "params": {"max_depth": 3, "min_child_weight": 20, "max_bin": 256},
    },
    "base256": {"params": {"max_bin": 256}},
    # boosting from an offset: log of the fixed-kernel ETAS rate is the starting margin, the
    # trees learn multiplicative corrections (bench only: the bundle has no offset)
    "offset": {
        "spec": {"history": {"smooth_decay_days": [7, 30], "smooth_km": 2.0}},
        "params": {"max_depth": 3, "min_child_weight": 20},
        "offset": "selfexc_7d_g2km",
    },
    "sx_bags3": {
        "spec": {"history": {"smooth_decay_days": [7, 30], "smooth_km": 2.0}},
        "params": {"max_depth": 3, "min_child_weight": 20, "n_bags": 3, "zero_keep": 0.2},
    },
    # shorter memories of the decayed counts
    "shortdecay": {"spec": {"history": {"decay_days": [1, 3, 7, 14, 30]}}},
}


def _spec(over: dict[str, Any]) -> FeatureSpec:
    base = FeatureSpec.load().data
    data = copy.deepcopy({k: v for k, v in base.items() if k not in ("name", "version")})
    for sec, kv in over.items():
        data.setdefault(sec, {}).update(kv)
    return FeatureSpec(_with_defaults(data, "bench"), "bench")


def _curve(pred: np.ndarray, actual: np.ndarray, lengths: np.ndarray) -> list[float]:
    return [float(v) for v in ev.hit_rate_curve(pred, actual, lengths, fractions=FRACTIONS)]


def _fit(ds: Any, w0: int, cfg: dict[str, Any]) -> tuple[Any, list[str]]:
    """fit_model, or the same fit with training rows weighted by age (``half_life_days``)."""
    if cfg.get("offset"):
        return _fit_offset(ds, w0, cfg)
    hl = cfg.get("half_life_days")
    if not hl:
        return fit_model(ds, w0, params=cfg.get("params"), drop=cfg.get("drop", ()))
    from riskmodel.features import feature_columns
    from riskmodel.model.estimator import RiskRegressor
    from riskmodel.model.pipeline import _xy, train_rows

    X = ds.features()
    drop = cfg.get("drop", ())
    cols = [c for c in feature_columns(X) if not (drop and c.startswith(drop))]
    Xt, y, t = _xy(ds, train_rows(ds, w0), cols)
    age_days = (w0 - t) / ds.panel.n_shifts
    model = RiskRegressor(**cfg.get("params", {})).fit(
        Xt, y, time=t, sample_weight=0.5 ** (age_days / hl)
    )
    return model, cols


class _Offset:
    """A booster trained from a per-row offset (log of a feature); predicts like a model."""

    def __init__(self, booster: Any, names: list[str], col: str, best: int) -> None:
        self.booster, self.names, self.col, self.best_iteration_ = booster, names, col, best

    def _dm(self, X: pd.DataFrame) -> Any:
        import xgboost as xgb

        dm = xgb.DMatrix(X[self.names].to_numpy(np.float32), feature_names=self.names)
        dm.set_base_margin(np.log(np.maximum(X[self.col].to_numpy(float), 1e-6)) - np.log(3.0))
        return dm

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self._dm(X), iteration_range=(0, self.best_iteration_ + 1))

    def predict_neutral(self, X: pd.DataFrame) -> np.ndarray:
        from riskmodel.features.effort import EXPOSURE_FEATURE

        X = X.copy()
        if EXPOSURE_FEATURE in X:
            X[EXPOSURE_FEATURE] = 0.0
        return self.predict(X)


def _fit_offset(ds: Any, w0: int, cfg: dict[str, Any]) -> tuple[Any, list[str]]:
    from riskmodel.features import feature_columns
    from riskmodel.model.estimator import RiskRegressor
    from riskmodel.model.pipeline import _xy, train_rows

    X = ds.features()
    cols = feature_columns(X)
    Xt, y, t = _xy(ds, train_rows(ds, w0), cols)
    est = RiskRegressor(**cfg.get("params", {}))
    uniq = np.unique(t)
    cut = uniq[int(len(uniq) * (1 - est.validation_fraction))]
    val = t >= cut
    keep = ~val & est.keep_rows(y)
    w = est.row_weights(y)
    m = _Offset(None, cols, cfg["offset"], 0)
    dtr = m._dm(Xt[keep])
    dtr.set_label(y[keep])
    dtr.set_weight(w[keep])
    dva = m._dm(Xt[val])
    dva.set_label(y[val])
    b = est.train_booster(cols, dtr, dva, 0)
    return _Offset(b, cols, cfg["offset"], int(b.best_iteration)), cols


def _blend(a: np.ndarray, b: np.ndarray, w: float = 0.5) -> np.ndarray:
    """Geometric blend of two maps normalised per window (the ranking of a stacked forecast)."""
    la = np.log(np.maximum(a, 1e-12) / np.maximum(a, 1e-12).sum(axis=1, keepdims=True))
    lb = np.log(np.maximum(b, 1e-12) / np.maximum(b, 1e-12).sum(axis=1, keepdims=True))
    return np.exp(w * la + (1 - w) * lb)


def run_world(name: str, seed: int, variants: list[str], a: argparse.Namespace) -> dict[str, Any]:
    """Simulate one world, train every variant once, score the test period."""
    s = load_settings()
    geo = Geography(s)
    end = pd.Timestamp(a.end)
    start = (end - pd.DateOffset(years=a.years) + pd.Timedelta(days=1)).date().isoformat()
    test0 = (end - pd.Timedelta(days=a.test_days - 1)).date().isoformat()
    t_run = t0 = time.perf_counter()
    over = dict(WORLDS[name])
    p = world_params(str(over.pop("world", "default")), seed=seed, start=start, end=a.end, **over)
    sc = simulate(geo, p, s.shifts, s.timezone)
    t_sim = time.perf_counter() - t0
    ds0 = prepare_dataset(s, sc.events, sc.effort, geo=geo, end=a.end)
    w0 = ds0.window_of_date(test0)
    w1 = len(ds0.windows)
    lengths = geo.segments["length_m"].to_numpy()
    rec = ds0.panel.counts[w0:w1].astype(float)
    exp_rec = truth_matrix(sc.truth, ds0, w0, w1, "expected_recorded")
    exp_true = truth_matrix(sc.truth, ds0, w0, w1, "expected_crossings")
    targets = {"rec": rec, "exp": exp_rec, "true": exp_true}
    oracles = {"rec": exp_rec, "exp": exp_rec, "true": exp_true}
    win = ds0.windows.iloc[w0:w1].reset_index(drop=True)
    evf = ds0.events[ds0.events["seq"] >= 0][["timestamp", "seq", "chainage_km", "persons"]]
    seg = geo.segments[["segment_id", "seq", "length_m", "chainage_from_km", "chainage_to_km"]]
    t0 = time.perf_counter()
    preds: dict[str, np.ndarray] = dict(compute_baselines(evf, seg, win))
    t_base = time.perf_counter() - t0
    # ETAS with a recency-weighted background: fixed half-lives and the ML choice
    t0 = time.perf_counter()
    choice = select_mu_half_life(evf, seg, win["start_utc"].min(), grid=TV_GRID)
    for tv_name, h in (("etas_tv60", 60.0), ("etas_tv120", 120.0), ("etas_tv", choice.best)):
        preds[tv_name] = self_exciting(evf, seg, win, fit=choice.fits[h])
    t_tv = time.perf_counter() - t0
    # Diagnostic ceiling, NOT a forecaster (it sees the test period): the static ETAS
    # triggering plus, as background, the per-segment mean of the expected true crossings over
    # the test period scaled to the fitted background total -- the best any background that is
    # constant over the test period could do inside ETAS.
    fit0 = fit_etas(evf, seg, win["start_utc"].min())
    days = _window_days(_prepare(evf, seg, win))[:, None]
    bg_true = exp_true.mean(axis=0)
    bg_true = bg_true / max(bg_true.sum(), 1e-12) * fit0.mu.sum()
    preds["etas_bgoracle"] = preds["etas"] + days * (bg_true - fit0.mu)[None, :]
    info: dict[str, Any] = {}
    for v in variants:
        cfg = VARIANTS[v]
        t0 = time.perf_counter()
        spec = _spec(cfg.get("spec", {}))
        ds = dataclasses.replace(ds0, spec=spec, static=static_features(geo, spec), _features=None)
        model, cols = _fit(ds, w0, cfg)
        preds[v] = predict_windows(ds, model, cols, w0, w1, effort_neutral=True)
        info[v] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "trees": model.best_iteration_ + 1,
            "features": len(cols),
        }
        del ds
        # stacked with ETAS: geometric mean of the two maps, each normalised per window
        preds[v + "+etas"] = _blend(preds[v], preds["etas"])
        for tv_name in TV_NAMES:
            preds[f"{v}+{tv_name}"] = _blend(preds[v], preds[tv_name])
    out: dict[str, Any] = {
        "world": name,
        "seed": seed,
        "period": [start, a.end],
        "test": [test0, a.end],
        "events_test": int(rec.sum()),
        "simulate_seconds": round(t_sim, 1),
        "baseline_seconds": round(t_base, 1),
        "etas_tv_seconds": round(t_tv, 1),
        "etas_tv_half_life": choice.best,
        "etas_tv_scores": {str(k): round(v, 2) for k, v in choice.scores.items()},
        "variants": info,
        "hr": {},
    }
    for tname, act in targets.items():
        out["hr"][tname] = {m: _curve(p, act, lengths) for m, p in preds.items()}
        out["hr"][tname]["oracle"] = _curve(oracles[tname], act, lengths)
    out["total_seconds"] = round(time.perf_counter() - t_run, 1)
    return out


BASELINE_NAMES = ("historical", "hotspot", "kde", "etas")
# ETAS with a time-varying background (not baselines of "gap closed"): half-life 60 and 120
# days, and chosen by predictive likelihood on the training history over TV_GRID
TV_NAMES = ("etas_tv60", "etas_tv120", "etas_tv")
TV_GRID = (30.0, 60.0, 120.0, 240.0, float("inf"))
# diagnostic ceiling (sees the test period): ETAS triggering + the test-period mean truth as
# background
DIAG_NAMES = ("etas_bgoracle",)


def summarise(runs: list[dict[str, Any]], variants: list[str], target: str) -> str:
    """Table (mean over seeds) of HR at 5/10/20 %, oracle ratio and gap closed at 10 %."""
    methods = [
        *BASELINE_NAMES,
        *TV_NAMES,
        *variants,
        *(v + "+etas" for v in variants),
        *(f"{v}+{t}" for v in variants for t in TV_NAMES),
        *DIAG_NAMES,
        "oracle",
    ]
    # results written before the time-varying ETAS existed lack those methods
    methods = [m for m in methods if all(m in r["hr"][target] for r in runs)]
    hr = {m: np.mean([r["hr"][target][m] for r in runs], axis=0) for m in methods}
    # gap closed per seed, then averaged (each seed's best baseline)
    lines = [
        f"target={target}  seeds={[r['seed'] for r in runs]}  events(test)="
        f"{[r['events_test'] for r in runs]}  etas_tv half-life="
        f"{[r.get('etas_tv_half_life') for r in runs]}",
        "| method | HR@5 | HR@10 | HR@20 | /oracle@10 | gap@5 | gap@10 | gap@20 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        gaps = []
        for j in range(3):
            g = []
            for r in runs:
                h = r["hr"][target]
                bb = max(h[b][j] for b in BASELINE_NAMES)
                den = h["oracle"][j] - bb
                g.append((h[m][j] - bb) / den if den > 1e-9 else np.nan)
            gaps.append(np.nanmean(g) if m not in BASELINE_NAMES else np.nan)
        gtxt = ["" if np.isnan(x) else f"{x:+.2f}" for x in gaps]
        lines.append(
            f"| {m} | {hr[m][0]:.3f} | {hr[m][1]:.3f} | {hr[m][2]:.3f} | "
            f"{hr[m][1] / hr['oracle'][1]:.3f} | {gtxt[0]} | {gtxt[1]} | {gtxt[2]} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worlds", nargs="+", default=["drift07"], choices=list(WORLDS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=["base"], choices=list(VARIANTS))
    ap.add_argument("--end", default="2026-11-30")
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--test-days", type=int, default=91)
    ap.add_argument("--targets", nargs="+", default=["rec", "exp", "true"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "debias"))
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument(
        "--summarise", action="store_true", help="only print the tables of stored results"
    )
    a = ap.parse_args()
    if a.summarise:
        for w in a.worlds:
            runs = [
                json.loads(f.read_text())
                for seed in a.seeds
                if (f := Path(a.out) / f"{w}_seed{seed}{a.tag}.json").is_file()
            ]
            if runs:
                print(f"\n## world {w}")
                for t in a.targets:
                    print(summarise(runs, a.variants, t))
        return
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for w in a.worlds:
        runs = []
        for seed in a.seeds:
            r = run_world(w, seed, a.variants, a)
            runs.append(r)
            f = Path(a.out) / f"{w}_seed{seed}{a.tag}.json"
            f.write_text(json.dumps(r, indent=1) + "\n")
            print(f"# {w} seed {seed}: {r['variants']}", flush=True)
        print(f"\n## world {w}")
        for t in a.targets:
            print(summarise(runs, a.variants, t), flush=True)


if __name__ == "__main__":
    main()
