"""The offline HTML risk map: inlined Leaflet, no tiles, no URLs, one self-contained page.

The page layout, styles and script are package data in ``templates/`` (``map.html``,
``map.css``, ``map.js``); the data goes in as one JSON object.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riskmodel._timing import timed
from riskmodel.errors import OutputError
from riskmodel.files import atomic_write_text
from riskmodel.io.read.coords import reproject
from riskmodel.io.write.common import (
    NATIONAL_CRS,
    WGS84,
    first_value,
    hhmm,
    json_safe,
    midpoints,
    require_columns,
    to_national,
)
from riskmodel.io.write.styles import (
    HTML_WIDTHS_PX,
    RISK_CLASS_COLOURS,
    RISK_CLASS_LABELS,
    UNIT_COLOURS,
)

log = logging.getLogger(__name__)

_URL_RE: Final = re.compile(r"https?://", re.IGNORECASE)
DEFAULT_ATTRIBUTION: Final[tuple[str, ...]] = (
    "Border: \u00a9 OpenStreetMap contributors (ODbL)",
    "Places: GeoNames (CC BY 4.0)",
)


@functools.cache
def _template(name: str) -> str:
    """A page part from the package's ``templates`` folder (``map.html``, ``map.css``, ``map.js``)."""
    return (resources.files("riskmodel.io.write") / "templates" / name).read_bytes().decode("utf-8")


