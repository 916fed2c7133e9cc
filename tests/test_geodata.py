"""Invariants of the bundled reference geodata (reads only the committed GeoJSON files)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from riskmodel.geo.geodata import LAYERS, layer_path

METRIC = "EPSG:3794"
TRIPOINT = (16.596, 46.476)
DRAGONJA_MOUTH = (13.592, 45.472)


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(layer_path(name)).to_crs(METRIC) for name in LAYERS}


@pytest.fixture(scope="module")
def line(layers: dict[str, gpd.GeoDataFrame]) -> LineString:
    return layers["border"].geometry.iloc[0]


def _metric(lon: float, lat: float) -> Point:
    return gpd.GeoSeries([Point(lon, lat)], crs="EPSG:4326").to_crs(METRIC).iloc[0]


def test_files_are_wgs84_geojson_with_6_decimals() -> None:
    for name in LAYERS:
        data = json.loads(layer_path(name).read_text(encoding="utf-8"))
        assert data["type"] == "FeatureCollection" and data["features"]
        assert "crs" not in data  # RFC 7946: WGS84 implied
        xy = shapely.get_coordinates(
            shapely.from_geojson([json.dumps(f["geometry"]) for f in data["features"]])
        )
        assert np.abs(xy[:, 0]).max() <= 180 and np.abs(xy[:, 1]).max() <= 90
        assert np.allclose(xy, np.round(xy, 6), rtol=0, atol=1e-12)


def test_border_is_one_linestring_with_attribution(layers: dict[str, gpd.GeoDataFrame]) -> None:
    border = layers["border"]
    assert len(border) == 1
    assert border.geometry.iloc[0].geom_type == "LineString"
    row = border.iloc[0]
    assert row["licence"] == "ODbL-1.0"
    assert row["attribution"] == "© OpenStreetMap contributors"


def test_border_endpoints_and_length(line: LineString) -> None:
    assert _metric(*TRIPOINT).distance(Point(line.coords[0])) < 2000
    assert _metric(*DRAGONJA_MOUTH).distance(Point(line.coords[-1])) < 2000
    assert 640_000 <= line.length <= 670_000


def test_border_has_no_gaps_or_self_crossings(line: LineString) -> None:
    xy = shapely.get_coordinates(line)
    step = np.hypot(*np.diff(xy, axis=0).T)
    # Longest real straight edge is ~3.6 km (across Lake Ormož); a bridged gap would be longer.
    assert step.max() < 5000
    assert line.is_simple and line.is_valid


def test_crossings_near_border(layers: dict[str, gpd.GeoDataFrame], line: LineString) -> None:
    cr = layers["crossings"]
    assert 20 <= len(cr) <= 35
    assert (shapely.distance(cr.geometry.values, line) <= 1000).all()
    assert (cr["dist_to_border_m"] <= 1000).all()
    assert set(cr["category"]) <= {"international", "interstate", "other"}
    assert cr["approximate"].all()
    assert {"Obrežje", "Gruškovje", "Jelšane", "Metlika", "Vinica"} <= set(cr["name"])


def test_settlements_both_sides_within_30_km(
    layers: dict[str, gpd.GeoDataFrame], line: LineString
) -> None:
    st = layers["settlements"]
    counts = st["country"].value_counts()
    assert counts.get("SI", 0) > 50 and counts.get("HR", 0) > 50
    assert set(st["country"]) == {"SI", "HR"}
    assert (shapely.distance(st.geometry.values, line) <= 30_000 + 1).all()
    assert (st["population"] >= 0).all() and st["geonameid"].is_unique


def test_corridors_approximate(layers: dict[str, gpd.GeoDataFrame]) -> None:
    co = layers["corridors"]
    assert len(co) and co["approximate"].all()
    assert set(co["kind"]) <= {"motorway", "road", "approach_route"}
    assert "approach_route" in set(co["kind"])
    assert co["weight"].between(0, 1).all()
    assert (co.geometry.geom_type == "LineString").all()


def test_areas_partition_the_border(layers: dict[str, gpd.GeoDataFrame], line: LineString) -> None:
    areas = layers["areas"].geometry.values
    assert len(areas) == 6 and shapely.is_valid(areas).all()
    for i in range(len(areas)):
        for j in range(i + 1, len(areas)):
            assert shapely.area(shapely.intersection(areas[i], areas[j])) < 1.0
    verts = shapely.points(shapely.get_coordinates(line))
    hits = np.stack([shapely.covers(a, verts) for a in areas]).sum(axis=0)
    assert (hits == 1).all()
    ar = layers["areas"]
    assert ar["approximate"].all()
    assert ar["chainage_from_km"].iloc[0] == 0
    assert np.allclose(ar["chainage_from_km"].iloc[1:], ar["chainage_to_km"].iloc[:-1])


def test_rivers_follow_the_border(layers: dict[str, gpd.GeoDataFrame], line: LineString) -> None:
    rv = layers["rivers"]
    assert {"Mura", "Drava", "Sotla", "Kolpa", "Dragonja"} <= set(rv["name"])
    for geom in rv.geometry.values:
        pts = shapely.line_interpolate_point(geom, np.linspace(0, geom.length, 200))
        assert shapely.distance(pts, line).max() <= 50
