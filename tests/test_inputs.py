"""Tests of :mod:`riskmodel.io.read.events` and ``riskmodel validate``: the input catalogue.

Every case names its one-line message (as printed by the CLI after ``riskmodel: error:``, or the
quarantine reason for row-level cases), the exit code of ``riskmodel validate`` and its test.
Row-level cases exit 0 (rows quarantined, the rest used) and 3 with ``--strict``.

=====================================  =====================================================  ====  ===========================================
case                                   message / reason                                      exit  test
=====================================  =====================================================  ====  ===========================================
file not found                         ``<f>: file not found -- fix: check the path``         3     test_file_not_found
file not readable (permissions, I/O)   ``cannot read the file: Permission denied``            3     test_unreadable_file
unsupported extension (.xlsx)          ``unsupported file type '.xlsx' -- fix: use CSV, ...``  3     test_unsupported_extension
empty file (0 bytes / blank lines)     ``the file is empty (0 bytes)`` / ``(only blank        3     test_empty_file
                                       lines)``
header only (or header + blank lines)  ``the file has a header but no data rows``             3     test_header_only
GeoJSON / Parquet without rows         ``the file holds no rows``                             3     test_empty_geojson
missing required columns               ``missing required column(s): timestamp, lat; the      3     test_missing_columns_suggest_close_matches,
                                       file has: ...; did you mean 'time_stamp' for                 test_missing_location_columns,
                                       timestamp, 'latitud' for lat -- fix: ... --column``          test_effort_missing_columns
first line is data, no header          ``... -- fix: the first line looks like data: add a    3     test_headerless_file
                                       header line``
--column names an absent column        ``column 'DATUM_X' given for timestamp is not in the   3     test_mapped_column_absent
                                       file; did you mean 'DATUM_CAS'?``
--column with unknown canonical key    ``unknown canonical column(s) 'tiemstamp'``            2     test_unknown_canonical_key
unknown extra columns                  kept in the frame, listed in ``extra_columns``         0     test_extra_columns_kept
column aliases / case-insensitive      recognised (``DATUM``, ``Latitude``, ``X_D96``,        0     test_aliases_recognised
                                       ``st_oseb``, ``zacetek`` ...)
--column / [columns] in riskmodel.toml mapped                                                 0     test_column_mapping, test_cli_columns_from_toml
one mapping, events and effort         coordinates mapped but absent, no alias: not used      0     test_one_mapping_for_events_and_effort
                                       here; the error if the file then has no location
Slovenian Excel export                 cp1250, ';', decimal comma, dd.mm.yyyy, Slovenian      0     test_slovenian_excel_export_needs_no_mapping
                                       headers: read without --column
cp1250 text (č š ž)                    read correctly; warning ``read as cp1250``             0     test_cp1250_read
Latin-1 text                           read correctly; warning ``read as latin-1``            0     test_latin1_read
UTF-16 (Excel "Unicode text")          read correctly                                         0     test_utf16_read
--encoding override / wrong encoding   ``cannot decode the file as utf-8 (byte N)``           0/3   test_encoding_override, test_wrong_encoding
delimiter , ; tab, UTF-8 BOM, sep=     sniffed                                                0     test_delimiter_detection
decimal comma (45,81)                  read                                                   0     test_decimal_comma
row with too many fields               ``malformed_row`` (kept in place, line preserved)      0     test_malformed_row_kept_in_place,
                                                                                                    test_first_row_too_long
blank line between rows                ``empty_row`` (row numbers stay file rows)             0     test_blank_lines_counted
unclosed quote                         ``cannot parse the CSV: ...``                          3     test_unclosed_quote
malformed timestamps                   ``bad_timestamp`` / ``missing_timestamp``              0     test_bad_timestamps_quarantined
accepted time formats                  ISO+offset, Z, UTC/CET/CEST, dd.mm.yyyy hh:mm, ...     0     test_timestamp_formats,
                                                                                                    test_naive_formats_with_assume_tz,
                                                                                                    test_us_slashed_dates_detected
all timestamps naive, no --assume-tz   ``timestamp values have no time zone (row 1: ...) --   3     test_all_naive_refused
                                       fix: give --assume-tz Europe/Ljubljana ...``
some naive among aware                 ``naive_timestamp``                                    0     test_mixed_naive_quarantined
DST gap / fold, --dst raise            ``row N: local timestamp '2024-03-31 02:30' does not   3     test_dst_raise
                                       exist (clocks jumped forward) in Europe/Ljubljana``
DST shift / earliest / latest / drop   repaired or ``dst_nonexistent`` / ``dst_ambiguous``   0     test_dst_policies
future / implausibly old               ``future_timestamp`` / ``too_old_timestamp``           0     test_future_and_old
date without time of day               accepted, warning (night-shift bias)                   0     test_date_only_warns
latitude / longitude out of range      ``coords_out_of_range``                                0     test_coords_out_of_range
lat/lon swapped                        ``latlon_swapped`` (fixed with --swap-latlon)          0     test_latlon_swapped, test_swap_latlon_fixes,
                                                                                                    test_whole_file_swapped_warns
empty / non-numeric coordinates        ``missing_coordinates`` / ``bad_coordinates``          0     test_missing_and_bad_coordinates
projected values in lon/lat            ``columns lon/lat hold projected metres such as        3     test_projected_lonlat_refused
                                       500000/100000, not degrees -- fix: give --crs ...``
  ... with --crs                       read as x/y                                            0     test_projected_lonlat_with_crs,
                                                                                                    test_projected_minority_quarantined
x/y without a CRS                      ``x/y columns E/N have no coordinate reference system  3     test_xy_without_crs
                                       (values look like Slovenian grid metres) -- fix:
                                       give --crs EPSG:3794 (D96/TM) or --crs EPSG:3912``
x/y in EPSG:3794 / EPSG:3912           reprojected (3912 = old D48/GK grid)                   0     test_xy_crs_3794_and_3912
X_D96 = northing (GK labels)           detected by value ranges, swapped, warning             0     test_gk_labelled_d96
duplicate event_id / time+place        ``duplicate_event_id`` / ``duplicate_time_place``      0     test_duplicates
                                       (first kept)
farther than max_distance_m            ``too_far_from_border``                                0     test_far_from_border,
                                                                                                    test_border_distance_exact
invalid / empty / non-point geometry   ``invalid_geometry`` / ``empty_geometry`` /            0     test_geojson_bad_geometries
                                       ``not_a_point``
vector file without CRS                ``the file has no coordinate reference system``        3     test_vector_without_crs
GeoJSON / GPKG / SHP / Parquet         read by extension                                      0     test_formats,
                                                                                                    test_parquet_typed_naive_times
persons not a whole number >= 1        ``bad_persons``                                        0     test_bad_persons
separate date and time columns         joined, warning                                        0     test_date_time_columns_joined
effort end before start                ``end_before_start``                                   0     test_effort_end_before_start,
                                                                                                    test_dst_duration_in_utc
effort unknown segment id              ``unknown_segment``                                    0     test_effort_unknown_segment
effort by location / neither           coordinates kept / ``missing_location``                0     test_effort_by_location
row with fewer fields than header      padded with blanks, then checked (e.g.                 0     test_short_row_padded
                                       ``missing_coordinates``)
quoted newline inside a value          kept in the value                                      0     test_quoted_newline
lon/lat and x/y columns both present   lon/lat used; x/y kept as extra columns, warning       0     test_lonlat_and_xy_both_present
event type aliases / unknown types     normalised (prijetje -> apprehension) / kept, warning  0     test_types_normalised
no event_id column / blank ids         generated ``<file-stem>-<row>``                        0     test_generated_event_ids
--delimiter tab                        used as given                                          0     test_delimiter_override
validate: no --out                     writes no files                                        0     test_cli_validate_no_files_without_out
validate: file-level error             one line on stderr, no traceback                       3     test_cli_validate_file_error
validate: --effort and all flags       both files reported                                    0/3   test_cli_validate_effort_and_flags
--strict and a rejected row            ``<f>, row 3: the date/time cannot be read             3     test_strict_first_rejection,
                                       [bad_timestamp] (timestamp='garbage') -- fix: ...``          test_cli_validate_strict
bad --assume-tz / --crs / --dst        ``unknown time zone 'Mars/Base'`` ...                  2     test_bad_arguments
quarantine file                        ``rejected_<stem>.csv``: row, reason, original values  0     test_write_quarantine, test_cli_validate_ok
=====================================  =====================================================  ====  ===========================================
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.effort import read_effort
from riskmodel.io.read.events import read_events
from riskmodel.io.read.result import ReadResult

NOW = "2025-01-01"
TZ = "Europe/Ljubljana"
HEADER = "event_id,timestamp,lat,lon\n"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def write(tmp_path: Path, text: str | bytes, name: str = "events.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def ev(tmp_path: Path, text: str | bytes, name: str = "events.csv", **kw) -> ReadResult:
    kw.setdefault("now", NOW)
    return read_events(write(tmp_path, text, name), **kw)


def check_invariant(r: ReadResult) -> None:
    s = r.summary
    assert s["accepted"] + s["quarantined"] == s["rows_read"]
    assert len(r.frame) == s["accepted"] and len(r.rejected) == s["quarantined"]
    assert sum(s["by_reason"].values()) == s["quarantined"]
    assert sorted(list(r.frame["row"]) + list(r.rejected["row"])) == list(
        range(1, s["rows_read"] + 1)
    )


def reasons(r: ReadResult) -> dict[int, str]:
    return dict(zip(r.rejected["row"].tolist(), r.rejected["reason"].tolist(), strict=True))


@pytest.fixture(scope="module")
def border() -> gpd.GeoDataFrame:
    """A small N-S line near Metlika (lon 15.3, lat 45.45-45.75) in EPSG:3794."""
    tr = Transformer.from_crs("EPSG:4326", "EPSG:3794", always_xy=True)
    x, y = tr.transform([15.30, 15.30, 15.32], [45.45, 45.60, 45.75])
    return gpd.GeoDataFrame(
        geometry=[shapely.LineString(list(zip(x, y, strict=True)))], crs="EPSG:3794"
    )


GOOD = (
    HEADER
    + "e1,2024-06-01T10:00:00+02:00,45.60,15.31\n"
    + "e2,2024-06-02T11:00:00+02:00,45.61,15.30\n"
)


# --------------------------------------------------------------------------------------------
# file-level errors
# --------------------------------------------------------------------------------------------
def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found") as ei:
        read_events(tmp_path / "nope.csv")
    assert ei.value.exit_code == 3 and "nope.csv" in ei.value.one_line()


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported file type '.xlsx'"):
        ev(tmp_path, "x", name="events.xlsx")


@pytest.mark.parametrize("content, msg", [(b"", "0 bytes"), (b"\n\n  \n", "only blank lines")])
def test_empty_file(tmp_path: Path, content: bytes, msg: str) -> None:
    with pytest.raises(InputError, match=msg) as ei:
        ev(tmp_path, content)
    assert ei.value.exit_code == 3


@pytest.mark.parametrize(
    "content", [HEADER, HEADER.rstrip("\n"), HEADER + "\n\n", HEADER + ",,,\n"]
)
def test_header_only(tmp_path: Path, content: str) -> None:
    with pytest.raises(InputError, match="header but no data rows"):
        ev(tmp_path, content)


def test_missing_columns_suggest_close_matches(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        ev(tmp_path, "time_stamp;latitud;lon\n2024-01-01T00:00Z;45.6;15.3\n")
    msg = ei.value.one_line()
    assert "missing required column(s): timestamp, lat" in msg
    assert "'time_stamp' for timestamp" in msg and "'latitud' for lat" in msg
    assert "--column" in msg


def test_missing_location_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"lat\+lon or x\+y"):
        ev(tmp_path, "timestamp,place\n2024-01-01T00:00Z,Metlika\n")


def test_headerless_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="first line looks like data"):
        ev(tmp_path, "2024-01-01T00:00Z,45.6,15.3\n2024-01-02T00:00Z,45.6,15.3\n")


def test_mapped_column_absent(tmp_path: Path) -> None:
    text = "DATUM_CAS,lat,lon\n2024-06-01T10:00:00+02:00,45.6,15.3\n"
    with pytest.raises(InputError, match="'DATUM_X' given for timestamp.*did you mean 'DATUM_CAS'"):
        ev(tmp_path, text, columns={"timestamp": "DATUM_X"})


def test_one_mapping_for_events_and_effort(tmp_path: Path) -> None:
    """``--column``/``[columns]`` serve both files: coordinates mapped for a Slovenian events
    export do not break an effort log keyed by segment; they are still required where the
    file needs a location, and a near miss is still a typo."""
    cols = {"lon": "X_KOORD", "lat": "Y_KOORD"}
    events = "DATUM_CAS;Y_KOORD;X_KOORD\n2024-06-01T10:00:00+02:00;45,6;15,3\n"
    assert ev(tmp_path, events, columns=cols).summary["accepted"] == 1
    effort = "segment_id,start,end,officer_hours\nSIHR-0001,2024-06-01T06:00Z,2024-06-01T14:00Z,8\n"
    r = read_effort(write(tmp_path, effort, "effort.csv"), columns=cols, now=NOW)
    assert r.summary["accepted"] == 1
    located = "start,end,officer_hours,place\n2024-06-01T06:00Z,2024-06-01T14:00Z,8,Metlika\n"
    with pytest.raises(InputError, match="'X_KOORD' given for lon is not in the file"):
        read_effort(write(tmp_path, located, "e2.csv"), columns=cols, now=NOW)
    # an alias of the key in the file: the mapping meant another column -> still an error
    with pytest.raises(InputError, match="'X_KOORD' given for lon"):
        ev(tmp_path, "timestamp,lat,lon\n2024-06-01T10:00:00+02:00,45.6,15.3\n", columns=cols)
    with pytest.raises(InputError, match="did you mean 'X_KOORD'"):
        ev(tmp_path, events, columns={"lon": "X_KORD", "lat": "Y_KOORD"})


def test_slovenian_excel_export_needs_no_mapping(tmp_path: Path) -> None:
    """What Excel in Slovenian saves: cp1250, ';', decimal commas, dd.mm.yyyy, and the
    headers a records system uses (zemljepisna širina/dolžina, ID dogodka)."""
    text = (
        "ID dogodka;Datum in čas;Zemljepisna širina;Zemljepisna dolžina;Število oseb\n"
        "A-1;05.01.2025 10:00;45,6112;14,6402;3\n"
    )
    p = tmp_path / "izvoz.csv"
    p.write_bytes(text.encode("cp1250"))
    r = read_events(p, assume_tz="Europe/Ljubljana", now="2025-06-01")
    assert r.summary["accepted"] == 1
    f = r.frame.iloc[0]
    assert f["event_id"] == "A-1" and f["persons"] == 3
    assert f["timestamp"] == pd.Timestamp("2025-01-05T09:00Z")  # day first, CET
    assert f["lat"] == pytest.approx(45.6112) and f["lon"] == pytest.approx(14.6402)


def test_unknown_canonical_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown canonical column") as ei:
        ev(tmp_path, GOOD, columns={"tiemstamp": "DATUM"})
    assert ei.value.exit_code == 2


def test_bad_arguments(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        read_events(p, assume_tz="Mars/Base")
    with pytest.raises(ConfigError, match="unknown CRS"):
        read_events(p, crs="EPSG:999999")
    with pytest.raises(ConfigError, match="unknown DST policy"):
        read_events(p, dst="sometimes")
    with pytest.raises(ConfigError, match="unknown encoding"):
        read_events(p, encoding="klingon")


# --------------------------------------------------------------------------------------------
# columns
# --------------------------------------------------------------------------------------------
def test_extra_columns_kept(tmp_path: Path) -> None:
    r = ev(tmp_path, "timestamp,lat,lon,postaja,row\n2024-06-01T10:00:00Z,45.6,15.3,Metlika,7\n")
    assert r.summary["extra_columns"] == ["postaja", "row"]
    assert r.frame.loc[0, "postaja"] == "Metlika"
    assert r.frame.loc[0, "row"] == 1 and r.frame.loc[0, "row_input"] == "7"  # no clash
    assert list(r.frame.columns[:10]) == [
        "row",
        "event_id",
        "timestamp",
        "x",
        "y",
        "lon",
        "lat",
        "persons",
        "type",
        "source",
    ]


@pytest.mark.parametrize(
    "header, values",
    [
        ("Datum;Latitude;LNG;ST_OSEB;ID", "2024-06-01T10:00:00Z;45,6;15,3;4;A-1"),
        (
            "DATE_TIME,lat_wgs84,Longitude,group_size,incident_id",
            "2024-06-01T10:00:00Z,45.6,15.3,4,A-1",
        ),
        ("Datum čas,y_wgs,long,count,event_id", "2024-06-01T10:00:00Z,45.6,15.3,4,A-1"),
        ("DATUM_CAS;GEO_ŠIRINA;GEO_DOLŽINA;Št. oseb;ID", "2024-06-01T10:00:00Z;45,6;15,3;4;A-1"),
    ],
)
def test_aliases_recognised(tmp_path: Path, header: str, values: str) -> None:
    r = ev(tmp_path, f"{header}\n{values}\n")
    check_invariant(r)
    assert r.summary["accepted"] == 1
    row = r.frame.iloc[0]
    assert row["persons"] == 4 and row["event_id"] == "A-1"
    assert row["lat"] == pytest.approx(45.6) and row["lon"] == pytest.approx(15.3)


def test_column_mapping(tmp_path: Path) -> None:
    text = "KDAJ|SIR|DOL|N\n01.06.2024 10:00|45.6|15.3|2\n"
    r = ev(
        tmp_path,
        text,
        columns={"timestamp": "kdaj", "lat": "SIR", "lon": "DOL", "persons": "N"},
        assume_tz=TZ,
    )
    assert r.summary["accepted"] == 1
    assert r.frame.loc[0, "timestamp"] == pd.Timestamp("2024-06-01T08:00Z")
    assert r.frame.loc[0, "persons"] == 2


def test_date_time_columns_joined(tmp_path: Path) -> None:
    text = "datum;ura;lat;lon\n01.06.2024;10.30;45.6;15.3\n2.6.2024;7:05;45.6;15.3\n"
    r = ev(tmp_path, text, assume_tz=TZ)
    assert r.frame["timestamp"].tolist() == [
        pd.Timestamp("2024-06-01T08:30Z"),
        pd.Timestamp("2024-06-02T05:05Z"),
    ]
    assert any("joined" in w for w in r.summary["warnings"])


# --------------------------------------------------------------------------------------------
# encodings and delimiters
# --------------------------------------------------------------------------------------------
PLACES = ["Črnomelj", "Šentjernej", "Žužemberk", "Kočevje", "Brežice", "Đakovo", "Ćićarija"]


def _places_csv() -> str:
    lines = ["timestamp;lat;lon;source"]
    lines += [f"2024-06-0{i + 1}T10:00:00Z;45.6;15.3;{p}" for i, p in enumerate(PLACES)]
    return "\n".join(lines) + "\n"


def test_cp1250_read(tmp_path: Path) -> None:
    r = ev(tmp_path, _places_csv().encode("cp1250"))
    assert r.summary["encoding"] == "cp1250"
    assert r.frame["source"].tolist() == PLACES
    assert any("read as cp1250" in w for w in r.summary["warnings"])


def test_latin1_read(tmp_path: Path) -> None:
    names = ["Müller", "Ñandú", "Åsa Ørsted", "Ràfols", "Søren"]
    text = "timestamp,lat,lon,source\n" + "".join(
        f"2024-06-01T10:0{i}:00Z,45.6,15.3,{n}\n" for i, n in enumerate(names)
    )
    r = ev(tmp_path, text.encode("latin-1"))
    assert r.summary["encoding"] == "latin-1"
    assert r.frame["source"].tolist() == names


def test_utf16_read(tmp_path: Path) -> None:
    text = _places_csv().replace(";", "\t")
    r = ev(tmp_path, text.encode("utf-16"), name="events.txt")
    assert r.summary["encoding"] == "utf-16" and r.summary["delimiter"] == "\t"
    assert r.frame["source"].tolist() == PLACES


def test_encoding_override(tmp_path: Path) -> None:
    # ISO-8859-2 agrees with cp1250 on č/ž but not on š/Š; only the override gets it right.
    r = ev(tmp_path, _places_csv().encode("iso-8859-2"), encoding="iso-8859-2")
    assert r.frame["source"].tolist() == PLACES


def test_wrong_encoding(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot decode the file as utf-8"):
        ev(tmp_path, _places_csv().encode("cp1250"), encoding="utf-8")


@pytest.mark.parametrize(
    "sep, prefix",
    [
        (",", ""),
        (";", ""),
        ("\t", ""),
        ("|", ""),
        (";", "\ufeff"),
        (",", "\ufeff"),
        (";", "sep=;\n"),
    ],
)
def test_delimiter_detection(tmp_path: Path, sep: str, prefix: str) -> None:
    rows = [
        ["event_id", "timestamp", "lat", "lon", "source"],
        ["a", "2024-06-01T10:00:00+02:00", "45.6", "15.3", "PU Novo mesto"],
        ["b", "2024-06-01T11:00:00+02:00", "45.61", "15.31", "PP Metlika"],
    ]
    text = prefix + "\r\n".join(sep.join(r) for r in rows) + "\r\n"
    r = ev(tmp_path, text)
    check_invariant(r)
    assert r.summary["delimiter"] == sep
    assert r.summary["accepted"] == 2 and r.frame["event_id"].tolist() == ["a", "b"]


def test_delimiter_override(tmp_path: Path) -> None:
    r = ev(tmp_path, GOOD.replace(",", "\t"), delimiter="tab")
    assert r.summary["accepted"] == 2


def test_decimal_comma(tmp_path: Path) -> None:
    r = ev(tmp_path, "timestamp;lat;lon\n2024-06-01T10:00:00Z;45,6123;15,3\n")
    assert r.frame.loc[0, "lat"] == pytest.approx(45.6123)
    r = ev(tmp_path, 'timestamp,lat,lon\n2024-06-01T10:00:00Z,"45,6123","15,3"\n')
    assert r.frame.loc[0, "lat"] == pytest.approx(45.6123)


def test_malformed_row_kept_in_place(tmp_path: Path) -> None:
    text = (
        GOOD + "e3,2024-06-03T10:00:00Z,45.6,15.3,EXTRA,MORE\ne4,2024-06-04T10:00:00Z,45.6,15.3\n"
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    assert reasons(r) == {3: "malformed_row"}
    assert "EXTRA" in r.rejected.iloc[0]["event_id"]  # the whole original line is kept
    assert r.frame["row"].tolist() == [1, 2, 4]


def test_blank_lines_counted(tmp_path: Path) -> None:
    text = HEADER + "e1,2024-06-01T10:00:00Z,45.6,15.3\n\ne3,2024-06-03T10:00:00Z,45.6,15.3\n"
    r = ev(tmp_path, text)
    check_invariant(r)
    assert reasons(r) == {2: "empty_row"}
    assert r.frame["row"].tolist() == [1, 3]


def test_short_row_padded(tmp_path: Path) -> None:
    r = ev(tmp_path, GOOD + "e3,2024-06-03T10:00:00Z,45.6\n")
    check_invariant(r)
    assert reasons(r) == {3: "missing_coordinates"}


def test_quoted_newline(tmp_path: Path) -> None:
    text = 'timestamp,lat,lon,note\n2024-06-01T10:00:00Z,45.6,15.3,"two\nlines"\n'
    r = ev(tmp_path, text)
    assert r.frame.loc[0, "note"] == "two\nlines"


def test_unclosed_quote(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot parse the CSV"):
        ev(tmp_path, GOOD + 'e3,"2024-06-03T10:00:00Z,45.6,15.3\n' + GOOD.split("\n", 1)[1])


# --------------------------------------------------------------------------------------------
# timestamps
# --------------------------------------------------------------------------------------------
def test_bad_timestamps_quarantined(tmp_path: Path) -> None:
    text = HEADER + "".join(
        f"e{i},{t},45.6,15.3\n"
        for i, t in enumerate(
            [
                "2024-06-01T10:00:00Z",
                "garbage",
                "",
                "2024-02-30T10:00:00Z",
                "31.13.2024 10:00",
                "2024",
                "12:00",
                "2024-06-01T25:00:00Z",
            ]
        )
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    assert reasons(r) == {
        2: "bad_timestamp",
        3: "missing_timestamp",
        4: "bad_timestamp",
        5: "bad_timestamp",
        6: "bad_timestamp",
        7: "bad_timestamp",
        8: "bad_timestamp",
    }


def test_timestamp_formats(tmp_path: Path) -> None:
    values = {
        "2024-06-01T10:00:00+02:00": "2024-06-01T08:00Z",
        "2024-06-01 10:00:00+0200": "2024-06-01T08:00Z",
        "2024-06-01T08:00:00Z": "2024-06-01T08:00Z",
        "2024-06-01 08:00 UTC": "2024-06-01T08:00Z",
        "2024-06-01 10:00 CEST": "2024-06-01T08:00Z",
        "2024-01-01 10:00 CET": "2024-01-01T09:00Z",
        "01.06.2024 10:00+02:00": "2024-06-01T08:00Z",
        "1. 6. 2024 10.00 +02:00": "2024-06-01T08:00Z",
        "2024/06/01 08:00Z": "2024-06-01T08:00Z",
        "2024-06-01T10:00:00.250+02:00": "2024-06-01T08:00:00.250Z",
    }
    # Different places: equal instants at one place would be duplicates.
    text = "timestamp;lat;lon\n" + "".join(f"{v};45.{600 + i};15.3\n" for i, v in enumerate(values))
    r = ev(tmp_path, text)
    assert r.summary["quarantined"] == 0, r.rejected
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(v) for v in values.values()]
    assert str(r.frame["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_naive_formats_with_assume_tz(tmp_path: Path) -> None:
    values = [
        "2024-06-01 10:00",
        "2024-06-01T10:00:00",
        "01.06.2024 10:00",
        "1.6.2024 10:00:00",
        "01/06/2024 10:00",
        "13/06/2024 10:00",
    ]
    text = "timestamp;lat;lon\n" + "".join(f"{v};45.{600 + i};15.3\n" for i, v in enumerate(values))
    r = ev(tmp_path, text, assume_tz=TZ)
    assert r.summary["quarantined"] == 0, r.rejected
    assert r.frame["timestamp"].dt.hour.tolist() == [8] * 6
    assert r.frame["timestamp"].dt.day.tolist() == [1, 1, 1, 1, 1, 13]


def test_us_slashed_dates_detected(tmp_path: Path) -> None:
    text = "timestamp;lat;lon\n06/13/2024 10:00;45.6;15.3\n06/01/2024 10:00;45.6;15.3\n"
    r = ev(tmp_path, text, assume_tz=TZ)
    assert r.frame["timestamp"].dt.month.tolist() == [6, 6]
    assert any("month/day" in w for w in r.summary["warnings"])


def test_all_naive_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        ev(tmp_path, HEADER + "e1,2024-06-01 10:00,45.6,15.3\n")
    msg = ei.value.one_line()
    assert "no time zone (row 1: '2024-06-01 10:00')" in msg
    assert "--assume-tz Europe/Ljubljana" in msg and ei.value.exit_code == 3


def test_mixed_naive_quarantined(tmp_path: Path) -> None:
    r = ev(tmp_path, GOOD + "e3,2024-06-03 10:00,45.6,15.3\n")
    assert reasons(r) == {3: "naive_timestamp"}


DST_TEXT = HEADER + (
    "e1,2024-03-31 02:30,45.6,15.3\n"  # does not exist in Ljubljana
    "e2,2024-10-27 02:30,45.6,15.3\n"  # occurs twice
    "e3,2024-06-01 12:00,45.6,15.3\n"
)


def test_dst_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        ev(tmp_path, DST_TEXT, assume_tz=TZ)
    msg = ei.value.one_line()
    assert "row 1: local timestamp '2024-03-31 02:30' does not exist" in msg
    assert "--dst" in msg


@pytest.mark.parametrize(
    "policy, e1, e2",
    [
        ("shift", "2024-03-31T01:30Z", "dst_ambiguous"),
        ("earliest", "2024-03-31T01:30Z", "2024-10-27T00:30Z"),
        ("latest", "2024-03-31T01:30Z", "2024-10-27T01:30Z"),
        ("drop", "dst_nonexistent", "dst_ambiguous"),
    ],
)
def test_dst_policies(tmp_path: Path, policy: str, e1: str, e2: str) -> None:
    r = ev(tmp_path, DST_TEXT, assume_tz=TZ, dst=policy)
    check_invariant(r)
    got = dict(zip(r.frame["event_id"], r.frame["timestamp"], strict=True))
    why = {f"e{k}": v for k, v in reasons(r).items()}
    for eid, want in (("e1", e1), ("e2", e2)):
        if want.startswith("dst_"):
            assert why[eid] == want
        else:
            assert got[eid] == pd.Timestamp(want)
    assert got["e3"] == pd.Timestamp("2024-06-01T10:00Z")


def test_dst_duration_in_utc(tmp_path: Path) -> None:
    # The autumn night shift 22:00-06:00 lasts 9 h: durations are taken in UTC.
    text = (
        "segment_id,start,end,officer_hours\n"
        "S1,2024-10-26T22:00:00+02:00,2024-10-27T06:00:00+01:00,18\n"
    )
    r = read_effort(write(tmp_path, text), now=NOW)
    f = r.frame
    assert (f["end"] - f["start"]).iloc[0] == pd.Timedelta(hours=9)


def test_future_and_old(tmp_path: Path) -> None:
    text = (
        GOOD + "e3,2031-01-01T00:00:00Z,45.6,15.3\ne4,1999-12-31T00:00:00Z,45.6,15.3\n"
        "e5,9999-12-31T00:00:00Z,45.6,15.3\ne6,0001-01-01T00:00:00Z,45.6,15.3\n"
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    assert reasons(r) == {
        3: "future_timestamp",
        4: "too_old_timestamp",
        5: "future_timestamp",
        6: "too_old_timestamp",
    }
    r = ev(tmp_path, text, min_date="1990-01-01", now="2040-01-01")
    assert reasons(r) == {5: "future_timestamp", 6: "too_old_timestamp"}


def test_date_only_warns(tmp_path: Path) -> None:
    r = ev(tmp_path, "timestamp,lat,lon\n2024-06-01,45.6,15.3\n", assume_tz=TZ)
    assert r.frame.loc[0, "timestamp"] == pd.Timestamp("2024-05-31T22:00Z")
    assert any("no time of day" in w for w in r.summary["warnings"])


# --------------------------------------------------------------------------------------------
# coordinates
# --------------------------------------------------------------------------------------------
def test_coords_out_of_range(tmp_path: Path) -> None:
    r = ev(
        tmp_path, GOOD + "e3,2024-06-03T10:00:00Z,95.0,15.3\ne4,2024-06-03T10:00:00Z,45.6,-190\n"
    )
    assert reasons(r) == {3: "coords_out_of_range", 4: "coords_out_of_range"}


def test_latlon_swapped(tmp_path: Path) -> None:
    r = ev(tmp_path, GOOD + "e3,2024-06-03T10:00:00Z,15.31,45.62\n")
    assert reasons(r) == {3: "latlon_swapped"}
    err = r.first_rejection_error()
    assert err is not None and "--swap-latlon" in err.one_line()


def test_swap_latlon_fixes(tmp_path: Path) -> None:
    r = ev(tmp_path, GOOD + "e3,2024-06-03T10:00:00Z,15.31,45.62\n", swap_latlon=True)
    assert r.summary["quarantined"] == 0
    row = r.frame.set_index("event_id").loc["e3"]
    assert (row["lat"], row["lon"]) == (pytest.approx(45.62), pytest.approx(15.31))
    assert any("swapped latitude/longitude in 1 row" in w for w in r.summary["warnings"])


def test_whole_file_swapped_warns(tmp_path: Path) -> None:
    r = ev(
        tmp_path,
        "timestamp,lat,lon\n2024-06-01T10:00:00Z,15.3,45.6\n2024-06-02T10:00:00Z,15.31,45.6\n",
    )
    assert r.summary["accepted"] == 0
    assert any("give --swap-latlon" in w for w in r.summary["warnings"])


def test_missing_and_bad_coordinates(tmp_path: Path) -> None:
    text = GOOD + "".join(
        f"e{i},2024-06-03T1{i}:00:00Z,{la},{lo}\n"
        for i, (la, lo) in enumerate(
            [("", "15.3"), ("NaN", "15.3"), ("45°36'", "15.3"), ("45.6", "inf"), ("abc", "")],
            start=3,
        )
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    assert reasons(r) == {
        3: "missing_coordinates",
        4: "missing_coordinates",
        5: "bad_coordinates",
        6: "bad_coordinates",
        7: "missing_coordinates",
    }


def test_projected_lonlat_refused(tmp_path: Path) -> None:
    text = (
        "timestamp,lat,lon\n2024-06-01T10:00:00Z,100000,500000\n2024-06-02T10:00:00Z,90000,510000\n"
    )
    with pytest.raises(InputError) as ei:
        ev(tmp_path, text)
    msg = ei.value.one_line()
    assert "hold projected metres such as 500000/100000, not degrees" in msg
    assert "--crs EPSG:3794" in msg


def test_projected_lonlat_with_crs(tmp_path: Path) -> None:
    text = "timestamp,lat,lon\n2024-06-01T10:00:00Z,60000,520000\n"
    r = ev(tmp_path, text, crs="EPSG:3794")
    assert r.summary["accepted"] == 1
    assert r.frame.loc[0, "x"] == pytest.approx(520000) and r.frame.loc[0, "y"] == pytest.approx(
        60000
    )


def test_projected_minority_quarantined(tmp_path: Path) -> None:
    r = ev(tmp_path, GOOD + "e3,2024-06-03T10:00:00Z,100000,500000\n")
    assert reasons(r) == {3: "projected_as_lonlat"}


def test_xy_without_crs(tmp_path: Path) -> None:
    with pytest.raises(InputError) as ei:
        ev(tmp_path, "timestamp,E,N\n2024-06-01T10:00:00Z,520000,60000\n")
    msg = ei.value.one_line()
    assert "x/y columns E/N have no coordinate reference system" in msg
    assert "Slovenian grid" in msg and "--crs EPSG:3794" in msg and "EPSG:3912" in msg


@pytest.mark.parametrize("crs", ["EPSG:3794", "EPSG:3912"])
def test_xy_crs_3794_and_3912(tmp_path: Path, crs: str) -> None:
    lon, lat = 15.31, 45.62
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    r = ev(tmp_path, f"timestamp,easting,northing\n2024-06-01T10:00:00Z,{x:.2f},{y:.2f}\n", crs=crs)
    row = r.frame.iloc[0]
    assert (row["lon"], row["lat"]) == (pytest.approx(lon, abs=1e-6), pytest.approx(lat, abs=1e-6))
    x96, y96 = Transformer.from_crs("EPSG:4326", "EPSG:3794", always_xy=True).transform(lon, lat)
    # pyproj's direct D48->D96 transformation and the WGS84 Helmert path differ by < 1 m.
    assert (row["x"], row["y"]) == (pytest.approx(x96, abs=1.0), pytest.approx(y96, abs=1.0))
    if crs == "EPSG:3912":
        assert abs(row["x"] - x) > 100  # the old grid really differs by hundreds of metres


def test_gk_labelled_d96(tmp_path: Path) -> None:
    # Slovenian exports: Y_D96 = easting, X_D96 = northing. CRS inferred from the names.
    text = (
        "timestamp;X_D96;Y_D96\n2024-06-01T10:00:00Z;60000,5;520000,25\n"
        "2024-06-02T10:00:00Z;61000;521000\n2024-06-03T10:00:00Z;522000;62000\n"
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    assert r.frame.loc[0, "x"] == pytest.approx(520000.25) and r.frame.loc[0, "y"] == pytest.approx(
        60000.5
    )
    assert reasons(r) == {3: "xy_swapped"}
    warns = " ".join(r.summary["warnings"])
    assert "Gauss-Krüger" in warns and "EPSG:3794" in warns


def test_duplicates(tmp_path: Path) -> None:
    text = (
        GOOD + "e1,2024-06-09T10:00:00Z,45.6,15.3\n"
        "e9,2024-06-01T10:00:00+02:00,45.600001,15.31\n"
        "e10,garbage,45.6,15.3\ne10,2024-06-10T10:00:00Z,45.6,15.3\n"
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    # e10's first row is bad, so the second is not a duplicate of anything usable; e9 has the
    # time and place of e1 but its own id: a second group, kept.
    assert reasons(r) == {3: "duplicate_event_id", 5: "bad_timestamp"}
    assert r.summary["duplicates"] == 1


def test_far_from_border(tmp_path: Path, border: gpd.GeoDataFrame) -> None:
    text = GOOD + "e3,2024-06-03T10:00:00Z,46.05,14.5\ne4,2024-06-03T11:00:00Z,45.6,15.5\n"
    r = ev(tmp_path, text, border=border)
    check_invariant(r)
    assert reasons(r) == {3: "too_far_from_border"}  # Ljubljana; e4 is ~15.6 km away
    d = r.frame.set_index("event_id")["dist_to_border_m"]
    line = border.geometry.values[0]
    assert d["e2"] == pytest.approx(line.distance(shapely.Point(r.frame.x[1], r.frame.y[1])))
    assert d["e2"] < 150
    assert 15000 < d["e4"] < 16500
    assert r.summary["share_within_1km"] == pytest.approx(2 / 3)
    r = ev(tmp_path, text, border=border, max_distance_m=10000)
    assert reasons(r) == {3: "too_far_from_border", 4: "too_far_from_border"}


def test_border_distance_exact(border: gpd.GeoDataFrame) -> None:
    from riskmodel.io.read.border import BorderIndex

    rng = np.random.default_rng(3)
    line = border.geometry.values[0]
    x0, y0, x1, y1 = line.bounds
    x = rng.uniform(x0 - 20000, x1 + 20000, 2000)
    y = rng.uniform(y0 - 20000, y1 + 20000, 2000)
    got = BorderIndex(border, "EPSG:3794").distance(x, y, 50000)
    want = shapely.distance(shapely.points(x, y), line)
    assert np.allclose(got, want, atol=1e-6)
    # near the border (the grid pass: within 1 km), on vertices, and NaN points, exactly too
    t = rng.uniform(0, line.length, 3000)
    on = shapely.get_coordinates(shapely.line_interpolate_point(line, t))
    near = on + rng.normal(0, 400, on.shape)
    v = shapely.get_coordinates(line)[:50]
    near[: len(v)] = v  # on the line's own vertices: distance 0
    near[50:60, 0] = np.nan
    got = BorderIndex(border, "EPSG:3794").distance(near[:, 0], near[:, 1], 50000)
    ok = np.isfinite(near).all(axis=1)
    want = shapely.distance(shapely.points(near[ok]), line)
    assert np.allclose(got[ok], want, atol=1e-6) and np.isinf(got[~ok]).all()
    assert (got[: len(v)] < 1e-6).all()


def test_nearest_segment_is_the_trees_and_remembered() -> None:
    """The grid passes find the nearest segment and chainage exactly as a shapely STRtree and
    line_locate_point do, at every reach (near, 1-4 km, beyond the grid); a second query
    reuses the first one's answers only for the very same points."""
    from riskmodel.features.panel import assign_segments
    from riskmodel.geo.geodata import Geography
    from riskmodel.io.read.border import BorderIndex

    geo = Geography()
    seg = geo.segments
    line = geo.border.geometry.values[0]
    rng = np.random.default_rng(5)
    t = rng.uniform(0, line.length, 4000)
    on = shapely.get_coordinates(shapely.line_interpolate_point(line, t))
    r = rng.choice([100.0, 600.0, 2500.0, 9000.0], size=(len(on), 1))
    p = on + rng.normal(0, 1, on.shape) * r
    x, y = p[:, 0], p[:, 1]
    pts = shapely.points(x, y)
    (i, j), d = shapely.STRtree(seg.geometry.values).query_nearest(pts, return_distance=True)
    want = np.full(len(p), -1)
    want[i] = j
    index = BorderIndex(seg, geo.crs)
    dist, piece = index.nearest(x, y, 20_000)
    exact = shapely.distance(pts, line)
    near = exact <= 20_000
    beyond = exact > 20_000 + index.spacing  # the limit's slack
    assert 0 < beyond.sum() < 100 and np.isinf(dist[beyond]).all() and (piece[beyond] < 0).all()
    assert np.allclose(dist[~beyond], exact[~beyond], atol=1e-6)
    assert (index.source[piece[near]] == want[near]).all()
    ev = pd.DataFrame({"x": x, "y": y})
    got = assign_segments(ev, seg, 20_000, index=index)  # remembered: same answers
    assert (got["seq"].to_numpy() == np.where(near, seg["seq"].to_numpy()[want], -1)).all()
    chain = (
        seg["chainage_from_km"].to_numpy()[want]
        + shapely.line_locate_point(seg.geometry.values[want], pts) / 1000
    )
    assert np.allclose(got["chainage_km"][near], chain[near], atol=1e-9)
    assert got["chainage_km"][~near].isna().all()
    # a query mixing remembered and new points, and a farther limit, answer as a fresh index
    q = np.concatenate([p[::3], p[1::3] + 7.0])
    for upper in (20_000, 5_000):
        a = index.nearest(q[:, 0], q[:, 1], upper)
        b = BorderIndex(seg, geo.crs).nearest(q[:, 0], q[:, 1], upper)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.isinf(b[0][b[1] < 0]).all() and (b[0][b[1] >= 0] <= 5_050).all()


