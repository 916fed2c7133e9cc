import re
from pathlib import Path

import click
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


# ----------------------------------------------------------------------------- option names


def _run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _opts(path: str) -> set[str]:
    cmd = main
    for name in path.split():
        cmd = cmd.commands[name]
    return {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts if not p.hidden}


def test_reader_and_model_groups_on_every_reading_command():
    reader = _opts("validate") - {"--out"}
    assert {"--events", "--dst", "--encoding", "--delimiter", "--crs", "--column"} <= reader
    assert {"--strict", "--border", "--assume-tz", "--swap-latlon", "--max-distance-m"} <= reader
    for path in ("train", "backtest", "score", "plan"):
        assert reader <= _opts(path), (path, reader - _opts(path))
    for path in ("score", "plan"):
        assert {"--model", "--trust-model", "--models-root"} <= _opts(path)
    assert "--to" in _opts("train") and "--until" not in _opts("train")
    assert {"--from", "--to"} <= _opts("simulate") and "--start" not in _opts("simulate")
    assert "--from" in _opts("trial") and "--scenario-param" in _opts("trial")
    assert "--model-param" in _opts("backtest") and "--param" not in _opts("backtest")


def test_old_spellings_work_with_a_note(tmp_path):
    missing = tmp_path / "missing.csv"
    # The old spelling is accepted (the run gets as far as reading the file: exit 3) ...
    r = _run("train", "--events", missing, "--until", "2025-01-01", "--param", "n_estimators=5")
    assert r.exit_code == 3, r.output
    assert "--until is deprecated; use --to" in r.output
    assert "--param is deprecated; use --model-param" in r.output
    # ... once, not together with the new one; --to is optional (the last full day).
    r = _run("train", "--events", missing, "--until", "2025-01-01", "--to", "2025-01-02")
    assert r.exit_code == 2 and "not also its old spelling --until" in r.output
    r = _run("train", "--events", missing)
    assert r.exit_code == 3 and "file not found" in r.output
    # -q silences the note.
    r = _run("-q", "train", "--events", missing, "--until", "2025-01-01")
    assert r.exit_code == 3 and "deprecated" not in r.output
    # score: --date D --to E is the old range spelling; --from needs --to.
    r = _run("score", "--events", missing, "--date", "2025-01-01", "--to", "2025-01-02",
             "--models-root", tmp_path / "none", "--out", tmp_path / "o")  # fmt: skip
    assert r.exit_code == 4 and "use --from D --to E" in r.output
    r = _run("score", "--events", missing, "--from", "2025-01-01", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--from D --to E" in r.output
    # no date: tomorrow, as daily (here it gets as far as the missing model); no --out
    # outside a workspace is a usage error naming it
    r = _run("score", "--events", missing, "--models-root", tmp_path / "none",
             "--out", tmp_path / "o")  # fmt: skip
    assert r.exit_code == 4 and "no verified model bundle" in r.output, r.output
    r = _run("score", "--events", missing)
    assert r.exit_code == 2 and "give --out DIR" in r.output


def test_simulate_old_and_new_date_spellings_agree(tmp_path):
    old = _run("simulate", "--out", tmp_path / "a", "--seed", 1, "--start", "2025-01-01",
               "--end", "2025-01-10", "--param", "theta=0.2")  # fmt: skip
    new = _run("simulate", "--out", tmp_path / "b", "--seed", 1, "--from", "2025-01-01",
               "--to", "2025-01-10", "--scenario-param", "theta=0.2")  # fmt: skip
    assert old.exit_code == 0 and new.exit_code == 0, old.output + new.output
    assert "--start is deprecated" in old.output and "deprecated" not in new.output
    a, b = (p / "events.csv" for p in (tmp_path / "a", tmp_path / "b"))
    assert a.read_bytes() == b.read_bytes()


def test_key_value_parser_is_one_rule():
    from riskmodel.cli._common import parse_pairs

    assert parse_pairs(("n=300", " lr = 0.1", "h=[12, 14]", "s=abc"), "--x") == {
        "n": 300,
        "lr": 0.1,
        "h": [12, 14],
        "s": "abc",
    }
    assert parse_pairs(("timestamp=123",), "--column", json_values=False) == {"timestamp": "123"}
    r = _run("simulate", "--out", "x", "--scenario-param", "theta")
    assert r.exit_code == 2 and "'theta' is not KEY=VALUE" in r.output


def test_segments_out_is_a_folder(tmp_path):
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import LineString

    t = np.linspace(0, 12, 500)
    line = LineString(np.c_[500000 + t * 1000, 100000 + 3000 * np.sin(t / 5)])
    src = tmp_path / "line.gpkg"
    gpd.GeoDataFrame(geometry=[line], crs=3794).to_file(src)
    r = _run("segments", "--border", src, "--out", tmp_path / "seg")
    assert r.exit_code == 0 and (tmp_path / "seg" / "segments.geojson").is_file(), r.output
    r = _run("segments", "--border", src, "--out", tmp_path / "seg", "--format", "csv")
    assert r.exit_code == 0 and (tmp_path / "seg" / "segments.csv").is_file(), r.output
    assert "deprecated" not in r.output
    r = _run("segments", "--border", src, "--out", tmp_path / "old.gpkg")
    assert r.exit_code == 0 and (tmp_path / "old.gpkg").is_file()
    assert "--out FILE is deprecated" in r.output
    r = _run("segments", "--border", src, "--out", tmp_path / "x.csv", "--format", "gpkg")
    assert r.exit_code == 2


def test_train_warns_when_a_baseline_beats_the_new_default():
    """A new default model that ranks the validation windows below a baseline is announced
    with the way back (the previous default)."""
    from riskmodel.api._model import below_baseline

    table = {
        "model": {"hr_10": 0.431},
        "historical": {"hr_10": 0.435},
        "etas": {"hr_10": 0.424},
        "oracle": {"hr_10": 0.6},
    }
    assert below_baseline(table) == {
        "baseline": "historical",
        "model": 0.431,
        "baseline_hr_10": 0.435,
    }
    table["model"]["hr_10"] = 0.44
    assert below_baseline(table) is None
    assert below_baseline({}) is None and below_baseline({"etas": {"hr_10": 0.5}}) is None


def test_train_prints_the_warning_and_the_way_back(tmp_path, monkeypatch):
    import contextlib
    from pathlib import Path

    from riskmodel import api

    man = {
        "model_id": "rm-new",
        "fit": {"rows_train": 10, "rows_kept": 5, "best_iteration": 3, "train_seconds": 0.1},
        "metrics": {"table": {"model": {"hr_10": 0.431}, "historical": {"hr_10": 0.435}}},
        "status": "verified",
        "default": True,
        "previous_default": "rm-old",
        "below_baseline": {"baseline": "historical", "model": 0.431, "baseline_hr_10": 0.435},
    }
    monkeypatch.setattr(api, "read_inputs", lambda *a, **k: object())
    monkeypatch.setattr(api, "training_engine", lambda *a, **k: contextlib.nullcontext(None))
    monkeypatch.setattr(api, "train_bundle", lambda *a, **k: (Path(tmp_path / "rm-new"), man))
    events = tmp_path / "e.csv"
    events.write_text("timestamp,lat,lon\n")
    r = CliRunner().invoke(
        main,
        ["train", "--events", str(events), "--to", "2025-01-01", "--models-root", str(tmp_path)],
    )
    assert r.exit_code == 0, r.output
    assert "ranks below the historical baseline (HR@10% 0.431 vs 0.435)" in r.output
    assert "riskmodel models use rm-old" in r.output
