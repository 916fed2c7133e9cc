"""Plan outputs: the plan CSV, the printable shift briefing (HTML with an inline SVG sketch of
the border) and the plan GeoJSON + QGIS style.

Every output is deterministic for a seed and written atomically. The briefing is self-contained
(no external URLs) so it prints and opens offline; its page is the template
``templates/briefing.html``. The writers take any object with the attributes of
:class:`riskmodel.planning.plan.Plan` (see :class:`PlanLike`).
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Protocol

import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.files import atomic_write_text

log = logging.getLogger(__name__)

# The legal basis printed on every briefing (METHODOLOGY.md, section 4.1).
LEGAL_NOTE = (
    "These checks are police spot checks in the internal border area under Article 23 of the "
    "Schengen Borders Code (Regulation (EU) 2016/399): they do not have border control as their "
    "objective, rest on general police information and experience about threats to public "
    "security (in particular cross-border crime), are devised and executed distinctly from "
    "systematic checks at external borders, and are carried out as spot checks. The plan is a "
    "random sample from a logged, risk-weighted distribution with per-segment caps on "
    "intensity and frequency, as required by the Court of Justice in C-9/16 (A, 2017) and "
    "C-278/12 PPU (Adil). Every segment keeps a non-zero chance of a check; the seed, caps and "
    "any overrides are recorded in the audit log."
)


# Plan coverage status -> (key, kind, why). Exploration and forced checks are labelled as
# such and never get risk reasons (their risk did not put them in the plan).
CHECK_KINDS: dict[str, tuple[str, str, str]] = {
    "floor": (
        "exploration",
        "exploration",
        "a random check that keeps every stretch possible (not risk-based)",
    ),
    "included": (
        "forced",
        "forced by the planner",
        "included on the planner's instruction (see the audit log)",
    ),
}


def check_kind(status: str, reasons: str) -> tuple[str, str, str]:
    """``(key, kind, why)`` of a check from its segment's coverage status: ``exploration``
    (at the floor) and ``forced`` (``--include``) say so; risk-weighted checks keep their
    ``reasons``."""
    return CHECK_KINDS.get(status, ("risk", "risk-weighted", reasons))


def chance_text(coverage: float) -> str:
    """The chance that the stretch is checked this shift in words: ``"4 %"``, ``"under 1 %"``."""
    # No-break spaces: "1 %" never splits over two lines in a narrow column.
    return f"{coverage:.0%}".replace("%", "\u00a0%") if coverage >= 0.01 else "under 1\u00a0%"


class PlanLike(Protocol):
    """What the plan writers read from a plan (:class:`riskmodel.planning.plan.Plan`)."""

    plan_id: str
    date: str
    shift: str
    shift_start: str
    shift_end: str
    units: int
    units_requested: int
    coverage: pd.DataFrame
    checks: pd.DataFrame
    stats: dict[str, Any]
    overrides: dict[str, Any]
    caps: dict[str, Any]
    warnings: list[str]
    geometry: Any

    @property
    def stem(self) -> str:
        """File-name stem ``<date>_<shift>``."""
        ...


def _template(name: str) -> Template:
    text = (
        resources.files("riskmodel.io.write")
        .joinpath("templates", name)
        .read_text(encoding="utf-8")
    )
    return Template(text)


#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: Any) -> Any:
    """A text cell starting with ``= + - @`` (or tab / CR) prefixed with ``'``, so a
    spreadsheet shows it as text instead of running it; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_CHARS):
        return "'" + value
    return value


def plan_csv(plan: PlanLike) -> str:
    """The plan table as CSV text (deterministic for a seed).

    Every row carries the plan's ``plan_id`` and ``audit_seq`` (its line in the audit chain),
    so a printed or forwarded plan can be matched with its audit entry. Text cells that a
    spreadsheet would run as a formula are neutralised (:func:`neutralise_formula`).
    """
    df = plan.checks.copy()
    df["plan_id"] = plan.plan_id
    df["audit_seq"] = getattr(plan, "audit_seq", None)
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype(object).map(neutralise_formula)
    return df.to_csv(index=False, lineterminator="\n")


