"""Attacks on the plan audit trail and the planner's safe defaults (issues 15 and 13).

Catalogue: attack -> expected behaviour -> test.

1. Audit chain without key or anchor
   - ``head -n -1`` of the log -> ``audit --fail-on-violation`` exits 6, "log integrity:
     BROKEN — ... does not reach its anchor" -> test_truncated_log_is_broken
   - the whole log deleted -> exit 6, "missing or empty but the workspace anchor records"
     -> test_deleted_log_is_broken
   - an entry rewritten and its chain recomputed (checks removed; a plan turned into a note)
     -> exit 6 "MAC does not verify" / "carries no HMAC" -> test_rewritten_entry_is_broken
   - a forged line appended with a valid ``prev`` -> exit 6 -> test_forged_append_is_broken
   - ``plan`` prints a head that ``audit`` checks: the anchor in the workspace state equals the
     printed head, audit says "ends at its anchor" -> test_printed_head_is_the_checked_anchor
   - no key anywhere -> the audit says "unkeyed: tampering ... is not detectable"
     -> test_unkeyed_log_says_so
2. ``date`` written ``5.12.2025`` (spreadsheet) -> refused, exit 3, names YYYY-MM-DD;
   ``date`` not the local date of ``shift_start`` -> refused -> test_spreadsheet_date_refused,
   test_date_must_be_the_day_the_shift_starts
3. Mistyped ``--audit-log`` while the workspace has history -> exit 3 naming the expected log
   -> test_mistyped_audit_log_refused; broken chain or corrupt line -> planning refused (exit 3)
   unless ``--new-log-segment --reason`` (recorded; audit then acknowledges it)
   -> test_damaged_log_refuses_planning_until_a_segment_is_recorded
4. Kill between log append and file writes -> the next run completes the logged plan's files
   (plan CSV carries plan_id and audit_seq) -> test_kill_after_append_is_completed_next_run;
   disk full on ``--out`` -> exit 5 and nothing logged -> test_disk_full_on_out_logs_nothing;
   disk full on the log -> no partial line left -> test_disk_full_on_log_leaves_no_partial_line;
   torn last line -> ``audit --repair --reason`` quarantines it and records a repair entry
   -> test_torn_line_is_repaired_with_a_record
5. An uncapped plan on a capped history -> the violations are blamed on that plan only
   -> test_audit_blames_the_plan_that_broke_the_cap
6. Negative / NaN ``threat``, zero-length shifts -> exit 3 -> test_bad_risk_values_refused;
   ``slot_hours = 1e-9``, a cap ``"abc"`` -> one-line ConfigError, exit 2
   -> test_bad_caps_refused_in_one_line; an audit line with ``"chosen": "SIHR-0001"`` or a bare
   ``{"type": "plan"}`` -> not counted, audit exit 6, plan exit 3, no traceback
   -> test_malformed_lines_are_not_counted_and_do_not_crash
7. No ``--caps`` -> the built-in caps apply (same numbers as the workspace caps.toml)
   -> test_builtin_caps_apply_and_match_workspace_caps; ``--units`` beyond the caps (systematic
   coverage) -> refused exit 3 unless ``--force --reason`` (recorded, shown by the audit)
   -> test_systematic_plan_refused_unless_forced; overrides need ``--reason`` and record
   reason/by, superseded plans' overrides stay counted; drawing a planned shift again until
   the plan suits (cherry-picking a random draw) -> refused exit 3 with nothing appended unless
   ``--replan --reason`` (recorded as ``replanned``) -> test_overrides_need_reason_and_stay_counted;
   the audit compares each statistic with its cap in words
   -> test_audit_compares_statistics_with_caps_in_words
8. Spreadsheet formula injection through a reason cell -> neutralised with ``'``
   -> test_formula_cells_are_neutralised
"""

from __future__ import annotations

import errno
import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from riskmodel.api import audit_report, run_plan
from riskmodel.audit import log as audit_log_mod
from riskmodel.audit.log import encode_entry, entry_mac, read_log
from riskmodel.cli import main
from riskmodel.config.workspace import CAPS_TOML, init_workspace
from riskmodel.errors import EXIT_DATA, EXIT_OUTPUT, EXIT_USAGE, EXIT_VIOLATION, OutputError
from riskmodel.geo.shifts import shift_windows
from riskmodel.io.read.risk import validate_risk
from riskmodel.planning.caps import DEFAULT_CAPS, PlanConfig

SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"


def make_risk(n: int = 60, start: str = "2025-12-05", end: str | None = None) -> pd.DataFrame:
    """A risk table with a few hot spots, every shift of the days stacked."""
    rng = np.random.default_rng(0)
    seg = [f"SIHR-{i:04d}" for i in range(1, n + 1)]
    base = rng.gamma(0.6, 0.3, n)
    base[: n // 10] *= 8
    frames = []
    for rec in shift_windows(start, end or start, SHIFTS, "Europe/Ljubljana").itertuples():
        frames.append(
            pd.DataFrame(
                {
                    "segment_id": seg,
                    "date": rec.date.strftime("%Y-%m-%d"),
                    "shift": rec.shift,
                    "shift_start": rec.start_utc.tz_convert("Europe/Ljubljana").isoformat(),
                    "shift_end": rec.end_utc.tz_convert("Europe/Ljubljana").isoformat(),
                    "expected": base * rng.lognormal(0, 0.2, n),
                    "area": np.where(np.arange(n) < n // 2, "Koper", "Novo mesto"),
                    "reason_1": "recent crossings",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    """A fresh workspace (signing key, caps.toml) with a risk table; no env key."""
    monkeypatch.delenv("RISKMODEL_SIGNING_KEY", raising=False)
    monkeypatch.delenv("RISKMODEL_WORKSPACE", raising=False)
    w, _ = init_workspace(tmp_path / "ws")
    make_risk().to_csv(w.root / "data" / "risk.csv", index=False)
    return w


def cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def plan(ws, *extra: str, units: str = "8", risk: str | None = None):
    return cli(
        "--workspace", str(ws.root), "plan", "--risk", risk or str(ws.root / "data" / "risk.csv"),
        "--units", units, "--seed", "1", "--out", str(ws.root / "out"), *extra,
    )  # fmt: skip


def audit(ws, *extra: str, day_to: str = "2025-12-31"):
    return cli(
        "--workspace", str(ws.root), "audit", "--from", "2025-12-01", "--to", day_to,
        "--fail-on-violation", *extra,
    )  # fmt: skip


def log_of(ws) -> Path:
    return ws.root / "audit" / "audit.jsonl"


def lines(ws) -> list[dict]:
    return [json.loads(x) for x in log_of(ws).read_text().splitlines() if x.strip()]


def write_lines(path: Path, objs: list[dict]) -> None:
    path.write_bytes(b"".join(encode_entry(o) + b"\n" for o in objs))


# ------------------------------------------------------------------------------- 1. chain


def test_truncated_log_is_broken(ws) -> None:
    assert plan(ws).exit_code == 0
    assert audit(ws).exit_code == 0
    data = log_of(ws).read_text().splitlines(keepends=True)
    log_of(ws).write_text("".join(data[:-1]))  # head -n -1
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION
    assert "log integrity: BROKEN" in r.output and "does not reach its anchor" in r.output


def test_deleted_log_is_broken(ws) -> None:
    assert plan(ws).exit_code == 0
    log_of(ws).unlink()
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION and "missing or empty" in r.output
    # Planning on would silently start a fresh log: refused.
    r = plan(ws)
    assert r.exit_code == EXIT_DATA and "anchor" in r.output and "Traceback" not in r.output


def test_rewritten_entry_is_broken(ws) -> None:
    assert plan(ws).exit_code == 0
    objs = lines(ws)
    # Remove one segment's checks and recompute the chain as an attacker without the key can.
    objs[0]["chosen"] = objs[0]["chosen"][1:]
    prev = None
    for o in objs:
        o["prev"], o["chain"] = prev, "sha256"
        o["mac"] = entry_mac(o, None)
        prev = o["mac"]
    write_lines(log_of(ws), objs)
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION and "carries no HMAC" in r.output
    # Turning a plan into a note, keeping the HMAC label: the MAC fails.
    objs = lines(ws)
    objs[1]["type"], objs[1]["chain"] = "note", "hmac-sha256"
    write_lines(log_of(ws), objs)
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION and "MAC does not verify" in r.output


def test_forged_append_is_broken(ws) -> None:
    assert plan(ws).exit_code == 0
    last = lines(ws)[-1]
    forged = {**last, "plan_id": "forged", "date": "2025-12-06", "seq": last["seq"] + 1}
    forged["prev"] = last["mac"]
    forged["mac"] = entry_mac(forged, b"guessed key")
    with open(log_of(ws), "ab") as fh:
        fh.write(encode_entry(forged) + b"\n")
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION and "MAC does not verify" in r.output


def test_printed_head_is_the_checked_anchor(ws) -> None:
    r = plan(ws)
    assert r.exit_code == 0, r.output
    anchor = ws.read_state()["audit"]
    assert anchor["seq"] == 3 and anchor["head"] in r.output and f"seq {anchor['seq']}" in r.output
    assert (ws.root / anchor["log"]).resolve() == log_of(ws).resolve()
    r = audit(ws)
    assert r.exit_code == 0 and "HMAC verified" in r.output and "ends at its anchor" in r.output
    # Every plan file names its plan and its place in the chain.
    objs = lines(ws)
    csv = pd.read_csv(ws.root / "out" / "plan_2025-12-05_night.csv")
    assert set(csv["plan_id"]) == {objs[2]["plan_id"]} and set(csv["audit_seq"]) == {3}
    html = (ws.root / "out" / "briefing_2025-12-05_night.html").read_text()
    assert objs[2]["plan_id"] in html and "seq 3" in html and objs[1]["mac"] in html


def test_unkeyed_log_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RISKMODEL_SIGNING_KEY", raising=False)
    monkeypatch.delenv("RISKMODEL_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    make_risk().to_csv(tmp_path / "risk.csv", index=False)
    r = cli("plan", "--risk", "risk.csv", "--units", "8", "--audit-log", "a.jsonl", "--out", "o")
    assert r.exit_code == 0, r.output
    assert "not detectable" in r.output
    r = cli("audit", "--from", "2025-12-01", "--to", "2025-12-31", "--audit-log", "a.jsonl")
    assert r.exit_code == 0 and "unkeyed: tampering" in r.output


# ------------------------------------------------------------------------------- 2. dates


def test_spreadsheet_date_refused(ws) -> None:
    risk = make_risk()
    risk["date"] = "5.12.2025"
    p = ws.root / "data" / "excel.csv"
    risk.to_csv(p, index=False)
    r = plan(ws, risk=str(p))
    assert r.exit_code == EXIT_DATA and "YYYY-MM-DD" in r.output and "row 2" in r.output
    assert not log_of(ws).exists() or log_of(ws).read_text() == ""


def test_date_must_be_the_day_the_shift_starts(ws) -> None:
    risk = make_risk()
    risk.loc[risk["shift"] == "night", "date"] = "2025-12-06"
    p = ws.root / "data" / "shifted.csv"
    risk.to_csv(p, index=False)
    r = plan(ws, risk=str(p))
    assert r.exit_code == EXIT_DATA and "local date of shift_start" in r.output


# ------------------------------------------------------------------------------- 3. log start


def test_mistyped_audit_log_refused(ws) -> None:
    assert plan(ws).exit_code == 0
    r = plan(ws, "--audit-log", str(ws.root / "audit" / "audti.jsonl"))
    assert r.exit_code == EXIT_DATA
    assert str(log_of(ws).resolve()) in r.output and "--new-log-segment" in r.output


def test_damaged_log_refuses_planning_until_a_segment_is_recorded(ws) -> None:
    assert plan(ws).exit_code == 0
    data = log_of(ws).read_text().splitlines(keepends=True)
    data[1] = '{"type": "note", "text": "edited"}\n'
    log_of(ws).write_text("".join(data))
    before = log_of(ws).read_bytes()
    r = plan(ws)
    assert r.exit_code == EXIT_DATA and "audit log is damaged" in r.output
    assert log_of(ws).read_bytes() == before  # nothing appended
    r = plan(
        ws, "--new-log-segment", "--replan", "--reason", "line 2 edited; restored from paper log"
    )
    assert r.exit_code == 0, r.output
    seg = [o for o in lines(ws) if o.get("type") == "segment"]
    assert len(seg) == 1 and seg[0]["reason"].startswith("line 2 edited") and seg[0]["problems"]
    r = audit(ws)
    assert r.exit_code == 0 and "acknowledged" in r.output


# ------------------------------------------------------------------------------- 4. commit


def test_kill_after_append_is_completed_next_run(ws, monkeypatch) -> None:
    from riskmodel.api import _plan as api_plan

    real = api_plan._swap_in

    def killed(stage, out):
        raise KeyboardInterrupt  # the process dies between the log append and the swap

    monkeypatch.setattr(api_plan, "_swap_in", killed)
    r = plan(ws, "--shift", "night")
    assert r.exit_code != 0
    (entry,) = lines(ws)
    assert not (ws.root / "out" / "plan_2025-12-05_night.csv").exists()
    stage = ws.root / "out" / f".staging-{entry['plan_id']}"
    assert stage.is_dir() and set(entry["files"]) == {p.name for p in stage.iterdir()}
    monkeypatch.setattr(api_plan, "_swap_in", real)
    r = plan(ws, "--shift", "morning")
    assert r.exit_code == 0, r.output
    csv = pd.read_csv(ws.root / "out" / "plan_2025-12-05_night.csv")
    assert set(csv["plan_id"]) == {entry["plan_id"]} and not stage.exists()


def test_disk_full_on_out_logs_nothing(ws, monkeypatch) -> None:
    from riskmodel.api import _plan as api_plan

    def full(*a, **k):
        raise OutputError("disk full while writing plan", fix="free disk space")

    monkeypatch.setattr(api_plan, "write_plan_outputs", full)
    r = plan(ws)
    assert r.exit_code == EXIT_OUTPUT
    assert not log_of(ws).exists() or log_of(ws).read_bytes() == b""
    assert not list((ws.root / "out").glob(".staging-*"))


def test_disk_full_on_log_leaves_no_partial_line(ws, monkeypatch) -> None:
    assert plan(ws, "--shift", "night").exit_code == 0
    before = log_of(ws).read_bytes()
    real_write = audit_log_mod.os.write

    def partial(fd, data):
        if not bytes(data[:1]) == b"{":  # only the audit line runs out of disk, not lock files
            return real_write(fd, data)
        real_write(fd, data[:40])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_log_mod.os, "write", partial)
    r = plan(ws, "--shift", "morning")
    monkeypatch.setattr(audit_log_mod.os, "write", real_write)
    assert r.exit_code == EXIT_OUTPUT and "NOT recorded" in r.output
    assert log_of(ws).read_bytes() == before
    assert audit(ws).exit_code == 0


def test_torn_line_is_repaired_with_a_record(ws) -> None:
    assert plan(ws, "--shift", "night").exit_code == 0
    with open(log_of(ws), "ab") as fh:
        fh.write(b'{"type":"plan","date":"2025-12-')  # kill -9 mid-write
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION and "torn" in r.output
    r = plan(ws, "--shift", "morning")
    assert r.exit_code == EXIT_DATA and "audit --repair" in r.output
    r = cli("--workspace", str(ws.root), "audit", "--repair", "--reason", "power cut 03:10")
    assert r.exit_code == 0, r.output
    (q,) = list(log_of(ws).parent.glob("audit.jsonl.torn-*"))
    assert q.read_bytes() == b'{"type":"plan","date":"2025-12-'
    rep = lines(ws)[-1]
    assert rep["type"] == "repair" and rep["reason"] == "power cut 03:10" and rep["torn_sha256"]
    assert audit(ws).exit_code == 0
    assert plan(ws, "--shift", "morning").exit_code == 0


# ------------------------------------------------------------------------------- 5. blame


def test_audit_blames_the_plan_that_broke_the_cap(ws) -> None:
    risk = validate_risk(make_risk(start="2025-12-01", end="2025-12-04"))
    key, log_path = ws.key(), log_of(ws)
    capped = run_plan(risk, ws.root / "out", log_path, 10, seed=1, key=key, workspace=ws)
    nxt = validate_risk(make_risk(start="2025-12-05"))
    (uncapped, _), *_ = run_plan(
        nxt, ws.root / "out", log_path, 20, shift="morning", seed=2, key=key, workspace=ws,
        config=PlanConfig(),  # no window caps: the plan breaks the history's caps
    )  # fmt: skip
    rep = audit_report(
        log_path, "2025-12-01", "2025-12-31", key=key, workspace=ws, caps=PlanConfig.defaults()
    )
    v = rep.violations
    assert len(v) > 0 and set(v["plan_id"]) == {uncapped.plan_id}
    assert not set(v["plan_id"]) & {p.plan_id for p, _ in capped}
    assert rep.summary["plans_blamed"] == [uncapped.plan_id]


# ------------------------------------------------------------------------------- 6. values


@pytest.mark.parametrize(
    ("change", "msg"),
    [
        (lambda d: d.assign(threat=-1.0), "threat must be a finite number >= 0"),
        (lambda d: d.assign(threat=np.where(np.arange(len(d)) == 5, np.nan, 1.0)), "row 7"),
        (lambda d: d.assign(shift_end=d["shift_start"]), "zero or negative length"),
    ],
)
def test_bad_risk_values_refused(ws, change, msg) -> None:
    p = ws.root / "data" / "bad.csv"
    change(make_risk()).to_csv(p, index=False)
    r = plan(ws, risk=str(p))
    assert r.exit_code == EXIT_DATA and msg in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("text", "msg"),
    [("slot_hours = 1e-9\n", "slot_hours"), ('per_shift = "abc"\n', "is not a number")],
)
def test_bad_caps_refused_in_one_line(ws, text, msg) -> None:
    p = ws.root / "bad_caps.toml"
    p.write_text(text)
    r = plan(ws, "--caps", str(p))
    assert r.exit_code == EXIT_USAGE and msg in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", ['"chosen": "SIHR-0001"', "bare"])
def test_malformed_lines_are_not_counted_and_do_not_crash(ws, bad) -> None:
    assert plan(ws, "--shift", "night").exit_code == 0
    last = lines(ws)[-1]
    if bad == "bare":
        line = b'{"type":"plan"}'
    else:
        line = encode_entry({**last, "chosen": "SIHR-0001", "seq": 2, "prev": last["mac"]})
    with open(log_of(ws), "ab") as fh:
        fh.write(line + b"\n")
    entries, integ = read_log(log_of(ws), key=ws.key())
    assert not integ.ok and len(entries) == 1  # the bad line is not counted
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION and "BROKEN" in r.output and "Traceback" not in r.output
    assert "8 checks" in r.output  # the valid plan's checks only
    r = plan(ws, "--shift", "morning")
    assert r.exit_code == EXIT_DATA and "Traceback" not in r.output


# ------------------------------------------------------------------------------- 7. defaults


def test_builtin_caps_apply_and_match_workspace_caps(tmp_path, ws, monkeypatch) -> None:
    assert tomllib.loads(CAPS_TOML) == DEFAULT_CAPS  # one set of numbers
    monkeypatch.chdir(tmp_path)
    make_risk().to_csv(tmp_path / "risk.csv", index=False)
    r = cli("plan", "--risk", "risk.csv", "--units", "8", "--audit-log", "a.jsonl", "--out", "o")
    assert r.exit_code == 0, r.output
    (e, *_) = read_log(tmp_path / "a.jsonl")[0]
    assert {k: e["caps"][k] for k in DEFAULT_CAPS} == DEFAULT_CAPS


def test_systematic_plan_refused_unless_forced(ws) -> None:
    r = plan(ws, units="700")
    assert r.exit_code == EXIT_DATA and "systematic" in r.output and "--force" in r.output
    assert not log_of(ws).exists() or log_of(ws).read_bytes() == b""
    r = plan(ws, "--shift", "night", "--force", units="700")
    assert r.exit_code == EXIT_USAGE and "--reason" in r.output
    r = plan(ws, "--shift", "night", "--force", "--reason", "drill", "--by", "cmdr", units="700")
    assert r.exit_code == 0, r.output
    (e,) = lines(ws)
    assert e["forced"]["reason"] == "drill" and e["forced"]["by"] == "cmdr" and e["refusals"]
    r = audit(ws)
    assert "FORCED plans: 1" in r.output and "'drill' by cmdr" in r.output


def test_overrides_need_reason_and_stay_counted(ws) -> None:
    r = plan(ws, "--shift", "night", "--include", "SIHR-0030")
    assert r.exit_code == EXIT_USAGE and "--reason" in r.output
    r = plan(ws, "--shift", "night", "--include", "SIHR-0030", "--reason", "tip-off", "--by", "ana")
    assert r.exit_code == 0, r.output
    # a shift already planned is not drawn again silently (a redraw replaces a random draw)
    before = log_of(ws).read_bytes()
    r = plan(ws, "--shift", "night")
    assert r.exit_code == EXIT_DATA and "already planned" in r.output and "--replan" in r.output
    assert log_of(ws).read_bytes() == before
    r = plan(ws, "--shift", "night", "--replan", "--reason", "unit U03 off sick", "--by", "bo")
    assert r.exit_code == 0, r.output  # the re-plan supersedes the override plan
    assert lines(ws)[-1]["replanned"] == {"reason": "unit U03 off sick", "by": "bo"}
    r = audit(ws)
    assert "overrides (superseded plans included): 1 plans (1 include" in r.output
    assert "0 without a reason" in r.output
    e = lines(ws)[0]
    assert (e["overrides"]["reason"], e["overrides"]["by"]) == ("tip-off", "ana")


def test_audit_compares_statistics_with_caps_in_words(ws) -> None:
    risk = validate_risk(make_risk(start="2025-12-01", end="2025-12-02"))
    run_plan(risk, ws.root / "out", log_of(ws), 59, seed=1, key=ws.key(), workspace=ws,
             config=PlanConfig(per_shift=1.0), force=True, reason="test")  # fmt: skip
    r = audit(ws)
    assert r.exit_code == EXIT_VIOLATION
    assert (
        "largest share of shifts one segment was checked in any 30 days: 0.067 — cap 0.100 — ok"
        in r.output
    )
    assert "largest chance one segment was checked in one shift: 1.000 — cap 0.500 — EXCEEDED" in (
        r.output
    )
    assert "most checks of one segment in any 7 days: 6 — cap 3 — EXCEEDED" in r.output
    assert "cap violations: " in r.output and "EXCEEDED, caused by plan(s)" in r.output


# ------------------------------------------------------------------------------- 8. CSV


def test_formula_cells_are_neutralised(ws) -> None:
    risk = make_risk()
    risk["reason_1"] = '=HYPERLINK("http://x","y")'
    p = ws.root / "data" / "inj.csv"
    risk.to_csv(p, index=False)
    assert plan(ws, "--shift", "night", risk=str(p)).exit_code == 0
    text = (ws.root / "out" / "plan_2025-12-05_night.csv").read_text()
    assert "'=HYPERLINK" in text and ',"=HYPERLINK' not in text and ",=HYPERLINK" not in text


def test_moved_workspace_keeps_its_anchor(ws, tmp_path) -> None:
    """A workspace moved or restored to another folder (new server, renamed share) keeps its
    audit anchor: the state stores the log's path relative to the workspace root, so a deleted
    last line is still caught after the move and planning goes on from the same chain."""
    import shutil

    from riskmodel.config.workspace import Workspace

    assert plan(ws).exit_code == 0
    state = json.loads((ws.root / ".riskmodel" / "state.json").read_text())
    assert state["audit"]["log"] == "audit/audit.jsonl"
    moved = Workspace(Path(shutil.move(str(ws.root), str(tmp_path / "elsewhere"))))
    r = audit(moved)
    assert r.exit_code == 0 and "ends at its anchor" in r.output, r.output
    r = plan(moved, "--replan", "--reason", "after the move")
    assert r.exit_code == 0, r.output  # the anchor moves with the new entries
    data = log_of(moved).read_text().splitlines(keepends=True)
    log_of(moved).write_text("".join(data[:-1]))
    r = audit(moved)
    assert r.exit_code == EXIT_VIOLATION and "does not reach its anchor" in r.output