def test_bad_persons(tmp_path: Path) -> None:
    text = "timestamp,lat,lon,persons\n" + "".join(
        f"2024-06-01T1{i}:00:00Z,45.6,15.3,{p}\n"
        for i, p in enumerate(["3", "", "0", "2.5", "-1", "x", '"4,0"'])
    )
    r = ev(tmp_path, text)
    check_invariant(r)
    assert reasons(r) == {3: "bad_persons", 4: "bad_persons", 5: "bad_persons", 6: "bad_persons"}
    assert r.frame["persons"].tolist() == [3, 1, 4]
    assert r.frame["persons"].dtype == np.int64


def test_types_normalised(tmp_path: Path) -> None:
    text = "timestamp,lat,lon,type\n" + "".join(
        f"2024-06-01T1{i}:00:00Z,45.6,15.3,{t}\n"
        for i, t in enumerate(["Prijetje", "", "smuggler", "DETECTION", "drone sighting"])
    )
    r = ev(tmp_path, text)
    assert r.frame["type"].tolist() == [
        "apprehension",
        "apprehension",
        "smuggler_arrest",
        "detection",
        "drone sighting",
    ]
    assert any("unknown event type" in w for w in r.summary["warnings"])


def test_generated_event_ids(tmp_path: Path) -> None:
    r = ev(
        tmp_path,
        "timestamp,lat,lon\n2024-06-01T10:00:00Z,45.6,15.3\n\n2024-06-02T10:00:00Z,45.6,15.3\n",
        name="pu_nm.csv",
    )
    assert r.frame["event_id"].tolist() == ["pu_nm-1", "pu_nm-3"]


