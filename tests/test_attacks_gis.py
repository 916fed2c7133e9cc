"""Attacks of issue 13 on the maps, the daily GeoPackage and the morning (helper "gis").

Catalogue (attack -> expected behaviour -> test):

- GeoPackage stores ``date``/``shift_start``/``shift_end`` as text -> DATE and DATETIME fields
  (UTC, as the GeoPackage standard requires), also ``slot_start``/``slot_end`` of plan layers
  -> ``test_gpkg_dates_and_times_are_typed`` (and ``tests/test_qgis.py``: QGIS reads Date /
  DateTime).
- A date column that is not a date -> one-line OutputError, nothing written
  -> ``test_gpkg_refuses_a_date_that_is_not_one``.
- Per-feature casing without symbol levels looks beaded at national scale -> symbol levels on,
  every casing in level 0 under every fill -> ``test_risk_style_uses_symbol_levels``.
- The daily GeoPackage has no plan or segments layer -> ``segments`` and ``plan_<shift>``
  layers, each with its own default style in ``layer_styles``
  -> ``test_daily_gpkg_has_segments_and_plans_styled``; opened styled in real QGIS
  -> ``tests/test_qgis.py::test_outputs_open_styled_in_qgis``.
- Plan labels in QGIS would show UTC hours from the GeoPackage -> a local ``slot`` text column
  labels the checks -> ``test_qgis.py`` (label "PP Metlika 1: 23:00–01:00").
- Classes are ranks within each shift, so the night map looks like the morning map -> the
  HTML map also colours expected events on one scale for the day
  -> ``test_html_map_offers_one_scale_for_the_day``.
- Exploration/forced checks show risk reasons in the per-shift briefing -> labelled
  "exploration" / "forced by the planner", no risk reasons; chance in percent
  -> ``tests/test_daily.py::test_shift_briefing_labels_exploration_and_forced_checks_never_with_risk_reasons``.
- Labels collide ("Zagreb"/"Centar" as one word, checks 7 and 9–12 merge) -> rendered label
  boxes never intersect: ``tests/test_daily.py::test_png_map_labels_never_overlap``,
  ``::test_sketch_labels_never_overlap``, ``::test_html_map_labels_never_overlap``.
- The morning must show: init -> data -> daily -> PDF, map with plans, audit; the next day reads
  the cap history -> ``tests/test_morning.py::test_morning_then_next_day_uses_cap_history``.
- Wrong date / missing caps file / ``--units`` far above the caps -> one-line error, exit 2 /
  2 / 3, nothing written (no file, no empty day folder, no audit entry)
  -> ``tests/test_morning.py::test_morning_with_*_writes_nothing``.
- Commands inside a workspace need ``--events`` although data/events.csv is there -> the
  workspace's events/effort are the defaults; outside, a usage error names both ways
  -> ``tests/test_morning.py::test_commands_in_a_workspace_need_no_events_flag``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pyogrio
import pytest

from riskmodel.errors import OutputError
from riskmodel.io.write.gpkg import daily_layers, write_gpkg
from riskmodel.io.write.html import write_html_map
from riskmodel.io.write.qml import qml_risk_style

sys.path.insert(0, str(Path(__file__).parent))
from test_writers import SHIFTS, plan_frame, scored_frame  # noqa: E402


@pytest.fixture(scope="module")
def risk():
    return {s: scored_frame(s, seed=i) for i, s in enumerate(SHIFTS)}


def _declared(path: Path, table: str) -> dict[str, str]:
    with sqlite3.connect(path) as con:
        return {r[1]: r[2] for r in con.execute(f'PRAGMA table_info("{table}")')}


def test_gpkg_dates_and_times_are_typed(tmp_path, risk):
    extra, styles = daily_layers(risk["night"], {"night": plan_frame(risk["night"])})
    out = write_gpkg({**risk, **extra}, tmp_path / "d.gpkg", styles=styles)
    cols = _declared(out, "night")
    assert cols["date"] == "DATE"
    assert cols["shift_start"] == cols["shift_end"] == "DATETIME"
    plan = _declared(out, "plan_night")
    assert plan["slot_start"] == plan["slot_end"] == "DATETIME" and plan["slot"] == "TEXT"
    with sqlite3.connect(out) as con:
        date, start = con.execute("SELECT date, shift_start FROM night LIMIT 1").fetchone()
    # 22:00 at +02:00 is 20:00 UTC; the GeoPackage standard's form ends in Z.
    assert date == "2024-08-14" and re.fullmatch(r"2024-08-14T20:00:00(\.000)?Z", start)
    info = pyogrio.read_info(out, layer="night")
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["date"].startswith("datetime64") and types["shift_start"].startswith("datetime64")


def test_gpkg_refuses_a_date_that_is_not_one(tmp_path, risk):
    bad = risk["morning"].assign(date="14.08.2024x")
    with pytest.raises(OutputError, match="date"):
        write_gpkg({"morning": bad}, tmp_path / "bad.gpkg")
    assert not (tmp_path / "bad.gpkg").exists()


def test_risk_style_uses_symbol_levels():
    root = ET.fromstring(qml_risk_style().split("\n", 1)[1])
    r = root.find("renderer-v2")
    assert r.get("symbollevels") == "1"
    for sym in r.findall("symbols/symbol"):
        casing, fill = sym.findall("layer")
        assert casing.get("pass") == "0" and int(fill.get("pass")) >= 1


def test_daily_gpkg_has_segments_and_plans_styled(tmp_path, risk):
    plans = {s: plan_frame(risk[s]) for s in ("morning", "night")}
    extra, styles = daily_layers(risk["morning"], plans)
    out = write_gpkg(
        {**risk, **extra}, tmp_path / "d.gpkg", style_qml=qml_risk_style(), styles=styles
    )
    layers = {n for n, _ in pyogrio.list_layers(out)}
    assert {"segments", "plan_morning", "plan_night", *SHIFTS} <= layers
    with sqlite3.connect(out) as con:
        rows = dict(con.execute("SELECT f_table_name, styleQML FROM layer_styles"))
        default = dict(con.execute("SELECT f_table_name, useAsDefault FROM layer_styles"))
    assert set(rows) == {"segments", "plan_morning", "plan_night", *SHIFTS}
    assert all(default.values())
    assert 'attr="risk_class"' in rows["night"] and 'attr="unit"' in rows["plan_night"]
    assert 'type="singleSymbol"' in rows["segments"]


def test_html_map_offers_one_scale_for_the_day(tmp_path, risk):
    # The night carries ten times the morning's expected events.
    day = dict(risk)
    day["night"] = risk["night"].assign(expected=risk["night"]["expected"] * 10)
    page = write_html_map(
        tmp_path / "m.html", risk=day, border=None, settlements=None, title="t"
    ).read_text("utf-8")
    data = json.loads(re.search(r'id="rm-data">(.*?)</script>', page, re.S).group(1))
    breaks = data["absBreaks"]
    assert breaks == sorted(breaks) and 2 <= len(breaks) <= 4
    assert 'name="rm-mode"' in page  # the switch is in the page
    # One scale: the busy night fills the top bands, the quiet morning hardly reaches them
    # (within-shift classes would give both shifts the same 20 % per class).
    night = day["night"]["expected"].to_numpy()
    morning = day["morning"]["expected"].to_numpy()
    assert (night >= breaks[1]).mean() > 0.4 and (morning >= breaks[1]).mean() < 0.05


def test_a_daily_geopackage_reads_back_as_one_risk_table(tmp_path, risk):
    """read_risk of a daily GeoPackage takes every shift's layer (not only the first) and judges
    each row's date in the station's zone, though the file stores times in UTC: a shift that
    starts at 00:30 local time is still on its own local date."""
    from riskmodel.io.read.risk import read_risk

    early = risk["morning"].copy()
    early["shift"] = "early"
    early["shift_start"] = "2024-08-15T00:30:00+02:00"  # 2024-08-14T22:30Z: UTC date differs
    early["shift_end"] = "2024-08-15T06:00:00+02:00"
    early["date"] = "2024-08-15"
    extra, styles = daily_layers(risk["night"], {"night": plan_frame(risk["night"])})
    out = write_gpkg({**risk, "early": early, **extra}, tmp_path / "d.gpkg", styles=styles)
    back = read_risk(out, timezone="Europe/Ljubljana")
    assert set(back["shift"]) == {*risk, "early"}
    assert len(back) == sum(len(f) for f in risk.values()) + len(early)
    assert set(back.loc[back["shift"] == "early", "date"]) == {"2024-08-15"}
    with pytest.raises(Exception, match="not the local date"):
        read_risk(out, timezone="UTC")  # read in the wrong zone, the early shift is refused