def _replace_exact(text: str, old: str, new: str, count: int, what: str) -> str:
    found = text.count(old)
    if found != count:
        # A different Leaflet build: fail loudly rather than ship a page that phones home.
        raise OutputError(
            f"vendored Leaflet changed: expected {count}x {what}, found {found}",
            where="riskmodel/_vendor/leaflet",
            fix="re-vendor Leaflet 1.9.4 (see VENDORED.md) or update riskmodel.io.write.html",
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
    arr = reproject(geoms, NATIONAL_CRS).to_numpy()
    arr = np.where(shapely.is_empty(arr), None, arr)  # empty -> null (Leaflet skips those)
    if tolerance_m > 0:
        arr = shapely.simplify(arr, tolerance_m)  # keeps line end points: segments stay joined
    ll = reproject(gpd.GeoSeries(arr, crs=NATIONAL_CRS), WGS84).to_numpy()
    return shapely.to_geojson(shapely.transform(ll, lambda c: np.round(c, decimals)))


def _feature_collection(geojson: np.ndarray, props: Sequence[Mapping[str, Any]]) -> str:
    # Null geometries stay as features: per-shift rows are aligned with feature positions.
    feats = [
        '{"type":"Feature","properties":' + _js_json(p) + ',"geometry":' + (g or "null") + "}"
        for g, p in zip(geojson, props, strict=True)
    ]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


# Per-shift attributes sent to the page (geometry is sent once, shared by all shifts).
_SHIFT_FIELDS: Final[tuple[str, ...]] = (
    "risk_class", "risk_label", "rank", "percentile", "expected", "lower", "upper",
    "reason_1", "reason_2", "reason_3", "threat", "vulnerability", "impact", "exposure",
    "adapt_factor",
)  # fmt: skip
_STATIC_FIELDS: Final[tuple[str, ...]] = (
    "segment_id", "area", "chainage_from_km", "chainage_to_km", "length_m", "river",
)  # fmt: skip
_PLAN_FIELDS: Final[tuple[str, ...]] = (
    "check_no", "unit", "segment_id", "slot_start", "slot_end", "coverage",
)  # fmt: skip
_FLOAT_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "percentile",
        "expected",
        "lower",
        "upper",
        "threat",
        "vulnerability",
        "impact",
        "coverage",
        "exposure",
        "adapt_factor",
    }
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
        frames[str(name)] = to_national(gdf, where)
        require_columns(frames[str(name)], ("segment_id", "risk_class"), where)
    segments_fc, position = _segments_fc(frames)
    strings: dict[str, int] = {}
    shifts_meta = [_shift_meta(name, gdf) for name, gdf in frames.items()]
    shift_data = [_shift_rows(gdf, position, strings) for gdf in frames.values()]
    border_fc = '{"type":"FeatureCollection","features":[]}'
    if border is not None and len(border):
        b = to_national(border, "border layer")
        border_fc = _feature_collection(
            _wgs84_geojson(b.geometry, _BORDER_SIMPLIFY_M), [{}] * len(b)
        )
    places_fc = '{"type":"FeatureCollection","features":[]}'
    if settlements is not None and len(settlements):
        places_fc = _places_fc(to_national(settlements, "settlements layer"))
    plan_fcs: dict[str, str] = {}
    units: set[str] = set()
    for name, gdf in (plans or {}).items():
        where = f"plan map (shift {name})"
        gdf = to_national(gdf, where)
        require_columns(gdf, ("unit",), where)
        units.update(gdf["unit"].astype(str))
        plan_fcs[str(name)] = _plan_fc(gdf)
    unit_colours = {u: UNIT_COLOURS[i % len(UNIT_COLOURS)] for i, u in enumerate(sorted(units))}

    classes = {
        str(k): {
            "colour": RISK_CLASS_COLOURS[k],
            "label": RISK_CLASS_LABELS[k],
            "width": HTML_WIDTHS_PX[k],
        }
        for k in RISK_CLASS_COLOURS
    }
    head = {
        "classes": classes,
        "absBreaks": _day_breaks(frames),
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


def _day_breaks(frames: Mapping[str, gpd.GeoDataFrame]) -> list[float]:
    """Four class breaks of ``expected`` pooled over every shift of the day (one colour scale
    for the day: the night's many events look different from the quiet morning's).

    Pooled quantiles 50/80/95/99 %, rounded to 2 significant digits, increasing; fewer when
    the values do not spread (an empty list: one class)."""
    vals = [
        pd.to_numeric(g["expected"], errors="coerce") for g in frames.values() if "expected" in g
    ]
    pooled = pd.concat(vals).dropna().to_numpy(float) if vals else np.empty(0)
    pooled = pooled[np.isfinite(pooled)]
    if not len(pooled) or pooled.max() <= 0:
        return []
    q = _sig(pd.Series(np.quantile(pooled, [0.5, 0.8, 0.95, 0.99])), 2).to_numpy()
    return [float(b) for b in np.unique(q[q > 0])]


def _segments_fc(frames: Mapping[str, gpd.GeoDataFrame]) -> tuple[str, pd.Series]:
    """Segment features (static attributes) and each segment id's feature position.

    One geometry per segment id, shared by all shifts (3x smaller page); first shift wins.
    """
    if frames:
        allseg = pd.concat(frames.values(), ignore_index=True)
        allseg["segment_id"] = allseg["segment_id"].astype(str)
        allseg = allseg.drop_duplicates("segment_id").sort_values("segment_id", kind="stable")
        allseg = gpd.GeoDataFrame(allseg, geometry=allseg.geometry.name, crs=NATIONAL_CRS)
    else:
        allseg = gpd.GeoDataFrame({"segment_id": []}, geometry=[], crs=NATIONAL_CRS)
    static_cols = [c for c in _STATIC_FIELDS if c in allseg.columns]
    sprops = [
        dict(zip(static_cols, r, strict=True))
        for r in _records(_table(allseg, static_cols), static_cols)
    ]
    segments_fc = _feature_collection(_wgs84_geojson(allseg.geometry, _SEGMENT_SIMPLIFY_M), sprops)
    return segments_fc, pd.Series(np.arange(len(allseg)), index=allseg["segment_id"].to_numpy())


def _shift_rows(
    gdf: gpd.GeoDataFrame, position: pd.Series, strings: dict[str, int]
) -> dict[str, Any]:
    """One shift's attributes, one row per segment feature (null where the shift lacks it).

    Repeated strings (labels, reasons) go through the shared string table ``strings``.
    """
    fields = [c for c in _SHIFT_FIELDS if c in gdf.columns]
    tab = _table(gdf, fields)
    for c in fields:
        if c in _STRING_TABLE_FIELDS:
            vals = tab[c].astype(object).where(tab[c].notna(), None)
            tab[c] = [None if v is None else strings.setdefault(str(v), len(strings)) for v in vals]
    rows: list[list[Any] | None] = [None] * len(position)
    for pos, rec in zip(
        position[gdf["segment_id"].astype(str)], _records(tab, fields), strict=True
    ):
        rows[int(pos)] = rec
    return {"fields": fields, "rows": rows}


def _shift_meta(name: str, gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    return {
        "name": name,
        "date": first_value(gdf, "date") or "",
        "start": hhmm(first_value(gdf, "shift_start")),
        "end": hhmm(first_value(gdf, "shift_end")),
        "n": len(gdf),
    }


def _places_fc(s: gpd.GeoDataFrame) -> str:
    """Settlements, largest first; ``lab`` 0 = always labelled, 1 = from zoom 10, 2 = on hover."""
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
    order = tab.sort_values(["population", "name"], ascending=[False, True], kind="stable").index
    tab, geoms = tab.loc[order], s.geometry.loc[order]
    rank = np.arange(n)
    tab["lab"] = np.where(rank < _N_LABELS_ALWAYS, 0, np.where(rank < _N_LABELS_ZOOMED, 1, 2))
    cols = list(tab.columns)
    props = [dict(zip(cols, r, strict=True)) for r in _records(tab, cols)]
    return _feature_collection(_wgs84_geojson(geoms, 0.0), props)


def _plan_fc(gdf: gpd.GeoDataFrame) -> str:
    """Plan checks with their attributes and the lon/lat of the checked segment's midpoint."""
    pcols = [c for c in _PLAN_FIELDS if c in gdf.columns]
    tab = _table(gdf, pcols)
    for c in ("unit", "segment_id", "slot_start", "slot_end"):
        if c in tab:
            tab[c] = tab[c].astype(str)
    mid = reproject(gpd.GeoSeries(midpoints(gdf), crs=NATIONAL_CRS), WGS84).to_numpy()
    lonlat = np.round(np.column_stack([shapely.get_x(mid), shapely.get_y(mid)]), 5)
    tab["mid"] = [xy if np.isfinite(xy).all() else None for xy in lonlat.tolist()]
    cols = list(tab.columns)
    props = [dict(zip(cols, r, strict=True)) for r in _records(tab, cols)]
    return _feature_collection(_wgs84_geojson(gdf.geometry, _SEGMENT_SIMPLIFY_M), props)


@timed("write html")
def write_html_map(
    path: str | os.PathLike[str],
    *,
    risk: Mapping[str, gpd.GeoDataFrame],
    border: gpd.GeoDataFrame | None,
    settlements: gpd.GeoDataFrame | None,
    plans: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str,
    provenance: Mapping[str, Any] | None = None,
    attribution: Sequence[str] = DEFAULT_ATTRIBUTION,
) -> Path:
    """Write one self-contained, offline HTML risk map (inlined Leaflet, no tiles, no URLs).

    Segments are coloured by risk class with popups (id, area, expected and band, rank, class,
    reasons); a control switches shifts, switches the colours between the classes within the
    shift and the expected events on one scale for the whole day, and toggles plan checks,
    border and settlements; a legend explains the symbols. A Content-Security-Policy forbids any network access.
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
    prov = json_safe(provenance) if provenance is not None else {}
    foot = [f"{k}: {prov[k]}" for k in ("model_id", "created", "riskmodel_version") if k in prov]
    foot.append("offline map \u00b7 full provenance in the page's riskmodel-provenance meta tag")
    # Replace placeholders in one pass so data can never inject another placeholder.
    parts = {
        "PROV": _html_text(json.dumps(prov, ensure_ascii=False, sort_keys=True)),
        "TITLE": _html_text(title),
        "FOOTER": _html_text(" \u00b7 ".join(foot)),
        "LEAFLET_CSS": css,
        "APP_CSS": _template("map.css"),
        "LEAFLET_JS": js,
        "DATA": data,
        "APP_JS": _template("map.js"),
    }
    text = re.sub(r"@@([A-Z_]+)@@", lambda m: parts[m.group(1)], _template("map.html"))
    if _URL_RE.search(text):
        raise OutputError(
            "HTML map would contain a URL", where=str(path), fix="report this as a riskmodel bug"
        )
    return atomic_write_text(path, text)
