"""Plots of evaluation results: hit-rate curves and calibration (PNG, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    # Figure + Agg canvas directly: no pyplot global state, no backend switching.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No Software/date metadata, so identical inputs give byte-identical PNGs.
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _style(name: str, i: int, oracle_key: str) -> dict[str, Any]:
    if name == oracle_key:
        return {"color": "black", "linestyle": "--", "linewidth": 1.5}
    return {"color": f"C{i % 10}", "linestyle": "-", "linewidth": 1.5}


def plot_hit_rate_curves(
    results: Mapping[str, Mapping[str, Any]], path: str | Path, *, oracle_key: str = "oracle"
) -> Path:
    """Hit-rate curves ``HR(c)`` of all methods, with the random-selection line ``HR = c``.

    Parameters
    ----------
    results : mapping of str to dict
        Results of :func:`evaluate` by method.
    path : str or Path
        PNG file to write.
    oracle_key : str
        Method drawn as a dashed black line.

    Returns
    -------
    Path
        The written file.
    """
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x_max = 0.0
    for i, (name, r) in enumerate(results.items()):
        x = np.asarray(r["fractions"], float) * 100
        y = np.array([np.nan if v is None else v for v in r["curve"]], float)
        ax.plot(x, y, marker="o", markersize=3, label=name, **_style(name, i, oracle_key))
        x_max = max(x_max, float(x.max()) if x.size else 0.0)
    ax.plot([0, x_max], [0, x_max / 100], color="grey", linestyle=":", label="random")
    ax.set_xlim(0, x_max)
    ax.set_ylim(0, 1)
    ax.set_xlabel("share of border length selected, c (%)")
    ax.set_ylabel("hit rate n / N (pooled)")
    ax.set_title("Hit rate by share of border length")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_calibration(
    results: Mapping[str, Mapping[str, Any]], path: str | Path, *, oracle_key: str = "oracle"
) -> Path:
    """Calibration by deciles: mean observed vs mean expected, and observed/expected.

    Parameters
    ----------
    results : mapping of str to dict
        Results of :func:`evaluate` by method.
    path : str or Path
        PNG file to write.
    oracle_key : str
        Method drawn as a dashed black line.

    Returns
    -------
    Path
        The written file.
    """
    fig = _figure(10.0, 4.5)
    ax1 = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    lo, hi = np.inf, 0.0
    for i, (name, r) in enumerate(results.items()):
        cal = r.get("calibration") or []
        mp = np.array([row["mean_pred"] or np.nan for row in cal], float)
        mo = np.array([row["mean_obs"] if row["mean_obs"] is not None else np.nan for row in cal])
        ratio = np.array([np.nan if row["obs_exp"] is None else row["obs_exp"] for row in cal])
        bins = np.array([row["bin"] for row in cal])
        style = _style(name, i, oracle_key)
        ok = (mp > 0) & (mo > 0)  # log axes: zero bins are not drawable
        ax1.plot(mp[ok], mo[ok], marker="o", markersize=3, label=name, **style)
        ax2.plot(bins, ratio, marker="o", markersize=3, label=name, **style)
        if ok.any():
            lo = min(lo, float(mp[ok].min()), float(mo[ok].min()))
            hi = max(hi, float(mp[ok].max()), float(mo[ok].max()))
    if np.isfinite(lo) and hi > 0:
        ax1.plot([lo, hi], [lo, hi], color="grey", linestyle=":", label="perfect")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
    ax1.set_xlabel("mean predicted events per cell")
    ax1.set_ylabel("mean observed events per cell")
    ax1.set_title("Calibration by decile of prediction")
    ax1.grid(True, alpha=0.3)
    ax1.legend(loc="upper left", fontsize=8)
    ax2.axhline(1.0, color="grey", linestyle=":")
    ax2.set_xlabel("decile of prediction (1 = lowest)")
    ax2.set_ylabel("observed / expected")
    ax2.set_title("Observed / expected by decile")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
