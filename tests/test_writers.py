"""Tests for riskmodel.io.write: RFC 7946 GeoJSON, QML, GeoPackage styles, offline HTML, PNG, CSV.

Self-contained synthetic data (30 one-km segments in EPSG:3794 around x 500-530 km,
y 40-50 km, i.e. Bela krajina); no other riskmodel module is used.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, Polygon

import riskmodel
from riskmodel.errors import OutputError
from riskmodel.io.write.csv import format_floats, write_csv
from riskmodel.io.write.geojson import write_geojson
from riskmodel.io.write.gpkg import write_gpkg
from riskmodel.io.write.html import write_html_map
from riskmodel.io.write.png import write_png_map
from riskmodel.io.write.provenance import write_provenance
from riskmodel.io.write.qml import qml_plan_style, qml_risk_style
from riskmodel.io.write.styles import RISK_CLASS_COLOURS, RISK_CLASS_LABELS

SHIFTS = ("morning", "afternoon", "night")
_TIMES = {
    "morning": ("06:00", "14:00", 0),
    "afternoon": ("14:00", "22:00", 0),
    "night": ("22:00", "06:00", 1),
}
CHROMIUM = Path("/usr/bin/chromium")
PROV = {
    "model_id": "test-model",
    "created": "2024-08-13T20:00:00+02:00",
    "inputs": {"events.csv": "ab" * 32},
    "note": "see https://example.org/x and </script><script>alert(1)</script>",
}


# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------


def _line_xy(n: int) -> np.ndarray:
    x = 500000.0 + np.arange(n + 1) * 1000.0
    y = 45000.0 + 4000.0 * np.sin(np.arange(n + 1) / 4.0)
    return np.column_stack([x, y])


def scored_frame(shift: str = "morning", n: int = 30, seed: int = 0) -> gpd.GeoDataFrame:
    """A scored-segments frame following the writers' input contract."""
    rng = np.random.default_rng(seed)
    xy = _line_xy(n)
    mid = (xy[:-1] + xy[1:]) / 2 + [0.0, 120.0]
    geoms = shapely.linestrings(np.stack([xy[:-1], mid, xy[1:]], axis=1))
    expected = rng.gamma(2.0, 0.3, n)
    rank = (-expected).argsort(kind="stable").argsort(kind="stable") + 1
    pct = 100.0 * (n - rank) / (n - 1)
    cls = np.clip(np.ceil((pct + 1e-9) / 20).astype(int), 1, 5)
    start, end, next_day = _TIMES[shift]
    return gpd.GeoDataFrame(
        {
            "segment_id": [f"SIHR-{i + 1:04d}" for i in range(n)],
            "area": np.where(np.arange(n) < n // 2, "Novo mesto", "Koper"),
            "length_m": 1000.0,
            "chainage_from_km": np.arange(n, dtype=float),
            "chainage_to_km": np.arange(n, dtype=float) + 1,
            "river": np.arange(n) % 3 == 0,
            "date": "2024-08-14",
            "shift": shift,
            "shift_start": f"2024-08-14T{start}:00+02:00",
            "shift_end": f"2024-08-{14 + next_day}T{end}:00+02:00",
            "expected": expected,
            "lower": expected * 0.5,
            "upper": expected * 1.9,
            "rank": rank,
            "percentile": pct,
            "risk_class": cls,
            "risk_label": [RISK_CLASS_LABELS[c] for c in cls],
            "reason_1": "12 apprehensions within 2 km in 28 days",
            "reason_2": np.where(np.arange(n) % 3 == 0, "river ford <200 m", "road corridor"),
            "reason_3": "",
            "threat": rng.random(n),
            "vulnerability": rng.random(n),
            "impact": rng.random(n),
        },
        geometry=geoms,
        crs="EPSG:3794",
    )


def plan_frame(seg: gpd.GeoDataFrame, k: int = 4) -> gpd.GeoDataFrame:
    top = seg.nsmallest(k, "rank")
    return gpd.GeoDataFrame(
        {
            "check_no": np.arange(1, k + 1),
            "unit": ["PP Metlika 1", "PP Črnomelj 2"] * (k // 2),
            "segment_id": top["segment_id"].to_numpy(),
            "slot_start": "2024-08-14T07:00:00+02:00",
            "slot_end": "2024-08-14T09:00:00+02:00",
            "coverage": np.linspace(0.2, 0.8, k),
        },
        geometry=top.geometry.to_numpy(),
        crs="EPSG:3794",
    )


def border_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["SI-HR"]}, geometry=[LineString(_line_xy(30))], crs="EPSG:3794"
    )


