"""The decision-ready backtest report: verdict, confidence intervals, per-shift and per-area
tables (``report.md``), all figures in ``metrics.json``, and the plots.

The verdict compares the model with the best baseline at 10 % of the border length, the
coverage the planner works at, on the day-bootstrap intervals of
:mod:`riskmodel.evaluation.bootstrap`: separate intervals say "better" or "worse", overlapping
ones say that this backtest cannot tell them apart.

Every report says what it scored (``info["target"]``): *recorded events* or *true crossings*
(simulator truth). With a truth file both are shown side by side: on a world where the
patrols make the records, a map can predict the records well and the crossings badly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.evaluation import metrics as ev
from riskmodel.evaluation.bootstrap import LEVEL, best_baseline
from riskmodel.evaluation.plots import plot_calibration, plot_hit_rate_curves
from riskmodel.files import atomic_write_json, atomic_write_text

__all__ = [
    "LABELS",
    "TARGET_NOUN",
    "by_area",
    "by_shift",
    "short_table",
    "side_by_side_md",
    "verdict",
    "write_report",
]

LABELS = {
    "model": "the model",
    "historical": "historical frequency",
    "hotspot": "prospective hotspot",
    "kde": "KDE with time decay",
    "etas": "ETAS self-exciting process",
    "oracle": "the oracle",
}
Interval = Mapping[str, float | None]
#: What the hit rates count, by backtest target.
TARGET_NOUN = {"records": "recorded events", "truth": "true crossings"}
SIDE_LABELS = {
    "model_threat": "the model, ranked by threat (effort-neutral)",
    "model_expected": "the model, ranked by expected (with the effort spent)",
    "model_no_effort": "the model trained without effort",
}


def _label(name: str) -> str:
    return LABELS.get(name, name)


# --------------------------------------------------------------------------------------------
# breakdowns
# --------------------------------------------------------------------------------------------


def _row(n: dict[str, float], total: float) -> dict[str, Any]:
    return {
        "captured": {m: float(v) for m, v in n.items()},
        "hr": {m: (float(v / total) if total > 0 else None) for m, v in n.items()},
    }


def by_shift(
    preds: Mapping[str, np.ndarray],
    actual: np.ndarray,
    lengths: np.ndarray,
    shifts: Sequence[str],
    methods: Sequence[str],
    c: float = 0.10,
) -> list[dict[str, Any]]:
    """HR at ``c`` per shift of the day (the same per-shift ranking as the pooled metric).

    Parameters
    ----------
    preds : mapping of str to ndarray (W, S)
    actual : ndarray (W, S)
    lengths : ndarray (S,)
    shifts : sequence of str (W,)
        Shift name of every window.
    methods : sequence of str
        Methods to tabulate.
    c : float
        Share of the border length.

    Returns
    -------
    list of dict
        Per shift (order of first appearance): ``shift``, ``windows``, ``events``,
        ``captured`` and ``hr`` by method. Events and captured events add up over the shifts
        to the pooled totals.
    """
    sh = np.asarray(shifts).astype(str)
    rows = []
    for name in pd.unique(sh):
        m = sh == name
        a = actual[m]
        n = {k: ev.captured(preds[k][m], a, lengths, [c]).sum() for k in methods}
        total = float(a.sum())
        rows.append(
            {"shift": str(name), "windows": int(m.sum()), "events": total, **_row(n, total)}
        )
    return rows


def by_area(
    preds: Mapping[str, np.ndarray],
    actual: np.ndarray,
    lengths: np.ndarray,
    areas: Sequence[str],
    methods: Sequence[str],
    c: float = 0.10,
) -> list[dict[str, Any]]:
    """HR at ``c`` per area (police directorate), ranking the area's own segments.

    Each area is judged as if it planned alone: per shift, its segments are ranked and ``c``
    of *its* border length is taken, so an area with few events is not swamped by a busy one.

    Parameters
    ----------
    preds, actual, lengths, methods, c
        See :func:`by_shift`.
    areas : sequence of str (S,)
        Area of every segment (empty = none).

    Returns
    -------
    list of dict
        Per area (sorted by name): ``area``, ``segments``, ``km``, ``events``, ``captured``
        and ``hr`` by method.
    """
    ar = np.array(["(no area)" if not str(a) or str(a) == "nan" else str(a) for a in areas])
    rows = []
    for name in sorted(set(ar)):
        m = ar == name
        a = actual[:, m]
        n = {k: ev.captured(preds[k][:, m], a, lengths[m], [c]).sum() for k in methods}
        total = float(a.sum())
        rows.append(
            {
                "area": name,
                "segments": int(m.sum()),
                "km": float(lengths[m].sum() / 1000.0),
                "events": total,
                **_row(n, total),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f} %"


def _ci_pct(iv: Interval) -> str:
    if iv.get("lo") is None or iv.get("hi") is None:
        return "no interval"
    return f"{100 * iv['lo']:.0f}–{100 * iv['hi']:.0f} %"


def ci_cell(iv: Interval | None, fmt: str = ".3f") -> str:
    """``"0.472 (0.431–0.515)"``; the value alone without an interval; empty when undefined."""
    if not iv or iv.get("value") is None:
        return ""
    s = format(iv["value"], fmt)
    if iv.get("lo") is not None and iv.get("hi") is not None:
        # A dash between signed numbers reads as a minus: write "to" then.
        sep = " to " if fmt.startswith("+") or iv["lo"] < 0 else "–"
        s += f" ({format(iv['lo'], fmt)}{sep}{format(iv['hi'], fmt)})"
    return s


def verdict(
    ci: Mapping[str, Mapping[str, Interval]],
    baselines: Sequence[str],
    k: int = 10,
    *,
    target: str = "records",
) -> dict[str, Any]:
    """The plain-words verdict: the model against the best baseline at ``k`` % of the border.

    Parameters
    ----------
    ci : mapping
        :func:`riskmodel.evaluation.bootstrap.bootstrap_metrics` output.
    baselines : sequence of str
        Baseline names.
    k : int
        Coverage in percent.
    target : str
        What was scored: ``"records"`` or ``"truth"`` (named in the text).

    Returns
    -------
    dict
        ``outcome`` (``"better"``, ``"worse"``: the intervals are apart; ``"overlap"``;
        ``"undefined"``), ``paired`` (``"better"``/``"worse"`` when the paired difference's
        interval excludes zero, else ``"none"``), ``best_baseline`` and ``text``.
    """
    key = f"hr_{k}"
    mod = ci.get("model", {}).get(key)
    bb = best_baseline({b: ci[b][key]["value"] for b in baselines if b in ci}, baselines)
    level = f"{100 * LEVEL:.0f} %"
    noun = TARGET_NOUN.get(target, target)
    if not mod or mod.get("value") is None:
        return {
            "outcome": "undefined",
            "best_baseline": bb,
            "text": f"No {noun} in the period: there is nothing to judge.",
        }
    head = (
        f"The model captured {_pct(mod['value'])} of {noun} in the {k} % of border "
        f"it ranked highest ({level} CI {_ci_pct(mod)})"
    )
    if bb is None:
        return {
            "outcome": "undefined",
            "best_baseline": None,
            "text": head + "; no baseline was run to compare with.",
        }
    base = ci[bb][key]
    times = mod["value"] / base["value"] if base["value"] else float("nan")
    head += (
        f", {times:.1f}x the best baseline ({_label(bb)}, {_pct(base['value'])}, "
        f"CI {_ci_pct(base)})"
    )
    d = ci["model"].get(f"diff_best_baseline_{k}") or {}
    paired = "none"
    diff = ""
    if d.get("lo") is not None:
        paired = "better" if d["lo"] > 0 else "worse" if d["hi"] < 0 else "none"
        diff = (
            f"the paired difference (same days for both) is {100 * d['value']:+.1f} points "
            f"({level} CI {100 * d['lo']:+.1f} to {100 * d['hi']:+.1f})"
        )
    lo, hi, blo, bhi = mod.get("lo"), mod.get("hi"), base.get("lo"), base.get("hi")
    if None in (lo, hi, blo, bhi):
        outcome, tail = "undefined", "; without intervals there is no verdict."
    elif lo > bhi:
        outcome, tail = "better", "; the intervals do not overlap: the model is better."
    elif hi < blo:
        outcome = "worse"
        tail = "; the intervals do not overlap: the model is worse — keep the baseline or retrain."
    elif paired != "none":
        # Overlapping intervals, but day by day one side wins: say so, with less certainty.
        outcome = "overlap"
        tail = (
            f"; the intervals overlap, but {diff}, so the model is probably {paired} "
            f"(a longer period would settle it)."
        )
        diff = ""
    else:
        outcome = "overlap"
        tail = (
            "; the intervals overlap: this backtest cannot tell the model from the best "
            "baseline (a longer period would)."
        )
    if diff:
        diff = " " + diff[0].upper() + diff[1:] + "."
    return {"outcome": outcome, "paired": paired, "best_baseline": bb, "text": head + tail + diff}


def _params_text(info: Mapping[str, Any]) -> str:
    params = info.get("params") or {}
    given = ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "none"
    fits = info.get("origins") or []
    trees = [f["best_iteration"] + 1 for f in fits if f.get("best_iteration") is not None]
    s = (
        f"XGBoost Poisson regressor retrained at {len(fits)} origin(s) every "
        f"{info.get('step_days')} days on all windows before the origin; parameters set: "
        f"{given} (all others default)"
    )
    if trees:
        s += f"; trees after early stopping: {min(trees)}–{max(trees)}"
    return s + "."


def _reading(res_info: Mapping[str, Any], ci: Mapping[str, Any], has_oracle: bool) -> list[str]:
    """The 'How to read' bullets: target, parameters, intervals, oracle, gap closed."""
    n_days = res_info.get("days")
    if res_info.get("target", "records") == "truth":
        target = (
            f"* **Target.** Every table scores **true crossings** (simulator truth, recorded or "
            f"not: {res_info.get('true_crossings_in_period')} crossing groups over {n_days} "
            f"days; {res_info.get('events_in_period')} of them recorded), not recorded events. "
            "The model is ranked by its effort-neutral *threat*, the oracle by the true "
            "intensity. Deviance and calibration compare levels of *recorded* events with "
            "crossings and are not meaningful here: read the hit rates."
        )
    else:
        target = (
            f"* **Target.** Every table scores **recorded events** (the events file: "
            f"{res_info.get('events_in_period')} events over {n_days} days), not true "
            "crossings. "
            + (
                "The truth file (--truth) supplies the oracle (expected *recorded* events) and "
                "the side-by-side table against true crossings (--against truth scores them "
                "throughout)."
                if has_oracle
                else "No truth file was given: there is no oracle and no gap closed."
            )
        )
    out = [
        target,
        f"* **Model.** {_params_text(res_info)}",
        f"* **Intervals.** {100 * LEVEL:.0f} % percentile intervals from "
        f"{res_info.get('bootstrap_draws')} bootstrap resamples of whole days (fixed seed "
        f"{res_info.get('bootstrap_seed')}): the spread the same forecasts would show on "
        "another period like this one.",
    ]
    if has_oracle:
        beat = [
            f"{_label(m)} at {k} % ({ci[m][f'oracle_ratio_{k}']['value']:.2f})"
            for m in ci
            if m != "oracle"
            for k in (5, 10, 20)
            if (ci[m].get(f"oracle_ratio_{k}") or {}).get("value") is not None
            and ci[m][f"oracle_ratio_{k}"]["value"] > 1
        ]
        what = (
            "true intensity (expected crossings)"
            if res_info.get("target") == "truth"
            else "*expected* recorded events"
        )
        out.append(
            f"* **The oracle** ranks segments by the simulator's {what}, "
            "the best forecast on average. It does not see which events were actually recorded, "
            "so at small coverage, where a handful of events decide, a method that happens to "
            "sit on the realised events can score above it (oracle ratio > 1)"
            + (": here " + ", ".join(beat) + "." if beat else ".")
        )
        out.append(
            f"* **Gap closed** = (HR model − HR best baseline) / (HR oracle − HR best baseline): "
            f"0 = no better than the best baseline, 1 = as good as the oracle. **Empty** when "
            f"the oracle is less than {100 * ev.GAP_MIN:.0f} points of hit rate ahead of the best "
            f"baseline: the ratio of two tiny differences is noise. **Negative** = the model is "
            f"below the best baseline."
        )
    return out


def _ci_table(ci: Mapping[str, Mapping[str, Interval]], table: pd.DataFrame) -> str:
    cols = [
        ("HR 5 %", "hr_5"),
        ("HR 10 %", "hr_10"),
        ("HR 20 %", "hr_20"),
        ("PAI 10 %", "pai_10"),
        ("PEI* 10 %", "pei_10"),
        ("oracle ratio 10 %", "oracle_ratio_10"),
        ("deviance", "deviance"),
    ]
    rows = {
        m: {
            "role": table.loc[m, "role"] if m in table.index else "",
            **{h: ci_cell(v.get(k), ".4f" if k == "deviance" else ".3f") for h, k in cols},
        }
        for m, v in ci.items()
    }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "method"
    return ev.markdown_table(df)


def _gap_table(ci: Mapping[str, Any], table: pd.DataFrame, baselines: Sequence[str]) -> str:
    if "model" not in ci:
        return ""
    lines = [
        "| coverage | best baseline | HR best baseline | HR model | model − baseline | HR oracle | gap (oracle − baseline) | gap closed |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in (5, 10, 20):
        bb = best_baseline({b: ci[b][f"hr_{k}"]["value"] for b in baselines if b in ci}, baselines)
        if bb is None:
            continue
        hb, hm = ci[bb][f"hr_{k}"]["value"], ci["model"][f"hr_{k}"]["value"]
        ho = ci.get("oracle", {}).get(f"hr_{k}", {}).get("value")
        gap = ho - hb if ho is not None and hb is not None else None
        gc = ci["model"].get(f"gap_closed_{k}")
        why = ""
        if ho is None:
            why = "no oracle"
        elif gap is not None and gap < ev.GAP_MIN:
            why = f"empty: gap < {ev.GAP_MIN:.2f}"
        f = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(
            f"| {k} % | {bb} | {f(hb)} | {f(hm)} | {ci_cell(ci['model'].get(f'diff_best_baseline_{k}'), '+.3f')} "
            f"| {f(ho)} | {f(gap)} | {ci_cell(gc, '.2f') or why} |"
        )
    return "\n".join(lines) + "\n"


def _breakdown_md(
    rows: list[dict[str, Any]], key: str, methods: Sequence[str], extra: Sequence[str]
) -> str:
    head = [key, *extra, "events", *[f"HR 10 % {m}" for m in methods]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cells = [str(r[key])]
        cells += [f"{r[e]:.1f}" if isinstance(r[e], float) else str(r[e]) for e in extra]
        cells.append(f"{r['events']:.0f}")
        cells += ["" if r["hr"][m] is None else f"{r['hr'][m]:.3f}" for m in methods]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def side_by_side_md(sbs: Mapping[str, Any]) -> str:
    """Markdown table: every method's HR against recorded events and against true crossings."""
    tg = [t for t in ("records", "truth") if t in sbs]
    head = (
        ["method"]
        + [f"HR {k} % vs {TARGET_NOUN[t]}" for t in tg for k in (5, 10, 20)]
        + [f"÷ oracle 10 % ({TARGET_NOUN[t]})" for t in tg]
    )
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    f = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    for m in sbs[tg[0]]["methods"]:
        cells = [SIDE_LABELS.get(m, _label(m))]
        cells += [f(sbs[t]["methods"][m].get(f"hr_{k}")) for t in tg for k in (5, 10, 20)]
        cells += [f(sbs[t]["methods"][m].get("oracle_ratio_10")) for t in tg]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    recs = []
    for name, row in df.iterrows():
        r = {"method": name}
        for k, v in row.items():
            r[k] = None if (isinstance(v, float) and not np.isfinite(v)) else v
        recs.append(r)
    return recs


