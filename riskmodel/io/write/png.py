"""Static PNG risk map (matplotlib, Agg), one panel per shift.

Labels never overlap: after the layout is fixed, plan checks (numbered markers) are placed
first, moved aside with a leader line when they would cover another check; then the largest
place names, each tried on four sides of its dot and left out (counted in the panel title)
where every side would touch another label.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riskmodel._timing import timed
from riskmodel.files import atomic_write_with
from riskmodel.io.write.common import first_value, hhmm, midpoints, require_columns, to_national
from riskmodel.io.write.styles import (
    PLAN_COLOUR,
    RISK_CLASS_COLOURS,
    RISK_CLASS_LABELS,
    RISK_CLASS_WIDTHS_MM,
)

log = logging.getLogger(__name__)


def _line_parts(geoms: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Split (Multi)LineStrings into coordinate arrays plus the owning row of each part."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    cuts = np.flatnonzero(np.diff(idx)) + 1
    return np.split(coords, cuts) if len(coords) else [], owner[np.unique(idx)] if len(
        idx
    ) else owner[:0]


def warm_up() -> None:
    """Pay matplotlib's first-use costs (imports, font cache, text layout, Agg) on a tiny
    figure, e.g. in a background child before the map's data exist."""
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1), dpi=110, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.add_collection(LineCollection([[(0, 0), (1, 1)]], linewidths=2))
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    ax.text(0.5, 0.5, "Novo mesto 12", fontsize=8, fontweight="bold", path_effects=halo)
    ax.set_title("night", fontsize=10, loc="left")
    fig.legend(handles=_legend_handles(plans=True, border=True, places=True), fontsize=8)
    fig.suptitle("warm-up", fontsize=12)
    fig.draw_without_rendering()
    canvas.draw()


@timed("write png")
def write_png_map(
    path: str | os.PathLike[str],
    *,
    risk: Mapping[str, gpd.GeoDataFrame],
    border: gpd.GeoDataFrame | None,
    settlements: gpd.GeoDataFrame | None,
    plans: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str,
    dpi: int = 110,
) -> Path:
    """Write a static PNG risk map, one panel per shift, in EPSG:3794.

    Parameters
    ----------
    path : path-like
        Target ``.png``.
    risk : mapping of str to GeoDataFrame
        Shift name to scored segments.
    border, settlements : GeoDataFrame or None
        Orientation layers; the largest settlements in view are labelled.
    plans : mapping of str to GeoDataFrame, optional
        Shift name to plan checks (marked at the checked segment's midpoint).
    title : str
        Figure title.
    dpi : int
        Resolution.

    Returns
    -------
    Path
        The PNG path (byte-identical for identical input and matplotlib version).
    """
    fig = png_figure(
        risk=risk,
        border=border,
        settlements=settlements,
        plans=plans,
        title=title,
        dpi=dpi,
        where=str(path),
    )

    def writer(tmp: Path) -> None:
        from PIL import Image

        # The map is opaque: an RGB PNG encodes ~2.5x faster than matplotlib's RGBA at the
        # same size (zlib level 3). No Software/date chunks: identical input, identical bytes.
        fig.canvas.draw()
        w, h = fig.canvas.get_width_height(physical=True)
        rgba = Image.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        rgba.convert("RGB").save(tmp, format="png", compress_level=3, dpi=(dpi, dpi))

    return atomic_write_with(path, writer)


