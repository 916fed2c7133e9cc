import json

import geopandas as gpd
import numpy as np
import pytest
from click.testing import CliRunner
from shapely.geometry import LineString, MultiLineString, Point, Polygon

from riskmodel.cli import main
from riskmodel.errors import InputError
from riskmodel.geo.segments import make_segments, metric_crs_for, read_border, segment_summary


def _line(n=3000, km=37.3):
    t = np.linspace(0, km, n)
    return LineString(np.c_[500000 + t * 1000, 100000 + 3000 * np.sin(t / 5)])


def test_lengths_sum_and_stable_ids():
    b = read_border(gpd.GeoDataFrame(geometry=[_line()], crs=3794))
    s1 = make_segments(b, 1000)
    s2 = make_segments(b, 1000)
    info = segment_summary(s1, b)
    assert info["difference_m"] < 1.0
    assert s1["segment_id"].tolist() == s2["segment_id"].tolist()
    assert s1["segment_id"].iloc[0] == "SIHR-0001"
    # equal pieces: no stub at the end
    assert s1["length_m"].max() - s1["length_m"].min() < 1e-6
    assert abs(s1["length_m"].mean() - 1000) < 500
    assert np.allclose(
        s1["chainage_to_km"].iloc[:-1].to_numpy(), s1["chainage_from_km"].iloc[1:].to_numpy()
    )


def test_multilinestring_any_crs_and_gap_bridged():
    line = _line()
    c = np.asarray(line.coords)
    parts = MultiLineString([LineString(c[:1500]), LineString(c[1500:] + [0, 30])])  # 30 m gap
    gdf = gpd.GeoDataFrame(geometry=[parts], crs=3794).to_crs(4326)
    b = read_border(gdf)
    assert str(b.crs) == "EPSG:3794"
    assert b.geometry.iloc[0].geom_type == "LineString"
    seg = make_segments(b, 2000)
    assert abs(seg["length_m"].sum() - b.geometry.iloc[0].length) < 1


def test_utm_outside_slovenia():
    gdf = gpd.GeoDataFrame(geometry=[LineString([(23.0, 48.0), (23.5, 48.2)])], crs=4326)
    assert metric_crs_for(gdf) == "EPSG:32634"
    b = read_border(gdf)
    assert str(b.crs) == "EPSG:32634"


@pytest.mark.parametrize(
    "gdf, msg",
    [
        (gpd.GeoDataFrame(geometry=[_line()], crs=None), "no CRS"),
        (gpd.GeoDataFrame(geometry=[Point(0, 0)], crs=3794), "must be lines"),
        (gpd.GeoDataFrame(geometry=[Polygon([(0, 0), (1, 0), (1, 1)])], crs=3794), "must be lines"),
        (gpd.GeoDataFrame(geometry=[], crs=3794), "no features"),
        (
            gpd.GeoDataFrame(
                geometry=[MultiLineString([[(0, 0), (1000, 0)], [(50000, 0), (60000, 0)]])],
                crs=3794,
            ),
            "disconnected",
        ),
    ],
)
def test_bad_border(gdf, msg):
    with pytest.raises(InputError, match=msg):
        read_border(gdf)


def test_areas_and_river_flags(geo):
    seg = geo.segments
    assert set(seg["area"]) == {"West", "East"}
    assert seg["river"].any() and not seg["river"].all()
    assert (seg.loc[seg["river"], "river_name"] == "River").all()


def test_cli_segments_ok_and_errors(tmp_path):
    src = tmp_path / "line.geojson"
    gpd.GeoDataFrame(geometry=[_line()], crs=3794).to_crs(4326).to_file(src)
    out = tmp_path / "seg.csv"
    r = CliRunner().invoke(
        main, ["segments", "--border", str(src), "--length-m", "500", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "segments" in r.output and out.is_file()
    nocrs = tmp_path / "nocrs.csv"
    nocrs.write_text('wkt\n"LINESTRING (0 0, 1 1)"\n')
    bad = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(15, 46)], crs=4326).to_file(bad)
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("{not json")
    for f, code in ((bad, 3), (garbage, 3), (tmp_path / "missing.geojson", 3)):
        o = tmp_path / f"o_{f.stem}.geojson"
        r = CliRunner().invoke(main, ["segments", "--border", str(f), "--out", str(o)])
        assert r.exit_code == code, r.output
        assert r.output.count("\n") == 1 and "Traceback" not in r.output
        assert str(f) in r.output and "fix:" in r.output
        assert not o.exists()


def test_cli_segments_geojson_is_rfc7946(tmp_path):
    src = tmp_path / "line.gpkg"
    gpd.GeoDataFrame(geometry=[_line()], crs=3794).to_file(src)
    out = tmp_path / "seg.geojson"
    r = CliRunner().invoke(main, ["segments", "--border", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert "crs" not in doc and "bbox" in doc
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0]
    assert 13 < lon < 17 and 45 < lat < 47


def test_reproject_matches_geopandas_and_shares_the_transformer():
    """The project's one reprojection (a transformer cached per CRS pair) gives geopandas'
    numbers bit for bit, keeps index, names and columns, and builds each pair once."""
    from riskmodel.io.read import coords
    from riskmodel.io.read.coords import reproject

    gdf = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"]},
        geometry=[
            LineString([(15.5, 46.0), (15.6, 45.9)]),
            Point(13.7, 45.5),
            Polygon([(14, 45.5), (14.1, 45.5), (14.1, 45.6)]),
        ],
        crs="EPSG:4326",
        index=[7, 3, 5],
    ).rename_geometry("geom")
    out = reproject(gdf, "EPSG:3794")
    ref = gdf.to_crs("EPSG:3794")
    assert out.crs == ref.crs and list(out.index) == [7, 3, 5] and out.geometry.name == "geom"
    assert list(out.columns) == list(ref.columns) and list(gdf.crs.to_authority()) == [
        "EPSG",
        "4326",
    ]
    assert all(a.equals_exact(b, 0) for a, b in zip(out.geometry, ref.geometry, strict=True))
    back = reproject(out.geometry, "EPSG:4326")
    assert np.allclose(np.array(back.iloc[1].coords), [[13.7, 45.5]])
    assert reproject(out, "EPSG:3794") is out  # same CRS: nothing to do
    before = coords._transformer.cache_info().misses
    reproject(gdf.geometry, "EPSG:3794")
    assert coords._transformer.cache_info().misses == before  # the pair was built once