# --------------------------------------------------------------------------------------------
# vector and columnar formats
# --------------------------------------------------------------------------------------------
def _gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "event_id": ["a", "b"],
            "timestamp": ["2024-06-01T10:00:00+02:00", "2024-06-02T10:00:00Z"],
            "persons": [2, 5],
            "opis": ["Kolpa", "Sotla"],
        },
        geometry=shapely.points([15.31, 15.32], [45.6, 45.61]),
        crs="EPSG:4326",
    )


@pytest.mark.parametrize(
    "name, driver",
    [
        ("events.geojson", "GeoJSON"),
        ("events.gpkg", "GPKG"),
        ("events.shp", "ESRI Shapefile"),
        ("events.parquet", None),
        ("plain.parquet", "plain"),
    ],
)
def test_formats(tmp_path: Path, name: str, driver: str | None) -> None:
    gdf = _gdf()
    p = tmp_path / name
    if driver is None:
        gdf.to_crs("EPSG:3794").to_parquet(p)
    elif driver == "plain":
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["lat"], df["lon"] = gdf.geometry.y, gdf.geometry.x
        df["timestamp"] = pd.to_datetime(df["timestamp"], format="ISO8601", utc=True)
        df.to_parquet(p)
    else:
        gdf.to_crs("EPSG:3794" if driver == "GPKG" else "EPSG:4326").to_file(p, driver=driver)
    r = read_events(p, now=NOW)
    check_invariant(r)
    assert r.summary["accepted"] == 2, r.rejected
    assert r.frame["persons"].tolist() == [2, 5]
    assert r.frame["lon"].round(6).tolist() == [15.31, 15.32]
    assert r.frame["timestamp"].tolist() == [
        pd.Timestamp("2024-06-01T08:00Z"),
        pd.Timestamp("2024-06-02T10:00Z"),
    ]
    assert r.frame["opis"].tolist() == ["Kolpa", "Sotla"]


