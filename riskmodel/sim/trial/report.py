"""The trial's report: Markdown, JSON, weekly CSV and PNG plots."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from riskmodel import __version__
from riskmodel.files import atomic_write_json, atomic_write_text, atomic_write_with
from riskmodel.sim.trial.config import RECOVERY_TOLERANCE, TrialResult

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- report

_TABLE = (
    ("patrol_detections_per_patrol_hour", "patrol detections / patrol-h", 4),
    ("expected_patrol_detections_per_patrol_hour", "... expected (no Poisson noise)", 4),
    ("recorded_per_patrol_hour", "all recorded / patrol-h", 3),
    ("share_recorded", "share of true crossings recorded", 3),
    ("share_patrol_detected", "share detected thanks to patrols", 3),
    ("hit_rate_10_start", "HR@10% vs truth, weeks 1-4", 3),
    ("hit_rate_10_end", "HR@10% vs truth, last 4 weeks", 3),
    ("hit_rate_10_end_vs_start", "HR end / start", 3),
    ("truth_hit_rate_10_end_vs_start", "truth-ranked HR end / start", 3),
    ("oracle_ratio_10_start", "oracle ratio (HR / truth-ranked HR), weeks 1-4", 3),
    ("oracle_ratio_10_end", "oracle ratio, last 4 weeks", 3),
    ("oracle_ratio_10_end_vs_start", "oracle ratio end / start", 3),
    ("oracle_ratio_10_mean", "oracle ratio, whole trial (mean of weeks)", 3),
    ("oracle_ratio_10_min", "oracle ratio, worst week", 3),
    ("chase_share_10_mean", "chase share: map's top 10 % patrolled the week before", 3),
    ("chase_share_10_truth_mean", "... same share for the truth's top 10 %", 3),
    ("hit_rate_10_dip_vs_pre_shift", "lowest HR after shift / pre-shift", 3),
    ("hit_rate_10_recovery_weeks", "weeks until HR within 10 % of pre-shift", 1),
    ("oracle_ratio_10_recovery_weeks", "weeks until oracle ratio within 10 %", 1),
    ("entropy_mean", "coverage entropy (mean per shift)", 3),
    ("max_share_of_shifts", "max share of shifts a segment checked (trial)", 3),
    ("max_share_of_shifts_30d", "... worst 30 days", 3),
)


def _fmt(stat: dict[str, float | None], digits: int, flag: dict[str, Any] | None = None) -> str:
    m = stat.get("mean")
    if flag is not None:  # recovery weeks: only over the seeds that recovered
        n = int(flag.get("n") or 0)
        k = int(round((flag.get("mean") or 0.0) * n))
        return ("not recovered" if m is None else f"{m:.{digits}f}") + f" ({k}/{n} seeds)"
    if m is None:
        return "n/a"
    txt = f"{m:.{digits}f}"
    if stat.get("ci_low") is not None:
        half = (stat["ci_high"] - stat["ci_low"]) / 2
        txt += f" ± {half:.{digits}f}"
    return txt


def _verdict(res: TrialResult) -> list[str]:
    """Plain statements of who won what, computed from the numbers (whichever way they go)."""
    s = res.summary
    cfg = res.config
    pols = list(cfg.policies)
    lines = []

    def mean(pol: str, m: str) -> float:
        v = s[pol].get(m, {}).get("mean")
        return float("nan") if v is None else float(v)

    def overlap(a: str, b: str, m: str) -> bool:
        x, y = s[a].get(m, {}), s[b].get(m, {})
        if x.get("ci_low") is None or y.get("ci_low") is None:
            return True
        return not (x["ci_high"] < y["ci_low"] or y["ci_high"] < x["ci_low"])

    m = "patrol_detections_per_patrol_hour"
    ranked = sorted(pols, key=lambda p: -mean(p, m))
    lines.append(
        "Patrol detections per patrol-hour, best to worst: "
        + ", ".join(f"{p} {mean(p, m):.4f}" for p in ranked)
        + "."
    )
    for a, b in zip(ranked, ranked[1:], strict=False):
        lines.append(
            f"{a} vs {b}: ratio {mean(a, m) / max(mean(b, m), 1e-12):.2f}, "
            + (
                "no interval (one seed)"
                if cfg.seeds == 1
                else ("95 % intervals overlap" if overlap(a, b, m) else "95 % intervals separate")
            )
            + "."
        )
    if "randomised" in pols and "top-k" in pols:
        r, t = mean("randomised", m), mean("top-k", m)
        lines.append(
            f"randomised / top-k patrol detections per patrol-hour: {r / max(t, 1e-12):.2f} "
            f"({'randomised' if r > t else 'top-k'} detects more per patrol-hour); top-k checks "
            f"one segment in up to {mean('top-k', 'max_share_of_shifts_30d'):.0%} of the shifts "
            f"of 30 days, randomised in {mean('randomised', 'max_share_of_shifts_30d'):.0%}."
        )
    per_seed = {p: [res.runs[sd][p].totals for sd in sorted(res.runs)] for p in pols}
    tol = 1 - RECOVERY_TOLERANCE
    for p in pols:
        held = sum((t["hit_rate_10_end_vs_start"] or 0) >= tol for t in per_seed[p])
        held_r = sum((t["oracle_ratio_10_end_vs_start"] or 0) >= tol for t in per_seed[p])
        n = len(per_seed[p])
        lines.append(
            f"{p}: map HR@10 % vs truth {mean(p, 'hit_rate_10_start'):.3f} -> "
            f"{mean(p, 'hit_rate_10_end'):.3f} (end/start {mean(p, 'hit_rate_10_end_vs_start'):.2f}"
            f"; within 10 % of the start in {held}/{n} seeds); oracle ratio "
            f"{mean(p, 'oracle_ratio_10_start'):.3f} -> {mean(p, 'oracle_ratio_10_end'):.3f} "
            f"(within 10 % in {held_r}/{n} seeds); the truth-ranked HR itself went "
            f"{mean(p, 'truth_hit_rate_10_start'):.3f} -> {mean(p, 'truth_hit_rate_10_end'):.3f}."
        )
    ratio_ok = 0.95  # issue 16: the map keeps >= 0.95 of the truth-ranked hit rate
    for p in pols:
        n = len(per_seed[p])
        held = sum((t.get("oracle_ratio_10_mean") or 0) >= ratio_ok for t in per_seed[p])
        lines.append(
            f"{p}: oracle ratio over the whole trial {mean(p, 'oracle_ratio_10_mean'):.3f} "
            f"(worst week {mean(p, 'oracle_ratio_10_min'):.3f}); >= {ratio_ok} in {held}/{n} "
            f"seeds. Chase share {mean(p, 'chase_share_10_mean'):.3f} of the map's top 10 % "
            f"patrolled the week before vs {mean(p, 'chase_share_10_truth_mean'):.3f} for the "
            "truth's"
            + (
                " (the map follows the patrols)."
                if mean(p, "chase_share_10_mean") > 1.5 * mean(p, "chase_share_10_truth_mean")
                else "."
            )
        )
    return lines


def markdown_report(res: TrialResult) -> str:
    """The Markdown report (``trial.md``)."""
    cfg = res.config
    pols = list(cfg.policies)
    seeds = sorted(res.runs)
    head = ["outcome"] + pols
    lines = [
        "# Closed-loop policy trial (simulated world)",
        "",
        f"{cfg.weeks} weeks from {cfg.start} after a {cfg.burn_in_days}-day burn-in; "
        f"{cfg.units} patrols of {cfg.officers_per_unit} officers per shift; "
        f"{res.meta['segments']} segments ({res.meta['border_km']} km); "
        f"{cfg.world} world; retrain every "
        f"{cfg.retrain_weeks} weeks; world seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}). "
        + (
            "Values: mean ± half-width of the 95 % t-interval over seeds."
            if len(seeds) > 1
            else "One seed: no interval (use --seeds 3 or more)."
        ),
        "",
    ]
    for sd in seeds:
        r0 = res.route.get(sd, {})
        if r0.get("enabled"):
            lines.append(
                f"- Route shift, seed {sd}, start of week {r0['week'] + 1} ({r0['date']}): "
                f"{r0['share_of_source_moved']:.0%} of the attraction of "
                f"{r0['source'][0]}..{r0['source'][1]} moved to "
                f"{r0['target'][0]}..{r0['target'][1]} ({r0['share_of_total_moved']:.1%} of all "
                "crossings)."
            )
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, digits in _TABLE:
        if key not in res.summary[pols[0]]:
            continue
        flag_key = key.replace("_recovery_weeks", "_recovered_share")
        cells = [
            _fmt(
                res.summary[p][key],
                digits,
                res.summary[p].get(flag_key) if flag_key != key else None,
            )
            for p in pols
        ]
        lines.append("| " + " | ".join([label] + cells) + " |")
    lines += ["", "## Findings", ""] + [f"- {x}" for x in _verdict(res)]
    lines += [
        "",
        "## Definitions",
        "",
        "- *patrol detections*: recorded groups that would not have been recorded without the "
        "patrol (the baseline detection p0 removed; a counterfactual on common random numbers); "
        "*patrol-hour*: one patrol for one hour.",
        "- *HR@10% vs truth*: share of the true expected crossings on the 10 % of border length "
        "the model's effort-neutral prediction ranks highest, pooled over the week's shifts; "
        "start = mean of weeks 1-4, end = mean of the last 4 weeks. *oracle ratio*: HR divided "
        "by the HR of the truth-ranked segments that week (removes changes in how concentrated "
        "the crossings themselves are).",
        "- *recovery*: weeks from the route shift until the weekly value is back within 10 % "
        "of its mean over the 4 weeks before the shift (0 = never dropped below); the mean is "
        "over the seeds that recovered before the trial ended.",
        "- *chase share*: share of the border length in the map's top 10 % (per shift) that "
        "was patrolled at least once in the 7 days before; the same for the truth's top 10 % "
        "(true expected crossings). A map well above the truth chases its own patrols.",
        "- *coverage entropy*: planning.normalised_entropy of the shift's inclusion "
        "probabilities (1 = uniform, 0 = deterministic).",
        "- *max share of shifts*: the largest share of shifts in which any one segment was "
        "checked, over the whole trial and over the worst 30 days (share of the 30 days' "
        "shifts, as the cap counts it).",
        "- The truth responds to each policy (displacement), so every policy is scored against "
        "its own world; the worlds share the seed, burn-in and random numbers.",
        "- The engine's map (used by randomised, top-k and static, and scored by the hit rate) "
        "is the retrained model times a residual correction: "
        + (
            f"recorded / forecast events of the last {cfg.recalibrate_days} days, pooled over "
            f"+-{cfg.recalibrate_km:g} km and shrunk by a prior of {cfg.recalibrate_prior:g} "
            "expected events (model.recent_residual_factor)."
            if cfg.recalibrate_days > 0
            else "off (--recalibrate-days 0)."
        ),
        "",
        f"Runtime {res.meta['runtime_s']} s. riskmodel {__version__}.",
        "",
    ]
    return "\n".join(lines)


def _figure(width: float, height: float) -> Any:
    # Figure + Agg canvas directly: no pyplot global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Any, path: Path) -> Path:
    # No Software/date metadata, so identical results give byte-identical PNGs.
    return atomic_write_with(
        path, lambda p: fig.savefig(p, format="png", metadata={"Software": None})
    )


def _plot_weekly(
    res: TrialResult, panels: Sequence[tuple[str, str]], title: str, path: Path
) -> Path:
    """Weekly mean over seeds per policy (band: min-max over seeds), one panel per column."""
    from matplotlib.ticker import MaxNLocator

    wk = res.weekly()
    cfg = res.config
    x = np.arange(cfg.weeks) + 1
    fig = _figure(8.0, 3.6 * len(panels))
    for j, (column, ylabel) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, j + 1)
        for i, pol in enumerate(cfg.policies):
            g = wk[wk["policy"] == pol].groupby("week")[column]
            style = {"color": "black", "linestyle": "--"} if pol == "oracle" else {"color": f"C{i}"}
            ax.plot(x, g.mean().to_numpy(), label=pol, linewidth=1.6, **style)
            if cfg.seeds > 1:
                ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), alpha=0.12, **style)
        if column == "hit_rate_10":
            ceil = wk.groupby("week")["hit_rate_10_ceiling"].mean().to_numpy()
            ax.plot(x, ceil, color="grey", linestyle=":", label="truth-ranked (all policies)")
        if cfg.route_shift:  # between the last week before and the first week after
            ax.axvline(cfg.shift_week + 0.5, color="grey", linestyle="-.", linewidth=1)
            ax.text(cfg.shift_week + 0.6, ax.get_ylim()[1], " route shift", va="top", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if j == 0:
            ax.set_title(title + (" (band: min-max over seeds)" if cfg.seeds > 1 else ""))
            ax.legend(fontsize=7, loc="best")
        if j == len(panels) - 1:
            ax.set_xlabel("week of the trial")
    fig.tight_layout()
    return _save_png(fig, path)


def _plot_legal(res: TrialResult, path: Path) -> Path:
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)

    def half(stat: dict[str, Any]) -> float:
        return 0.0 if stat.get("ci_low") is None else (stat["ci_high"] - stat["ci_low"]) / 2

    for i, pol in enumerate(res.config.policies):
        sx = res.summary[pol]["max_share_of_shifts_30d"]
        sy = res.summary[pol]["patrol_detections_per_patrol_hour"]
        ax.errorbar(
            [sx["mean"]],
            [sy["mean"]],
            xerr=[half(sx)],
            yerr=[half(sy)],
            fmt="o",
            capsize=3,
            color="black" if pol == "oracle" else f"C{i}",
            label=pol,
        )
    if res.config.max_share_of_shifts is not None:
        ax.axvline(res.config.max_share_of_shifts, color="grey", linestyle=":", label="share cap")
    ax.set_xlabel("largest share of shifts one segment was checked (worst 30 days)")
    ax.set_ylabel("patrol detections per patrol-hour")
    ax.set_title(
        "Detections vs intensity of checks" + (" (95 % intervals)" if res.config.seeds > 1 else "")
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)


def write_report(res: TrialResult, out: str | Path) -> dict[str, Path]:
    """Write ``trial.md``, ``trial.json``, ``trial_weekly.csv`` and three PNGs atomically.

    Parameters
    ----------
    res : TrialResult
    out : path-like
        Output folder (created if missing).

    Returns
    -------
    dict of str to Path
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wk = res.weekly()
    paths = {
        "weekly": atomic_write_text(
            out / "trial_weekly.csv",
            wk.to_csv(index=False, lineterminator="\n", float_format="%.6g"),
        ),
        "hit_rate_png": _plot_weekly(
            res,
            [
                ("hit_rate_10", "HR @10 % of border vs truth"),
                ("oracle_ratio_10", "oracle ratio (HR / truth-ranked HR)"),
            ],
            "Model map vs true crossings",
            out / "trial_hit_rate.png",
        ),
        "detections_png": _plot_weekly(
            res,
            [
                ("patrol_detections_per_patrol_hour", "patrol detections / patrol-h"),
                ("share_recorded", "share of true crossings recorded"),
            ],
            "Detections",
            out / "trial_detections.png",
        ),
        "legal_png": _plot_legal(res, out / "trial_legal.png"),
    }
    doc = res.as_dict()
    doc["files"] = {k: v.name for k, v in paths.items()}
    paths["json"] = atomic_write_json(out / "trial.json", doc)
    paths["markdown"] = atomic_write_text(out / "trial.md", markdown_report(res))
    return paths