def settlements_frame() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    n = 20
    x = 500000.0 + rng.uniform(0, 30000, n)
    y = 45000.0 + rng.uniform(-9000, 9000, n)
    return gpd.GeoDataFrame(
        {
            "name": [f"Vas {i} Žužemberk" for i in range(n)],
            "country": np.where(y > 45000.0, "SI", "HR"),
            "population": rng.integers(80, 25000, n),
        },
        geometry=gpd.points_from_xy(x, y),
        crs="EPSG:3794",
    )


@pytest.fixture(scope="module")
def risk() -> dict[str, gpd.GeoDataFrame]:
    return {s: scored_frame(s, seed=i) for i, s in enumerate(SHIFTS)}


@pytest.fixture(scope="module")
def plans(risk: dict[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    return {s: plan_frame(g) for s, g in risk.items()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# GeoJSON
# --------------------------------------------------------------------------------------------


def _coords(geom: dict) -> np.ndarray:
    return np.array(shapely.get_coordinates(shapely.from_geojson(json.dumps(geom))))


def test_geojson_is_rfc7946(tmp_path: Path, risk: dict[str, gpd.GeoDataFrame]) -> None:
    out = write_geojson(
        risk["morning"],
        tmp_path / "risk_morning.geojson",
        provenance=PROV,
        qml=qml_risk_style(),
    )
    text = out.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    assert len(doc["bbox"]) == 4
    assert doc["riskmodel"]["model_id"] == "test-model"  # foreign member, RFC 7946 section 6.1
    assert len(doc["features"]) == 30
    xy = np.vstack([_coords(f["geometry"]) for f in doc["features"]])
    assert xy[:, 0].min() > 13.3 and xy[:, 0].max() < 16.7  # lon in Slovenia
    assert xy[:, 1].min() > 45.4 and xy[:, 1].max() < 46.9  # lat in Slovenia
    assert np.allclose(xy, np.round(xy, 6), rtol=0, atol=1e-12)  # <= 6 decimals
    numbers = re.findall(r'"coordinates": (\[[^"]*\])', text)
    assert numbers and all(len(d) <= 6 for c in numbers for d in re.findall(r"\.(\d+)", c))
    bbox = doc["bbox"]
    assert bbox[0] <= xy[:, 0].min() and bbox[2] >= xy[:, 0].max()
    assert bbox[1] <= xy[:, 1].min() and bbox[3] >= xy[:, 1].max()
    props = doc["features"][0]["properties"]
    assert list(props)[:3] == ["segment_id", "area", "length_m"]  # column order kept
    assert props["segment_id"] == "SIHR-0001" and isinstance(props["river"], bool)
    # The style QGIS auto-loads sits beside it.
    assert (tmp_path / "risk_morning.qml").read_text(encoding="utf-8").count("risk_class") >= 1
    assert not list(tmp_path.glob(".*tmp*"))  # no temp files left


def test_geojson_polygon_ring_order(tmp_path: Path) -> None:
    # Clockwise exterior and counter-clockwise hole: the opposite of what RFC 7946 wants.
    shell = [(500000, 40000), (500000, 45000), (505000, 45000), (505000, 40000)]
    hole = [(501000, 41000), (504000, 41000), (504000, 44000), (501000, 44000)]
    poly = Polygon(shell, [hole])
    assert not shapely.is_ccw(poly.exterior) and shapely.is_ccw(poly.interiors[0])
    gdf = gpd.GeoDataFrame({"name": ["area"]}, geometry=[poly], crs="EPSG:3794")
    doc = json.loads(write_geojson(gdf, tmp_path / "area.geojson").read_text("utf-8"))
    out = shapely.from_geojson(json.dumps(doc["features"][0]["geometry"]))
    assert shapely.is_ccw(out.exterior)  # exterior counter-clockwise
    assert not shapely.is_ccw(out.interiors[0])  # holes clockwise
    assert "riskmodel" not in doc  # no provenance given


def test_geojson_without_crs_raises(tmp_path: Path) -> None:
    gdf = scored_frame().set_crs(None, allow_override=True)
    with pytest.raises(OutputError, match="no CRS"):
        write_geojson(gdf, tmp_path / "x.geojson")
    assert not list(tmp_path.iterdir())


def test_geojson_deterministic(tmp_path: Path, risk: dict[str, gpd.GeoDataFrame]) -> None:
    a = write_geojson(risk["night"], tmp_path / "a" / "r.geojson", provenance=PROV)
    b = write_geojson(risk["night"], tmp_path / "b" / "r.geojson", provenance=PROV)
    assert a.read_bytes() == b.read_bytes()
    write_geojson(risk["night"], a, provenance=PROV)  # overwrite in place
    assert a.read_bytes() == b.read_bytes()


def test_geojson_shared_geometries_same_bytes(tmp_path: Path, risk) -> None:
    """Layers sharing geometries (the day's shifts) serialise them once: same bytes."""
    from riskmodel.io.write.geojson import geojson_geometries

    night = risk["night"]
    pool = night.iloc[::-1].reset_index(drop=True)  # another order: rows are taken by position
    shapes = geojson_geometries(pool.geometry)
    at = np.arange(len(night))[::-1]
    a = write_geojson(night, tmp_path / "a" / "r.geojson", provenance=PROV)
    b = write_geojson(
        night, tmp_path / "b" / "r.geojson", provenance=PROV, geometries=shapes.take(at)
    )
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(OutputError, match="serialised geometries"):
        write_geojson(night, tmp_path / "c.geojson", geometries=shapes.take(at[:3]))
    assert not (tmp_path / "c.geojson").exists()


def test_geojson_reprojects_other_crs(tmp_path: Path) -> None:
    gdf = scored_frame().to_crs("EPSG:32633")
    doc = json.loads(write_geojson(gdf, tmp_path / "u.geojson").read_text("utf-8"))
    lon, lat = _coords(doc["features"][0]["geometry"])[0]
    assert 13.3 < lon < 16.7 and 45.4 < lat < 46.9


# --------------------------------------------------------------------------------------------
# QML
# --------------------------------------------------------------------------------------------


def _parse_qml(text: str) -> ET.Element:
    assert text.startswith("<!DOCTYPE qgis")
    return ET.fromstring(text.split("\n", 1)[1])


def test_qml_risk_style() -> None:
    root = _parse_qml(qml_risk_style())
    assert root.tag == "qgis"
    r = root.find("renderer-v2")
    assert r is not None and r.get("type") == "categorizedSymbol" and r.get("attr") == "risk_class"
    cats = r.findall("categories/category")
    assert sorted(c.get("value") for c in cats) == ["1", "2", "3", "4", "5"]
    colours = {o.get("value") for o in r.iter("Option") if o.get("name") == "line_color"}
    for hexc in RISK_CLASS_COLOURS.values():
        h = hexc.lstrip("#")
        assert f"{int(h[:2], 16)},{int(h[2:4], 16)},{int(h[4:], 16)},255" in colours
    rule = root.find("labeling/rules/rule")
    assert rule is not None and rule.get("filter") == '"rank" <= 10'
    assert root.find("labeling/rules/rule/settings/text-style").get("fieldName") == "segment_id"
    custom = _parse_qml(qml_risk_style(field="cls", top_n=3))
    assert custom.find("renderer-v2").get("attr") == "cls"
    assert custom.find("labeling/rules/rule").get("filter") == '"rank" <= 3'


def test_qml_plan_style() -> None:
    root = _parse_qml(qml_plan_style())
    assert root.find("renderer-v2").get("type") == "singleSymbol"
    label = root.find("labeling/rules/rule/settings/text-style")
    assert label.get("isExpression") == "1" and '"unit"' in label.get("fieldName")
    assert "slot_start" in label.get("fieldName")
    by_unit = _parse_qml(qml_plan_style(units=["B", "A", "B"]))
    assert by_unit.find("renderer-v2").get("attr") == "unit"
    assert [c.get("value") for c in by_unit.findall("renderer-v2/categories/category")] == [
        "A",
        "B",
    ]


# --------------------------------------------------------------------------------------------
# GeoPackage
# --------------------------------------------------------------------------------------------


def test_gpkg_layers_styles_srs(tmp_path: Path, risk: dict[str, gpd.GeoDataFrame]) -> None:
    qml = qml_risk_style()
    out = write_gpkg(risk, tmp_path / "risk.gpkg", provenance=PROV, style_qml=qml)
    layers = {name: geom for name, geom in pyogrio.list_layers(out)}
    assert {s: layers[s] for s in SHIFTS} == dict.fromkeys(SHIFTS, "LineString")
    with sqlite3.connect(out) as con:
        geom_cols = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        srs = dict(con.execute("SELECT table_name, srs_id FROM gpkg_geometry_columns"))
        org = con.execute(
            "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = 3794"
        ).fetchone()
        styles = con.execute(
            "SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
            "styleQML, useAsDefault, update_time FROM layer_styles ORDER BY id"
        ).fetchall()
        style_cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        prov = dict(con.execute("SELECT key, value FROM riskmodel_provenance"))
        (user_version,) = con.execute("PRAGMA user_version").fetchone()
    assert user_version == 10200  # GeoPackage 1.2 for QGIS 3.22
    assert srs == dict.fromkeys(SHIFTS, 3794)
    assert org[0].upper() == "EPSG" and org[1] == 3794
    assert style_cols == [
        "id", "f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
        "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time",
    ]  # fmt: skip
    assert [s[2] for s in styles] == list(SHIFTS)
    for catalog, schema, table, gcol, _name, sqml, default, updated in styles:
        assert (catalog, schema) == ("", "")  # QGIS selects on '' (not NULL)
        assert gcol == geom_cols[table]  # the real geometry column ('geom' with GDAL)
        assert sqml == qml and default == 1 and updated.startswith("2024-08-13T18:00:00")
    assert json.loads(prov["model_id"]) == "test-model"
    back = gpd.read_file(out, layer="night")
    assert back.crs.to_epsg() == 3794 and len(back) == 30
    assert back["segment_id"].tolist() == risk["night"]["segment_id"].tolist()


def test_gpkg_deterministic_and_validates(
    tmp_path: Path, risk: dict[str, gpd.GeoDataFrame]
) -> None:
    a = write_gpkg(risk, tmp_path / "a.gpkg", provenance=PROV, style_qml="<qgis/>")
    b = write_gpkg(risk, tmp_path / "b.gpkg", provenance=PROV, style_qml="<qgis/>")
    assert _sha(a) == _sha(b)
    with pytest.raises(OutputError, match="invalid layer name"):
        write_gpkg({"layer_styles": risk["morning"]}, tmp_path / "c.gpkg")
    with pytest.raises(OutputError, match="no CRS"):
        write_gpkg(
            {"morning": risk["morning"].set_crs(None, allow_override=True)}, tmp_path / "d.gpkg"
        )
    wgs = {"morning": risk["morning"].to_crs(4326)}
    assert gpd.read_file(write_gpkg(wgs, tmp_path / "e.gpkg")).crs.to_epsg() == 3794


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def html_map(tmp_path_factory: pytest.TempPathFactory, risk, plans) -> Path:
    folder = tmp_path_factory.mktemp("html")
    return write_html_map(
        folder / "risk_map.html",
        risk=risk,
        border=border_frame(),
        settlements=settlements_frame(),
        plans=plans,
        title="Risk 2024-08-14 <b>&</b> http://x",
        provenance=PROV,
    )


def _page_data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="rm-data">(.*?)</script>', text, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_html_is_offline_and_self_contained(html_map: Path) -> None:
    text = html_map.read_text(encoding="utf-8")
    assert "http://" not in text.lower() and "https://" not in text.lower()
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=", text, re.I)
    assert not re.search(r"<(img|iframe|embed|object)\b", text, re.I)
    assert "url(data:image/png;base64," in text  # Leaflet's images inlined
    assert not re.search(r"url\((?!data:|#)", text)  # no other CSS url()
    assert 't.version="1.9.4"' in text  # Leaflet inlined
    assert "sourceMappingURL" not in text
    assert "default-src 'none'" in text  # CSP blocks any network access
    assert text.count("</script>") == 3  # provenance text could not close a script early
    meta = re.search(r'<meta name="riskmodel-provenance" content="([^"]*)">', text)
    assert json.loads(html.unescape(meta.group(1))) == json.loads(json.dumps(PROV, sort_keys=True))
    assert "&lt;b&gt;&amp;&lt;&#47;b&gt;" in text  # title escaped


def test_html_data(html_map: Path, risk, plans) -> None:
    data = _page_data(html_map.read_text(encoding="utf-8"))
    assert [s["name"] for s in data["shifts"]] == list(SHIFTS)
    assert data["shifts"][2]["start"] == "22:00" and data["shifts"][2]["end"] == "06:00"
    feats = data["segments"]["features"]
    assert len(feats) == 30 and feats[0]["properties"]["segment_id"] == "SIHR-0001"
    xy = np.vstack([_coords(f["geometry"]) for f in feats])
    assert 13.3 < xy[:, 0].min() and xy[:, 0].max() < 16.7 and 45.4 < xy[:, 1].min() < 46.9
    night = data["shiftData"][2]
    ci = night["fields"].index("risk_class")
    assert [r[ci] for r in night["rows"]] == risk["night"]["risk_class"].tolist()
    ri = night["fields"].index("reason_1")
    assert data["strings"][night["rows"][0][ri]] == "12 apprehensions within 2 km in 28 days"
    assert len(data["plans"]["morning"]["features"]) == len(plans["morning"])
    assert set(data["units"]) == {"PP Metlika 1", "PP Črnomelj 2"}
    assert len(data["places"]["features"]) == 20 and len(data["border"]["features"]) == 1
    assert set(data["classes"]) == {"1", "2", "3", "4", "5"}


def test_html_deterministic_and_minimal_inputs(tmp_path: Path, html_map: Path, risk, plans) -> None:
    again = write_html_map(
        tmp_path / "again.html",
        risk=risk,
        border=border_frame(),
        settlements=settlements_frame(),
        plans=plans,
        title="Risk 2024-08-14 <b>&</b> http://x",
        provenance=PROV,
    )
    assert again.read_bytes() == html_map.read_bytes()
    bare = write_html_map(
        tmp_path / "bare.html",
        risk={"morning": risk["morning"]},
        border=None,
        settlements=None,
        title="t",
    )
    data = _page_data(bare.read_text(encoding="utf-8"))
    assert data["plans"] == {} and data["places"]["features"] == []
    with pytest.raises(OutputError, match="no CRS"):
        write_html_map(
            tmp_path / "x.html",
            risk={"m": risk["morning"].set_crs(None, allow_override=True)},
            border=None,
            settlements=None,
            title="t",
        )


def test_leaflet_vendored_files_match_record() -> None:
    base = Path(riskmodel.__file__).parent / "_vendor" / "leaflet"
    record = (base / "VENDORED.md").read_text(encoding="utf-8")
    rows = re.findall(r"\| `([^`]+)` \| `[^`]+` \| `([0-9a-f]{64})` \|", record)
    assert {f for f, _ in rows} >= {
        "leaflet.js",
        "leaflet.css",
        "LICENSE",
        "images/marker-icon.png",
    }
    for name, digest in rows:
        assert _sha(base / name) == digest, name
    assert "BSD 2-Clause" in (base / "LICENSE").read_text(encoding="utf-8")


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr", "--v=0", "--window-size=1200,800", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.chromium
def test_html_renders_in_headless_chromium(tmp_path: Path, html_map: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install -y chromium) for the render test")
    import matplotlib.image as mpimg

    url = html_map.resolve().as_uri()
    dom = _chromium(["--dump-dom", url + "#shift=night"], tmp_path)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None, dom.stderr[-2000:]
    assert 'data-ready="1"' in body.group(0) and "data-error" not in body.group(0)
    assert 'data-shift="night"' in body.group(0) and 'data-segments="30"' in body.group(0)
    shot = tmp_path / "shot.png"
    run = _chromium([f"--screenshot={shot}", url], tmp_path)
    log = dom.stderr + run.stderr
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not [ln for ln in console if re.search(r"Uncaught|Error|Content Security Policy", ln)], (
        console
    )
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (800, 1200)
    assert img.std() > 0.05  # not blank
    # Segments were drawn: pixels of the two darkest risk colours are present.
    for cls in (4, 5):
        h = RISK_CLASS_COLOURS[cls].lstrip("#")
        rgb = np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)]) / 255
        assert (np.abs(img - rgb).max(axis=2) < 0.04).sum() > 50, f"class {cls} colour missing"