def write_report(res: Any, out: str | Path, *, title: str = "Backtest") -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md``, ``hit_rate.png`` and ``calibration.png``.

    Parameters
    ----------
    res : BacktestResult
        From :func:`riskmodel.evaluation.backtest.run_backtest`.
    out : path-like
        Report folder (created).
    title : str
        Report heading.

    Returns
    -------
    dict of str to Path
        ``metrics``, ``hit_rate_png``, ``calibration_png``, ``report``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info, ci, bd = res.info, res.ci, res.breakdown
    baselines = [m for m in res.table.index if res.table.loc[m, "role"] == "baseline"]
    v = res.verdict()
    doc = {"table": _records(res.table), "results": res.results, "info": info}
    doc.update({"verdict": v, "ci": ci, **bd})
    paths = {
        "metrics": atomic_write_json(out / "metrics.json", doc),
        "hit_rate_png": plot_hit_rate_curves(res.results, out / "hit_rate.png"),
        "calibration_png": plot_calibration(res.results, out / "calibration.png"),
    }
    has_oracle = "oracle" in res.preds
    target = info.get("target", "records")
    lines = [
        f"# {title}",
        "",
        f"**Verdict.** {v['text']}",
        "",
        f"**Scored against {TARGET_NOUN.get(target, target)}** "
        + (
            "(simulator truth: all crossings, recorded or not)."
            if target == "truth"
            else "(the events file), not true crossings."
        ),
        "",
        f"Period {info['from']} .. {info['to']}: {info['windows']} shift windows x "
        f"{info['segments']} segments, {info['events_in_period']} recorded events"
        + (
            f" of {info['true_crossings_in_period']} true crossing groups"
            if "true_crossings_in_period" in info
            else ""
        )
        + f"; retrained every {info['step_days']} days ({len(info['origins'])} origins).",
        "",
        "## How to read this report",
        "",
        *_reading(info, ci, has_oracle),
        "",
        "## Headline metrics (95 % interval in brackets)",
        "",
        "HR_c = share of events in the top c % of border length (ranked per shift); PAI = HR/c; "
        "PEI* = captured / best possible; oracle ratio = HR / HR oracle; deviance: lower is better.",
        "",
        _ci_table(ci, res.table) if ci else ev.markdown_table(res.table),
    ]
    gap = _gap_table(ci, res.table, baselines) if ci else ""
    if gap:
        lines += ["## The model against the best baseline", "", gap]
    for key, extra, heading in (
        ("shift", ["windows"], "## Hit rate at 10 % by shift"),
        (
            "area",
            ["segments", "km"],
            "## Hit rate at 10 % by area (each area ranks its own segments)",
        ),
    ):
        rows = bd.get(f"by_{key}")
        if rows:
            lines += [heading, "", _breakdown_md(rows, key, bd["methods"], extra)]
    if "side_by_side" in info:
        lines += [
            "## Recorded events and true crossings, side by side",
            "",
            "The same forecasts scored against what was recorded and against all true "
            "crossings (simulator truth). Records are made where the patrols stand: a map can "
            "predict them well and the crossings badly. Oracle: expected recorded events for "
            "the records, the true intensity for the crossings.",
            "",
            side_by_side_md(info["side_by_side"]),
        ]
    if "exposure" in info:
        lines += [
            "## Exposure-awareness (against true crossings)",
            "",
            "Share of the *true* crossings (simulator truth, recorded or not) in the top c % of border length.",
            "",
            "| variant | HR 5 % | HR 10 % | HR 20 % |",
            "|---|---|---|---|",
        ]
        for k, e in info["exposure"].items():
            lines.append(
                f"| {k} | {e['true_crossing_hr_5']:.3f} | {e['true_crossing_hr_10']:.3f} | {e['true_crossing_hr_20']:.3f} |"
            )
        lines.append("")
    lines += ["![hit-rate curves](hit_rate.png)", "", "![calibration](calibration.png)", ""]
    paths["report"] = atomic_write_text(out / "report.md", "\n".join(lines))
    return paths


def short_table(table: pd.DataFrame) -> str:
    """Fixed-width table for the terminal."""
    cols = [
        "hr_5",
        "hr_10",
        "hr_20",
        "pai_10",
        "pei_10",
        "oracle_ratio_10",
        "gap_closed_10",
        "deviance",
    ]
    cols = [c for c in cols if c in table.columns]
    head = f"{'method':<11}" + "".join(f"{c:>16}" for c in cols)
    rows = [head]
    for name, r in table.iterrows():
        cells = "".join(f"{'' if pd.isna(r[c]) else format(r[c], '.3f'):>16}" for c in cols)
        rows.append(f"{name:<11}{cells}")
    return "\n".join(rows)