def test_geojson_bad_geometries(tmp_path: Path) -> None:
    feats = [
        ({"type": "Point", "coordinates": [15.31, 45.6]}, "2024-06-01T10:00:00Z"),
        (None, "2024-06-01T11:00:00Z"),
        ({"type": "Point", "coordinates": []}, "2024-06-01T12:00:00Z"),
        ({"type": "LineString", "coordinates": [[15.3, 45.6]]}, "2024-06-01T13:00:00Z"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[15.3, 45.6], [15.4, 45.6], [15.4, 45.7], [15.3, 45.6]]],
            },
            "2024-06-01T14:00:00Z",
        ),
        ({"type": "MultiPoint", "coordinates": [[15.32, 45.61]]}, "2024-06-01T15:00:00Z"),
        ({"type": "Point", "coordinates": [45.6, 15.31]}, "2024-06-01T16:00:00Z"),
    ]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"timestamp": t}, "geometry": g} for g, t in feats
        ],
    }
    r = ev(tmp_path, json.dumps(fc), name="events.geojson")
    check_invariant(r)
    assert reasons(r) == {
        2: "empty_geometry",
        3: "empty_geometry",
        4: "invalid_geometry",
        5: "not_a_point",
        7: "latlon_swapped",
    }
    assert "POLYGON" in r.rejected.set_index("row").loc[5, "geometry_wkt"]


