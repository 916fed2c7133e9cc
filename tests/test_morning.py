"""A planner's morning, scripted: ``riskmodel init ws`` -> the demo's (simulated) data copied into
``ws/data`` -> ``riskmodel train`` and ``riskmodel daily`` inside the workspace (no --events:
the workspace's data/events.csv is the default) -> the briefing prints to PDF with every check,
the map carries the plans, the GeoPackage has segments and plan layers, the audit log has one
entry per shift; a second ``daily`` the next day reads the first day's cap history.

The same morning with a wrong date, a missing caps file and ``--units`` far above the caps:
a clear one-line error, the exit code of README "Exit codes", and nothing written (every file
of the workspace byte-identical, no audit entry).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pyogrio
import pytest
from click.testing import CliRunner
from conftest import pdf_pages

from riskmodel.cli import main
from riskmodel.errors import EXIT_DATA, EXIT_USAGE

pytestmark = pytest.mark.slow  # ~1 min on 2 cores: a real border, training, two mornings

DAY1, DAY2 = "2025-05-01", "2025-05-02"
UNITS = 8


def _run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _ok(*args: object):
    r = _run(*args)
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _audit(ws: Path) -> list[dict]:
    path = ws / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if re.match(r"(riskmodel: )?error:", ln, re.I)]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the demo's simulated history in data/ and a trained default model."""
    root = tmp_path_factory.mktemp("morning")
    ws = root / "ws"
    _ok("init", ws)
    sim = root / "sim"
    _ok("simulate", "--from", "2025-01-01", "--to", "2025-04-30", "--seed", "3", "--out", sim)
    for name in ("events.csv", "effort.csv"):
        shutil.copyfile(sim / name, ws / "data" / name)
    # Inside a workspace no --events: data/events.csv (and data/effort.csv) are the defaults.
    _ok("--workspace", ws, "train", "--to", "2025-04-30", "--model-param", "n_estimators=40")
    # One check per segment and 7 days: a segment checked on day 1 must rest on day 2.
    caps = ws / "caps.toml"
    text = caps.read_text("utf-8")
    assert "max_per_segment_per_7d = 3" in text
    caps.write_text(text.replace("max_per_segment_per_7d = 3", "max_per_segment_per_7d = 1"))
    return ws


def _check_pdf(briefing: Path, segment_ids: set[str], tmp: Path) -> None:
    chromium, pdftotext = shutil.which("chromium"), shutil.which("pdftotext")
    if not chromium or not pdftotext:
        return  # the PDF part needs chromium and poppler-utils (installed by .ci/run)
    pages = pdf_pages(briefing, tmp / "briefing.pdf")
    assert len(pages) >= 3  # one shift per page at least, none blank
    text = "".join(pages)
    for sid in segment_ids:
        assert sid in text, f"check on {sid} missing from the printed briefing"