def svg_sketch(plan: PlanLike, width: int = 900) -> str:
    """Inline SVG of the border with checked segments (no external references)."""
    cov = plan.coverage
    checked = plan.checks.set_index("segment_id")["check_no"]
    geom = plan.geometry
    if geom is not None and geom.notna().any():
        import shapely

        g = geom[geom.notna()]
        coords, idx = shapely.get_coordinates(g.to_numpy(), return_index=True)
        if len(coords):
            x0, y0 = coords.min(axis=0)
            x1, y1 = coords.max(axis=0)
            span = max(x1 - x0, y1 - y0, 1.0)
            pad = 12
            sc = (width - 2 * pad) / span
            height = int((y1 - y0) * sc + 2 * pad)
            px = (coords[:, 0] - x0) * sc + pad
            py = (y1 - coords[:, 1]) * sc + pad  # SVG y grows downwards
            ids = g.index.to_numpy()
            splits = np.flatnonzero(np.diff(idx)) + 1
            parts = []
            anchors: dict[int, tuple[float, float]] = {}
            for k, (xs, ys) in enumerate(
                zip(np.split(px, splits), np.split(py, splits), strict=True)
            ):
                sid = ids[idx[np.concatenate([[0], splits])[k]]]
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
                if sid in checked.index:
                    parts.append(f'<polyline points="{pts}" class="chk"/>')
                    anchors.setdefault(
                        int(checked[sid]), (float(xs[len(xs) // 2]), float(ys[len(ys) // 2]))
                    )
                else:
                    parts.append(f'<polyline points="{pts}" class="seg"/>')
            body = "".join(parts) + sketch_labels(anchors, width, height)
            return (
                f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
                f'aria-label="Border sketch with checked segments">'
                f"<style>.seg{{fill:none;stroke:#999;stroke-width:1.5}}"
                f".chk{{fill:none;stroke:#c00;stroke-width:5}}.ldr{{stroke:#c00;stroke-width:1}}"
                f"text{{font:bold 12px sans-serif;fill:#c00}}</style>{body}</svg>"
            )
    # No geometry: a strip of segments in id order (bar height = coverage), checks in red.
    n = len(cov)
    if n == 0:
        return ""
    h = 90
    bw = width / n
    bars = []
    cmax = max(float(cov["coverage"].max()), 1e-9)
    for k, (sid, c) in enumerate(cov["coverage"].items()):
        bh = 60 * float(c) / cmax
        cls = "chk" if sid in checked.index else "seg"
        bars.append(
            f'<rect x="{k * bw:.2f}" y="{70 - bh:.2f}" width="{max(bw, 0.5):.2f}" '
            f'height="{bh:.2f}" class="{cls}"/>'
        )
    return (
        f'<svg viewBox="0 0 {width} {h}" width="100%" role="img" '
        f'aria-label="Coverage per segment along the border, checked segments in red">'
        f"<style>.seg{{fill:#bbb}}.chk{{fill:#c00}}text{{font:11px sans-serif}}</style>"
        f"{''.join(bars)}"
        f'<text x="0" y="86">{html.escape(str(cov.index[0]))}</text>'
        f'<text x="{width}" y="86" text-anchor="end">{html.escape(str(cov.index[-1]))}</text>'
        f"</svg>"
    )


#: Bold 12 px label boxes in the sketch (character width, height, free gap), in SVG pixels.
_CHAR_W, _TEXT_H, _GAP = 7.5, 12.0, 2.0


def label_boxes(
    anchors: Mapping[int, tuple[float, float]], width: float, height: float
) -> dict[int, tuple[float, float, float, float]]:
    """Non-overlapping boxes ``(x0, y0, x1, y1)`` for check numbers near their anchors.

    Checks in number order take the first free spot: above-right of the anchor, then the
    other sides, then rings farther out (the sketch draws a leader line to a moved label).
    Boxes keep a gap of 2 px and stay inside the sketch; a label with no free spot within
    the rings is put beside the last one placed, never on top of another.
    """
    cands = [(4.0, -4.0), (-4.0, -4.0), (4.0, 4.0 + _TEXT_H), (-4.0, 4.0 + _TEXT_H)]
    for d in (22.0, 36.0, 50.0, 64.0, 80.0):
        cands += [(d * np.cos(a), d * np.sin(a)) for a in -np.pi / 2 + np.arange(12) * np.pi / 6]
    placed: dict[int, tuple[float, float, float, float]] = {}

    def free(b: tuple[float, float, float, float]) -> bool:
        if b[0] < 0 or b[1] < 0 or b[2] > width or b[3] > height:
            return False
        return not any(
            b[0] < q[2] + _GAP and q[0] < b[2] + _GAP and b[1] < q[3] + _GAP and q[1] < b[3] + _GAP
            for q in placed.values()
        )

    for no in sorted(anchors):
        ax, ay = anchors[no]
        w = _CHAR_W * len(str(no))
        box = None
        for dx, dy in cands:
            # dx < 0: the label ends at the offset; dy is the text baseline.
            x0 = ax + dx - (w if dx < 0 else 0.0)
            cand = (x0, ay + dy - _TEXT_H, x0 + w, ay + dy)
            if free(cand):
                box = cand
                break
        if box is None:  # crowded: a row under everything placed so far
            y = max((q[3] for q in placed.values()), default=0.0) + _GAP + _TEXT_H
            box = (ax, y - _TEXT_H, ax + w, y)
        placed[no] = box
    return placed


def sketch_labels(anchors: Mapping[int, tuple[float, float]], width: float, height: float) -> str:
    """SVG text (and leader lines for moved labels) for the check numbers of the sketch."""
    out = []
    for no, (x0, y0, x1, y1) in label_boxes(anchors, width, height).items():
        ax, ay = anchors[no]
        cx, cy = min(max(ax, x0), x1), min(max(ay, y0), y1)
        if np.hypot(cx - ax, cy - ay) > 10:
            out.append(
                f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{cx:.1f}" y2="{cy:.1f}" class="ldr"/>'
            )
        out.append(f'<text x="{x0:.1f}" y="{y1 - 1:.1f}" data-no="{no}">{no}</text>')
    return "".join(out)


def briefing_html(plan: PlanLike) -> str:
    """Self-contained printable shift briefing (no external URLs): checks by unit, a sketch of
    the border, the coverage summary, warnings and the legal basis."""
    e = html.escape
    s = plan.stats
    rows = []
    status = plan.coverage["status"] if "status" in plan.coverage else pd.Series(dtype=str)
    for unit, sub in plan.checks.groupby("unit", sort=True):
        for rec in sub.itertuples(index=False):
            key, kind, why = check_kind(str(status.get(rec.segment_id, "")), str(rec.reasons))
            rows.append(
                f'<tr class="kind-{key}"><td>{e(str(unit))}</td><td>{rec.check_no}</td>'
                f"<td>{e(str(rec.segment_id))}</td><td>{e(str(rec.area))}</td>"
                f"<td>{e(rec.slot_start[11:16])}&ndash;{e(rec.slot_end[11:16])}"
                f"<br><small>{e(rec.slot_start)}</small></td><td>{e(kind)}</td><td>{e(why)}</td>"
                f"<td>{e(chance_text(rec.coverage))}</td></tr>"
            )
    warn = "".join(f"<li>{e(w)}</li>" for w in plan.warnings)
    ov = plan.overrides
    summary = [
        ("Checks (units)", f"{plan.units} of {plan.units_requested} requested"),
        (
            "Segments",
            f"{s['segments']} ({s['zero_coverage']} without coverage, "
            f"{s['blocked_by_caps']} blocked by frequency caps)",
        ),
        (
            "Coverage entropy (normalised)",
            f"{s['entropy']:.3f} (deterministic top-k: {s['topk_entropy']:.3f})",
        ),
        ("Largest inclusion probability", f"{s['max_inclusion']:.3f} (top-k: 1.000)"),
        (
            "Expected detections, this distribution",
            f"{s['expected_detections']:.2f} "
            f"(deterministic top-k: {s['topk_expected_detections']:.2f})",
        ),
        (
            "Worst-case residual for an adaptive adversary",
            f"{s['worst_case_residual']:.3f} (top-k: {s['topk_worst_case_residual']:.3f})",
        ),
        (
            "Overrides",
            f"include {', '.join(ov['include']) or 'none'}; exclude "
            f"{', '.join(ov['exclude']) or 'none'}"
            + (f" (reason: {ov.get('reason')}; by {ov.get('by')})" if ov.get("reason") else ""),
        ),
        *(
            [
                (
                    "FORCED past refusal",
                    f"{'; '.join(forced.get('refusals') or [])} — reason: {forced.get('reason')}"
                    f" (by {forced.get('by')})",
                )
            ]
            if (forced := getattr(plan, "forced", None))
            else []
        ),
        (
            "Per-shift cap / frequency caps",
            ", ".join(
                f"{k}={v}"
                for k, v in plan.caps.items()
                if k
                in (
                    "per_shift",
                    "max_per_segment_per_7d",
                    "max_per_segment_per_30d",
                    "max_share_of_shifts",
                )
                and v is not None
            ),
        ),
    ]
    summ = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary)
    return _template("briefing.html").substitute(
        date=e(plan.date),
        shift=e(plan.shift),
        shift_start=e(plan.shift_start),
        shift_end=e(plan.shift_end),
        plan_id=e(plan.plan_id),
        audit=e(
            f"audit log entry seq {getattr(plan, 'audit_seq', None) or 'n/a'}, chained to log "
            f"head {getattr(plan, 'audit_prev', None) or '(start of the log)'}"
        ),
        rows="".join(rows),
        sketch=svg_sketch(plan),
        summary=summ,
        warnings=f'<h2>Warnings</h2><ul class="warn">{warn}</ul>' if warn else "",
        legal_note=e(LEGAL_NOTE),
    )


@timed("write plan files")
def write_plan_outputs(
    plan: PlanLike, out: str | os.PathLike[str], provenance: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``plan_<date>_<shift>.csv``, ``briefing_<date>_<shift>.html`` and, with geometry,
    ``plan_<date>_<shift>.geojson`` + ``.qml`` into ``out`` (atomic; deterministic for a seed).

    Parameters
    ----------
    plan : PlanLike
        The plan.
    out : path-like
        Output folder.
    provenance : dict, optional
        Extra provenance for the GeoJSON (model id, risk sha256, audit log).

    Returns
    -------
    list of Path
        Files written.
    """
    out = Path(out)
    written = [
        atomic_write_text(out / f"plan_{plan.stem}.csv", plan_csv(plan)),
        atomic_write_text(out / f"briefing_{plan.stem}.html", briefing_html(plan)),
    ]
    if plan.geometry is not None and plan.geometry.notna().any():
        import geopandas as gpd

        from riskmodel.io.write import geojson, qml
        from riskmodel.io.write.common import with_slot

        crs = plan.geometry.crs
        if crs is None:  # RFC 7946 with no CRS writes empty geometries: assume the contract CRS
            log.warning("segment geometry has no CRS; assuming EPSG:3794")
            crs = "EPSG:3794"
        # One feature per check (the plan style draws every feature as a check).
        chk = plan.checks
        gdf = gpd.GeoDataFrame(
            with_slot(chk).assign(
                status=plan.coverage["status"].reindex(chk["segment_id"]).to_numpy()
            ),
            geometry=plan.geometry.reindex(chk["segment_id"]).to_numpy(),
            crs=crs,
        )
        gdf = gdf[gdf.geometry.notna()]
        prov = {
            "plan_id": plan.plan_id,
            "date": plan.date,
            "shift": plan.shift,
            **(provenance or {}),
        }
        path = out / f"plan_{plan.stem}.geojson"
        geojson.write_geojson(gdf, path, provenance=prov, qml=qml.qml_plan_style())
        written += [path, path.with_suffix(".qml")]
    return written
