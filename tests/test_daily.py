"""The planner's morning: locations in words, shift titles, the daily briefing page."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from riskmodel.api._daily import shift_title
from riskmodel.geo.places import describe_places
from riskmodel.io.write.daily import CHECK_COLUMNS, ShiftBrief, daily_briefing_html


def test_places_name_both_sides_and_coordinates(geo):
    ids = geo.segments["segment_id"].iloc[[0, 20, 45]].tolist()
    p = describe_places(geo, ids)
    assert list(p.index) == ids
    assert p["place_si"].str.startswith("SI-").all() and p["place_hr"].str.startswith("HR-").all()
    assert (p["place_si_km"] > 0).all() and (p["place_hr_km"] > 0).all()
    assert p["crossing"].isin(["Alpha", "Beta", "Gamma"]).all()
    seg = geo.segments.set_index("segment_id").loc[ids]
    assert (p["x"].to_numpy() == seg["rep_x"].to_numpy()).all()
    # The corridor is named only near it (within 5 km), never far away.
    assert ((p["corridor"] == "") == ~(p["corridor_km"] <= 5)).all()


def test_shift_titles_are_local_and_say_night_of():
    assert shift_title(
        "night", "2026-11-30T21:00:00Z", "2026-12-01T05:00:00Z", "Europe/Ljubljana"
    ) == ("Night 22:00–06:00, night of Mon 30 Nov 2026")
    assert shift_title(
        "morning", "2026-12-01T06:00:00+01:00", "2026-12-01T14:00:00+01:00", "Europe/Ljubljana"
    ) == ("Morning 06:00–14:00, Tue 1 Dec 2026")


def _checks(n: int) -> pd.DataFrame:
    row = {c: f"{c}-{{i}}" for c, _ in CHECK_COLUMNS}
    return pd.DataFrame([{k: v.format(i=i) for k, v in row.items()} for i in range(n)])


def test_daily_briefing_holds_every_check_one_page_per_shift_and_no_network():
    shifts = [
        ShiftBrief("Morning 06:00–14:00, Tue 1 Dec 2026", "p-1", _checks(3)),
        ShiftBrief(
            "Night 22:00–06:00, night of Tue 1 Dec 2026", "p-2", _checks(2), ["a <warning>"]
        ),
    ]
    page = daily_briefing_html(title="Spot checks", shifts=shifts, legal_note="Art. 23 SBC")
    assert page.count('<section class="shift">') == 2 and "size: A4" in page
    for i in range(3):
        assert f"segment_id-{i}" in page
    assert "a &lt;warning&gt;" in page  # escaped
    assert "http" not in page.replace("http-equiv", "")
    assert page == daily_briefing_html(title="Spot checks", shifts=shifts, legal_note="Art. 23 SBC")


@pytest.mark.chromium
def test_briefing_prints_to_pdf_with_every_check(tmp_path):
    """Headless Chromium prints the briefing to PDF; every page has text, every check is there."""
    chromium, pdftotext = shutil.which("chromium"), shutil.which("pdftotext")
    if not chromium or not pdftotext:
        pytest.skip("needs chromium and pdftotext (Debian: chromium, poppler-utils)")
    shifts = [
        ShiftBrief(
            f"Shift {k}",
            f"p-{k}",
            _checks(14).assign(segment_id=lambda d, k=k: f"S{k}-" + d.index.astype(str)),
        )
        for k in range(3)
    ]
    html_path = tmp_path / "b.html"
    html_path.write_text(daily_briefing_html(title="Spot checks", shifts=shifts, legal_note="L"))
    pdf = tmp_path / "b.pdf"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", html_path.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert pdf.is_file() and pdf.stat().st_size > 1000
    pages = subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 3  # one shift per page at least
    text = "".join(pages)
    for k in range(3):
        for i in range(14):
            assert f"S{k}-{i}" in text


def _fake_plan():
    from types import SimpleNamespace

    checks = pd.DataFrame(
        {
            "check_no": [1, 2, 3],
            "unit": ["U01", "U02", "U03"],
            "segment_id": ["S-1", "S-2", "S-3"],
            "area": ["Koper"] * 3,
            "slot_start": ["2026-12-01T06:00:00+01:00"] * 3,
            "slot_end": ["2026-12-01T08:00:00+01:00"] * 3,
            "coverage": [0.4, 0.004, 0.9],
            "expected": [0.2, 0.001, 0.0],
            "reasons": ["dark for 100 % of the shift"] * 3,
        }
    )
    coverage = pd.DataFrame(
        {"coverage": [0.4, 0.004, 0.9], "status": ["free", "floor", "included"]},
        index=pd.Index(["S-1", "S-2", "S-3"], name="segment_id"),
    )
    stats = dict.fromkeys(
        ("segments", "zero_coverage", "blocked_by_caps", "entropy", "topk_entropy",
         "max_inclusion", "expected_detections", "topk_expected_detections",
         "worst_case_residual", "topk_worst_case_residual"), 0,
    )  # fmt: skip
    return SimpleNamespace(
        plan_id="p-1", date="2026-12-01", shift="morning", shift_start="06:00",
        shift_end="14:00", units=3, units_requested=3, coverage=coverage, checks=checks,
        stats=stats, overrides={"include": ["S-3"], "exclude": []}, caps={}, warnings=[],
        geometry=None,
    )  # fmt: skip


def test_shift_briefing_labels_exploration_and_forced_checks_never_with_risk_reasons():
    from riskmodel.io.write.briefing import briefing_html

    page = briefing_html(_fake_plan())
    rows = {r.split("</td>")[2][4:]: r for r in page.split("<tr ")[1:] if "kind-" in r[:20]}
    assert "dark for 100 %" in rows["S-1"] and "risk-weighted" in rows["S-1"]
    assert "exploration" in rows["S-2"] and "not risk-based" in rows["S-2"]
    assert "forced by the planner" in rows["S-3"]
    assert "dark for" not in rows["S-2"] + rows["S-3"]
    # Chance of a check in words, not a bare 0.004.
    assert "40 %" in rows["S-1"] and "under 1 %" in rows["S-2"] and "0.004" not in page
