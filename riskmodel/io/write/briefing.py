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
            labels = []
            for k, (xs, ys) in enumerate(
                zip(np.split(px, splits), np.split(py, splits), strict=True)
            ):
                sid = ids[idx[np.concatenate([[0], splits])[k]]]
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
                if sid in checked.index:
                    parts.append(f'<polyline points="{pts}" class="chk"/>')
                    labels.append(
                        f'<text x="{xs[len(xs) // 2] + 4:.1f}" y="{ys[len(ys) // 2] - 4:.1f}">'
                        f"{int(checked[sid])}</text>"
                    )
                else:
                    parts.append(f'<polyline points="{pts}" class="seg"/>')
            body = "".join(parts) + "".join(labels)
            return (
                f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
                f'aria-label="Border sketch with checked segments">'
                f"<style>.seg{{fill:none;stroke:#999;stroke-width:1.5}}"
                f".chk{{fill:none;stroke:#c00;stroke-width:5}}"
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


def briefing_html(plan: PlanLike) -> str:
    """Self-contained printable shift briefing (no external URLs): checks by unit, a sketch of
    the border, the coverage summary, warnings and the legal basis."""
    e = html.escape
    s = plan.stats
    rows = []
    for unit, sub in plan.checks.groupby("unit", sort=True):
        for rec in sub.itertuples(index=False):
            rows.append(
                f"<tr><td>{e(str(unit))}</td><td>{rec.check_no}</td><td>{e(str(rec.segment_id))}</td>"
                f"<td>{e(str(rec.area))}</td><td>{e(rec.slot_start[11:16])}&ndash;{e(rec.slot_end[11:16])}"
                f"<br><small>{e(rec.slot_start)}</small></td><td>{e(str(rec.reasons))}</td>"
                f"<td>{rec.coverage:.3f}</td></tr>"
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

        crs = plan.geometry.crs
        if crs is None:  # RFC 7946 with no CRS writes empty geometries: assume the contract CRS
            log.warning("segment geometry has no CRS; assuming EPSG:3794")
            crs = "EPSG:3794"
        # One feature per check (the plan style draws every feature as a check).
        chk = plan.checks
        gdf = gpd.GeoDataFrame(
            chk.assign(status=plan.coverage["status"].reindex(chk["segment_id"]).to_numpy()),
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
