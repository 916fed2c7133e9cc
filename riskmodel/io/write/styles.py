"""Shared map styling: risk-class colours, labels and line widths, plan-check colours.

One place for the symbology of every output (QML, GeoPackage styles, HTML and PNG maps).
"""

from __future__ import annotations

import logging
from typing import Final

log = logging.getLogger(__name__)

#: Sequential yellow -> dark red (ColorBrewer YlOrRd, 9-class steps 3,4,5,7,9): the palest
#: YlOrRd steps vanish on white/light-grey map backgrounds, so class 1 starts at #fed976.
RISK_CLASS_COLOURS: Final[dict[int, str]] = {
    1: "#fed976",
    2: "#feb24c",
    3: "#fd8d3c",
    4: "#e31a1c",
    5: "#800026",
}
RISK_CLASS_LABELS: Final[dict[int, str]] = {
    1: "very low",
    2: "low",
    3: "medium",
    4: "high",
    5: "very high",
}
#: Line widths (mm in QGIS; x ~3.8 for screen pixels): higher risk draws thicker.
RISK_CLASS_WIDTHS_MM: Final[dict[int, float]] = {1: 0.6, 2: 0.8, 3: 1.1, 4: 1.5, 5: 2.0}
#: Screen widths (px) per class in the HTML map, drawn over a darker casing.
HTML_WIDTHS_PX: Final[dict[int, float]] = {1: 2.5, 2: 3.0, 3: 4.0, 4: 5.0, 5: 6.5}

#: Plan-check colours per unit: blues/purples/greens, kept clear of the risk ramp.
UNIT_COLOURS: Final[tuple[str, ...]] = (
    "#1f4e9c",
    "#6a3d9a",
    "#1b9e77",
    "#0b6e8a",
    "#b03a8c",
    "#3f6b1f",
    "#4a4a8c",
    "#8c564b",
)
PLAN_COLOUR: Final[str] = "#1f4e9c"
