"""The daily briefing: every shift's checks of one day on A4 pages a patrol leader can act on.

One self-contained HTML file (no network, print-ready: ``@page { size: A4 }``, one shift per
page). Each check says when (local time), where (nearest places on both sides, the crossing
point, access corridor or river, coordinates in WGS84 and D96/TM), why (risk reasons, or
plainly "exploration" or "forced") and the chance that the stretch was checked this shift.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel._timing import timed
from riskmodel.files import atomic_write_text

log = logging.getLogger(__name__)

# Columns of ShiftBrief.checks, in print order, with their headers.
CHECK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("check_no", "#"),
    ("unit", "Unit"),
    ("slot", "Time"),
    ("segment_id", "Segment"),
    ("where", "Where"),
    ("coords", "Coordinates"),
    ("kind", "Kind"),
    ("chance", "Chance of a check"),
    ("why", "Why"),
)

_CSS = """
@page { size: A4 landscape; margin: 8mm 9mm; }
body { font: 7pt/1.17 "DejaVu Sans", Arial, sans-serif; color: #111; margin: 0; }
h1 { font-size: 13pt; margin: 0 0 1mm; }
h2 { font-size: 11.5pt; margin: 1.5mm 0 0.5mm; }
.meta, .foot { color: #444; font-size: 7.4pt; }
.legal { color: #444; font-size: 6.8pt; line-height: 1.2; margin: 1.5mm 0 0; }
section.shift { page-break-before: always; break-before: page; }
section.shift:first-of-type { page-break-before: auto; break-before: auto; }
table { border-collapse: collapse; width: 100%; margin-top: 2mm; table-layout: fixed; }
th, td { border: 0.3mm solid #999; padding: 0.4mm 1mm; vertical-align: top; text-align: left; }
th { background: #eee; font-size: 7pt; }
ul { margin: 1mm 0; }
tr { page-break-inside: avoid; break-inside: avoid; }
td.kind-exploration { background: #eef4ff; }
td.kind-forced { background: #fff3e0; }
.warn { color: #8a4b00; }
col.c-check_no { width: 2.5%; } col.c-unit { width: 3.5%; } col.c-slot { width: 6%; }
col.c-segment_id { width: 6.5%; } col.c-where { width: 28%; } col.c-coords { width: 12.5%; }
col.c-kind { width: 6.5%; } col.c-chance { width: 5.5%; } col.c-why { width: 29%; }
"""


@dataclass
class ShiftBrief:
    """One shift of the daily briefing.

    Attributes
    ----------
    title : str
        E.g. ``"Night 22:00–06:00, night of Mon 30 Nov 2026"``.
    plan_id : str
        The plan's id (also in the audit log).
    checks : DataFrame
        One row per check with the columns of :data:`CHECK_COLUMNS` (text).
    notes : list of str
        Warnings and remarks printed under the table.
    """

    title: str
    plan_id: str
    checks: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(checks: pd.DataFrame) -> str:
    cols = "".join(f'<col class="c-{c}">' for c, _ in CHECK_COLUMNS)
    head = "".join(f"<th>{_e(h)}</th>" for _, h in CHECK_COLUMNS)
    rows = []
    for rec in checks.to_dict(orient="records"):
        cells = []
        for col, _ in CHECK_COLUMNS:
            cls = f' class="kind-{_e(rec.get("kind_key", ""))}"' if col == "kind" else ""
            cells.append(f"<td{cls}>{_e(rec.get(col, ''))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def daily_briefing_html(
    *,
    title: str,
    shifts: Sequence[ShiftBrief],
    legal_note: str,
    meta: Mapping[str, str] | None = None,
) -> str:
    """The daily briefing page (deterministic for the same inputs).

    Parameters
    ----------
    title : str
        Page title, e.g. ``"Spot checks, Tue 1 Dec 2026"``.
    shifts : sequence of ShiftBrief
        In shift order; each starts a new printed page.
    legal_note : str
        The legal basis printed on every shift page.
    meta : mapping, optional
        Lines printed under the title (model, caps, audit anchor...).
    """
    meta_html = " · ".join(f"{_e(k)}: {_e(v)}" for k, v in (meta or {}).items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for sb in shifts:
        notes = "".join(f'<li class="warn">{_e(n)}</li>' for n in sb.notes)
        parts.append(
            '<section class="shift">'
            f'<h1>{_e(title)}</h1><div class="meta">{meta_html}</div>'
            f"<h2>{_e(sb.title)}</h2>"
            f'<div class="meta">plan {_e(sb.plan_id)} · {len(sb.checks)} checks</div>'
            + _table(sb.checks)
            + (f"<ul>{notes}</ul>" if notes else "")
            + f'<p class="legal">{_e(legal_note)}</p></section>'
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


@timed("write briefing")
def write_daily_briefing(
    path: str | os.PathLike[str],
    *,
    title: str,
    shifts: Sequence[ShiftBrief],
    legal_note: str,
    meta: Mapping[str, str] | None = None,
) -> Path:
    """Write :func:`daily_briefing_html` atomically to ``path``."""
    text = daily_briefing_html(title=title, shifts=shifts, legal_note=legal_note, meta=meta)
    return atomic_write_text(path, text)
