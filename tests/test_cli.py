import re
from pathlib import Path

from click.testing import CliRunner

from riskmodel import __version__
from riskmodel.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_help():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = CliRunner().invoke(main, ["-h"])
    assert r.exit_code == 0
    for cmd in (
        "demo",
        "simulate",
        "segments",
        "train",
        "backtest",
        "score",
        "plan",
        "audit",
        "validate",
        "config",
        "models",
    ):
        assert cmd in r.output


def test_config_shows_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "riskmodel.toml").write_text("segment_length_m = 750\n")
    monkeypatch.setenv("RISKMODEL_TIMEZONE", "Europe/Zagreb")
    r = CliRunner().invoke(main, ["config"])
    assert r.exit_code == 0, r.output
    assert re.search(r"segment_length_m\s+750.0\s+\[file:riskmodel.toml\]", r.output)
    assert re.search(r"timezone\s+Europe/Zagreb\s+\[env:RISKMODEL_TIMEZONE\]", r.output)
    assert re.search(r"metric_crs\s+EPSG:3794\s+\[default\]", r.output)


def test_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("this is not toml = = \n")
    r = CliRunner().invoke(main, ["--config", str(cfg), "config"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output and r.output.strip().count("\n") == 0


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmds = re.findall(r"^python3 -m venv .*$", readme, flags=re.M)
    assert len(cmds) == 2, cmds
    assert "riskmodel demo" in cmds[0]
    assert "pytest" in cmds[1]
    assert cmds[1] in ci, "the README test command must be what CI runs"