# --------------------------------------------------------------------------------------------
# PNG, CSV, provenance
# --------------------------------------------------------------------------------------------


def test_png_map(tmp_path: Path, risk, plans) -> None:
    import matplotlib.image as mpimg

    kw = dict(
        risk=risk, border=border_frame(), settlements=settlements_frame(), plans=plans, title="Risk"
    )
    a = write_png_map(tmp_path / "a.png", **kw)
    b = write_png_map(tmp_path / "b.png", **kw)
    data = a.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert data == b.read_bytes()  # deterministic: no timestamp/software chunks
    assert b"Software" not in data
    img = mpimg.imread(a)
    assert img.shape[0] > img.shape[1] and img[..., :3].std() > 0.05  # three stacked panels


def test_csv(tmp_path: Path, risk) -> None:
    out = write_csv(risk["morning"], tmp_path / "risk.csv")
    raw = out.read_bytes()
    assert b"\r\n" not in raw and raw.endswith(b"\n")
    back = pd.read_csv(out)
    assert "geometry" not in back and back.columns[0] == "segment_id" and len(back) == 30
    assert np.allclose(back["expected"], risk["morning"]["expected"], rtol=1e-5)
    assert write_csv(risk["morning"], tmp_path / "again.csv").read_bytes() == raw
    df = pd.DataFrame({"a": [1.0 / 3.0], "b": ["x"]})
    assert write_csv(df, tmp_path / "f.csv", float_format="%.2f").read_text() == "a,b\n0.33,x\n"