def test_vector_without_crs(tmp_path: Path) -> None:
    gdf = _gdf().to_crs("EPSG:3794")
    p = tmp_path / "events.shp"
    gdf.to_file(p)
    p.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match="no coordinate reference system"):
        read_events(p, now=NOW)
    r = read_events(p, now=NOW, crs="EPSG:3794")
    assert r.frame["lon"].round(6).tolist() == [15.31, 15.32]


def test_parquet_typed_naive_times(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2024-06-01 10:00", "2024-03-31 02:30"]),
            "lat": [45.6, 45.6],
            "lon": [15.3, np.nan],
        }
    )
    p = tmp_path / "e.parquet"
    df.to_parquet(p)
    with pytest.raises(InputError, match="no time zone"):
        read_events(p, now=NOW)
    r = read_events(p, now=NOW, assume_tz=TZ, dst="drop")
    assert reasons(r) == {2: "dst_nonexistent"}  # first failing check wins over missing lon
    assert r.frame.loc[0, "timestamp"] == pd.Timestamp("2024-06-01T08:00Z")


# --------------------------------------------------------------------------------------------
# effort
# --------------------------------------------------------------------------------------------
def test_effort_end_before_start(tmp_path: Path) -> None:
    text = (
        "Odsek;Zacetek;Konec;Ure\n"
        "S1;2024-06-01T06:00:00+02:00;2024-06-01T14:00:00+02:00;16\n"
        "S2;2024-06-01T14:00:00+02:00;2024-06-01T06:00:00+02:00;16\n"
        "S3;2024-06-01T14:00:00+02:00;2024-06-01T14:00:00+02:00;0\n"
        "S4;2024-06-01T14:00:00+02:00;garbage;8\n"
        "S5;2024-06-01T14:00:00+02:00;2024-06-01T22:00:00+02:00;-3\n"
        "S6;2024-06-01T14:00:00+02:00;2024-06-01T22:00:00+02:00;\n"
    )
    r = read_effort(write(tmp_path, text, "effort.csv"), now=NOW)
    check_invariant(r)
    assert reasons(r) == {
        2: "end_before_start",
        3: "zero_duration",
        4: "bad_timestamp:end",
        5: "bad_officer_hours",
        6: "missing_officer_hours",
    }
    f = r.frame
    assert list(f.columns[:9]) == [
        "row",
        "segment_id",
        "x",
        "y",
        "lon",
        "lat",
        "start",
        "end",
        "officer_hours",
    ]
    assert f.loc[0, "officer_hours"] == 16.0 and f.loc[0, "segment_id"] == "S1"
    err = r.first_rejection_error()
    assert err is not None and "row 2" in err.one_line() and "end is before start" in err.one_line()


