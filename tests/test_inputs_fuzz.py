"""Property-based tests: the readers never crash and always account for every row.

Generated garbage and near-valid files (CSV in several encodings and delimiters, GeoJSON,
effort logs) go through :func:`read_events` / :func:`read_effort`. The only exception allowed
is :class:`InputError` (a one-line file-level message); otherwise ``accepted + quarantined ==
rows read`` and, for CSVs whose rows we counted while writing, ``rows read`` equals that count.
Bounded to ~100 examples per property (well under 30 s in all).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from riskmodel.errors import InputError
from riskmodel.io.read.effort import read_effort
from riskmodel.io.read.events import read_events
from riskmodel.io.read.result import ReadResult
from riskmodel.io.read.times import DST_POLICIES

SETTINGS = settings(
    max_examples=int(os.environ.get("RISKMODEL_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = "2025-01-01"

_tr = Transformer.from_crs("EPSG:4326", "EPSG:3794", always_xy=True)
_bx, _by = _tr.transform([15.30, 15.30, 15.32], [45.45, 45.60, 45.75])
BORDER = gpd.GeoDataFrame(
    geometry=[shapely.LineString(list(zip(_bx, _by, strict=True)))], crs="EPSG:3794"
)

# --------------------------------------------------------------------------------------------
# value strategies
# --------------------------------------------------------------------------------------------
junk = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\r\n'), max_size=12
)
timestamps = st.one_of(
    st.datetimes(
        min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2030-01-01").to_pydatetime(),
    ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+02:00")),
    st.datetimes().map(lambda d: d.strftime("%d.%m.%Y %H:%M")),
    st.sampled_from(
        [
            "2024-03-31 02:30",
            "2024-10-27 02:30",
            "31.3.2024 2:30",
            "2024-06-01",
            "2024-06-01T10:00:00Z",
            "2024-06-01 10:00 CEST",
            "13/06/2024 10:00",
            "06/13/2024 10:00",
            "9999-12-31T00:00Z",
            "0001-01-01",
            "",
            "NaT",
            "24:00",
        ]
    ),
    junk,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=13, max_value=17).map(lambda v: f"{v:.5f}"),
    st.floats(min_value=45, max_value=47).map(lambda v: f"{v:.5f}".replace(".", ",")),
    st.integers(-(10**7), 10**7).map(str),
    st.sampled_from(["", "NA", "-", "45°36'", "1e400", "500000", "100000"]),
    junk,
)
persons = st.one_of(st.integers(-3, 50).map(str), st.sampled_from(["", "2.5", "x", "1e3"]), junk)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """A near-valid events CSV: (bytes, data rows written, suffix)."""
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(
        st.sampled_from(
            [
                ["event_id", "timestamp", "lat", "lon", "persons"],
                ["ID", "DATUM", "Latitude", "LNG", "st_oseb", "vrsta", "opomba"],
                ["timestamp", "X_D96", "Y_D96"],
                ["datum", "ura", "lat", "lon"],
                ["time", "E", "N"],
                ["foo", "bar"],
            ]
        )
    )
    gens = {
        "timestamp": timestamps,
        "datum": timestamps,
        "DATUM": timestamps,
        "time": timestamps,
        "persons": persons,
        "st_oseb": persons,
        "ura": st.sampled_from(["10:30", "7.05", "x"]),
    }
    n = draw(st.integers(0, 12))
    lines = []
    for _ in range(n):
        kind = draw(st.sampled_from(["row", "row", "row", "blank", "short", "long"]))
        if kind == "blank":
            lines.append("")
            continue
        fields = [draw(gens.get(h, numbers)) for h in header]
        fields = [f.replace(delim, " ") for f in fields]  # only "long" rows carry extra fields
        if kind == "short":
            fields = fields[: draw(st.integers(1, len(fields)))]
        elif kind == "long":
            fields += [draw(junk).replace(delim, " ") for _ in range(draw(st.integers(1, 3)))]
        lines.append(delim.join(fields))
    text = delim.join(header) + "\n" + "".join(ln + "\n" for ln in lines)
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1250", "latin-1", "utf-16"]))
    data = text.encode(enc, errors="replace")
    return data, n, draw(st.sampled_from([".csv", ".txt", ".tsv"]))


options = st.fixed_dictionaries(
    {
        "assume_tz": st.sampled_from([None, "Europe/Ljubljana", "UTC"]),
        "dst": st.sampled_from(DST_POLICIES),
        "swap_latlon": st.booleans(),
        "crs": st.sampled_from([None, "EPSG:3794", "EPSG:3912", "EPSG:4326"]),
        "border": st.sampled_from([None, BORDER]),
    }
)


def accounted(r: ReadResult) -> None:
    s = r.summary
    assert s["accepted"] + s["quarantined"] == s["rows_read"]
    assert len(r.frame) == s["accepted"] and len(r.rejected) == s["quarantined"]
    assert sum(s["by_reason"].values()) == s["quarantined"]
    rows = sorted(r.frame["row"].tolist() + r.rejected["row"].tolist())
    assert rows == list(range(1, s["rows_read"] + 1))
    if len(r.frame):
        assert r.frame["x"].notna().all() or "segment_id" in r.frame


def attempt(fn, path: Path, **kw) -> ReadResult | None:
    try:
        r = fn(path, now=NOW, **kw)
    except InputError as exc:  # the only failure allowed: a one-line message
        assert "\n" not in exc.one_line() or "two" in exc.one_line()
        return None
    accounted(r)
    return r


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------
@SETTINGS
@given(f=csv_files(), kw=options)
def test_csv_near_valid(f: tuple[bytes, int, str], kw: dict) -> None:
    data, n, suffix = f
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"events{suffix}"
        p.write_bytes(data)
        r = attempt(read_events, p, **kw)
        if r is not None:
            assert r.summary["rows_read"] == n  # every line we wrote is a row read
            with tempfile.TemporaryDirectory() as out:
                written = r.write_quarantine(out)
                if written is not None:
                    back = pd.read_csv(written, dtype=str, keep_default_na=False)
                    assert len(back) == r.summary["quarantined"]


@SETTINGS
@given(
    data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".geojson", ".parquet", ".gpkg"])
)
def test_binary_garbage(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"events{suffix}"
        p.write_bytes(data)
        attempt(read_events, p)


@SETTINGS
@given(text=st.text(alphabet='abc,;\t"\n\r 0123456789.-:TZ+', max_size=300))
def test_csv_quote_and_delimiter_soup(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "events.csv"
        p.write_text("timestamp,lat,lon\n" + text, encoding="utf-8")
        attempt(read_events, p, assume_tz="Europe/Ljubljana", dst="drop")


coord = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.floats(13, 17),
    st.floats(45, 47),
    st.just("x"),
    st.none(),
)
geometries = st.one_of(
    st.none(),
    st.builds(lambda a, b: {"type": "Point", "coordinates": [a, b]}, coord, coord),
    st.just({"type": "Point", "coordinates": []}),
    st.builds(lambda a, b: {"type": "LineString", "coordinates": [[a, b]]}, coord, coord),
    st.builds(lambda a, b: {"type": "MultiPoint", "coordinates": [[a, b], [b, a]]}, coord, coord),
    st.just({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}),
    st.just({"type": "GeometryCollection", "geometries": []}),
)
props = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": timestamps,
        "persons": st.one_of(st.integers(-2, 40), persons),
        "event_id": st.one_of(junk, st.integers()),
        "type": junk,
    },
)


@SETTINGS
@given(feats=st.lists(st.tuples(geometries, props), max_size=8), kw=options)
def test_geojson(feats: list, kw: dict) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": pr, "geometry": g} for g, pr in feats],
    }
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "events.geojson"
        p.write_text(json.dumps(fc), encoding="utf-8")
        r = attempt(read_events, p, **kw)
        if r is not None:
            assert r.summary["rows_read"] == len(feats)


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(["S1", "S2", ""]), junk),
            timestamps,
            timestamps,
            numbers,
            numbers,
            numbers,
        ),
        max_size=10,
    ),
    kw=st.fixed_dictionaries(
        {
            "assume_tz": st.sampled_from([None, "Europe/Ljubljana"]),
            "dst": st.sampled_from(DST_POLICIES),
            "segment_ids": st.sampled_from([None, {"S1"}]),
        }
    ),
)
def test_effort(rows: list, kw: dict) -> None:
    lines = ["segment_id;start;end;officer_hours;lat;lon"]
    lines += [";".join(str(v).replace(";", ",") for v in r) for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "effort.csv"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        r = attempt(read_effort, p, **kw)
        if r is not None:
            assert r.summary["rows_read"] == len(rows)
            assert (r.frame["officer_hours"] >= 0).all()
            assert (r.frame["end"] > r.frame["start"]).all()


@pytest.mark.parametrize("policy", DST_POLICIES)
def test_policies_smoke(tmp_path: Path, policy: str) -> None:
    p = tmp_path / "e.csv"
    p.write_text("timestamp,lat,lon\n2024-03-31 02:30,45.6,15.3\n2024-10-27 02:30,45.61,15.3\n")
    r = attempt(read_events, p, assume_tz="Europe/Ljubljana", dst=policy)
    assert (r is None) == (policy == "raise")
