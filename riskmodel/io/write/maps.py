"""Output writers: GeoJSON (RFC 7946), GeoPackage, QGIS styles, offline HTML map, PNG, CSV.

Every writer builds its file in a temporary file beside the target and renames it into place
(:func:`riskmodel.io.atomic.atomic_write_with`), so readers never see half-written outputs, and gives
byte-identical files for identical input (no timestamps unless they come from ``provenance``).

Layers are GeoDataFrames in EPSG:3794 (Slovenian national grid). Scored segments carry
``segment_id``, ``risk_class`` (1-5, 5 = highest), ``rank`` (1 = highest), ``expected``,
``lower``, ``upper``, ``reason_1..3`` and friends; plan checks carry ``check_no``, ``unit``,
``segment_id``, ``slot_start``, ``slot_end``, ``coverage``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import json
import os
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from riskmodel.errors import OutputError
from riskmodel.io.atomic import atomic_write_text, atomic_write_with, canonical_json, sha256_file

__all__ = [
    "RISK_CLASS_COLOURS",
    "RISK_CLASS_LABELS",
    "RISK_CLASS_WIDTHS_MM",
    "qml_plan_style",
    "qml_risk_style",
    "write_csv",
    "write_geojson",
    "write_gpkg",
    "write_html_map",
    "write_png_map",
    "write_provenance",
]

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
_HTML_WIDTHS_PX: Final[dict[int, float]] = {1: 2.5, 2: 3.0, 3: 4.0, 4: 5.0, 5: 6.5}

#: Plan-check colours per unit: blues/purples/greens, kept clear of the risk ramp.
_UNIT_COLOURS: Final[tuple[str, ...]] = (
    "#1f4e9c",
    "#6a3d9a",
    "#1b9e77",
    "#0b6e8a",
    "#b03a8c",
    "#3f6b1f",
    "#4a4a8c",
    "#8c564b",
)
_PLAN_COLOUR: Final[str] = "#1f4e9c"
_NATIONAL_CRS: Final[str] = "EPSG:3794"
_WGS84: Final[str] = "EPSG:4326"
_RESERVED_GPKG_NAMES: Final[frozenset[str]] = frozenset({"layer_styles", "riskmodel_provenance"})
_URL_RE: Final = re.compile(r"https?://", re.IGNORECASE)
_DEFAULT_ATTRIBUTION: Final[tuple[str, ...]] = (
    "Border: \u00a9 OpenStreetMap contributors (ODbL)",
    "Places: GeoNames (CC BY 4.0)",
)


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _require_crs(gdf: gpd.GeoDataFrame, where: str) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise OutputError(
            f"expected a GeoDataFrame, got {type(gdf).__name__}",
            where=where,
            fix="pass a geopandas.GeoDataFrame with a CRS (EPSG:3794)",
        )
    if gdf.crs is None:
        # GDAL's RFC7946 mode writes *empty* geometries for a frame without CRS (measured).
        raise OutputError(
            "layer has no CRS; refusing to write (coordinates would be wrong or empty)",
            where=where,
            fix="set the CRS first, e.g. gdf.set_crs('EPSG:3794')",
        )


def _require_columns(df: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise OutputError(
            f"missing column(s) {', '.join(missing)}",
            where=where,
            fix="pass the scored/planned frame produced by riskmodel",
        )


def _national(gdf: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    _require_crs(gdf, where)
    return gdf if gdf.crs.equals(_NATIONAL_CRS) else gdf.to_crs(_NATIONAL_CRS)


def _json_safe(obj: Any) -> Any:
    """Provenance as plain JSON values with sorted keys (datetimes/paths -> str)."""
    return json.loads(canonical_json(obj))


def _stamp(provenance: Mapping[str, Any] | None) -> str:
    """UTC timestamp for metadata fields: provenance ``created`` (reproducible) or now."""
    created = (provenance or {}).get("created")
    ts = None
    if created is not None:
        with contextlib.suppress(ValueError, TypeError):
            ts = pd.Timestamp(created)
    if ts is None or pd.isna(ts):
        ts = pd.Timestamp(datetime.now(UTC))
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def _gdal_config(options: Mapping[str, str]) -> Iterator[None]:
    """Set GDAL config options for the duration of a block, restoring previous values."""
    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(dict(options))
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)


# --------------------------------------------------------------------------------------------
# GeoJSON
# --------------------------------------------------------------------------------------------


def write_geojson(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    provenance: Mapping[str, Any] | None = None,
    qml: str | None = None,
) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84, 6 decimals, ``bbox``, no ``crs``).

    GDAL reprojects, rounds and fixes ring order (exterior counter-clockwise); the result is
    re-serialised with one feature per line and provenance as the top-level foreign member
    ``"riskmodel"`` (RFC 7946 section 6.1).

    Parameters
    ----------
    gdf : GeoDataFrame
        Layer in any CRS (normally EPSG:3794). Row and column order are kept.
    path : path-like
        Target ``.geojson`` file.
    provenance : dict, optional
        Model id, input hashes, versions ...; stored under ``"riskmodel"``.
    qml : str, optional
        QGIS style; written as ``<path stem>.qml`` beside the file, which QGIS auto-loads.

    Returns
    -------
    Path
        The GeoJSON path.

    Raises
    ------
    OutputError
        If ``gdf`` has no CRS, geometries were lost in conversion, or the file cannot be written.
    """
    where = str(path)
    _require_crs(gdf, where)
    target = Path(path)
    n_geoms = int((~(gdf.geometry.isna() | gdf.geometry.is_empty)).sum())
    prov = _json_safe(provenance) if provenance is not None else None

    def writer(tmp: Path) -> None:
        # layer= fixes the "name" member (else GDAL uses the random temp-file name).
        gdf.to_file(
            tmp,
            driver="GeoJSON",
            engine="pyogrio",
            layer=target.stem,
            RFC7946="YES",
            COORDINATE_PRECISION=6,
            WRITE_BBOX="YES",
        )
        doc = json.loads(tmp.read_text(encoding="utf-8"))
        feats = doc.get("features", [])
        n_out = sum(1 for f in feats if f.get("geometry"))
        if n_out != n_geoms:
            raise OutputError(
                f"{n_geoms - n_out} geometries were lost converting to GeoJSON",
                where=where,
                fix="check the layer's CRS and geometry validity",
            )
        tmp.write_text(_geojson_text(doc, prov), encoding="utf-8", newline="\n")

    atomic_write_with(target, writer)
    if qml is not None:
        atomic_write_text(target.with_suffix(".qml"), qml)
    return target