@pytest.mark.parametrize("fmt", ["%.6g", "%.9g", "%.3f"])
def test_csv_floats_are_pandas_bytes(fmt: str) -> None:
    """write_csv formats floats itself (10x faster); the text is what pandas writes."""
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame(
        {
            "wide": rng.normal(size=n) * 10.0 ** rng.integers(-8, 9, n),
            "nan": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "text": [f"x{i}" for i in range(n)],
            "int": np.arange(n),
            "f32": rng.random(n).astype("float32"),
            "nullable": pd.array(np.where(rng.random(n) < 0.3, None, rng.random(n)), "Float64"),
            "inf": np.where(rng.random(n) < 0.5, np.inf, -np.inf),
            "negzero": -0.0,
            "ts": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )
    expected = df.to_csv(index=False, float_format=fmt, lineterminator="\n")
    assert format_floats(df, fmt).to_csv(index=False, lineterminator="\n") == expected


def test_provenance(tmp_path: Path, risk) -> None:
    f1 = write_csv(risk["morning"], tmp_path / "a.csv")
    f2 = write_geojson(risk["morning"], tmp_path / "sub" / "b.geojson")
    out = write_provenance(tmp_path, [f2, f1], {"model_id": "m", "created": "2024-08-13"})
    rec = json.loads(out.read_text(encoding="utf-8"))
    assert rec["model_id"] == "m"
    assert [o["path"] for o in rec["outputs"]] == ["a.csv", "sub/b.geojson"]
    assert (
        rec["outputs"][0]["sha256"] == _sha(f1) and rec["outputs"][1]["bytes"] == f2.stat().st_size
    )
    with pytest.raises(OutputError, match="missing"):
        write_provenance(tmp_path, [tmp_path / "nope.csv"], {})


def test_unwritable_folder_raises(tmp_path: Path, risk) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            write_geojson(risk["morning"], ro / "x.geojson")
    finally:
        ro.chmod(0o700)


def test_constants() -> None:
    assert list(RISK_CLASS_COLOURS) == [1, 2, 3, 4, 5]
    assert RISK_CLASS_LABELS[5] == "very high" and RISK_CLASS_LABELS[1] == "very low"