def test_morning_then_next_day_uses_cap_history(ws: Path, tmp_path: Path) -> None:
    r = _ok("--workspace", ws, "daily", "--date", DAY1, "--units", UNITS, "--seed", "1")
    day = ws / "out" / DAY1
    briefing, page = day / f"briefing_{DAY1}.html", day / "maps" / f"risk_{DAY1}.html"
    assert f"briefing: {briefing}" in r.output
    entries = _audit(ws)
    assert [(e["date"], e["shift"]) for e in entries] == [
        (DAY1, "morning"),
        (DAY1, "afternoon"),
        (DAY1, "night"),
    ]
    day1 = {s for e in entries for s in e["chosen"]}
    assert len(day1) == 3 * UNITS  # a 7-day cap of 1: no segment twice on one day either
    # The briefing holds every check and prints; the map has the three plans drawn on it.
    html_text = briefing.read_text("utf-8")
    assert all(sid in html_text for sid in day1)
    _check_pdf(briefing, day1, tmp_path)
    data = json.loads(re.search(r'id="rm-data">(.*?)</script>', page.read_text("utf-8")).group(1))
    drawn = {f["properties"]["segment_id"] for fc in data["plans"].values() for f in fc["features"]}
    assert set(data["plans"]) == {"morning", "afternoon", "night"} and drawn == day1
    gpkg = day / "maps" / f"risk_{DAY1}.gpkg"
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert {"segments", "plan_morning", "plan_afternoon", "plan_night", "night"} <= layers
    fields = pyogrio.read_info(gpkg, layer="plan_night")
    types = dict(zip(fields["fields"], fields["dtypes"], strict=True))
    assert types["slot_start"].startswith("datetime64")

    # The next morning reads day 1's history from the workspace's audit log.
    _ok("--workspace", ws, "daily", "--date", DAY2, "--units", UNITS, "--seed", "1")
    day2_entries = _audit(ws)[3:]
    assert [e["date"] for e in day2_entries] == [DAY2] * 3
    for e in day2_entries:
        assert not day1 & set(e["chosen"]), "a segment at its 7-day cap was checked again"
        assert day1 <= set(e["blocked"]), "day 1's checks are not blocked by the cap history"
        assert all(e["coverage"].get(s, 0) == 0 for s in day1)

    # Running the morning again does not redraw the day's plans behind anyone's back.
    before, n_audit = _snapshot(ws), len(_audit(ws))
    r = _run("--workspace", ws, "daily", "--date", DAY2, "--units", UNITS)
    assert r.exit_code == EXIT_DATA
    (line,) = _error_lines(r.output)
    assert "already planned" in line and "--replan --reason" in line
    assert _snapshot(ws) == before and len(_audit(ws)) == n_audit
    r = _ok("--workspace", ws, "daily", "--date", DAY2, "--units", UNITS, "--replan",
            "--reason", "two units reassigned to a search", "--by", "duty officer")  # fmt: skip
    again = _audit(ws)[n_audit:]
    assert len(again) == 3 and all(e["supersedes"] for e in again)
    assert {e["replanned"]["reason"] for e in again} == {"two units reassigned to a search"}


def test_morning_with_a_wrong_date_writes_nothing(ws: Path) -> None:
    before, n_audit = _snapshot(ws), len(_audit(ws))
    r = _run("--workspace", ws, "daily", "--date", "01.05.2025", "--units", UNITS)
    assert r.exit_code == EXIT_USAGE
    (line,) = _error_lines(r.output)
    assert "YYYY-MM-DD" in line and "tomorrow" in line
    assert _snapshot(ws) == before and len(_audit(ws)) == n_audit


def test_morning_with_a_missing_caps_file_writes_nothing(ws: Path, tmp_path: Path) -> None:
    caps = ws / "caps.toml"
    kept = tmp_path / "caps.toml"
    shutil.move(caps, kept)
    try:
        before, n_audit = _snapshot(ws), len(_audit(ws))
        r = _run("--workspace", ws, "daily", "--date", "2025-05-03", "--units", UNITS)
        assert r.exit_code == EXIT_USAGE  # a bad configuration
        (line,) = _error_lines(r.output)
        assert "caps file is missing" in line and "riskmodel init" in line
        assert _snapshot(ws) == before and len(_audit(ws)) == n_audit
        assert not (ws / "out" / "2025-05-03").exists()
    finally:
        shutil.move(kept, caps)


def test_morning_with_units_far_above_the_caps_writes_nothing(ws: Path) -> None:
    before, n_audit = _snapshot(ws), len(_audit(ws))
    r = _run("--workspace", ws, "daily", "--date", "2025-05-04", "--units", 700)
    assert r.exit_code == EXIT_DATA  # a plan refused by the caps
    (line,) = _error_lines(r.output)
    assert "refused" in line and "--units" in line and "--force --reason" in line
    assert _snapshot(ws) == before and len(_audit(ws)) == n_audit
    assert not (ws / "out" / "2025-05-04").exists()


def test_commands_in_a_workspace_need_no_events_flag(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _ok("--workspace", ws, "validate")
    assert "events" in r.output
    out = tmp_path / "maps"
    _ok("--workspace", ws, "score", "--date", "2025-05-05", "--out", out)
    assert (out / "risk_2025-05-05.gpkg").is_file()
    # Outside a workspace, with no events file configured, --events is still required.
    monkeypatch.delenv("RISKMODEL_WORKSPACE", raising=False)
    monkeypatch.delenv("RISKMODEL_EVENTS", raising=False)
    monkeypatch.chdir(tmp_path)
    r = _run("validate")
    assert r.exit_code == EXIT_USAGE and "--events" in r.output