def test_effort_unknown_segment(tmp_path: Path) -> None:
    text = (
        "segment_id,start,end,officer_hours\n"
        "S1,2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,16\n"
        "S9,2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,16\n"
        ",2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,16\n"
    )
    p = write(tmp_path, text, "effort.csv")
    r = read_effort(p, segment_ids={"S1", "S2"}, now=NOW)
    assert reasons(r) == {2: "unknown_segment", 3: "missing_location"}
    r = read_effort(p, now=NOW)  # without a segment list, any id is fine
    assert reasons(r) == {3: "missing_location"}


def test_effort_by_location(tmp_path: Path) -> None:
    text = (
        "segment_id,start,end,hours,lat,lon\n"
        "S1,2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,16,,\n"
        ",2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,8,45.6,15.3\n"
        ",2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,8,,\n"
        ",2024-06-01T06:00:00Z,2024-06-01T14:00:00Z,8,15.3,45.6\n"
    )
    r = read_effort(write(tmp_path, text, "effort.csv"), now=NOW)
    check_invariant(r)
    assert reasons(r) == {3: "missing_location", 4: "latlon_swapped"}
    f = r.frame
    assert f["segment_id"].isna().tolist() == [False, True]
    assert np.isnan(f.loc[0, "x"]) and f.loc[1, "lat"] == pytest.approx(45.6)


