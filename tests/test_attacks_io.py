"""Attacks on inputs, outputs and the command line (issue 15 "Hardening", issue 13 items 3, 11).

Catalogue: attack -> expected behaviour -> test.

Dates
  ``--date 01.12.2026`` / ``2026-12-1`` / ``2026-02-30`` / ``2262-01-01`` on every date option of
  every command -> usage error, exit 2, naming the accepted forms, before any file is read
  -> test_bad_dates_are_usage_errors
  ``score --date`` before the first event / ``tomorrow`` long after the last one / ``train --to``
  before the data -> one-line data error, exit 3, nothing written -> test_dates_outside_the_data
  scoring 46 days after the last event -> warning on stderr "stale" -> test_stale_and_thin_warned
  a history of a few dozen events -> warning "thin data" -> test_stale_and_thin_warned
  API caller passes ``2026-12-1`` -> parsed by the same rule, outputs named ISO
  -> test_outputs_never_empty_and_iso_named
Silent drops
  lon/lat swapped in 90 % of rows -> one stderr line per reason, where the quarantine went and
  "MOST ROWS WERE REJECTED"; ``-q`` silences it -> test_rejections_announced
  every row rejected -> ``validate``, ``score``, ``train`` exit 3 with one line
  -> test_every_row_rejected_is_exit_3
  two groups with distinct event ids at the same time and place -> both kept; a true copy is
  still quarantined -> test_same_time_place_distinct_ids_kept
Interrupts and locks
  SIGTERM while score writes -> previous complete set left, no staging folder left
  -> test_sigterm_during_writing_keeps_previous_set
  failure in the middle of writing (in-process) -> same; a re-run with fewer formats removes the
  older formats of that date -> test_interrupted_write_keeps_previous_set
  8 processes contend for one folder lock -> never two holders at once
  -> test_lock_excludes_under_contention
Settings that silently change meaning
  model trained in another time zone -> BundleError (exit 4) naming both
  -> test_timezone_mismatch_refused
  ``metric_crs = EPSG:4326`` / unknown CRS / unknown zone / ``segment_length_m = 0.001`` / shifts
  with a gap or an overlap -> ConfigError at load_settings, one line, exit 2
  -> test_bad_settings_refused_at_load, test_bad_settings_cli_one_line
Inputs
  CSV whose last line is cut (no newline, fewer fields) -> that row quarantined
  ``truncated_last_line``; a complete last line without newline is fine
  -> test_truncated_last_line_quarantined
  a large file without any line break -> "no line break", not "only blank lines"
  -> test_file_without_line_break
  ``validate`` with effort rows for unknown segment ids -> quarantined ``unknown_segment`` as
  train/score do -> test_validate_quarantines_unknown_effort_segments
Outputs
  two identical ``score`` runs -> byte-identical files, GeoPackage included
  -> test_score_outputs_byte_identical
  CSV text cells starting with = + - @ -> prefixed with ' (numbers untouched)
  -> test_csv_formula_cells_neutralised
  read-only filesystem -> OutputError, exit 5, one line -> test_read_only_output_is_exit_5
  ``score -q`` / ``train -q`` (after the command name) -> nothing on stdout or stderr
  -> test_quiet_after_command
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from riskmodel.cli import main
from riskmodel.config.settings import Settings, load_settings
from riskmodel.errors import ConfigError, InputError
from riskmodel.io.read.events import read_events
from riskmodel.io.write.csv import write_csv

pytestmark = pytest.mark.slow

ACCEPTED = "YYYY-MM-DD"


KEY = "attacks-io-key"  # bundles are signed; every process of these tests shares the key


def run(*args, env=None, check=False):
    e = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    e["RISKMODEL_SIGNING_KEY"] = KEY
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "riskmodel", *map(str, args)],
        capture_output=True,
        text=True,
        env=e,
        check=check,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("attacks")
    run(
        "simulate",
        "--out",
        d / "sim",
        "--seed",
        5,
        "--from",
        "2025-01-01",
        "--to",
        "2025-04-30",
        check=True,
    )
    p = run(
        "train",
        "--events",
        d / "sim" / "events.csv",
        "--to",
        "2025-04-20",
        "--models-root",
        d / "models",
        "--model-param",
        "n_estimators=5",
    )
    assert p.returncode == 0, p.stderr
    return d


def score_args(world, out, date="2025-04-21", events=None, *extra):
    return [
        "score",
        "--events",
        events or world / "sim" / "events.csv",
        "--models-root",
        world / "models",
        "--date",
        date,
        "--out",
        out,
        "--no-png",
        *extra,
    ]


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


# ----------------------------------------------------------------------------- dates

_CMDS = {
    "score --date": ["score", "--events", "e.csv", "--out", "o", "--date", "{}"],
    "score --from": [
        "score",
        "--events",
        "e.csv",
        "--out",
        "o",
        "--from",
        "{}",
        "--to",
        "2025-01-02",
    ],
    "score --to": [
        "score",
        "--events",
        "e.csv",
        "--out",
        "o",
        "--from",
        "2025-01-01",
        "--to",
        "{}",
    ],
    "plan --date": ["plan", "--events", "e.csv", "--out", "o", "--units", "2", "--date", "{}"],
    "train --to": ["train", "--events", "e.csv", "--to", "{}"],
    "train --until": ["train", "--events", "e.csv", "--until", "{}"],
    "backtest --from": [
        "backtest",
        "--events",
        "e.csv",
        "--out",
        "o",
        "--from",
        "{}",
        "--to",
        "2025-01-02",
    ],
    "backtest --to": [
        "backtest",
        "--events",
        "e.csv",
        "--out",
        "o",
        "--from",
        "2025-01-01",
        "--to",
        "{}",
    ],
    "audit --from": ["audit", "--from", "{}", "--to", "2025-01-02"],
    "audit --to": ["audit", "--from", "2025-01-01", "--to", "{}"],
    "simulate --from": ["simulate", "--out", "o", "--from", "{}"],
    "simulate --to": ["simulate", "--out", "o", "--to", "{}"],
    "simulate --start": ["simulate", "--out", "o", "--start", "{}"],
    "trial --from": ["trial", "--out", "o", "--from", "{}"],
}


@pytest.mark.parametrize("bad", ["01.12.2026", "2026-12-1", "2026-02-30", "2262-01-01", "soon"])
@pytest.mark.parametrize("cmd", sorted(_CMDS))
def test_bad_dates_are_usage_errors(cmd, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a.format(bad) for a in _CMDS[cmd]]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, (cmd, r.output)
    assert "Traceback" not in r.output and bad in r.output
    assert ACCEPTED in r.output or "between 1900-01-01" in r.output
    assert list(tmp_path.iterdir()) == []  # nothing read, nothing written


def test_dates_outside_the_data(world, tmp_path):
    for date in ("2024-06-01", "tomorrow", "2026-06-01"):
        out = tmp_path / date
        p = run(*score_args(world, out, date))
        assert p.returncode == 3, (date, p.stderr)
        assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
        assert "first event" in p.stderr or "after the last event" in p.stderr
        assert not (out / "provenance.json").exists()
    p = run(
        "train",
        "--events",
        world / "sim" / "events.csv",
        "--to",
        "2020-01-01",
        "--models-root",
        tmp_path / "m",
    )
    assert p.returncode == 3 and "before the first event" in p.stderr


def test_stale_and_thin_warned(world, tmp_path):
    p = run(*score_args(world, tmp_path / "o", "2025-06-15"))
    assert p.returncode == 0, p.stderr
    assert "stale" in p.stderr and "2025-06-15" in p.stderr
    ev = pd.read_csv(world / "sim" / "events.csv", dtype=str)
    ev.iloc[-60:].to_csv(tmp_path / "few.csv", index=False)
    p = run(*score_args(world, tmp_path / "o2", "2025-04-30", tmp_path / "few.csv"))
    assert "thin data" in p.stderr, p.stderr


def test_outputs_never_empty_and_iso_named(world, tmp_path):
    from riskmodel.api import run_score

    s = load_settings(env={"RISKMODEL_SIGNING_KEY": KEY}).with_flags(
        models_root=str(world / "models")
    )
    _, _, files = run_score(s, world / "sim" / "events.csv", date="2025-04-21", out=tmp_path)
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["outputs"] and all(f.exists() for f in files)
    with pytest.raises(ConfigError, match="not a date"):
        run_score(s, world / "sim" / "events.csv", date="2025-4-21", out=tmp_path / "x")


# ----------------------------------------------------------------------------- silent drops


def _swapped(world, path: Path, share: float) -> Path:
    d = pd.read_csv(world / "sim" / "events.csv", dtype=str)
    m = np.random.default_rng(0).random(len(d)) < share
    d.loc[m, ["lon", "lat"]] = d.loc[m, ["lat", "lon"]].to_numpy()
    d.to_csv(path, index=False)
    return path


def test_rejections_announced(world, tmp_path):
    ev = _swapped(world, tmp_path / "swapped.csv", 0.9)
    p = run(*score_args(world, tmp_path / "o", "2025-04-21", ev))
    assert p.returncode == 0, p.stderr
    assert "rows quarantined [latlon_swapped]" in p.stderr
    assert "MOST ROWS WERE REJECTED" in p.stderr
    assert str(tmp_path / "o" / "rejected_swapped.csv") in p.stderr
    q = run("-q", *score_args(world, tmp_path / "o2", "2025-04-21", ev))
    assert q.returncode == 0 and q.stderr == "" and q.stdout == ""


def test_every_row_rejected_is_exit_3(world, tmp_path):
    ev = _swapped(world, tmp_path / "all.csv", 1.1)
    for args in (
        ["validate", "--events", ev],
        score_args(world, tmp_path / "o", "2025-04-21", ev),
        ["train", "--events", ev, "--to", "2025-04-20", "--models-root", tmp_path / "m"],
    ):
        p = run(*args)
        assert p.returncode == 3, (args[0], p.stderr)
        assert "every one of the" in p.stderr and "Traceback" not in p.stderr


def test_same_time_place_distinct_ids_kept(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(
        "event_id,timestamp,lon,lat,persons\n"
        "a,2025-01-01T10:00:00+01:00,15.5,45.9,2\n"
        "b,2025-01-01T10:00:00+01:00,15.5,45.9,3\n"
        "b,2025-01-01T10:00:00+01:00,15.5,45.9,3\n"
    )
    r = read_events(f)
    assert list(r.frame["event_id"]) == ["a", "b"]
    assert r.summary["by_reason"] == {"duplicate_event_id": 1}
    f.write_text(
        "timestamp,lon,lat,persons\n"
        "2025-01-01T10:00:00+01:00,15.5,45.9,2\n"
        "2025-01-01T10:00:00+01:00,15.5,45.9,2\n"
    )
    assert read_events(f).summary["by_reason"] == {"duplicate_time_place": 1}


# ----------------------------------------------------------------------------- interrupts, locks


def test_sigterm_during_writing_keeps_previous_set(world, tmp_path):
    out = tmp_path / "o"
    args = score_args(world, out, "2025-04-21")
    args.remove("--no-png")
    assert run(*args).returncode == 0
    before = digest(out)
    e = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    e["RISKMODEL_SIGNING_KEY"] = KEY
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskmodel", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=e,
    )
    t0 = time.time()
    while not list(tmp_path.glob(".o.staging-*/*")) and proc.poll() is None:
        assert time.time() - t0 < 120
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err
    assert digest(out) == before  # the previous complete set, untouched
    assert not list(tmp_path.glob(".o.staging-*"))


def test_interrupted_write_keeps_previous_set(world, tmp_path, monkeypatch):
    from riskmodel.api import run_score
    from riskmodel.io.write import html

    s = load_settings(env={"RISKMODEL_SIGNING_KEY": KEY}).with_flags(
        models_root=str(world / "models")
    )
    ev = world / "sim" / "events.csv"
    run_score(s, ev, date="2025-04-21", out=tmp_path / "o", png=False)
    before = digest(tmp_path / "o")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(html, "write_html_map", boom)
    with pytest.raises(KeyboardInterrupt):
        run_score(s, ev, date="2025-04-21", out=tmp_path / "o", png=False)
    assert digest(tmp_path / "o") == before
    assert not list(tmp_path.glob(".o.staging-*"))
    monkeypatch.undo()
    run_score(s, ev, date="2025-04-21", out=tmp_path / "o", png=False, html=False)
    assert not (tmp_path / "o" / "risk_2025-04-21.html").exists()  # no stale format mixed in
    listed = {
        o["path"] for o in json.loads((tmp_path / "o" / "provenance.json").read_text())["outputs"]
    }
    assert listed == {
        n for n in digest(tmp_path / "o") if n.startswith("risk_") and not n.endswith(".qml")
    }


_HOLDER = """
import os, sys, time
from riskmodel.files import folder_lock
from riskmodel.errors import OutputError
folder, log = sys.argv[1], sys.argv[2]
deadline = time.time() + 3
while time.time() < deadline:
    try:
        with folder_lock(folder):
            with open(log, "a") as fh:
                fh.write(f"in {os.getpid()} {time.monotonic_ns()}\\n")
            time.sleep(0.01)
            with open(log, "a") as fh:
                fh.write(f"out {os.getpid()} {time.monotonic_ns()}\\n")
    except OutputError:
        time.sleep(0.001)