def _geojson_text(doc: dict[str, Any], prov: Any) -> str:
    """Serialise a FeatureCollection deterministically, one feature per line (diff-friendly)."""

    def dump(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)

    head = {k: v for k, v in doc.items() if k != "features"}
    if prov is not None:
        head["riskmodel"] = prov
    lines = [f"{dump(k)}: {dump(v)}," for k, v in head.items()]
    feats = ",\n".join(dump(f) for f in doc.get("features", []))
    body = f'"features": [\n{feats}\n]' if feats else '"features": []'
    return "{\n" + "\n".join(lines) + "\n" + body + "\n}\n"


# --------------------------------------------------------------------------------------------
# QGIS styles (QML, QGIS >= 3.22)
# --------------------------------------------------------------------------------------------

_QML_VERSION: Final[str] = "3.22.16-Białowieża"


def _rgba(hex_colour: str, alpha: int = 255) -> str:
    h = hex_colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha}"


def _options(parent: ET.Element, props: Mapping[str, str]) -> None:
    opt = ET.SubElement(parent, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(opt, "Option", type="QString", name=k, value=str(v))


def _simple_line(parent: ET.Element, colour: str, width_mm: float) -> None:
    layer = ET.SubElement(
        parent, "layer", {"class": "SimpleLine", "enabled": "1", "locked": "0", "pass": "0"}
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


def _centre_marker(parent: ET.Element, name: str, fill: str, outline: str, size_mm: float) -> None:
    layer = ET.SubElement(
        parent, "layer", {"class": "MarkerLine", "enabled": "1", "locked": "0", "pass": "0"}
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
    drawn on top), rule-based labels for the ``top_n`` highest-ranked segments and a map tip
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
        symbollevels="0",
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
        _simple_line(sym, "60,60,60,255", w + 0.5)  # dark casing: pale classes stay visible
        _simple_line(sym, _rgba(RISK_CLASS_COLOURS[cls]), w)
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
        r = ET.Element("renderer-v2", type="categorizedSymbol", attr="unit", symbollevels="0",
                       enableorderby="0", forceraster="0", referencescale="-1")  # fmt: skip
        cats = ET.SubElement(r, "categories")
        syms = ET.SubElement(r, "symbols")
        for i, unit in enumerate(sorted(set(units))):
            colour = _UNIT_COLOURS[i % len(_UNIT_COLOURS)]
            ET.SubElement(cats, "category", value=unit, symbol=str(i), label=unit, render="true")
            _plan_symbol(_line_symbol(syms, str(i)), colour, str(i))
    else:
        r = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0",
                       forceraster="0", referencescale="-1")  # fmt: skip
        syms = ET.SubElement(r, "symbols")
        _plan_symbol(_line_symbol(syms, "0"), _PLAN_COLOUR, "0")
    labeling = ET.Element("labeling", type="rule-based")
    rules = ET.SubElement(labeling, "rules", key="{riskmodel-label-root}")
    # substr(…, 12, 5) is HH:MM of an ISO 8601 slot time (string or datetime field).
    expr = (
        "\"unit\" || ': ' || substr(to_string(\"slot_start\"), 12, 5) || '\u2013' || "
        'substr(to_string("slot_end"), 12, 5)'
    )
    _label_rule(rules, expr, None, is_expr=True)
    tip = '<b>Check [% "check_no" %]</b> [% "unit" %]<br>[% "segment_id" %]<br>[% "slot_start" %] \u2013 [% "slot_end" %]'
    return _qml_document(r, labeling, tip)


def _plan_symbol(sym: ET.Element, colour: str, name: str) -> None:
    # Translucent halo: the risk colour of the checked segment stays visible through it.
    _simple_line(sym, _rgba(colour, 100), 4.2)
    _centre_marker(sym, f"@{name}@1", "255,255,255,255", _rgba(colour), 3.4)


# --------------------------------------------------------------------------------------------
# GeoPackage
# --------------------------------------------------------------------------------------------


def write_gpkg(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: str | os.PathLike[str],
    *,
    provenance: Mapping[str, Any] | None = None,
    style_qml: str | None = None,
) -> Path:
    """Write layers (one per shift) to a GeoPackage 1.2 in EPSG:3794 with embedded QGIS style.

    The style goes into QGIS's ``layer_styles`` table (``useAsDefault=1``, with the real
    geometry column name), so QGIS >= 3.22 opens each layer styled; provenance goes into an
    attribute table ``riskmodel_provenance`` (``key``, ``value`` as JSON).

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Layer name (the shift) to layer; reprojected to EPSG:3794 when needed.
    path : path-like
        Target ``.gpkg``; replaced atomically.
    provenance : dict, optional
        Stored in ``riskmodel_provenance``; its ``created`` stamps ``update_time`` and
        ``last_change`` (else the current time is used).
    style_qml : str, optional
        QML applied as default style of every layer.

    Returns
    -------
    Path
        The GeoPackage path.

    Raises
    ------
    OutputError
        On missing CRS, bad layer names or write failures.
    """
    where = str(path)
    if not layers:
        raise OutputError("no layers to write", where=where, fix="pass at least one shift")
    frames: dict[str, gpd.GeoDataFrame] = {}
    for name, gdf in layers.items():
        if not name or name.lower() in _RESERVED_GPKG_NAMES or name.lower().startswith("gpkg_"):
            raise OutputError(
                f"invalid layer name {name!r}", where=where, fix="name layers after shifts"
            )
        frames[name] = _national(gdf, f"{where} (layer {name})")
    stamp = _stamp(provenance)

    def writer(tmp: Path) -> None:
        # OGR_CURRENT_DATE fixes gpkg_contents.last_change: same input, same bytes.
        with _gdal_config({"OGR_CURRENT_DATE": stamp}):
            for i, (name, gdf) in enumerate(frames.items()):
                pyogrio.write_dataframe(
                    gdf,
                    tmp,
                    layer=name,
                    driver="GPKG",
                    dataset_options={"VERSION": "1.2"} if i == 0 else None,
                    layer_options={"SPATIAL_INDEX": "YES"},
                )
            geom_cols = _gpkg_geometry_columns(tmp)
            if style_qml is not None:
                pyogrio.write_dataframe(
                    _layer_styles(frames, geom_cols, style_qml, stamp),
                    tmp,
                    layer="layer_styles",
                    driver="GPKG",
                    layer_options={"FID": "id"},
                )
            if provenance is not None:
                prov = _json_safe(provenance)
                table = pd.DataFrame(
                    {
                        "key": list(prov),
                        "value": [
                            json.dumps(v, ensure_ascii=False, sort_keys=True) for v in prov.values()
                        ],
                    }
                )
                pyogrio.write_dataframe(table, tmp, layer="riskmodel_provenance", driver="GPKG")

    return atomic_write_with(path, writer)


def _gpkg_geometry_columns(path: Path) -> dict[str, str]:
    """Real geometry column per table (``geom`` with GDAL), read back rather than assumed."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        rows = con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
    return {t: c for t, c in rows}


def _layer_styles(
    frames: Mapping[str, gpd.GeoDataFrame], geom_cols: Mapping[str, str], qml: str, stamp: str
) -> pd.DataFrame:
    names = list(frames)
    n = len(names)
    # QGIS's schema; it selects on f_table_schema='' (not NULL) and picks the newest update_time.
    return pd.DataFrame(
        {
            "f_table_catalog": [""] * n,
            "f_table_schema": [""] * n,
            "f_table_name": names,
            "f_geometry_column": [geom_cols[name] for name in names],
            "styleName": names,
            "styleQML": [qml] * n,
            "styleSLD": [""] * n,
            "useAsDefault": np.ones(n, dtype=bool),
            "description": ["riskmodel default style"] * n,
            "owner": [""] * n,
            "ui": [""] * n,
            "update_time": pd.to_datetime([stamp] * n, utc=True).as_unit("ms"),
        }
    )


# --------------------------------------------------------------------------------------------
# HTML map (offline Leaflet)
# --------------------------------------------------------------------------------------------


def _replace_exact(text: str, old: str, new: str, count: int, what: str) -> str:
    found = text.count(old)
    if found != count:
        # A different Leaflet build: fail loudly rather than ship a page that phones home.
        raise OutputError(
            f"vendored Leaflet changed: expected {count}x {what}, found {found}",
            where="riskmodel/_vendor/leaflet",
            fix="re-vendor Leaflet 1.9.4 (see VENDORED.md) or update riskmodel.io.write.maps",
        )
    return text.replace(old, new)


@functools.lru_cache(maxsize=1)
def _leaflet_assets() -> tuple[str, str]:
    """Leaflet JS and CSS made self-contained and free of URL strings.

    The vendored files are untouched copies from the npm tarball; the changes are made here:
    the source-map comment and link URLs go, the SVG namespace URI (an identifier, never
    fetched) is split so no ``http://`` remains, and CSS images become data: URIs.
    """
    base = resources.files("riskmodel") / "_vendor" / "leaflet"
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    css = (base / "leaflet.css").read_text(encoding="utf-8")
    js = _replace_exact(js, "//# sourceMappingURL=leaflet.js.map", "", 1, "source-map comment")
    js = _replace_exact(js, "maps. https://leafletjs.com", "maps. leafletjs.com", 1, "banner URL")
    js = _replace_exact(js, '<a href="https://leafletjs.com" ', "<a ", 1, "attribution link")
    js = _replace_exact(js, ' xmlns="http://www.w3.org/2000/svg"', "", 1, "flag xmlns")
    js = _replace_exact(
        js, '"http://www.w3.org/2000/svg"', '"http:/"+"/www.w3.org/2000/svg"', 2, "SVG namespace"
    )
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)  # comments hold bug-tracker URLs

    def data_uri(match: re.Match[str]) -> str:
        png = (base / "images" / match.group(1)).read_bytes()
        return "url(data:image/png;base64," + base64.b64encode(png).decode("ascii") + ")"

    css = re.sub(r"url\(images/([\w.-]+\.png)\)", data_uri, css)
    if _URL_RE.search(js) or _URL_RE.search(css) or "</script" in js.lower():
        raise OutputError(
            "vendored Leaflet still contains a URL or a </script> tag",
            where="riskmodel/_vendor/leaflet",
            fix="update _leaflet_assets() for this Leaflet build",
        )
    return js, css


def _js_json(obj: Any) -> str:
    """JSON safe inside <script>: '/' and '<>&' escaped (no '</script>', no 'http://')."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # These characters only occur inside JSON strings, where the escapes are equivalent.
    return (
        text.replace("/", "\\/")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _html_text(value: Any) -> str:
    """Escape for HTML text/attributes; '/' as an entity so no URL survives literally."""
    return html.escape(str(value), quote=True).replace("/", "&#47;")


def _records(df: pd.DataFrame, cols: Sequence[str]) -> list[list[Any]]:
    """Rows as JSON-ready lists (NaN/NA -> null, numpy scalars -> Python)."""
    if not len(df):
        return []
    sub = df[list(cols)].astype(object)
    sub = sub.where(sub.notna(), None)
    return sub.to_numpy().tolist()


def _sig(values: pd.Series, digits: int = 3) -> pd.Series:
    """Round floats to significant digits: the page shows at most 3, JSON stays short."""
    a = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(np.isfinite(a) & (a != 0), np.floor(np.log10(np.abs(a))), 0)
    scale = 10.0 ** (digits - 1 - mag)
    return pd.Series(np.round(a * scale) / scale, index=values.index)


def _wgs84_geojson(geoms: gpd.GeoSeries, tolerance_m: float, decimals: int = 5) -> np.ndarray:
    """GeoJSON geometry strings in WGS84, simplified in metres first.

    5 decimals (~1 m) is below the display resolution and the 2 m simplification.
    """
    arr = geoms.to_crs(_NATIONAL_CRS).to_numpy()
    arr = np.where(shapely.is_empty(arr), None, arr)  # empty -> null (Leaflet skips those)
    if tolerance_m > 0:
        arr = shapely.simplify(arr, tolerance_m)  # keeps line end points: segments stay joined
    ll = gpd.GeoSeries(arr, crs=_NATIONAL_CRS).to_crs(_WGS84).to_numpy()
    return shapely.to_geojson(shapely.transform(ll, lambda c: np.round(c, decimals)))


def _feature_collection(geojson: np.ndarray, props: Sequence[Mapping[str, Any]]) -> str:
    # Null geometries stay as features: per-shift rows are aligned with feature positions.
    feats = [
        '{"type":"Feature","properties":' + _js_json(p) + ',"geometry":' + (g or "null") + "}"
        for g, p in zip(geojson, props, strict=True)
    ]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


def _first(df: pd.DataFrame, col: str) -> str | None:
    if col in df.columns and len(df) and pd.notna(df[col].iloc[0]):
        return str(df[col].iloc[0])
    return None


def _hhmm(iso: str | None) -> str:
    return iso[11:16] if iso and len(iso) >= 16 else ""


def _midpoints(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Midpoint along each line (a point on the feature for other geometry types)."""
    geoms = gdf.geometry.to_numpy()
    is_line = np.isin(shapely.get_type_id(geoms), (1, 5))
    mid = shapely.line_interpolate_point(np.where(is_line, geoms, None), 0.5, normalized=True)
    return np.where(is_line, mid, shapely.point_on_surface(geoms))


# Per-shift attributes sent to the page (geometry is sent once, shared by all shifts).
_SHIFT_FIELDS: Final[tuple[str, ...]] = (
    "risk_class", "risk_label", "rank", "percentile", "expected", "lower", "upper",
    "reason_1", "reason_2", "reason_3", "threat", "vulnerability", "impact",
)  # fmt: skip
_STATIC_FIELDS: Final[tuple[str, ...]] = (
    "segment_id", "area", "chainage_from_km", "chainage_to_km", "length_m", "river",
)  # fmt: skip
_PLAN_FIELDS: Final[tuple[str, ...]] = (
    "check_no", "unit", "segment_id", "slot_start", "slot_end", "coverage",
)  # fmt: skip
_FLOAT_FIELDS: Final[frozenset[str]] = frozenset(
    {"percentile", "expected", "lower", "upper", "threat", "vulnerability", "impact", "coverage"}
)
_STRING_TABLE_FIELDS: Final[frozenset[str]] = frozenset(
    {"risk_label", "reason_1", "reason_2", "reason_3"}
)
_SEGMENT_SIMPLIFY_M: Final[float] = 2.0  # under a pixel up to zoom 15; ~halves the page
_BORDER_SIMPLIFY_M: Final[float] = 25.0  # orientation only, mostly hidden under the segments
_N_LABELS_ALWAYS: Final[int] = 15  # largest places always labelled ...
_N_LABELS_ZOOMED: Final[int] = 60  # ... the next ones from zoom 10; the rest on hover


def _table(gdf: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Columns for the page: floats rounded, everything else as is."""
    return pd.DataFrame({c: _sig(gdf[c]) if c in _FLOAT_FIELDS else gdf[c] for c in cols})


def _html_data(
    risk: Mapping[str, gpd.GeoDataFrame],
    border: gpd.GeoDataFrame | None,
    settlements: gpd.GeoDataFrame | None,
    plans: Mapping[str, gpd.GeoDataFrame] | None,
    attribution: Sequence[str],
) -> str:
    """The page's data as one JSON object (pre-serialised GeoJSON spliced in verbatim)."""
    frames: dict[str, gpd.GeoDataFrame] = {}
    for name, gdf in risk.items():
        where = f"risk map (shift {name})"
        frames[str(name)] = _national(gdf, where)
        _require_columns(frames[str(name)], ("segment_id", "risk_class"), where)

    # One geometry per segment id, shared by all shifts (3x smaller page); first shift wins.
    if frames:
        allseg = pd.concat(frames.values(), ignore_index=True)
        allseg["segment_id"] = allseg["segment_id"].astype(str)
        allseg = allseg.drop_duplicates("segment_id").sort_values("segment_id", kind="stable")
        allseg = gpd.GeoDataFrame(allseg, geometry=allseg.geometry.name, crs=_NATIONAL_CRS)
    else:
        allseg = gpd.GeoDataFrame({"segment_id": []}, geometry=[], crs=_NATIONAL_CRS)
    static_cols = [c for c in _STATIC_FIELDS if c in allseg.columns]
    sprops = [
        dict(zip(static_cols, r, strict=True))
        for r in _records(_table(allseg, static_cols), static_cols)
    ]
    segments_fc = _feature_collection(_wgs84_geojson(allseg.geometry, _SEGMENT_SIMPLIFY_M), sprops)
    position = pd.Series(np.arange(len(allseg)), index=allseg["segment_id"].to_numpy())

    # Per shift: one row per segment (aligned with the segment features, null when absent);
    # repeated strings (labels, reasons) go through a shared string table.
    strings: dict[str, int] = {}
    shifts_meta: list[dict[str, Any]] = []
    shift_data: list[dict[str, Any]] = []
    for name, gdf in frames.items():
        fields = [c for c in _SHIFT_FIELDS if c in gdf.columns]
        tab = _table(gdf, fields)
        for c in fields:
            if c in _STRING_TABLE_FIELDS:
                vals = tab[c].astype(object).where(tab[c].notna(), None)
                tab[c] = [
                    None if v is None else strings.setdefault(str(v), len(strings)) for v in vals
                ]
        rows: list[list[Any] | None] = [None] * len(allseg)
        for pos, rec in zip(
            position[gdf["segment_id"].astype(str)], _records(tab, fields), strict=True
        ):
            rows[int(pos)] = rec
        shift_data.append({"fields": fields, "rows": rows})
        shifts_meta.append(
            {
                "name": name,
                "date": _first(gdf, "date") or "",
                "start": _hhmm(_first(gdf, "shift_start")),
                "end": _hhmm(_first(gdf, "shift_end")),
                "n": len(gdf),
            }
        )

    border_fc = '{"type":"FeatureCollection","features":[]}'
    if border is not None and len(border):
        b = _national(border, "border layer")
        border_fc = _feature_collection(
            _wgs84_geojson(b.geometry, _BORDER_SIMPLIFY_M), [{}] * len(b)
        )

    places_fc = '{"type":"FeatureCollection","features":[]}'
    if settlements is not None and len(settlements):
        s = _national(settlements, "settlements layer")
        s = s[s.geometry.notna() & ~s.geometry.is_empty]
        n = len(s)
        pop = (
            pd.to_numeric(s["population"], errors="coerce")
            if "population" in s
            else pd.Series(0, index=s.index)
        )
        tab = pd.DataFrame(
            {
                "name": s["name"].astype(str) if "name" in s else [""] * n,
                "country": s["country"].astype(str) if "country" in s else [""] * n,
                "population": pop.fillna(0).astype("int64"),
            },
            index=s.index,
        )
        order = tab.sort_values(
            ["population", "name"], ascending=[False, True], kind="stable"
        ).index
        tab, geoms = tab.loc[order], s.geometry.loc[order]
        rank = np.arange(n)
        tab["lab"] = np.where(rank < _N_LABELS_ALWAYS, 0, np.where(rank < _N_LABELS_ZOOMED, 1, 2))
        cols = list(tab.columns)
        props = [dict(zip(cols, r, strict=True)) for r in _records(tab, cols)]
        places_fc = _feature_collection(_wgs84_geojson(geoms, 0.0), props)

    plan_fcs: dict[str, str] = {}
    units: set[str] = set()
    for name, gdf in (plans or {}).items():
        where = f"plan map (shift {name})"
        gdf = _national(gdf, where)
        _require_columns(gdf, ("unit",), where)
        units.update(gdf["unit"].astype(str))
        pcols = [c for c in _PLAN_FIELDS if c in gdf.columns]
        tab = _table(gdf, pcols)
        for c in ("unit", "segment_id", "slot_start", "slot_end"):
            if c in tab:
                tab[c] = tab[c].astype(str)
        mid = gpd.GeoSeries(_midpoints(gdf), crs=_NATIONAL_CRS).to_crs(_WGS84).to_numpy()
        lonlat = np.round(np.column_stack([shapely.get_x(mid), shapely.get_y(mid)]), 5)
        tab["mid"] = [xy if np.isfinite(xy).all() else None for xy in lonlat.tolist()]
        cols = list(tab.columns)
        props = [dict(zip(cols, r, strict=True)) for r in _records(tab, cols)]
        plan_fcs[str(name)] = _feature_collection(
            _wgs84_geojson(gdf.geometry, _SEGMENT_SIMPLIFY_M), props
        )
    unit_colours = {u: _UNIT_COLOURS[i % len(_UNIT_COLOURS)] for i, u in enumerate(sorted(units))}

    classes = {
        str(k): {
            "colour": RISK_CLASS_COLOURS[k],
            "label": RISK_CLASS_LABELS[k],
            "width": _HTML_WIDTHS_PX[k],
        }
        for k in RISK_CLASS_COLOURS
    }
    head = {
        "classes": classes,
        "units": unit_colours,
        "attribution": list(attribution),
        "shifts": shifts_meta,
        "strings": list(strings),
        "shiftData": shift_data,
    }
    plans_json = "{" + ",".join(_js_json(k) + ":" + v for k, v in plan_fcs.items()) + "}"
    # Splice pre-serialised FeatureCollections into the object (avoids re-parsing them).
    return (
        _js_json(head)[:-1]
        + f',"segments":{segments_fc},"border":{border_fc},"places":{places_fc},"plans":{plans_json}}}'
    )


_APP_CSS: Final[str] = """
html,body{height:100%;margin:0}
body{display:flex;flex-direction:column;font:13px/1.35 "DejaVu Sans",Arial,Helvetica,sans-serif;color:#222;background:#fff}
#rm-head{display:flex;align-items:baseline;gap:1em;padding:6px 12px;border-bottom:1px solid #ccc;background:#f7f7f5}
#rm-head h1{font-size:17px;margin:0}
#rm-info{color:#555}
#map{flex:1;background:#e4e9ec}
#rm-foot{padding:3px 12px;font-size:11px;color:#555;border-top:1px solid #ccc;background:#f7f7f5}
.rm-box{background:rgba(255,255,255,.94);padding:7px 10px;border-radius:5px;box-shadow:0 1px 4px rgba(0,0,0,.35);line-height:1.5}
.rm-box h4{margin:0 0 3px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#444}
.rm-box label{display:block;cursor:pointer;white-space:nowrap}
.rm-sub{color:#666;font-size:11px}
.rm-sw{display:inline-block;width:26px;vertical-align:middle;margin-right:6px;border-radius:2px}
.rm-pt{display:inline-block;width:10px;height:10px;border-radius:50%;vertical-align:middle;margin:0 14px 0 8px}
.rm-pop b{font-size:14px}
.rm-pop table{border-collapse:collapse;margin-top:4px}
.rm-pop td{padding:1px 8px 1px 0;vertical-align:top}
.rm-pop ol{margin:2px 0 0 18px;padding:0}
.leaflet-tooltip.rm-lbl{background:transparent;border:0;box-shadow:none;padding:0;font-size:11px;color:#333;
 text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff}
.leaflet-tooltip.rm-lbl:before{display:none}
.rm-zlo .leaflet-tooltip.rm-minor{display:none}
.leaflet-tooltip.rm-chk{background:transparent;border:0;box-shadow:none;padding:0;font-weight:bold;font-size:10px;color:#111}
"""

_APP_JS: Final[str] = r"""
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (e) { body.dataset.error = String(e.message || e); });
  var D = JSON.parse(document.getElementById("rm-data").textContent);
  var CLS = D.classes;
  function esc(s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) { return "\u2013"; }
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
  }
  var map = L.map("map", {zoomSnap: 0.25, zoomDelta: 0.5, preferCanvas: true, minZoom: 5, maxZoom: 18});
  map.attributionControl.setPrefix("Leaflet");
  D.attribution.forEach(function (a) { map.attributionControl.addAttribution(esc(a)); });
  L.control.scale({imperial: false}).addTo(map);
  function pane(name, z) { map.createPane(name).style.zIndex = z; return L.canvas({pane: name, tolerance: 6}); }
  var rPlan = pane("rmPlan", 390), rBorder = pane("rmBorder", 395), rCasing = pane("rmCasing", 398),
      rRisk = pane("rmRisk", 400), rPlaces = pane("rmPlaces", 392), rPlanMk = pane("rmPlanMk", 420);
  function unitColour(u) { return D.units[u] || "#1f4e9c"; }

  // Decode the shared string table (labels, reasons) in place.
  var STRF = {risk_label: 1, reason_1: 1, reason_2: 1, reason_3: 1};
  D.shiftData.forEach(function (sd) {
    sd.fields.forEach(function (k, j) {
      if (!STRF[k]) { return; }
      sd.rows.forEach(function (r) { if (r && r[j] !== null) { r[j] = D.strings[r[j]]; } });
    });
  });
  var segFeats = D.segments.features;
  var allSegs = L.geoJSON(D.segments, {renderer: rCasing, interactive: false,
    style: {color: "#3a3a3a", weight: 4.5, opacity: 0.55, lineCap: "round"}});

  function riskPopup(sp, r, F, sh) {
    var g = function (k) { var i = F.indexOf(k); return i < 0 ? null : r[i]; };
    var cls = g("risk_class"), lab = g("risk_label") || (CLS[cls] ? CLS[cls].label : "");
    var h = '<div class="rm-pop"><b>' + esc(sp.segment_id) + "</b>" + (sp.area ? " \u00b7 " + esc(sp.area) : "") +
      "<table><tr><td>Risk class</td><td><b>" + esc(cls) + " \u2013 " + esc(lab) + "</b></td></tr>" +
      "<tr><td>Rank</td><td>" + esc(g("rank")) + " of " + sh.n + (g("percentile") === null ? "" : " (percentile " + fmt(g("percentile")) + ")") + "</td></tr>" +
      "<tr><td>Expected</td><td>" + fmt(g("expected")) + " (band " + fmt(g("lower")) + "\u2013" + fmt(g("upper")) + ")</td></tr>";
    if (g("threat") !== null) {
      h += "<tr><td>T / V / I</td><td>" + fmt(g("threat")) + " / " + fmt(g("vulnerability")) + " / " + fmt(g("impact")) + "</td></tr>";
    }
    if (sp.chainage_from_km !== undefined) {
      h += "<tr><td>Chainage</td><td>" + fmt(sp.chainage_from_km) + "\u2013" + fmt(sp.chainage_to_km) + " km" + (sp.river ? " \u00b7 river" : "") + "</td></tr>";
    }
    h += "<tr><td>Shift</td><td>" + esc(sh.name) + " " + esc(sh.date) + " " + esc(sh.start) + "\u2013" + esc(sh.end) + "</td></tr></table>";
    var rs = [g("reason_1"), g("reason_2"), g("reason_3")].filter(function (x) { return x; });
    if (rs.length) { h += "Reasons<ol>" + rs.map(function (x) { return "<li>" + esc(x) + "</li>"; }).join("") + "</ol>"; }
    return h + "</div>";
  }
  function planPopup(p) {
    return '<div class="rm-pop"><b>Check ' + esc(p.check_no) + "</b> \u00b7 " + esc(p.unit) +
      "<table><tr><td>Segment</td><td>" + esc(p.segment_id) + "</td></tr><tr><td>Slot</td><td>" +
      esc(p.slot_start) + "<br>" + esc(p.slot_end) + "</td></tr>" +
      (p.coverage === undefined ? "" : "<tr><td>Coverage</td><td>" + fmt(p.coverage) + "</td></tr>") + "</table></div>";
  }

  var S = D.shifts.map(function (sh, i) {
    var F = D.shiftData[i].fields, rows = D.shiftData[i].rows, ci = F.indexOf("risk_class");
    var idx = [];
    rows.forEach(function (r, j) { if (r) { idx.push(j); } });
    // Low classes first so high-risk segments are drawn on top.
    idx.sort(function (a, b) { return (rows[a][ci] - rows[b][ci]) || (a - b); });
    var rowOf = new Map(idx.map(function (j) { return [segFeats[j], rows[j]]; }));
    var risk = L.geoJSON({type: "FeatureCollection", features: idx.map(function (j) { return segFeats[j]; })}, {
      renderer: rRisk,
      style: function (f) {
        var c = CLS[rowOf.get(f)[ci]] || {colour: "#888888", width: 2};
        return {color: c.colour, weight: c.width, opacity: 1, lineCap: "round", lineJoin: "round"};
      },
      onEachFeature: function (f, layer) {
        layer.bindPopup(function () { return riskPopup(f.properties, rowOf.get(f), F, sh); }, {maxWidth: 360});
      }
    });
    var plan = null, pfc = D.plans[sh.name];
    if (pfc && pfc.features.length) {
      var casing = L.geoJSON(pfc, {
        renderer: rPlan,
        style: function (f) { return {color: unitColour(f.properties.unit), weight: 15, opacity: 0.45, lineCap: "round"}; },
        onEachFeature: function (f, layer) { layer.bindPopup(planPopup(f.properties)); }
      });
      var marks = pfc.features.filter(function (f) { return f.properties.mid; }).map(function (f) {
        var p = f.properties;
        return L.circleMarker([p.mid[1], p.mid[0]], {renderer: rPlanMk, radius: 8, color: unitColour(p.unit), weight: 3,
          fillColor: "#ffffff", fillOpacity: 1})
          .bindPopup(planPopup(p))
          .bindTooltip(esc(p.check_no), {permanent: true, direction: "center", className: "rm-chk"});
      });
      plan = L.layerGroup([casing].concat(marks));
    }
    return {risk: risk, plan: plan};
  });

  var border = L.geoJSON(D.border, {renderer: rBorder, interactive: false,
    style: {color: "#444444", weight: 1.5, opacity: 0.9, dashArray: "6 4"}});
  var places = L.layerGroup(D.places.features.map(function (f) {
    var p = f.properties, c = f.geometry.coordinates;
    var m = L.circleMarker([c[1], c[0]], {renderer: rPlaces, radius: Math.max(2, Math.min(6, 0.9 * Math.log(1 + p.population) / Math.LN10)),
      color: "#555555", weight: 1, fillColor: "#f4f4f4", fillOpacity: 0.9});
    var t = esc(p.name) + (p.country ? " (" + esc(p.country) + ")" : "");
    if (p.lab < 2) {
      m.bindTooltip(esc(p.name), {permanent: true, direction: "right", offset: [4, 0], className: "rm-lbl" + (p.lab ? " rm-minor" : "")});
      m.bindPopup(t + (p.population ? "<br>population " + p.population : ""));
    } else {
      m.bindTooltip(t + (p.population ? ", " + p.population : ""));
    }
    return m;
  }));
  border.addTo(map);
  allSegs.addTo(map);
  places.addTo(map);

  function zoomClass() { map.getContainer().classList.toggle("rm-zlo", map.getZoom() < 10); }
  map.on("zoomend", zoomClass);

  var cur = -1, planOn = true;
  function show(i) {
    if (cur >= 0) { map.removeLayer(S[cur].risk); if (S[cur].plan) { map.removeLayer(S[cur].plan); } }
    cur = i;
    S[i].risk.addTo(map);
    if (S[i].plan && planOn) { S[i].plan.addTo(map); }
    var sh = D.shifts[i];
    document.getElementById("rm-info").textContent = sh.name + " \u00b7 " + sh.date + " " + sh.start + "\u2013" + sh.end +
      " \u00b7 " + sh.n + " segments";
    body.dataset.shift = sh.name;
    var radio = document.querySelector('input[name="rm-shift"][value="' + i + '"]');
    if (radio) { radio.checked = true; }
  }

  var Ctl = L.Control.extend({
    options: {position: "topright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "rm-box");
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      var h = "<h4>Shift</h4>";
      D.shifts.forEach(function (sh, i) {
        h += '<label><input type="radio" name="rm-shift" value="' + i + '"' + (i === 0 ? " checked" : "") + "> " +
          esc(sh.name) + ' <span class="rm-sub">' + esc(sh.date) + " " + esc(sh.start) + "\u2013" + esc(sh.end) + "</span></label>";
      });
      h += "<h4 style=\"margin-top:6px\">Layers</h4>";
      if (S.some(function (s) { return s.plan; })) { h += '<label><input type="checkbox" id="rm-plan" checked> plan checks</label>'; }
      h += '<label><input type="checkbox" id="rm-border" checked> border</label>';
      h += '<label><input type="checkbox" id="rm-places" checked> settlements</label>';
      div.innerHTML = h;
      div.addEventListener("change", function (e) {
        var t = e.target;
        if (t.name === "rm-shift") { show(Number(t.value)); }
        else if (t.id === "rm-plan") { planOn = t.checked; if (S[cur].plan) { if (planOn) { S[cur].plan.addTo(map); } else { map.removeLayer(S[cur].plan); } } }
        else if (t.id === "rm-border") { if (t.checked) { border.addTo(map); } else { map.removeLayer(border); } }
        else if (t.id === "rm-places") { if (t.checked) { places.addTo(map); } else { map.removeLayer(places); } }
      });
      return div;
    }
  });
  new Ctl().addTo(map);

  var Legend = L.Control.extend({
    options: {position: "bottomright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "rm-box");
      var h = "<h4>Risk class</h4>";
      Object.keys(CLS).sort().reverse().forEach(function (k) {
        var c = CLS[k];
        h += '<div><span class="rm-sw" style="height:' + Math.max(2, Math.round(c.width)) + "px;background:" + c.colour + '"></span>' +
          esc(k) + " " + esc(c.label) + "</div>";
      });
      if (S.some(function (s) { return s.plan; })) {
        h += '<div><span class="rm-pt" style="border:3px solid #1f4e9c;background:#fff"></span>plan check (no.)</div>';
      }
      h += '<div><span class="rm-sw" style="height:0;border-top:2px dashed #444"></span>border</div>';
      h += '<div><span class="rm-pt" style="border:1px solid #3d3d3d;background:#fff;margin-left:9px"></span>settlement</div>';
      div.innerHTML = h;
      return div;
    }
  });
  new Legend().addTo(map);

  var b = allSegs.getBounds();
  if (!b.isValid()) { b = border.getBounds(); }
  if (b.isValid()) { map.fitBounds(b, {paddingTopLeft: [20, 20], paddingBottomRight: [220, 20]}); } else { map.setView([46.1, 14.9], 8); }
  zoomClass();
  // "#shift=night" in the address selects a shift (links, tests).
  var want = decodeURIComponent((location.hash.match(/shift=([^&]+)/) || [])[1] || "");
  var first = Math.max(0, D.shifts.map(function (sh) { return sh.name; }).indexOf(want));
  if (S.length) {
    show(first);
  }
  window.riskmodelMap = {map: map, shifts: S, show: show};  // for debugging and tests
  body.dataset.segments = String(D.segments.features.length);
  body.dataset.ready = "1";
}());
"""

_HTML_TEMPLATE: Final[str] = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="generator" content="riskmodel">
<meta name="riskmodel-provenance" content="@@PROV@@">
<title>@@TITLE@@</title>
<style>@@LEAFLET_CSS@@</style>
<style>@@APP_CSS@@</style>
</head>
<body>
<header id="rm-head"><h1>@@TITLE@@</h1><span id="rm-info"></span></header>
<div id="map"></div>
<footer id="rm-foot">@@FOOTER@@</footer>
<script>@@LEAFLET_JS@@</script>
<script type="application/json" id="rm-data">@@DATA@@</script>
<script>@@APP_JS@@</script>
</body>
</html>
"""


def write_html_map(
    path: str | os.PathLike[str],
    *,
    risk: Mapping[str, gpd.GeoDataFrame],
    border: gpd.GeoDataFrame | None,
    settlements: gpd.GeoDataFrame | None,
    plans: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str,
    provenance: Mapping[str, Any] | None = None,
    attribution: Sequence[str] = _DEFAULT_ATTRIBUTION,
) -> Path:
    """Write one self-contained, offline HTML risk map (inlined Leaflet, no tiles, no URLs).

    Segments are coloured by risk class with popups (id, area, expected and band, rank, class,
    reasons); a control switches shifts and toggles plan checks, border and settlements; a
    legend explains the symbols. A Content-Security-Policy forbids any network access.
    After drawing, the page sets ``document.body.dataset.ready = "1"``.

    Parameters
    ----------
    path : path-like
        Target ``.html``.
    risk : mapping of str to GeoDataFrame
        Shift name to scored segments (order = switcher order; the first is shown).
    border, settlements : GeoDataFrame or None
        Orientation layers (settlements with ``name``, ``country``, ``population``).
    plans : mapping of str to GeoDataFrame, optional
        Shift name to plan checks.
    title : str
        Page title.
    provenance : dict, optional
        Stored as JSON in ``<meta name="riskmodel-provenance">`` and summarised in the footer.
    attribution : sequence of str
        Data credits shown on the map (ODbL/CC BY require them).

    Returns
    -------
    Path
        The HTML path.
    """
    js, css = _leaflet_assets()
    data = _html_data(risk, border, settlements, plans, attribution)
    prov = _json_safe(provenance) if provenance is not None else {}
    foot = [f"{k}: {prov[k]}" for k in ("model_id", "created", "riskmodel_version") if k in prov]
    foot.append("offline map \u00b7 full provenance in the page's riskmodel-provenance meta tag")
    # Replace placeholders in one pass so data can never inject another placeholder.
    parts = {
        "PROV": _html_text(json.dumps(prov, ensure_ascii=False, sort_keys=True)),
        "TITLE": _html_text(title),
        "FOOTER": _html_text(" \u00b7 ".join(foot)),
        "LEAFLET_CSS": css,
        "APP_CSS": _APP_CSS,
        "LEAFLET_JS": js,
        "DATA": data,
        "APP_JS": _APP_JS,
    }
    text = re.sub(r"@@([A-Z_]+)@@", lambda m: parts[m.group(1)], _HTML_TEMPLATE)
    if _URL_RE.search(text):
        raise OutputError(
            "HTML map would contain a URL", where=str(path), fix="report this as a riskmodel bug"
        )
    return atomic_write_text(path, text)


# --------------------------------------------------------------------------------------------
# PNG map (matplotlib, Agg)
# --------------------------------------------------------------------------------------------


def _line_parts(geoms: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Split (Multi)LineStrings into coordinate arrays plus the owning row of each part."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    cuts = np.flatnonzero(np.diff(idx)) + 1
    return np.split(coords, cuts) if len(coords) else [], owner[np.unique(idx)] if len(
        idx
    ) else owner[:0]


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
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    where = str(path)
    frames = {k: _national(v, f"{where} (shift {k})") for k, v in risk.items()}
    for k, v in frames.items():
        _require_columns(v, ("risk_class",), f"{where} (shift {k})")
    b = _national(border, f"{where} (border)") if border is not None and len(border) else None
    s = (
        _national(settlements, f"{where} (settlements)")
        if settlements is not None and len(settlements)
        else None
    )
    pl = {k: _national(v, f"{where} (plan {k})") for k, v in (plans or {}).items()}

    bounds = [f.total_bounds for f in frames.values() if len(f)] or (
        [b.total_bounds] if b is not None else []
    )
    if bounds:
        bb = np.array(bounds)
        x0, y0, x1, y1 = bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max()
    else:
        x0, y0, x1, y1 = 370000.0, 30000.0, 630000.0, 200000.0  # Slovenia in EPSG:3794
    pad = 0.04 * max(x1 - x0, y1 - y0, 1000.0)
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    n = max(len(frames), 1)
    width_in = 11.0
    panel_h = float(np.clip(width_in * (y1 - y0) / (x1 - x0), 2.5, 9.0))
    fig = Figure(figsize=(width_in, panel_h * n + 1.3), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]

    if s is not None:
        inside = s.cx[x0:x1, y0:y1]
        pop = (
            pd.to_numeric(inside["population"], errors="coerce").fillna(0)
            if "population" in inside
            else pd.Series(0, index=inside.index)
        )
        top = inside.loc[pop.sort_values(ascending=False, kind="stable").index[:10]]  # sparingly
    for ax, (shift, gdf) in zip(axes, frames.items(), strict=False):
        ax.set_facecolor("#eef1f2")
        if b is not None:
            bl, _ = _line_parts(b.geometry.to_numpy())
            ax.add_collection(
                LineCollection(
                    bl, colors="#555555", linewidths=0.7, linestyles=(0, (4, 3)), zorder=1
                )
            )
        if len(gdf):
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
                )
            )
            ax.add_collection(
                LineCollection(
                    parts,
                    colors=cmap[ocl].tolist(),
                    linewidths=wmap[ocl],
                    capstyle="round",
                    zorder=3,
                )
            )
        p = pl.get(shift)
        if p is not None and len(p):
            xy = shapely.get_coordinates(_midpoints(p))
            ax.scatter(
                xy[:, 0],
                xy[:, 1],
                s=46,
                marker="o",
                facecolor="white",
                edgecolor=_PLAN_COLOUR,
                linewidths=1.8,
                zorder=6,
            )
        if s is not None:
            sxy = shapely.get_coordinates(inside.geometry.to_numpy())
            ax.scatter(sxy[:, 0], sxy[:, 1], s=5, color="#4d4d4d", zorder=4, linewidths=0)
            txy = shapely.get_coordinates(top.geometry.to_numpy())
            names = top["name"].astype(str).tolist() if "name" in top else []
            for (tx, ty), nm in zip(txy, names, strict=False):
                ax.annotate(
                    nm,
                    (tx, ty),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color="#222222",
                    path_effects=halo,
                    zorder=7,
                )
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        date, st, en = (
            _first(gdf, "date") or "",
            _hhmm(_first(gdf, "shift_start")),
            _hhmm(_first(gdf, "shift_end")),
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
    handles = [
        Line2D([], [], color=RISK_CLASS_COLOURS[k], linewidth=RISK_CLASS_WIDTHS_MM[k] * 1.8 + 1,
               label=f"{k} {RISK_CLASS_LABELS[k]}")
        for k in sorted(RISK_CLASS_COLOURS, reverse=True)
    ]  # fmt: skip
    if any(len(v) for v in pl.values()):
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                              markeredgecolor=_PLAN_COLOUR, markeredgewidth=1.8, markersize=7, label="plan check"))  # fmt: skip
    if b is not None:
        handles.append(
            Line2D([], [], color="#555555", linewidth=0.8, linestyle=(0, (4, 3)), label="border")
        )
    if s is not None:
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
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 9),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, fontsize=12)

    def writer(tmp: Path) -> None:
        # No Software/date chunks: identical input gives identical bytes.
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})

    return atomic_write_with(path, writer)


# --------------------------------------------------------------------------------------------
# CSV and provenance
# --------------------------------------------------------------------------------------------


def write_csv(
    df: pd.DataFrame, path: str | os.PathLike[str], *, float_format: str = "%.6g"
) -> Path:
    """Write a table as deterministic CSV (UTF-8, ``\\n``, no index), atomically.

    Parameters
    ----------
    df : DataFrame
        Table; for a GeoDataFrame the geometry column is dropped.
    path : path-like
        Target ``.csv``.
    float_format : str
        printf-style float format.

    Returns
    -------
    Path
        The CSV path.
    """
    if isinstance(df, gpd.GeoDataFrame):
        df = pd.DataFrame(df.drop(columns=df.geometry.name))
    text = df.to_csv(index=False, float_format=float_format, lineterminator="\n")
    return atomic_write_text(path, text)


def write_provenance(
    folder: str | os.PathLike[str], files: Sequence[str | os.PathLike[str]], info: Mapping[str, Any]
) -> Path:
    """Write ``provenance.json`` in ``folder``: ``info`` plus each output's size and sha256.

    Parameters
    ----------
    folder : path-like
        Output folder; file paths inside it are recorded relative to it.
    files : sequence of path-like
        Output files to list (sorted by path in the record).
    info : mapping
        Model id, input hashes, versions, settings ...; must not contain ``outputs``.

    Returns
    -------
    Path
        Path of ``provenance.json``.
    """
    folder = Path(folder)
    if "outputs" in info:
        raise OutputError("provenance info must not contain 'outputs'", where=str(folder))
    outputs = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise OutputError(
                f"output file missing: {p}", where=str(folder), fix="write it before the provenance"
            )
        try:
            rel = p.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            rel = p.resolve().as_posix()
        outputs.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    outputs.sort(key=lambda o: o["path"])
    record = {**_json_safe(dict(info)), "outputs": outputs}
    return atomic_write_text(folder / "provenance.json", canonical_json(record))