def test_effort_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing required column.*officer_hours.*segment_id"):
        read_effort(write(tmp_path, "start,end\n2024-06-01T06:00Z,2024-06-01T14:00Z\n", "e.csv"))


# --------------------------------------------------------------------------------------------
# strict, quarantine file
# --------------------------------------------------------------------------------------------
def test_strict_first_rejection(tmp_path: Path) -> None:
    text = GOOD + "e3,garbage,45.6,15.3\ne4,2024-06-03T10:00:00Z,,15.3\n"
    with pytest.raises(InputError) as ei:
        ev(tmp_path, text, strict=True)
    msg = ei.value.one_line()
    assert msg.startswith(f"{tmp_path / 'events.csv'}, row 3: the date/time cannot be read")
    assert "[bad_timestamp]" in msg and "timestamp='garbage'" in msg and "-- fix: " in msg
    assert ei.value.exit_code == 3
    assert ev(tmp_path, GOOD, strict=True).summary["accepted"] == 2


def test_write_quarantine(tmp_path: Path) -> None:
    text = (
        "timestamp;lat;lon;source;reason\n2024-06-01T10:00:00Z;45,6;15,3;Črnomelj;x\n"
        "nope;45,6;15,3;Šentjernej;y\n"
    )
    r = ev(tmp_path, text.encode("cp1250"))
    out = r.write_quarantine(tmp_path / "out")
    assert out == tmp_path / "out" / "rejected_events.csv"
    back = pd.read_csv(out, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert back.columns.tolist() == [
        "row",
        "reason",
        "timestamp",
        "lat",
        "lon",
        "source",
        "reason_original",
    ]
    assert back.iloc[0].tolist() == [
        "2",
        "bad_timestamp",
        "nope",
        "45,6",
        "15,3",
        "Šentjernej",
        "y",
    ]
    assert ev(tmp_path, GOOD).write_quarantine(tmp_path / "out2") is None
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, border: gpd.GeoDataFrame):
    from riskmodel.cli import main

    monkeypatch.chdir(tmp_path)
    border.to_file(tmp_path / "border.geojson", driver="GeoJSON")

    def run(*args: str) -> tuple[int, str, str]:
        res = CliRunner().invoke(main, ["validate", "--border", "border.geojson", *args])
        return res.exit_code, res.stdout, res.stderr

    return run


