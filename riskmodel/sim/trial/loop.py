"""The closed loop: burn-in, one policy run week by week, outcomes, all seeds."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config.settings import DEFAULT_SHIFTS
from riskmodel.errors import ConfigError
from riskmodel.evaluation.metrics import captured, hit_rate_curve
from riskmodel.features import FeatureSpec, Panel, static_features
from riskmodel.geo.geodata import Geography
from riskmodel.planning import normalised_entropy, top_k
from riskmodel.sim.trial.config import (
    _S_PERSONS,
    _S_POLICY,
    _S_ROUTE,
    _S_WORLD,
    HIT_FRACTION,
    RECOVERY_TOLERANCE,
    WEEKLY_COLUMNS,
    PolicyRun,
    TrialConfig,
    TrialResult,
    _ci,
    _json_safe,
    _stream,
)
from riskmodel.sim.trial.learner import _Learner
from riskmodel.sim.trial.policies import _Policy
from riskmodel.sim.world import World, world_params

log = logging.getLogger(__name__)


def _route_stretches(
    base: np.ndarray, seg_km: np.ndarray, route_km: float, min_gap_km: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Segment indices of the source (busiest ``route_km`` stretch) and the target (a quiet
    stretch of the same length at least ``min_gap_km`` away, drawn from the seed)."""
    S = base.size
    n = int(max(1, min(S // 3, round(route_km / max(float(np.median(seg_km)), 1e-6)))))
    starts = np.arange(S - n + 1)
    csum = np.concatenate([[0.0], np.cumsum(base)])
    sums = csum[starts + n] - csum[starts]
    src0 = int(np.argmax(sums))
    chain = np.concatenate([[0.0], np.cumsum(seg_km)])
    mid = (chain[starts] + chain[starts + n]) / 2
    gap = np.abs(mid - mid[src0]) - route_km
    far = gap >= min_gap_km
    if not far.any():  # tiny worlds: the farthest stretch that does not overlap
        far = np.abs(starts - src0) >= n
    quiet = far & (sums <= np.median(sums[far]))
    cand = starts[quiet] if quiet.any() else starts[far]
    tgt0 = int(_stream(seed, _S_ROUTE).choice(cand))
    return np.arange(src0, src0 + n), np.arange(tgt0, tgt0 + n)


def _persons(counts: np.ndarray, mean_group: float, rng: np.random.Generator) -> np.ndarray:
    # Sum of n group sizes 1 + NB(r, q) is n + NB(n r, q): one draw per cell.
    r = 1.2
    q = r / (r + mean_group - 1)
    n = counts.astype(np.int64)
    extra = rng.negative_binomial(np.maximum(n * r, 1e-9), q) * (n > 0)
    return (n + extra).astype(np.float32)


_SUMS = (
    "patrol_hours",
    "officer_hours",
    "true_crossings",
    "expected_crossings",
    "recorded",
    "patrol_detections",
    "expected_patrol_detections",
)


def _run_week(
    pol: _Policy, world: World, learner: _Learner, cfg: TrialConfig, seed: int, week: int
) -> tuple[dict[str, float], np.ndarray, np.ndarray, list[float], list[np.ndarray], np.ndarray]:
    """Seven days of one policy: sums, the map and the truth (7 K, S), entropies, checks and
    which segments were patrolled in the 7 days before each window's day (7 K, S)."""
    K = world.n_shifts
    p = world.params
    acc = dict.fromkeys(_SUMS, 0.0)
    preds, truths, ents, checks, patrolled = [], [], [], [], []
    for day in range(7):
        d = cfg.burn_in_days + week * 7 + day
        w0 = d * K
        # Patrolled in the previous week (the panel holds the effort up to yesterday).
        prev = learner.panel.effort[max(0, w0 - 7 * K) : w0].sum(axis=0) > 0
        patrolled.append(np.broadcast_to(prev, (K, prev.size)))
        risk = learner.predict_neutral(w0, K)
        pick, cov = pol.decide_day(
            d, risk, world.intensity(), _stream(seed, _S_POLICY, pol.code, d)
        )
        effort = np.where(pick, cfg.officers_per_unit * world.hours[d][:, None], 0.0)
        ents += [normalised_entropy(c) for c in cov]
        checks += list(pick)
        st = world.step_day(effort, crn=_stream(seed, _S_WORLD, d))
        pers = _persons(st.recorded, p.mean_group_size, _stream(seed, _S_PERSONS, d))
        learner.record(w0, st.recorded, pers, st.effort)
        learner.note_forecast(w0, K)
        preds.append(risk)
        truths.append(st.expected_crossings)
        acc["patrol_hours"] += float((pick.sum(axis=1) * world.hours[d]).sum())
        acc["officer_hours"] += float(st.effort.sum())
        acc["true_crossings"] += float(st.groups.sum())
        acc["expected_crossings"] += float(st.expected_crossings.sum())
        acc["recorded"] += float(st.recorded.sum())
        acc["patrol_detections"] += float(st.patrol_recorded.sum())
        acc["expected_patrol_detections"] += float(
            (st.expected_recorded - p.p0 * st.expected_crossings).sum()
        )
    return (
        acc,
        np.concatenate(preds),
        np.concatenate(truths),
        ents,
        checks,
        np.concatenate(patrolled),
    )


def chase_share(
    ranking: np.ndarray, patrolled: np.ndarray, lengths: np.ndarray, c: float = HIT_FRACTION
) -> float:
    """Share of the border length a ranking puts in its top ``c`` that was patrolled before.

    How much a map chases the patrols: compare the map's share with the truth's (the same
    function on the true intensity). Pooled over windows, with the hit rate's selection rule
    (fractional boundary segment).

    Parameters
    ----------
    ranking : ndarray (W, S)
        Scores per window (the map, or the true intensity).
    patrolled : ndarray of bool (W, S)
        Segment patrolled in the week before the window.
    lengths : ndarray (S,)
    c : float
        Share of the border length.
    """
    plen = patrolled.astype(float) * lengths[None, :]
    got = captured(ranking, plen, lengths, [c]).sum()
    return float(got / (c * lengths.sum() * ranking.shape[0]))


def _weekly_row(
    acc: dict[str, float],
    pred_w: np.ndarray,
    truth_w: np.ndarray,
    prev_truth: np.ndarray | None,
    lengths: np.ndarray,
    patrolled_w: np.ndarray,
) -> dict[str, Any]:
    """Rates, map-drift hit rates and chase shares of one week."""
    hr = float(hit_rate_curve(pred_w, truth_w, lengths, [HIT_FRACTION])[0])
    ceiling = float(hit_rate_curve(truth_w, truth_w, lengths, [HIT_FRACTION])[0])
    # How predictable the truth itself is: last week's true mean intensity as the map.
    lag = truth_w.mean(axis=0) if prev_truth is None else prev_truth
    persist = float(
        hit_rate_curve(np.broadcast_to(lag, truth_w.shape), truth_w, lengths, [HIT_FRACTION])[0]
    )
    ph = max(acc["patrol_hours"], 1e-9)
    tc = max(acc["true_crossings"], 1e-9)
    return {
        "patrol_detections_per_patrol_hour": acc["patrol_detections"] / ph,
        "expected_patrol_detections_per_patrol_hour": acc["expected_patrol_detections"] / ph,
        "recorded_per_patrol_hour": acc["recorded"] / ph,
        "share_recorded": acc["recorded"] / tc,
        "share_patrol_detected": acc["patrol_detections"] / tc,
        "hit_rate_10": hr,
        "hit_rate_10_ceiling": ceiling,
        "oracle_ratio_10": hr / ceiling if ceiling > 0 else np.nan,
        "hit_rate_10_truth_last_week": persist if prev_truth is not None else None,
        "chase_share_10": chase_share(pred_w, patrolled_w, lengths),
        "chase_share_10_truth": chase_share(truth_w, patrolled_w, lengths),
    }


def _run_policy(
    name: str,
    world: World,
    learner: _Learner,
    cfg: TrialConfig,
    seed: int,
    route: tuple[np.ndarray, np.ndarray] | None,
    lengths: np.ndarray,
    static_risk: np.ndarray,
) -> PolicyRun:
    """One policy on one world seed, week by week (retraining every ``retrain_weeks``)."""
    S, K = world.n_segments, world.n_shifts
    win = learner.panel.windows
    tz = str(win["start_local"].dt.tz)
    pol = _Policy(name, cfg, learner.panel.segments, win, seed, tz)
    if name == "static":
        none = np.zeros(S, bool)
        pol.static_plan = np.stack([top_k(static_risk[k], pol.U, none, none) for k in range(K)])
    rows: list[dict[str, Any]] = []
    prev_truth: np.ndarray | None = None
    checks_all: list[np.ndarray] = []
    ent_all: list[float] = []
    for week in range(cfg.weeks):
        shifted = bool(route is not None and week == cfg.shift_week)
        if shifted:
            world.relocate(route[0], route[1], cfg.route_shift_share)
        acc, pred_w, truth_w, ents, checks, pat_w = _run_week(pol, world, learner, cfg, seed, week)
        row = {"seed": seed, "policy": name, "week": week, **acc}
        row.update(_weekly_row(acc, pred_w, truth_w, prev_truth, lengths, pat_w))
        row.update(entropy=float(np.mean(ents)), route_shifted=shifted, model_fits=learner.fits)
        rows.append(row)
        prev_truth = truth_w.mean(axis=0)
        ent_all += ents
        checks_all += checks
        if (week + 1) % cfg.retrain_weeks == 0 and week + 1 < cfg.weeks:
            learner.fit((cfg.burn_in_days + (week + 1) * 7) * K)
    weekly = pd.DataFrame(rows, columns=list(WEEKLY_COLUMNS))
    return PolicyRun(weekly, _totals(weekly, np.array(checks_all), ent_all, cfg, K))


def _trajectory(x: np.ndarray, cfg: TrialConfig, name: str) -> dict[str, Any]:
    """Start/end and route-shift recovery of one weekly series (hit rate or oracle ratio)."""
    n4 = min(4, len(x))
    start = float(x[:n4].mean())
    end = float(x[-n4:].mean())
    out: dict[str, Any] = {
        f"{name}_mean": float(x.mean()),
        f"{name}_start": start,
        f"{name}_end": end,
        f"{name}_last": float(x[-1]),
        f"{name}_end_vs_start": end / start if start > 0 else None,
    }
    if cfg.route_shift:
        w = cfg.shift_week
        pre = float(x[max(0, w - 4) : w].mean()) if w > 0 else float(x[0])
        after = x[w:]
        ok = np.flatnonzero(after >= (1 - RECOVERY_TOLERANCE) * pre)
        out.update(
            {
                f"{name}_pre_shift": pre,
                f"{name}_min_after_shift": float(after.min()),
                f"{name}_dip_vs_pre_shift": float(after.min() / pre) if pre > 0 else None,
                # None = not back within the tolerance before the trial ended
                f"{name}_recovery_weeks": int(ok[0]) if ok.size else None,
                f"{name}_recovered": bool(ok.size),
            }
        )
    return out


def _totals(
    weekly: pd.DataFrame, checks: np.ndarray, ents: list[float], cfg: TrialConfig, K: int
) -> dict[str, Any]:
    """Whole-trial outcomes of one policy run."""
    s = weekly[
        [
            "patrol_hours",
            "officer_hours",
            "true_crossings",
            "expected_crossings",
            "recorded",
            "patrol_detections",
            "expected_patrol_detections",
        ]
    ].sum()
    out: dict[str, Any] = {k: float(v) for k, v in s.items()}
    out.update(
        patrol_detections_per_patrol_hour=s["patrol_detections"] / max(s["patrol_hours"], 1e-9),
        expected_patrol_detections_per_patrol_hour=s["expected_patrol_detections"]
        / max(s["patrol_hours"], 1e-9),
        recorded_per_patrol_hour=s["recorded"] / max(s["patrol_hours"], 1e-9),
        share_recorded=s["recorded"] / max(s["true_crossings"], 1e-9),
        share_patrol_detected=s["patrol_detections"] / max(s["true_crossings"], 1e-9),
        hit_rate_10_ceiling_mean=float(weekly["hit_rate_10_ceiling"].mean()),
        entropy_mean=float(np.mean(ents)),
        chase_share_10_mean=float(weekly["chase_share_10"].mean()),
        chase_share_10_truth_mean=float(weekly["chase_share_10_truth"].mean()),
        oracle_ratio_10_min=float(weekly["oracle_ratio_10"].min()),
    )
    out.update(_trajectory(weekly["hit_rate_10"].to_numpy(float), cfg, "hit_rate_10"))
    # How concentrated the truth itself stays (the patrols flatten it by displacement).
    ceil = weekly["hit_rate_10_ceiling"].to_numpy(float)
    n4 = min(4, len(ceil))
    c0, c1 = float(ceil[:n4].mean()), float(ceil[-n4:].mean())
    out.update(
        truth_hit_rate_10_start=c0,
        truth_hit_rate_10_end=c1,
        truth_hit_rate_10_end_vs_start=c1 / c0 if c0 > 0 else None,
    )
    out.update(_trajectory(weekly["oracle_ratio_10"].to_numpy(float), cfg, "oracle_ratio_10"))
    # Legal side: largest share of shifts a segment was checked, whole trial and worst window.
    n = checks.shape[0]
    out["max_share_of_shifts"] = float(checks.sum(axis=0).max() / max(n, 1))
    # Share of the calendar shifts of the worst window of share_window_days consecutive days,
    # counted exactly as the planner's cap counts it (whole days; also for short trials).
    days = checks.reshape(-1, K, checks.shape[1]).sum(axis=1)
    span = min(cfg.share_window_days, days.shape[0])
    cum = np.vstack([np.zeros((1, days.shape[1])), np.cumsum(days, axis=0)])
    worst = (cum[span:] - cum[:-span]).max()
    out["max_share_of_shifts_30d"] = float(worst / (cfg.share_window_days * K))
    out["segments_ever_checked"] = int((checks.sum(axis=0) > 0).sum())
    return out


def _seed_world(
    geo: Geography, cfg: TrialConfig, seed: int, shifts: str, tz: str, spec: FeatureSpec
) -> tuple[World, _Learner, dict[str, Any], tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    """Burn-in world, first model, route shift and week-1 risk shared by every policy."""
    start = dt.date.fromisoformat(cfg.start)
    first = start - dt.timedelta(days=cfg.burn_in_days)
    last = start + dt.timedelta(days=7 * cfg.weeks - 1)
    params = world_params(
        cfg.world,
        **{
            **cfg.scenario,
            "seed": seed,
            "start": first.isoformat(),
            "end": last.isoformat(),
            "units_per_shift": (cfg.units,),
            "officers_per_unit": cfg.officers_per_unit,
        },
    )
    world = World(geo, params, shifts, tz)
    S, K = world.n_segments, world.n_shifts
    if cfg.units > S * cfg.per_shift_cap:
        raise ConfigError(
            f"{cfg.units} units cannot be placed on {S} segments with a per-shift cap of "
            f"{cfg.per_shift_cap}",
            where="--units",
            fix="use fewer units or a higher per-shift cap",
        )
    W = world.n_days * K
    windows = world.windows.sort_values(["date", "shift_idx"]).reset_index(drop=True)
    panel = Panel(
        windows,
        geo.segments,
        np.zeros((W, S), np.float32),
        np.zeros((W, S), np.float32),
        np.zeros((W, S), np.float32),
        K,
    )
    learner = _Learner(panel, static_features(geo, spec), spec, cfg, seed)
    # Burn-in: the simulator's own police patrol; the same CRN streams as the trial days.
    for d in range(cfg.burn_in_days):
        st = world.step_day(None, crn=_stream(seed, _S_WORLD, d))
        pers = _persons(st.recorded, params.mean_group_size, _stream(seed, _S_PERSONS, d))
        learner.record(d * K, st.recorded, pers, st.effort)
    learner.fit(cfg.burn_in_days * K)
    # The static plan's risk: the whole first week, from the data at the trial start.
    wk1 = learner.predict_neutral(cfg.burn_in_days * K, 7 * K)
    static_risk = wk1.reshape(7, K, S).mean(axis=0)
    route = None
    info: dict[str, Any] = {"enabled": False}
    if cfg.route_shift:
        seg_km = geo.segments["length_m"].to_numpy(float) / 1000.0
        src, tgt = _route_stretches(
            world.base, seg_km, cfg.route_km, 3 * params.displacement_km, seed
        )
        route = (src, tgt)
        ids = geo.segments["segment_id"].astype(str).to_numpy()
        moved = float(world.base[src].sum() * cfg.route_shift_share / world.base.sum())
        info = {
            "enabled": True,
            "week": cfg.shift_week,
            "date": (start + dt.timedelta(days=7 * cfg.shift_week)).isoformat(),
            "share_of_source_moved": cfg.route_shift_share,
            "share_of_total_moved": round(moved, 6),
            "source": [ids[src][0], ids[src][-1]],
            "target": [ids[tgt][0], ids[tgt][-1]],
        }
    return world, learner, info, route, static_risk


def run_trial(
    geo: Geography,
    config: TrialConfig | None = None,
    *,
    shifts: str = DEFAULT_SHIFTS,
    tz: str = "Europe/Ljubljana",
    spec: FeatureSpec | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrialResult:
    """Run the closed-loop trial of every policy on every world seed.

    Parameters
    ----------
    geo : Geography
        Border segments (the bundled SI-HR geography or a synthetic one).
    config : TrialConfig, optional
        Trial parameters (defaults: 26 weeks, 16 units, randomised/top-k/uniform, 1 seed).
    shifts : str
        Shift definitions (``name=HH:MM-HH:MM,...``).
    tz : str
        Local time zone.
    spec : FeatureSpec, optional
        Feature set (default: the bundled one).
    progress : callable, optional
        Called with a one-line message after each policy run.

    Returns
    -------
    TrialResult
        Deterministic for ``config.seed`` (and the rest of the configuration).
    """
    cfg = config or TrialConfig()
    spec = spec or FeatureSpec.load()
    t0 = time.perf_counter()
    lengths = geo.segments["length_m"].to_numpy(float)
    runs: dict[int, dict[str, PolicyRun]] = {}
    routes: dict[int, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    for i in range(cfg.seeds):
        seed = cfg.seed + i
        ts = time.perf_counter()
        world, learner, info, route, static_risk = _seed_world(geo, cfg, seed, shifts, tz, spec)
        timing[f"burn_in_seed_{seed}"] = round(time.perf_counter() - ts, 2)
        routes[seed] = info
        runs[seed] = {}
        for name in cfg.policies:
            ts = time.perf_counter()
            runs[seed][name] = _run_policy(
                name,
                copy.deepcopy(world),
                learner.fork(),
                cfg,
                seed,
                route,
                lengths,
                static_risk,
            )
            timing[f"{name}_seed_{seed}"] = round(time.perf_counter() - ts, 2)
            if progress is not None:
                tot = runs[seed][name].totals
                progress(
                    f"seed {seed} {name}: {tot['patrol_detections_per_patrol_hour']:.4f} patrol "
                    f"detections per patrol-hour, hit rate@10% {tot['hit_rate_10_start']:.3f} -> "
                    f"{tot['hit_rate_10_end']:.3f} ({timing[f'{name}_seed_{seed}']:.0f} s)"
                )
    summary = summarise(runs, cfg.policies)
    meta = {
        "segments": int(len(geo.segments)),
        "border_km": round(float(lengths.sum()) / 1000, 1),
        "geography": str(getattr(geo, "border_path", "")),
        "shifts": shifts,
        "timezone": tz,
        "feature_spec_sha256": spec.sha256,
        "runtime_s": round(time.perf_counter() - t0, 1),
        "timing_s": timing,
    }
    return TrialResult(cfg, runs, summary, routes, meta)


def summarise(
    runs: dict[int, dict[str, PolicyRun]], policies: Sequence[str]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean and 95 % t-interval over seeds of every whole-trial outcome, per policy.

    Flags (``*_recovered``) become the share of seeds (``*_recovered_share``); recovery weeks
    are averaged over the seeds that recovered.

    Parameters
    ----------
    runs : dict
        ``seed -> policy -> PolicyRun``.
    policies : sequence of str

    Returns
    -------
    dict
        ``policy -> metric -> {mean, sd, ci_low, ci_high, n}``.
    """
    summary: dict[str, dict[str, Any]] = {}
    for pol in policies:
        tot = [runs[s][pol].totals for s in sorted(runs)]
        summary[pol] = {}
        for m, v in tot[0].items():
            if isinstance(v, bool):
                key = m.replace("_recovered", "_recovered_share")
                summary[pol][key] = _ci([float(t[m]) for t in tot])
            else:
                summary[pol][m] = _ci([t.get(m) for t in tot])
    return _json_safe(summary)
