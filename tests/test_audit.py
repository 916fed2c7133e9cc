"""Tests of riskmodel.audit and ``riskmodel audit`` on hand-made logs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from riskmodel.audit.log import AuditLog, append_entry, read_log
from riskmodel.audit.report import compliance_report, write_report
from riskmodel.cli import main
from riskmodel.errors import EXIT_VIOLATION
from riskmodel.planning.caps import checks_history, window_max_counts

CAPS = {
    "per_shift": 1.0,
    "max_per_segment_per_7d": 2,
    "max_per_segment_per_30d": None,
    "max_share_of_shifts": None,
    "share_window_days": 30,
    "shifts_per_day": 3,
}
AREAS = {"Koper": ["S1", "S2"], "Novo mesto": ["S3"]}


def entry(
    pid: str,
    date: str,
    shift: str,
    cov: dict[str, float],
    exp: dict[str, float],
    chosen: list[str],
    caps: dict | None = None,
    include: list[str] | None = None,
    ratio: float | None = 1.0,
    warnings: list[str] | None = None,
) -> dict:
    return {
        "type": "plan",
        "schema": 1,
        "plan_id": pid,
        "date": date,
        "shift": shift,
        "coverage": cov,
        "expected": exp,
        "areas": AREAS,
        "chosen": chosen,
        "caps": caps or CAPS,
        "entropy": 0.9,
        "max_inclusion": max(cov.values()),
        "overrides": {"include": include or [], "exclude": [], "entropy_ratio": ratio},
        "warnings": warnings or [],
        "exploration_lost": [],
        "expected_detections": float(sum(cov[s] * exp[s] for s in cov)),
        "topk_expected_detections": float(max(exp.values())),
    }


@pytest.fixture()
def hand_log(tmp_path):
    path = tmp_path / "audit.jsonl"
    e = [
        entry(
            "D",
            "2024-07-01",
            "morning",
            {"S1": 0.5, "S2": 0.3, "S3": 0.2},
            {"S1": 3, "S2": 2, "S3": 1},
            ["S1"],
        ),  # outside the period
        entry(
            "A",
            "2024-08-05",
            "morning",
            {"S1": 0.5, "S2": 0.3, "S3": 0.2},
            {"S1": 3, "S2": 2, "S3": 1},
            ["S1"],
        ),
        entry(
            "B",
            "2024-08-05",
            "night",
            {"S1": 0.6, "S2": 0.3, "S3": 0.1},
            {"S1": 4, "S2": 1, "S3": 0.5},
            ["S1"],
            include=["S1"],
            ratio=0.7,
            warnings=["overrides lower coverage entropy"],
        ),
        entry(
            "C",
            "2024-08-12",
            "morning",
            {"S1": 0.2, "S2": 0.3, "S3": 0.5},
            {"S1": 1, "S2": 2, "S3": 3},
            ["S2"],
        ),
        entry(
            "C2",
            "2024-08-12",
            "morning",
            {"S1": 0.2, "S2": 0.3, "S3": 0.5},
            {"S1": 1, "S2": 2, "S3": 3},
            ["S3"],
        ),  # re-plan of C: C no longer counts
    ]
    for x in e:
        append_entry(path, x)
    return path


def test_numbers_on_hand_made_log(hand_log) -> None:
    entries, integ = read_log(hand_log)
    assert integ.ok and integ.lines == 5
    rep = compliance_report(entries, "2024-08-01", "2024-08-31", integ)
    s = rep.summary
    assert (s["plans"], s["plans_logged"], s["replans"], s["checks"]) == (3, 4, 1, 3)
    assert s["segments"] == 3 and s["segments_ever_checked"] == 2
    assert s["share_segments_ever_checked"] == pytest.approx(2 / 3)
    assert s["max_share_of_shifts"] == pytest.approx(2 / 3) and s["max_share_segment"] == "S1"
    assert s["max_checks_per_segment_per_week"] == 2
    assert s["cap_violations"] == 0
    assert {k: v for k, v in s["overrides"].items() if k not in ("records", "without_reason")} == {
        "plans": 1,
        "include": 1,
        "exclude": 0,
        "mean_entropy_ratio": 0.7,
        "min_entropy_ratio": 0.7,
        "warnings": 1,
    }
    # Coverage vs risk over the 9 (plan, segment) pairs of A, B, C2.
    cov = np.array([0.5, 0.3, 0.2, 0.6, 0.3, 0.1, 0.2, 0.3, 0.5])
    exp = np.array([3, 2, 1, 4, 1, 0.5, 1, 2, 3])
    assert s["coverage_risk_pearson"] == pytest.approx(np.corrcoef(cov, exp)[0, 1])
    assert s["expected_detections"] == pytest.approx(
        0.5 * 3 + 0.3 * 2 + 0.2 + 0.6 * 4 + 0.3 + 0.05 + 0.2 + 0.6 + 1.5
    )
    # Weekly table: S1 twice in W32, S3 once in W33, S2's check was re-planned away.
    w = rep.weekly
    assert w.loc["S1", "2024-W32"] == 2 and w.loc["S3", "2024-W33"] == 1 and "S2" not in w.index
    per = rep.per_segment
    assert per.loc["S1", "checks"] == 2 and per.loc["S2", "checks"] == 0
    assert per.loc["S1", "area"] == "Koper"
    assert per.loc["S1", "mean_coverage"] == pytest.approx((0.5 + 0.6 + 0.2) / 3)
    # Within-plan risk deciles (3 segments -> deciles 4, 7, 10); the top one was checked each time.
    d = rep.deciles.set_index("decile")
    assert list(d.index) == [4, 7, 10]
    assert d.loc[10, "check_rate"] == 1.0 and d.loc[4, "check_rate"] == 0.0
    assert d.loc[10, "mean_coverage"] == pytest.approx((0.5 + 0.6 + 0.5) / 3)


def test_cap_violations_are_found(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    caps = dict(CAPS, max_per_segment_per_7d=1, per_shift=0.5)
    append_entry(
        path,
        entry(
            "A",
            "2024-08-05",
            "morning",
            {"S1": 0.5, "S2": 0.3, "S3": 0.2},
            {"S1": 3, "S2": 2, "S3": 1},
            ["S1"],
            caps=caps,
        ),
    )
    append_entry(
        path,
        entry(
            "B",
            "2024-08-08",
            "night",
            {"S1": 0.5, "S2": 0.9, "S3": 0.1},
            {"S1": 3, "S2": 2, "S3": 1},
            ["S1"],
            caps=caps,
        ),
    )
    entries, integ = read_log(path)
    rep = compliance_report(entries, "2024-08-01", "2024-08-31", integ)
    v = rep.violations
    assert rep.summary["cap_violations"] == len(v) == 2
    assert set(v["cap"]) == {"max_per_segment_per_7d", "per_shift"}
    seven = v[v["cap"] == "max_per_segment_per_7d"]
    # Blamed on B, the plan that broke the cap; A was inside it when it was made.
    assert set(seven["plan_id"]) == {"B"} and (seven["count"] == 2).all()
    # A window reaching outside the period is still checked.
    rep2 = compliance_report(entries, "2024-08-08", "2024-08-31", integ)
    assert (rep2.violations["cap"] == "max_per_segment_per_7d").sum() == 1
    r = CliRunner().invoke(
        main,
        [
            "audit",
            "--from",
            "2024-08-01",
            "--to",
            "2024-08-31",
            "--audit-log",
            str(path),
            "--fail-on-violation",
        ],
    )
    assert r.exit_code == EXIT_VIOLATION and "cap violations: 2" in r.output


def test_window_max_counts() -> None:
    hist = checks_history(
        [
            {"type": "plan", "date": d, "shift": "m", "plan_id": d, "chosen": ["S1"]}
            for d in ("2024-01-01", "2024-01-03", "2024-01-09")
        ]
    )
    segs = ["S1", "S2"]
    assert window_max_counts(hist, segs, "2024-01-05", 7).tolist() == [2, 0]
    assert window_max_counts(hist, segs, "2024-01-10", 7).tolist() == [1, 0]
    assert window_max_counts(hist, segs, "2023-12-28", 7).tolist() == [2, 0]  # future days count
    assert window_max_counts(hist, segs, "2024-01-05", 30).tolist() == [3, 0]
    assert window_max_counts(hist.iloc[:0], segs, "2024-01-05", 7).tolist() == [0, 0]


def test_tampering_and_crash_are_detected(hand_log) -> None:
    lines = hand_log.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"chosen":["S1"]', b'"chosen":["S2"]')
    tampered = hand_log.with_name("t.jsonl")
    tampered.write_bytes(b"\n".join(lines))
    _, integ = read_log(tampered)
    assert integ.chain_breaks == [2] and not integ.ok  # the changed line's MAC fails
    # A write cut by a crash: flagged, and the next append starts on a fresh line.
    with open(hand_log, "ab") as fh:
        fh.write(b'{"type":"plan","date":"2024-08-')
    append_entry(
        hand_log,
        entry(
            "E",
            "2024-08-20",
            "night",
            {"S1": 1.0, "S2": 0.0, "S3": 0.0},
            {"S1": 1, "S2": 1, "S3": 1},
            ["S1"],
        ),
    )
    entries, integ = read_log(hand_log)
    assert integ.corrupt_lines == [6] and integ.chain_breaks == []
    assert entries[-1]["plan_id"] == "E"


def test_append_is_locked_and_preserves_bytes(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    append_entry(path, {"type": "note", "x": 1})
    before = path.read_bytes()
    with AuditLog(path) as log_:
        log_.append({"type": "note", "x": 2})
        from riskmodel.errors import OutputError

        with pytest.raises(OutputError, match="locked"):
            AuditLog(path, timeout=0.1).__enter__()
    assert path.read_bytes().startswith(before)
    assert [json.loads(x)["x"] for x in path.read_text().splitlines()] == [1, 2]


def test_cli_audit_writes_reports(hand_log, tmp_path) -> None:
    out = tmp_path / "rep"
    caps = tmp_path / "caps.toml"
    caps.write_text("per_shift = 1.0\nmax_per_segment_per_7d = 2\n")
    r = CliRunner().invoke(
        main,
        [
            "audit",
            "--caps",
            str(caps),
            "--from",
            "2024-08-01",
            "--to",
            "2024-08-31",
            "--audit-log",
            str(hand_log),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "3 plans (1 re-planned), 3 checks" in r.output and "cap violations: 0" in r.output
    stem = out / "audit_2024-08-01_2024-08-31"
    js = json.loads(stem.with_suffix(".json").read_text())
    assert js["summary"]["checks"] == 3 and js["weekly"]["S1"] == {"2024-W32": 2}
    csv = pd.read_csv(stem.with_suffix(".csv"))
    assert list(csv["segment_id"]) == ["S1", "S2", "S3"] and "2024-W32" in csv.columns
    md = stem.with_suffix(".md").read_text()
    assert "C-9/16" in md and "art. 23" in md
    bad = CliRunner().invoke(
        main, ["audit", "--from", "2024-08-31", "--to", "2024-08-01", "--audit-log", str(hand_log)]
    )
    assert bad.exit_code != 0 and "before" in bad.output


def test_empty_period_report(tmp_path, hand_log) -> None:
    entries, integ = read_log(hand_log)
    rep = compliance_report(entries, "2025-01-01", "2025-01-31", integ)
    assert rep.summary["plans"] == 0 and rep.summary["checks"] == 0
    files = write_report(rep, tmp_path / "e")
    assert all(f.exists() for f in files)


# --------------------------------------------------------------------------- entry schema


def test_plan_entry_round_trip_and_validation(tmp_path) -> None:
    from riskmodel.audit import PlanEntry
    from riskmodel.errors import InputError

    e = entry("A", "2024-08-05", "morning", {"S1": 0.5}, {"S1": 3}, ["S1"])
    pe = PlanEntry.from_dict({**e, "_line": 4, "future_key": [1]})
    assert pe.plan_id == "A" and pe.chosen == ["S1"] and pe.extra == {"future_key": [1]}
    assert pe.to_dict() == {**e, "future_key": [1]}  # same keys back: the line is the plan
    for bad, msg in [
        ({k: v for k, v in e.items() if k != "chosen"}, "lacks chosen"),
        ({**e, "date": "05.08.2024"}, "not YYYY-MM-DD"),
        ({**e, "chosen": "S1"}, "list of strings"),
        ({**e, "entropy": "high"}, "a number"),
        ({**e, "units": True}, "whole number"),
        ({**e, "type": "note"}, "is not 'plan'"),
    ]:
        with pytest.raises(InputError, match=msg):
            PlanEntry.from_dict(bad)
    # Written: a bad plan entry is refused before anything reaches the log ...
    path = tmp_path / "s.jsonl"
    append_entry(path, PlanEntry.from_dict(e))
    before = path.read_bytes()
    with pytest.raises(InputError, match="must be a number"):
        append_entry(path, {**e, "plan_id": "B", "entropy": "high"})
    assert path.read_bytes() == before
    # ... and read: a plan line that breaks the schema counts as corrupt (the chain still holds).
    with open(path, "ab") as fh:
        fh.write(json.dumps({**e, "plan_id": "C", "chosen": None}).encode() + b"\n")
    append_entry(path, {**e, "plan_id": "D", "date": "2024-08-06"})
    entries, integ = read_log(path)
    assert [x["plan_id"] for x in entries] == ["A", "D"]
    assert integ.corrupt_lines == [2] and not integ.ok


def test_report_passed_and_api_audit_report(hand_log, tmp_path) -> None:
    from riskmodel.api import audit_report, audit_summary, write_audit_report

    rep = audit_report(hand_log, "2024-08-01", "2024-08-31")
    assert rep.passed and rep.summary["plans"] == 3
    assert audit_summary(rep)[0].startswith("period 2024-08-01 .. 2024-08-31: 3 plans")
    assert len(write_audit_report(rep, tmp_path / "r")) == 3
    empty = audit_report(tmp_path / "missing.jsonl", "2024-08-01", "2024-08-31")
    assert empty.passed and empty.summary["log_integrity"]["lines"] == 0


# ------------------------------------------------------------------ one rule book of caps


def _brute_worst(hist: pd.DataFrame, seg: str, day: int, w: int) -> int:
    days = hist.loc[hist["segment_id"] == seg, "day"].to_numpy()
    return max(int(((days >= s) & (days < s + w)).sum()) for s in range(day - w + 1, day + 1))


def test_window_counts_match_brute_force_and_planner_agrees_with_audit() -> None:
    from riskmodel.planning.caps import (
        PlanConfig,
        blocked_by_caps,
        window_breaches,
        window_caps,
        window_counts,
    )

    rng = np.random.default_rng(0)
    segs = ["S1", "S2", "S3", "S4"]
    days = pd.date_range("2024-01-01", "2024-03-31").strftime("%Y-%m-%d")
    entries = [
        {"type": "plan", "date": d, "shift": sh, "plan_id": f"{d}{sh}",
         "chosen": list(rng.choice(segs, size=rng.integers(0, 3), replace=False))}
        for d in days for sh in ("m", "n")
    ]  # fmt: skip
    hist = checks_history(entries)
    q_seg = rng.choice(segs + ["S9"], 200)
    q_day = rng.integers(int(hist["day"].min()) - 10, int(hist["day"].max()) + 10, 200)
    for w in (1, 7, 30):
        got = window_counts(hist, q_seg, q_day, w)
        assert got.tolist() == [
            _brute_worst(hist, s, d, w) for s, d in zip(q_seg, q_day, strict=True)
        ]
    # The share of shifts becomes a count, the same for PlanConfig and a logged caps dict.
    cfg = PlanConfig(max_per_segment_per_7d=3, max_share_of_shifts=0.1, share_window_days=10)
    assert cfg.window_caps() == window_caps(cfg.as_dict())
    assert cfg.window_caps()["max_share_of_shifts"] == (10, 3)
    # Planner and audit apply the same rule: a segment has no room (blocked) exactly when one
    # more check on that day would put a window over its cap (a breach).
    caps = cfg.window_caps()
    day = "2024-02-15"
    blocked = blocked_by_caps(np.array(segs, dtype=object), day, hist, caps)
    for s in segs:
        extra = checks_history(
            [{"type": "plan", "date": day, "shift": "x", "plan_id": "new", "chosen": [s]}]
        )
        both = pd.concat([hist, extra], ignore_index=True)
        breaches = window_breaches(both, extra, caps)
        assert (s in blocked) == (len(breaches) > 0)


def test_plans_drawn_after_their_shift_started_are_listed(caplog):
    """A plan drawn (or backdated) after its shift began is said at draw time and listed by
    the audit, with how late it was; plans drawn ahead are not."""
    import logging
    from types import SimpleNamespace

    import pandas as pd

    from riskmodel.api._plan import _warn_late
    from riskmodel.audit.report import late_plans

    entries = [
        {"plan_id": "a", "date": "2025-03-10", "shift": "morning",
         "shift_start": "2025-03-10T06:00:00+01:00", "created": "2025-03-10T04:30:00+00:00"},
        {"plan_id": "b", "date": "2025-03-10", "shift": "night",
         "shift_start": "2025-03-10T22:00:00+01:00", "created": "2025-03-11T09:00:00+00:00"},
        {"plan_id": "c", "date": "2025-03-10", "shift": "night"},  # old entry without times
    ]  # fmt: skip
    assert late_plans(entries) == [
        {"plan_id": "b", "date": "2025-03-10", "shift": "night", "minutes_late": 720.0}
    ]
    plans = [SimpleNamespace(date="2025-03-10", shift=e["shift"], shift_start=e["shift_start"])
             for e in entries[:2]]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="riskmodel"):
        _warn_late(plans, now=pd.Timestamp("2025-03-10T12:00:00+00:00"))
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("2025-03-10 morning: the shift started at 2025-03-10T06:00:00+01:00")