def png_figure(
    *,
    risk: Mapping[str, gpd.GeoDataFrame],
    border: gpd.GeoDataFrame | None,
    settlements: gpd.GeoDataFrame | None,
    plans: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str,
    dpi: int = 110,
    where: str = "PNG map",
) -> Any:
    """The matplotlib figure of :func:`write_png_map` (same parameters), labels laid out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frames = {k: to_national(v, f"{where} (shift {k})") for k, v in risk.items()}
    for k, v in frames.items():
        require_columns(v, ("risk_class",), f"{where} (shift {k})")
    b = to_national(border, f"{where} (border)") if border is not None and len(border) else None
    s = (
        to_national(settlements, f"{where} (settlements)")
        if settlements is not None and len(settlements)
        else None
    )
    pl = {k: to_national(v, f"{where} (plan {k})") for k, v in (plans or {}).items()}

    view = _view(frames, b)
    x0, x1, y0, y1 = view
    n = max(len(frames), 1)
    width_in = 11.0
    panel_h = float(np.clip(width_in * (y1 - y0) / (x1 - x0), 2.5, 9.0))
    height_in = panel_h * n + 1.3
    # A fixed layout in inches (title, n panels each under its own title, legend): labels
    # are placed in pixels before drawing, and a layout engine would need a full extra
    # render (~0.25 s) to settle first.
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    slot = (height_in - _TOP_IN - _BOTTOM_IN) / n
    axes = []
    for i in range(n):
        bottom = height_in - _TOP_IN - (i + 1) * slot
        axes.append(
            fig.add_axes(
                (
                    _SIDE_IN / width_in,
                    bottom / height_in,
                    1 - 2 * _SIDE_IN / width_in,
                    (slot - _PANEL_TITLE_IN) / height_in,
                )
            )
        )
    places = _places_in_view(s, view) if s is not None else None
    for ax, (shift, gdf) in zip(axes, frames.items(), strict=False):
        ax.set_facecolor("#eef1f2")
        if b is not None:
            _draw_border(ax, b)
        if len(gdf):
            _draw_risk(ax, gdf)
        if places is not None:
            _draw_places(ax, places[0])
        _frame_panel(ax, shift, gdf, view)
        ax.apply_aspect()  # the box the draw would settle on, so pixels are final now
    handles = _legend_handles(
        plans=any(len(v) for v in pl.values()), border=b is not None, places=s is not None
    )
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.06 / height_in),
        ncol=min(len(handles), 9),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=12, y=1 - 0.1 / height_in, va="top")
    renderer = fig.canvas.get_renderer()
    for ax, shift in zip(axes, frames, strict=False):
        taken = [t.get_window_extent(renderer) for t in ax.texts]  # the scale bar
        p = pl.get(shift)
        if p is not None and len(p):
            _place_checks(ax, p, taken)
        if places is not None:
            left_out = _place_names(ax, places[1], taken, renderer)
            if left_out:
                ax.set_title(
                    ax.get_title(loc="left")
                    + f"  ({left_out} place name{'s' if left_out > 1 else ''} left out where "
                    "labels would overlap)",
                    fontsize=10,
                    loc="left",
                )
    return fig


def _view(
    frames: Mapping[str, gpd.GeoDataFrame], border: gpd.GeoDataFrame | None
) -> tuple[float, float, float, float]:
    """Map extent ``(x0, x1, y0, y1)``: the segments (else the border) plus a 4 % margin."""
    bounds = [f.total_bounds for f in frames.values() if len(f)] or (
        [border.total_bounds] if border is not None else []
    )
    if bounds:
        bb = np.array(bounds)
        x0, y0, x1, y1 = bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max()
    else:
        x0, y0, x1, y1 = 370000.0, 30000.0, 630000.0, 200000.0  # Slovenia in EPSG:3794
    pad = 0.04 * max(x1 - x0, y1 - y0, 1000.0)
    return x0 - pad, x1 + pad, y0 - pad, y1 + pad


def _places_in_view(
    settlements: gpd.GeoDataFrame, view: tuple[float, float, float, float]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Settlements inside the view, and the (at most 10) largest of them to label."""
    x0, x1, y0, y1 = view
    inside = settlements.cx[x0:x1, y0:y1]
    pop = (
        pd.to_numeric(inside["population"], errors="coerce").fillna(0)
        if "population" in inside
        else pd.Series(0, index=inside.index)
    )
    top = inside.loc[pop.sort_values(ascending=False, kind="stable").index[:10]]  # sparingly
    return inside, top


