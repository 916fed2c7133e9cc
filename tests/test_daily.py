"""The planner's morning: locations in words, shift titles, the daily briefing page."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import pdf_pages

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
    pages = pdf_pages(html_path, tmp_path / "b.pdf")
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
    assert "40\u00a0%" in rows["S-1"] and "under 1\u00a0%" in rows["S-2"]
    assert "0.004" not in page


# --- labels never overlap (issue 13 item 6): sketch, PNG map, HTML map ----------------------


def _overlapping(boxes):
    """Pairs of (name, (x0, y0, x1, y1)) boxes whose interiors intersect."""
    out = []
    for i, (na, a) in enumerate(boxes):
        for nb, b in boxes[i + 1 :]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                out.append((na, nb))
    return out


def test_png_map_labels_never_overlap(crowded_day):
    from riskmodel.io.write.png import png_figure

    fig = png_figure(**crowded_day, title="Border risk 2026-12-01")
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_visible()]
        boxes = [(t.get_text(), tuple(t.get_window_extent(renderer).extents)) for t in texts]
        assert not _overlapping(boxes), ax.get_title(loc="left")
        # Every check keeps its number (checks are moved aside, never dropped).
        shift = ax.get_title(loc="left").split()[0]
        nos = {t.get_text() for t in texts if t.get_text().isdigit()}
        assert nos >= {str(i) for i in crowded_day["plans"][shift]["check_no"]}
    # Leader lines were drawn for the piled-up morning checks.
    from matplotlib.collections import LineCollection

    leaders = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert any(c.get_zorder() == 5 and len(c.get_segments()) > 1 for c in leaders)


def test_sketch_labels_never_overlap():
    from riskmodel.io.write.briefing import label_boxes, sketch_labels

    # Twelve checks on neighbouring segments, 3 px apart: the old labels printed as one blob.
    anchors = {no: (300.0 + 3 * no, 100.0 + (no % 2)) for no in range(1, 13)}
    boxes = label_boxes(anchors, 900, 300)
    assert sorted(boxes) == list(range(1, 13))
    assert not _overlapping(list(boxes.items()))
    assert all(0 <= b[0] and b[2] <= 900 and 0 <= b[1] and b[3] <= 300 for b in boxes.values())
    svg = sketch_labels(anchors, 900, 300)
    assert svg.count("<text") == 12 and 'class="ldr"' in svg  # moved labels get leaders


_BOX_SCRIPT = """<script>
setTimeout(function () {
  var out = [];
  document.querySelectorAll(".leaflet-tooltip").forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width > 0 && getComputedStyle(el).display !== "none") {
      out.push([el.classList.contains("rm-chk") ? "chk" : "lbl", el.textContent,
                r.left, r.top, r.right, r.bottom]);
    }
  });
  var pre = document.createElement("pre");
  pre.id = "rm-boxes";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 200);
</script></body>"""


@pytest.mark.chromium
def test_html_map_labels_never_overlap(crowded_day, tmp_path):
    """Headless Chromium renders the map; the label boxes (place names and check markers with
    their numbers) read back with getBoundingClientRect do not intersect, for every shift and
    two window sizes; every check keeps its number."""
    import html as htmllib
    import json

    from riskmodel.io.write.html import write_html_map

    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("needs chromium (Debian: apt-get install -y chromium)")
    page = write_html_map(tmp_path / "m.html", title="Border risk 2026-12-01", **crowded_day)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text("utf-8").replace("</body>", _BOX_SCRIPT, 1), "utf-8")
    for size in ("1200,800", "900,700"):
        for shift, plan in crowded_day["plans"].items():
            run = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'p'}",
                 f"--window-size={size}", "--virtual-time-budget=3000", "--dump-dom",
                 probe.as_uri() + f"#shift={shift}"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            found = re.search(r'<pre id="rm-boxes">(.*?)</pre>', run.stdout, re.S)
            assert found, run.stderr[-2000:]
            rows = json.loads(htmllib.unescape(found.group(1)))
            half = 9.5  # a check marker: radius 8 + half its 3 px ring
            boxes = []
            for kind, text, x0, y0, x1, y1 in rows:
                if kind == "chk":
                    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                    x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
                boxes.append((f"{kind}:{text}", (x0, y0, x1, y1)))
            assert not _overlapping(boxes), (size, shift, _overlapping(boxes)[:5])
            numbers = sorted(int(t) for k, t, *_ in rows if k == "chk")
            assert numbers == sorted(plan["check_no"].tolist()), (size, shift)
            assert sum(k == "lbl" for k, *_ in rows) >= 5  # names are still there
