"""Output guarantees: atomic writes under kill, folder lock, disk full, unwritable folder,
interruption -> clean exit code, reproducible bytes."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from riskmodel.cli import main
from riskmodel.errors import OutputError
from riskmodel.files import atomic_write_bytes, atomic_write_with, folder_lock

WRITER = textwrap.dedent(
    """
    import sys, time
    from riskmodel.files import atomic_write_with
    def slow(p):
        with open(p, "wb") as fh:
            for _ in range(400):
                fh.write(b"N" * 100_000)
                fh.flush()
                time.sleep(0.005)
    print("start", flush=True)
    atomic_write_with(sys.argv[1], slow)
    """
)


def test_kill_mid_write_leaves_old_complete_file(tmp_path):
    target = tmp_path / "risk.csv"
    old = b"O" * 1000
    target.write_bytes(old)
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"start"
    time.sleep(0.5)  # mid-write: the temp file is growing
    temps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp.csv")]
    assert temps, "writer should be writing a temp file in the same folder"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert target.read_bytes() == old  # the old complete file, never a partial one
    # and a completed write replaces it whole
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_disk_full_is_clean(tmp_path):
    target = tmp_path / "out.geojson"

    def writer(p):
        p.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="disk full"):
        atomic_write_with(target, writer)
    assert not target.exists()
    assert os.listdir(tmp_path) == []  # temp file removed


def test_lock_refuses_second_run(tmp_path):
    with folder_lock(tmp_path):
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from riskmodel.files import folder_lock\nwith folder_lock({str(tmp_path)!r}): pass",
            ],
            capture_output=True,
            text=True,
        )
        assert child.returncode != 0 and "in use by another riskmodel run" in child.stderr
    # a lock file left by a killed run holds no lock: it is taken over
    (tmp_path / ".riskmodel.lock").write_text("999999")
    with folder_lock(tmp_path):
        pass
    assert not (tmp_path / ".riskmodel.lock").exists()


def test_cli_lock_message_and_exit_code(tmp_path):
    risk = tmp_path / "risk.csv"
    rows = ["segment_id,date,shift,shift_start,shift_end,expected,area,length_m,rank"]
    for i in range(5):
        rows.append(
            f"SIHR-000{i + 1},2025-01-01,night,2025-01-01T22:00:00+01:00,"
            f"2025-01-02T06:00:00+01:00,{0.5 - i / 10},Koper,1000,{i + 1}"
        )
    risk.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o"
    out.mkdir()
    args = [
        "plan",
        "--risk",
        str(risk),
        "--units",
        "2",
        "--seed",
        "1",
        "--audit-log",
        str(tmp_path / "a.jsonl"),
        "--out",
        str(out),
    ]
    with folder_lock(out):  # another run holds it (flock: per open file, so even in-process)
        r = CliRunner().invoke(main, args)
    assert r.exit_code == 5, r.output
    assert "in use by another riskmodel run" in r.output and "Traceback" not in r.output
    assert not list(out.glob("plan_*"))
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert list(out.glob("plan_*.csv"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputError, match="not writable"):
        atomic_write_bytes(ro / "x.csv", b"1")


def test_sigterm_mid_run_exits_130_without_partial_output(tmp_path):
    code = textwrap.dedent(
        f"""
        import time, sys
        from riskmodel.cli import main
        import riskmodel.cli._core as core
        from riskmodel import api
        def slow(*a, **k):
            print("running", flush=True)
            time.sleep(30)
        api.build_segments = slow
        sys.argv = ["riskmodel", "segments", "--out", {str(tmp_path / "seg.geojson")!r}]
        main()
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert p.stdout.readline().strip() == b"running"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert b"interrupted" in err and b"Traceback" not in err
    assert not (tmp_path / "seg.geojson").exists()