def _draw_border(ax: Any, border: gpd.GeoDataFrame) -> None:
    from matplotlib.collections import LineCollection

    bl, _ = _line_parts(border.geometry.to_numpy())
    ax.add_collection(
        LineCollection(bl, colors="#555555", linewidths=0.7, linestyles=(0, (4, 3)), zorder=1),
        autolim=False,  # the view is set from the data (_frame_panel): no extents to compute
    )


def _draw_risk(ax: Any, gdf: gpd.GeoDataFrame) -> None:
    """Segments coloured by risk class over a dark casing, high classes on top."""
    from matplotlib.collections import LineCollection

    cls = pd.to_numeric(gdf["risk_class"], errors="coerce").fillna(0).astype(int).to_numpy()
    order = np.argsort(cls, kind="stable")  # high classes on top
    parts, owner = _line_parts(gdf.geometry.to_numpy()[order])
    oc = cls[order][owner]
    cmap = np.array([RISK_CLASS_COLOURS.get(c, "#888888") for c in range(6)])
    wmap = np.array([RISK_CLASS_WIDTHS_MM.get(c, 0.6) for c in range(6)]) * 1.8
    ocl = np.clip(oc, 0, 5)
    ax.add_collection(
        LineCollection(
            parts, colors="#3c3c3c", linewidths=wmap[ocl] + 0.9, capstyle="round", zorder=2
        ),
        autolim=False,
    )
    ax.add_collection(
        LineCollection(
            parts,
            colors=cmap[ocl].tolist(),
            linewidths=wmap[ocl],
            capstyle="round",
            zorder=3,
        ),
        autolim=False,
    )


_TOP_IN: Final[float] = 0.45  # figure title band
_BOTTOM_IN: Final[float] = 0.5  # legend band
_PANEL_TITLE_IN: Final[float] = 0.3  # each panel's title above it
_SIDE_IN: Final[float] = 0.1
_CHECK_PX: Final[float] = 8.0  # half the width of a numbered check marker (pixels at 110 dpi)
_GAP_PX: Final[float] = 2.0  # free space kept around every label


def _ring(step: float) -> list[tuple[float, float]]:
    """Candidate offsets (pixels) for a marker: in place, then rings of 12 around it."""
    out = [(0.0, 0.0)]
    for d in (2.6 * step, 4.2 * step, 5.8 * step, 7.4 * step):
        out += [(d * np.cos(a), d * np.sin(a)) for a in np.pi / 2 - np.arange(12) * np.pi / 6]
    return out


def _free(box: Any, taken: list[Any], ax_box: Any) -> bool:
    inside = (
        ax_box.x0 <= box.x0 and box.x1 <= ax_box.x1 and ax_box.y0 <= box.y0 and box.y1 <= ax_box.y1
    )
    return inside and not any(box.overlaps(t) for t in taken)


def _place_checks(ax: Any, plan: gpd.GeoDataFrame, taken: list[Any]) -> None:
    """Numbered check markers; one that would cover another moves aside with a leader line."""
    from matplotlib.collections import LineCollection
    from matplotlib.transforms import Bbox

    xy = shapely.get_coordinates(midpoints(plan))
    nos = plan["check_no"].astype(int).to_numpy() if "check_no" in plan else np.arange(len(xy)) + 1
    to_px, to_data = ax.transData, ax.transData.inverted()
    ax_box = ax.get_window_extent()
    r = _CHECK_PX + _GAP_PX
    spots, leaders = [], []
    for k in np.argsort(nos, kind="stable"):
        px = to_px.transform(xy[k])
        spot = px
        for dx, dy in _ring(_CHECK_PX):
            cand = px + (dx, dy)
            box = Bbox.from_extents(cand[0] - r, cand[1] - r, cand[0] + r, cand[1] + r)
            if _free(box, taken, ax_box):
                spot = cand
                break
        taken.append(Bbox.from_extents(spot[0] - r, spot[1] - r, spot[0] + r, spot[1] + r))
        at = to_data.transform(spot)
        spots.append(at)
        if not np.allclose(spot, px):
            leaders.append([xy[k], at])
        ax.text(at[0], at[1], str(nos[k]), ha="center", va="center", fontsize=6.5,
                fontweight="bold", color="#111111", zorder=7)  # fmt: skip
    # One artist for all leaders and one for all markers (one per check drew ~3x slower).
    if leaders:
        ax.add_collection(
            LineCollection(leaders, colors=PLAN_COLOUR, linewidths=0.9, zorder=5), autolim=False
        )
    if spots:
        at = np.asarray(spots)
        ax.scatter(at[:, 0], at[:, 1], s=150, marker="o", facecolor="white",
                   edgecolor=PLAN_COLOUR, linewidths=1.6, zorder=6)  # fmt: skip