def test_cli_validate_ok(tmp_path: Path, cli) -> None:
    write(tmp_path, GOOD + "e3,garbage,45.6,15.3\n")
    code, out, err = cli("--events", "events.csv", "--out", "q")
    assert code == 0, err
    assert "read 3 = accepted 2 + quarantined 1" in out
    assert "bad_timestamp" in out and "within 1 km" in out and "time span" in out
    assert (tmp_path / "q" / "rejected_events.csv").is_file()


def test_cli_validate_no_files_without_out(tmp_path: Path, cli) -> None:
    write(tmp_path, GOOD + "e3,garbage,45.6,15.3\n")
    before = set(tmp_path.iterdir())
    code, _, _ = cli("--events", "events.csv")
    assert code == 0 and set(tmp_path.iterdir()) == before


def test_cli_validate_strict(tmp_path: Path, cli) -> None:
    write(tmp_path, GOOD + "e3,garbage,45.6,15.3\n")
    code, out, err = cli("--events", "events.csv", "--strict")
    assert code == 3
    assert "read 3 = accepted 2 + quarantined 1" in out  # the report still comes first
    assert err.strip().startswith("riskmodel: error: events.csv, row 3:")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_validate_file_error(tmp_path: Path, cli) -> None:
    write(tmp_path, HEADER + "e1,2024-06-01 10:00,45.6,15.3\n")
    code, _, err = cli("--events", "events.csv")
    assert code == 3
    assert "--assume-tz Europe/Ljubljana" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli("--events", "events.csv", "--assume-tz", "Europe/Ljubljana")
    assert code == 0, err


def test_cli_validate_effort_and_flags(tmp_path: Path, cli) -> None:
    write(tmp_path, "T;LAT;LON\n2024-03-31 02:30;15,31;45,6\n2024-06-01 10:00;45,6;15,3\n")
    write(
        tmp_path,
        "segment_id\tstart\tend\tofficer_hours\nSIHR-0001\t2024-06-01 06:00\t"
        "2024-06-01 14:00\t16\n".encode("cp1250"),
        "effort.csv",
    )
    code, out, err = cli(
        "--events",
        "events.csv",
        "--effort",
        "effort.csv",
        "--column",
        "timestamp=T",
        "--assume-tz",
        "Europe/Ljubljana",
        "--dst",
        "shift",
        "--swap-latlon",
        "--max-distance-m",
        "5000",
        "--delimiter",
        ";",
    )
    assert code == 3, out  # --delimiter ';' applies to both files: the tab file cannot parse
    code, out, err = cli(
        "--events",
        "events.csv",
        "--effort",
        "effort.csv",
        "--column",
        "timestamp=T",
        "--assume-tz",
        "Europe/Ljubljana",
        "--dst",
        "shift",
        "--swap-latlon",
        "--max-distance-m",
        "5000",
    )
    assert code == 0, err
    assert "events: events.csv" in out and "effort: effort.csv" in out
    assert out.count("quarantined 0") == 2


def test_cli_columns_from_toml(tmp_path: Path, cli) -> None:
    (tmp_path / "riskmodel.toml").write_text('[columns]\ntimestamp = "KDAJ"\n')
    write(tmp_path, "KDAJ,lat,lon\n2024-06-01T10:00:00Z,45.6,15.3\n")
    code, out, err = cli("--events", "events.csv")
    assert code == 0, err
    assert "timestamp<-KDAJ" in out


def test_first_row_too_long(tmp_path: Path) -> None:
    # pandas' C parser silently drops the extra fields of a too-long *first* row.
    r = ev(tmp_path, HEADER + "e1,2024-06-01T10:00:00Z,45.6,15.3,EXTRA\n\n")
    assert reasons(r) == {1: "malformed_row", 2: "empty_row"}


def test_lonlat_and_xy_both_present(tmp_path: Path) -> None:
    r = ev(tmp_path, "timestamp,lat,lon,X_D96,Y_D96\n2024-06-01T10:00:00Z,45.6,15.3,60000,520000\n")
    assert r.frame.loc[0, "X_D96"] == "60000"  # kept as an extra column
    assert "X_D96" in r.summary["extra_columns"] and "x" not in r.summary["columns"]
    assert r.frame.loc[0, "lon"] == pytest.approx(15.3)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import riskmodel.io.read.tables as V

    def denied(*a: object, **k: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(V, "detect_encoding", denied)  # root ignores chmod 0
    with pytest.raises(InputError, match="cannot read the file: Permission denied"):
        read_events(write(tmp_path, GOOD))


def test_empty_geojson(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no rows"):
        ev(tmp_path, '{"type": "FeatureCollection", "features": []}', name="e.geojson")
