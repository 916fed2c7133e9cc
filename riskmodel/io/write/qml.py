"""QGIS layer styles (QML, QGIS >= 3.22) for risk segments and plan checks."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Final

from riskmodel.io.write.styles import (
    PLAN_COLOUR,
    RISK_CLASS_COLOURS,
    RISK_CLASS_LABELS,
    RISK_CLASS_WIDTHS_MM,
    UNIT_COLOURS,
)

log = logging.getLogger(__name__)

_QML_VERSION: Final[str] = "3.22.16-Białowieża"


def _rgba(hex_colour: str, alpha: int = 255) -> str:
    h = hex_colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha}"


def _options(parent: ET.Element, props: Mapping[str, str]) -> None:
    opt = ET.SubElement(parent, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(opt, "Option", type="QString", name=k, value=str(v))


def _simple_line(parent: ET.Element, colour: str, width_mm: float, level: int = 0) -> None:
    """A line symbol layer; ``level`` is its rendering pass when symbol levels are on."""
    layer = ET.SubElement(
        parent,
        "layer",
        {"class": "SimpleLine", "enabled": "1", "locked": "0", "pass": str(level)},
    )
    _options(
        layer,
        {
            "capstyle": "round",
            "joinstyle": "round",
            "line_color": colour,
            "line_style": "solid",
            "line_width": f"{width_mm:g}",
            "line_width_unit": "MM",
            "offset": "0",
            "offset_unit": "MM",
            "use_custom_dash": "0",
        },
    )


def _centre_marker(
    parent: ET.Element, name: str, fill: str, outline: str, size_mm: float, level: int = 0
) -> None:
    layer = ET.SubElement(
        parent,
        "layer",
        {"class": "MarkerLine", "enabled": "1", "locked": "0", "pass": str(level)},
    )
    _options(
        layer, {"placement": "centralpoint", "rotate": "0", "offset": "0", "offset_unit": "MM"}
    )
    sym = ET.SubElement(
        layer, "symbol", type="marker", name=name, alpha="1", clip_to_extent="1", force_rhr="0"
    )
    mk = ET.SubElement(
        sym, "layer", {"class": "SimpleMarker", "enabled": "1", "locked": "0", "pass": "0"}
    )
    _options(
        mk,
        {
            "name": "circle",
            "color": fill,
            "outline_color": outline,
            "outline_style": "solid",
            "outline_width": "0.6",
            "outline_width_unit": "MM",
            "size": f"{size_mm:g}",
            "size_unit": "MM",
            "scale_method": "diameter",
        },
    )


def _line_symbol(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(
        parent, "symbol", type="line", name=name, alpha="1", clip_to_extent="1", force_rhr="0"
    )


def _label_rule(
    parent: ET.Element, expression: str, filter_expr: str | None, *, is_expr: bool
) -> None:
    attrs = {"key": "{riskmodel-label-rule}"}
    if filter_expr:
        attrs["filter"] = filter_expr
    rule = ET.SubElement(parent, "rule", attrs)
    settings = ET.SubElement(rule, "settings", calloutType="simple")
    ts = ET.SubElement(
        settings,
        "text-style",
        fieldName=expression,
        isExpression="1" if is_expr else "0",
        fontFamily="Sans Serif",
        fontSize="9",
        fontSizeUnit="Point",
        fontWeight="75",
        textColor="30,30,30,255",
        textOpacity="1",
        namedStyle="Bold",
    )
    ET.SubElement(
        ts,
        "text-buffer",
        bufferDraw="1",
        bufferSize="1",
        bufferSizeUnits="MM",
        bufferColor="255,255,255,255",
        bufferOpacity="0.9",
        bufferJoinStyle="128",
        bufferNoFill="1",
    )
    # Label the segment's midpoint, horizontally beside it (placement 6 = cartographic around
    # point): readable at any line angle, never covering the segment, fits 1 km at 1:250k.
    ET.SubElement(
        settings, "placement", placement="6", dist="1.2", distUnits="MM", priority="8",
        geometryGeneratorEnabled="1", geometryGeneratorType="PointGeometry",
        geometryGenerator="line_interpolate_point($geometry, length($geometry) / 2)",
    )  # fmt: skip
    ET.SubElement(
        settings, "rendering", drawLabels="1", obstacle="1", obstacleType="1", displayAll="0",
        upsidedownLabels="0", mergeLines="0", labelPerPart="0", scaleVisibility="0",
    )  # fmt: skip


def _qml_document(renderer: ET.Element, labeling: ET.Element | None, map_tip: str) -> str:
    root = ET.Element(
        "qgis",
        version=_QML_VERSION,
        styleCategories="Symbology|Labeling|MapTips",
        labelsEnabled="1" if labeling is not None else "0",
    )
    root.append(renderer)
    if labeling is not None:
        root.append(labeling)
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"
    ET.SubElement(root, "mapTip").text = map_tip
    ET.SubElement(root, "layerGeometryType").text = "1"  # line layers only
    ET.indent(root, space="  ")
    # QGIS writes (and older versions expect) this doctype; the DTD is never fetched.
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


def _q(field: str) -> str:
    """A field reference in a QGIS expression."""
    return '"' + field.replace('"', '""') + '"'


def qml_risk_style(
    field: str = "risk_class",
    label_field: str = "segment_id",
    label_top_n_field: str = "rank",
    top_n: int = 10,
) -> str:
    """QGIS style (QML, QGIS >= 3.22) for scored segments.

    Categorised renderer on the 5 risk classes (yellow -> dark red, thicker for higher risk,
    drawn on top) with symbol levels on: every segment's dark casing is drawn first (level 0),
    then the fills by class (levels 1-5), so joined segments read as one line, not beads at
    national scale. Rule-based labels for the ``top_n`` highest-ranked segments and a map tip
    with the reasons.

    Parameters
    ----------
    field : str
        Integer class field (1-5).
    label_field : str
        Field shown as label.
    label_top_n_field : str
        Rank field (1 = highest); labels are drawn where ``rank <= top_n``.
    top_n : int
        Number of labelled segments.

    Returns
    -------
    str
        QML document.
    """
    r = ET.Element(
        "renderer-v2",
        type="categorizedSymbol",
        attr=field,
        symbollevels="1",
        enableorderby="1",
        forceraster="0",
        referencescale="-1",
    )
    cats = ET.SubElement(r, "categories")
    syms = ET.SubElement(r, "symbols")
    # Highest class first: that is the legend order planners read.
    for i, cls in enumerate(sorted(RISK_CLASS_COLOURS, reverse=True)):
        ET.SubElement(
            cats, "category", value=str(cls), symbol=str(i), label=f"{cls} {RISK_CLASS_LABELS[cls]}",
            render="true",
        )  # fmt: skip
        sym = _line_symbol(syms, str(i))
        w = RISK_CLASS_WIDTHS_MM[cls]
        _simple_line(sym, "60,60,60,255", w + 0.5, level=0)  # casing: pale classes stay visible
        _simple_line(sym, _rgba(RISK_CLASS_COLOURS[cls]), w, level=cls)
    # Draw higher classes last (on top) where segments meet.
    ob = ET.SubElement(r, "orderby")
    ET.SubElement(ob, "orderByClause", asc="1", nullsFirst="1").text = _q(field)
    labeling = ET.Element("labeling", type="rule-based")
    rules = ET.SubElement(labeling, "rules", key="{riskmodel-label-root}")
    _label_rule(rules, label_field, f"{_q(label_top_n_field)} <= {int(top_n)}", is_expr=False)
    tip = (
        f"<b>[% {_q(label_field)} %]</b> class [% {_q(field)} %], rank [% {_q(label_top_n_field)} %]"
        '<br>[% "reason_1" %]<br>[% "reason_2" %]<br>[% "reason_3" %]'
    )
    return _qml_document(r, labeling, tip)


def qml_plan_style(units: Sequence[str] | None = None) -> str:
    """QGIS style (QML, QGIS >= 3.22) for plan checks.

    Thick lines with a marker at each check's midpoint and labels ``"unit: HH:MM-HH:MM"``
    (from ``unit``, ``slot_start``, ``slot_end``). With ``units`` the lines are coloured by unit
    (categorised renderer); without, all checks share one colour and the label names the unit.

    Parameters
    ----------
    units : sequence of str, optional
        Unit names to colour separately.

    Returns
    -------
    str
        QML document.
    """
    if units:
        r = ET.Element("renderer-v2", type="categorizedSymbol", attr="unit", symbollevels="1",
                       enableorderby="0", forceraster="0", referencescale="-1")  # fmt: skip
        cats = ET.SubElement(r, "categories")
        syms = ET.SubElement(r, "symbols")
        for i, unit in enumerate(sorted(set(units))):
            colour = UNIT_COLOURS[i % len(UNIT_COLOURS)]
            ET.SubElement(cats, "category", value=unit, symbol=str(i), label=unit, render="true")
            _plan_symbol(_line_symbol(syms, str(i)), colour, str(i))
    else:
        r = ET.Element("renderer-v2", type="singleSymbol", symbollevels="1", enableorderby="0",
                       forceraster="0", referencescale="-1")  # fmt: skip
        syms = ET.SubElement(r, "symbols")
        _plan_symbol(_line_symbol(syms, "0"), PLAN_COLOUR, "0")
    labeling = ET.Element("labeling", type="rule-based")
    rules = ET.SubElement(labeling, "rules", key="{riskmodel-label-root}")
    # "slot" is the local "HH:MM–HH:MM" (GeoPackage stores slot times in UTC); files without
    # it fall back to HH:MM of the ISO 8601 slot text, which carries the local offset.
    expr = (
        "\"unit\" || ': ' || coalesce(attribute('slot'), "
        "substr(to_string(\"slot_start\"), 12, 5) || '\u2013' || "
        'substr(to_string("slot_end"), 12, 5))'
    )
    _label_rule(rules, expr, None, is_expr=True)
    tip = '<b>Check [% "check_no" %]</b> [% "unit" %]<br>[% "segment_id" %]<br>[% "slot_start" %] \u2013 [% "slot_end" %]'
    return _qml_document(r, labeling, tip)


def _plan_symbol(sym: ET.Element, colour: str, name: str) -> None:
    # Translucent halo: the risk colour of the checked segment stays visible through it.
    # Levels: every halo first, then the markers, so no halo covers a neighbour's marker.
    _simple_line(sym, _rgba(colour, 100), 4.2, level=0)
    _centre_marker(sym, f"@{name}@1", "255,255,255,255", _rgba(colour), 3.4, level=1)


def qml_segments_style() -> str:
    """QGIS style (QML, QGIS >= 3.22) for the plain border segments: a thin grey line with
    the segment id, chainage and river in the map tip (the base under risk and plan layers)."""
    r = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0",
                   forceraster="0", referencescale="-1")  # fmt: skip
    syms = ET.SubElement(r, "symbols")
    _simple_line(_line_symbol(syms, "0"), "110,110,110,255", 0.5)
    tip = (
        '<b>[% "segment_id" %]</b> [% "area" %]<br>km [% "chainage_from_km" %]'
        '\u2013[% "chainage_to_km" %] [% "river_name" %]'
    )
    return _qml_document(r, None, tip)