def _draw_places(ax: Any, inside: gpd.GeoDataFrame) -> None:
    sxy = shapely.get_coordinates(inside.geometry.to_numpy())
    ax.scatter(sxy[:, 0], sxy[:, 1], s=5, color="#4d4d4d", zorder=4, linewidths=0)


def _place_names(ax: Any, top: gpd.GeoDataFrame, taken: list[Any], renderer: Any) -> int:
    """Label the largest places (largest first) on the first free side of the dot; returns
    how many were left out because every side would touch another label."""
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    txy = shapely.get_coordinates(top.geometry.to_numpy())
    names = top["name"].astype(str).tolist() if "name" in top else []
    sides = (((3, 3), "left", "bottom"), ((3, -3), "left", "top"),
             ((-3, 3), "right", "bottom"), ((-3, -3), "right", "top"))  # fmt: skip
    ax_box = ax.get_window_extent()
    left_out = 0
    for (tx, ty), nm in zip(txy, names, strict=False):
        for off, ha, va in sides:
            label = ax.annotate(nm, (tx, ty), xytext=off, textcoords="offset points", ha=ha,
                                va=va, fontsize=7, color="#222222", path_effects=halo, zorder=7)  # fmt: skip
            box = label.get_window_extent(renderer).expanded(1.0, 1.0).padded(_GAP_PX)
            if _free(box, taken, ax_box):
                taken.append(box)
                break
            label.remove()
        else:
            left_out += 1
    return left_out


def _frame_panel(
    ax: Any, shift: str, gdf: gpd.GeoDataFrame, view: tuple[float, float, float, float]
) -> None:
    """Extent, title (shift, date, hours) and a scale bar."""
    x0, x1, y0, y1 = view
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    date, st, en = (
        first_value(gdf, "date") or "",
        hhmm(first_value(gdf, "shift_start")),
        hhmm(first_value(gdf, "shift_end")),
    )
    ax.set_title(f"{shift}  {date} {st}\u2013{en}".strip(), fontsize=10, loc="left")
    # 20 km scale bar, lower left.
    bar = 20000.0 if (x1 - x0) > 60000 else 5000.0
    sx, sy = x0 + 0.03 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([sx, sx + bar], [sy, sy], color="black", linewidth=2, zorder=8)
    ax.text(
        sx + bar / 2,
        sy + 0.015 * (y1 - y0),
        f"{bar / 1000:g} km",
        ha="center",
        va="bottom",
        fontsize=7,
        zorder=8,
    )


def _legend_handles(*, plans: bool, border: bool, places: bool) -> list[Any]:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=RISK_CLASS_COLOURS[k], linewidth=RISK_CLASS_WIDTHS_MM[k] * 1.8 + 1,
               label=f"{k} {RISK_CLASS_LABELS[k]}")
        for k in sorted(RISK_CLASS_COLOURS, reverse=True)
    ]  # fmt: skip
    if plans:
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                              markeredgecolor=PLAN_COLOUR, markeredgewidth=1.8, markersize=7, label="plan check"))  # fmt: skip
    if border:
        handles.append(
            Line2D([], [], color="#555555", linewidth=0.8, linestyle=(0, (4, 3)), label="border")
        )
    if places:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                color="#4d4d4d",
                markersize=3,
                label="settlement",
            )
        )
    return handles