"""


def test_lock_excludes_under_contention(tmp_path):
    log = tmp_path / "log.txt"
    e = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "out"), str(log)], env=e)
        for _ in range(8)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0
    events = [line.split() for line in log.read_text().splitlines()]
    events.sort(key=lambda x: int(x[2]))
    holders = 0
    for kind, _pid, _ in events:
        holders += 1 if kind == "in" else -1
        assert holders in (0, 1), "two processes held the lock at once"
    assert sum(1 for e_ in events if e_[0] == "in") >= 8
    assert not (tmp_path / "out" / ".riskmodel.lock").exists()


# ----------------------------------------------------------------------------- settings


def test_timezone_mismatch_refused(world, tmp_path):
    p = run(*score_args(world, tmp_path / "o"), env={"RISKMODEL_TIMEZONE": "Europe/London"})
    assert p.returncode == 4, p.stderr
    assert "Europe/Ljubljana" in p.stderr and "Europe/London" in p.stderr
    assert not (tmp_path / "o" / "provenance.json").exists()


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("METRIC_CRS", "EPSG:4326", "not a projected CRS in metres"),
        ("METRIC_CRS", "EPSG:99999", "not a known CRS"),
        ("TIMEZONE", "Mars/Olympus", "not a known time zone"),
        ("SEGMENT_LENGTH_M", "0.001", "outside 50 .. 20000 m"),
        ("SEGMENT_LENGTH_M", "1e9", "outside 50 .. 20000 m"),
        ("SHIFTS", "day=06:00-14:00,night=15:00-06:00", "a gap at 14:00"),
        ("SHIFTS", "day=06:00-15:00,night=14:00-06:00", "an overlap"),
        ("MAX_DISTANCE_M", "-1", "not positive"),
    ],
)
def test_bad_settings_refused_at_load(name, value, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        load_settings(env={f"RISKMODEL_{name}": value}, cwd=tmp_path)
    # the same check on a file and on a flag
    field = name.lower()
    toml = value if field in ("segment_length_m", "max_distance_m") else json.dumps(value)
    (tmp_path / "riskmodel.toml").write_text(f"{field} = {toml}\n")
    with pytest.raises(ConfigError, match=match):
        load_settings(tmp_path / "riskmodel.toml", env={})
    with pytest.raises(ConfigError, match=match):
        Settings().with_flags(**{field: value})


def test_bad_settings_cli_one_line(tmp_path):
    p = run("config", env={"RISKMODEL_METRIC_CRS": "EPSG:4326"})
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "metric_crs" in p.stderr and "env:RISKMODEL_METRIC_CRS" in p.stderr


# ----------------------------------------------------------------------------- inputs


def test_truncated_last_line_quarantined(tmp_path):
    f = tmp_path / "e.csv"
    head = "event_id,timestamp,lon,lat,persons\n1,2025-01-01T10:00:00+01:00,15.5,45.9,2\n"
    f.write_text(head + "2,2025-01-02T10:0")
    r = read_events(f)
    assert r.summary["by_reason"] == {"truncated_last_line": 1} and len(r.frame) == 1
    f.write_text(head + "2,2025-01-02T10:00:00+01:00,15.5,45.9,2")  # complete, no newline
    assert read_events(f).ok


def test_file_without_line_break(tmp_path):
    f = tmp_path / "e.csv"
    f.write_bytes(b"a" * (3 << 20))
    with pytest.raises(InputError, match="no line break"):
        read_events(f)


def test_validate_quarantines_unknown_effort_segments(world, tmp_path):
    f = tmp_path / "effort.csv"
    f.write_text(
        "segment_id,start,end,officer_hours\n"
        "SIHR-0001,2025-01-01T06:00:00+01:00,2025-01-01T14:00:00+01:00,8\n"
        "NOPE-9999,2025-01-01T06:00:00+01:00,2025-01-01T14:00:00+01:00,8\n"
    )
    p = run("validate", "--events", world / "sim" / "events.csv", "--effort", f)
    assert p.returncode == 0, p.stderr
    assert "unknown_segment" in p.stdout and "accepted 1 + quarantined 1" in p.stdout


# ----------------------------------------------------------------------------- outputs


def test_score_outputs_byte_identical(world, tmp_path):
    for name in ("a", "b"):
        assert run(*score_args(world, tmp_path / name)).returncode == 0
        time.sleep(1.1)  # a wall-clock stamp would now differ
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert any(n.endswith(".gpkg") for n in a)
    assert a == b


def test_csv_formula_cells_neutralised(tmp_path):
    df = pd.DataFrame(
        {"area": ['=HYPERLINK("x")', "+1+1", "-2-3", "@SUM(A1)", "Koper"], "v": [-1.5, 2, 3, 4, 5]}
    )
    df["txt"] = ["-1.5", "3", "x", "y", "z"]
    back = pd.read_csv(write_csv(df, tmp_path / "t.csv"), dtype=str, keep_default_na=False)
    assert list(back["area"]) == ['\'=HYPERLINK("x")', "'+1+1", "'-2-3", "'@SUM(A1)", "Koper"]
    assert list(back["v"]) == ["-1.5", "2", "3", "4", "5"]  # numbers untouched
    assert back["txt"][0] == "-1.5"  # a number kept as text is not a formula


def test_read_only_output_is_exit_5(world, tmp_path, monkeypatch):
    real_open = os.open

    def ro_open(path, flags, *a, **k):
        if flags & os.O_CREAT and str(tmp_path / "o") in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setenv("RISKMODEL_SIGNING_KEY", KEY)
    r = CliRunner().invoke(main, [str(a) for a in score_args(world, tmp_path / "o")])
    assert r.exit_code == 5, r.output
    assert "read-only filesystem" in r.output and "Traceback" not in r.output


def test_quiet_after_command(world, tmp_path):
    p = run(*score_args(world, tmp_path / "o", "2025-06-15"), "-q")  # stale: would warn
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr
    p = run(
        "train",
        "-q",
        "--events",
        world / "sim" / "events.csv",
        "--to",
        "2025-04-20",
        "--models-root",
        tmp_path / "m",
        "--model-param",
        "n_estimators=3",
    )
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr
