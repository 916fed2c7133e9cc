"""Issue 13 item 10, "fast enough to rerun at will": what the speed-ups must not break.

Catalogue (attack -> expected behaviour -> test):

* ``riskmodel --help`` / ``--version`` pay for pandas, geopandas, XGBoost or matplotlib ->
  neither imports any of them -> ``test_help_and_version_import_no_heavy_library``
* the version string goes missing once it is looked up lazily -> ``riskmodel.__version__``
  and ``--version`` agree with the installed metadata -> ``test_version_is_resolved_lazily``
* ``from riskmodel.api import run_score`` drags in training, evaluation, simulation and
  planning -> only the scoring modules load; every name of ``api.__all__`` still resolves ->
  ``test_api_facade_is_lazy_and_complete``
* the decayed-count features change when scipy.signal.lfilter is replaced -> bit for bit
  equal on random panels (float32 and float64) -> ``test_decay_equals_lfilter_bit_for_bit``
* the layer cache returns other values than reading the files and cutting the border ->
  identical frames, CRS and geometry bytes -> ``test_layer_cache_gives_identical_layers``
* a stale cache survives an edited layer file (or a Shapefile's sidecar), a changed segment
  length or the geography code -> each change gives another content key ->
  ``test_layer_cache_key_follows_inputs``, ``test_layer_cache_key_follows_code``
* a corrupted cache file breaks the command -> it is rebuilt -> ``test_corrupt_layer_cache_is_rebuilt``
* without a workspace a cache is written somewhere -> nothing is written ->
  ``test_no_workspace_no_cache``
* the benchmark's phase timings (``RISKMODEL_PROFILE``) are missing or break a command when
  the file cannot be written -> one JSON line with the phases; an unwritable path only warns
  -> ``test_profile_env_writes_phases``, ``test_profile_env_unwritable_path_is_harmless``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "geopandas", "xgboost", "matplotlib", "sklearn", "scipy", "pyarrow")


def _py(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=300
    )


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_heavy_library(flag: str) -> None:
    r = _py(
        "import sys\n"
        "from riskmodel.cli import main\n"
        f"try:\n    main([{flag!r}])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_version_is_resolved_lazily() -> None:
    from importlib.metadata import PackageNotFoundError, version

    import riskmodel

    try:
        expected = version("riskmodel")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        expected = "0.0.0+src"
    assert riskmodel.__version__ == expected
    r = _py("from riskmodel.cli import main\nmain(['--version'])")
    assert r.stdout.strip() == f"riskmodel, version {expected}"
    with pytest.raises(AttributeError):
        riskmodel.no_such_attribute  # noqa: B018


def test_api_facade_is_lazy_and_complete() -> None:
    r = _py(
        "import sys\n"
        "from riskmodel.api import run_score\n"
        "print([m for m in ('riskmodel.evaluation', 'riskmodel.sim', 'riskmodel.planning', "
        "'riskmodel.audit', 'riskmodel.model.engine', 'matplotlib', 'scipy.signal') "
        "if m in sys.modules])"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    from riskmodel import api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError):
        api.no_such_verb  # noqa: B018


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_decay_equals_lfilter_bit_for_bit(dtype: type) -> None:
    from scipy.signal import lfilter

    from riskmodel.features.history import _decayed

    rng = np.random.default_rng(3)
    for lam in (0.03, 2.5):
        C = rng.poisson(lam, size=(400, 37)).astype(dtype)
        for tau, K in ((7, 3), (30, 3), (91, 6), (365, 3)):
            a = np.exp(-1.0 / (tau * K))
            want = lfilter([0.0, 1.0], [1.0, -a], C, axis=0)
            got = _decayed(C, a)
            assert got.dtype == want.dtype == np.float64
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


def test_decay_series_together_equal_one_by_one() -> None:
    """The engine runs all its decays in one recursion: bit for bit each one alone."""
    from riskmodel.features.history import _decayed, _decayed_many

    rng = np.random.default_rng(4)
    pairs = [
        (rng.poisson(0.2, size=(300, 11)).astype(np.float32), np.exp(-1 / 21)),
        (rng.random((300, 5)) > 0.7, np.exp(-1 / 90)),
        (rng.poisson(3.0, size=(300, 11)), np.exp(-1 / 1095)),
    ]
    for (C, a), got in zip(pairs, _decayed_many(pairs), strict=True):
        want = _decayed_many([(C, a)])[0]
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
        alone = np.zeros(C.shape)
        for w in range(1, len(C)):
            alone[w] = alone[w - 1] * a + np.asarray(C[w - 1], np.float64)
        assert np.array_equal(got.view(np.uint64), alone.view(np.uint64))
    assert _decayed_many([]) == []
    assert _decayed(pairs[0][0], pairs[0][1]).shape == (300, 11)


@pytest.fixture
def ws(tmp_path: Path):  # noqa: ANN201
    from riskmodel.config.settings import load_settings
    from riskmodel.config.workspace import init_workspace

    w, _ = init_workspace(tmp_path / "ws")
    return load_settings(workspace=w.root)


def _cache_entries(settings) -> list[Path]:  # noqa: ANN001
    d = Path(settings.workspace.state_dir) / "cache"
    return sorted(d.glob("layers-*")) if d.is_dir() else []


def test_layer_cache_gives_identical_layers(ws) -> None:  # noqa: ANN001
    import pandas as pd
    import shapely

    from riskmodel.config.settings import Settings
    from riskmodel.geo.geodata import GEO_LAYERS, Geography

    fresh = Geography(Settings())  # no workspace: computed
    first = Geography(ws)  # computed, then cached
    assert len(_cache_entries(ws)) == 1
    cached = Geography(ws)  # read from the cache
    assert cached.crs == fresh.crs == "EPSG:3794"
    for name in GEO_LAYERS:
        want = getattr(fresh, name)
        for got in (getattr(first, name), getattr(cached, name)):
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            assert type(got.index) is type(want.index)
            assert got.crs == want.crs and got.crs.to_string() == want.crs.to_string()
            assert list(shapely.to_wkb(got.geometry.values)) == list(
                shapely.to_wkb(want.geometry.values)
            )


def test_layer_cache_key_follows_inputs(ws, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    from riskmodel.geo.geodata import Geography, _layers_key, layer_path

    g = Geography(ws)
    sources = {n: layer_path(n) for n in ("border", "settlements", "areas")}
    params = ("EPSG:3794", g.segment_length_m, True)
    k0 = _layers_key(sources, params)
    assert _layers_key(sources, params) == k0  # stable
    assert _layers_key(sources, ("EPSG:3794", 500.0, True)) != k0
    assert _layers_key(sources, ("EPSG:3794", g.segment_length_m, False)) != k0
    copy = tmp_path / "settlements.geojson"
    shutil.copyfile(sources["settlements"], copy)
    assert _layers_key({**sources, "settlements": copy}, params) == k0  # content, not path
    copy.write_text(copy.read_text("utf-8").replace("Metlika", "Metlica", 1), "utf-8")
    assert _layers_key({**sources, "settlements": copy}, params) != k0  # an edited layer
    assert _layers_key({**sources, "areas": tmp_path / "none.geojson"}, params) != k0
    shp = tmp_path / "b.shp"
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        (tmp_path / f"b{ext}").write_text(ext, "utf-8")
    k1 = _layers_key({**sources, "border": shp}, params)
    (tmp_path / "b.prj").write_text("another CRS", "utf-8")  # a Shapefile's sidecar counts
    assert _layers_key({**sources, "border": shp}, params) != k1
    Geography(ws, segment_length_m=500.0)
    assert len(_cache_entries(ws)) == 2  # one entry per content key, never overwritten


def test_layer_cache_key_follows_code(ws, monkeypatch) -> None:  # noqa: ANN001
    from riskmodel.geo import geodata

    sources = {"border": geodata.layer_path("border")}
    k0 = geodata._layers_key(sources, ())
    monkeypatch.setattr(geodata, "_CODE", (*geodata._CODE[:-1], "features/engine.py"))
    assert geodata._layers_key(sources, ()) != k0


def test_corrupt_layer_cache_is_rebuilt(ws) -> None:  # noqa: ANN001
    import pandas as pd

    from riskmodel.geo.geodata import Geography

    want = Geography(ws).segments
    (entry,) = _cache_entries(ws)
    (entry / "segments.feather").write_bytes(b"not arrow")
    got = Geography(ws).segments
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert (entry / "segments.feather").read_bytes()[:6] == b"ARROW1"  # rewritten
    assert len(_cache_entries(ws)) == 1 and not list(entry.parent.glob(".layers-*"))


def test_no_workspace_no_cache(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from riskmodel.config.settings import Settings
    from riskmodel.geo.geodata import Geography

    monkeypatch.chdir(tmp_path)
    Geography(Settings())
    assert list(tmp_path.iterdir()) == []


def test_profile_env_writes_phases(tmp_path: Path) -> None:
    prof = tmp_path / "p.jsonl"
    r = _py(
        "from riskmodel.config.settings import Settings\n"
        "from riskmodel.geo.geodata import Geography\n"
        "Geography(Settings())\n",
        RISKMODEL_PROFILE=str(prof),
    )
    assert r.returncode == 0, r.stderr
    (line,) = prof.read_text("utf-8").splitlines()
    rec = json.loads(line)
    names = [p["name"] for p in rec["phases"]]
    assert "geography" in names
    assert rec["total_wall_s"] > 0 and rec["total_cpu_s"] > 0
    assert all(p["wall_s"] >= 0 and p["cpu_s"] >= 0 for p in rec["phases"])


def test_profile_env_unwritable_path_is_harmless(tmp_path: Path) -> None:
    r = _py(
        "from riskmodel.config.settings import Settings\n"
        "from riskmodel.geo.geodata import Geography\n"
        "Geography(Settings())\nprint('done')",
        RISKMODEL_PROFILE=str(tmp_path / "missing" / "dir" / "p.jsonl"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done"


def test_quick_exit_keeps_codes_output_and_exit_handlers(tmp_path: Path) -> None:
    """``riskmodel`` leaves with os._exit after the command (the interpreter's teardown cost
    ~0.35 s): exit codes, every byte of piped output and the atexit handlers (the phase
    profile, logging) are kept."""
    import subprocess
    import sys

    from click.testing import CliRunner

    from riskmodel.cli import main

    def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
        e = dict(os.environ, **env)
        e.pop("RISKMODEL_WORKSPACE", None)
        return subprocess.run(
            [sys.executable, "-m", "riskmodel", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=e,
            timeout=120,
        )

    prof = tmp_path / "p.jsonl"
    ok = cli("simulate", "--help", RISKMODEL_PROFILE=str(prof))
    want = CliRunner().invoke(main, ["simulate", "--help"], terminal_width=80).output
    assert ok.returncode == 0  # the whole text, through a pipe (wrapped to its own width)
    assert ok.stdout.split() == want.replace("Usage: main", "Usage: python -m riskmodel").split()
    assert json.loads(prof.read_text("utf-8").splitlines()[-1])["argv"] == ["simulate", "--help"]
    usage = cli("score", "--date", "01.12.2026")
    assert usage.returncode == 2 and "YYYY-MM-DD" in usage.stderr
    bad = cli("validate", "--events", str(tmp_path / "none.csv"))
    assert bad.returncode not in (0, 2) and bad.stderr.startswith("riskmodel: error:")
    assert "Traceback" not in bad.stderr + usage.stderr


def test_proj_pipelines_remembered_give_the_same_numbers(ws) -> None:  # noqa: ANN001
    """A workspace remembers the PROJ pipeline of each CRS pair (choosing one costs ~70 ms);
    a transformer built from it transforms exactly as the chosen one; a broken file is
    ignored and rewritten; nothing is remembered without a workspace."""
    import pyproj
    from pyproj import Transformer

    from riskmodel.geo.geodata import Geography
    from riskmodel.io.read import coords

    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(13.3, 16.7, 5000), rng.uniform(45.3, 46.9, 5000)
    want = Transformer.from_crs("EPSG:4326", "EPSG:3794", always_xy=True).transform(lon, lat)
    path = Path(ws.workspace.state_dir) / "cache" / f"proj-{pyproj.proj_version_str}.json"
    try:
        for broken in (False, True):
            if broken:
                path.write_text("{not json", "utf-8")
            coords._transformer.cache_clear()
            Geography(ws)  # the workspace's cache folder
            first = coords._transformer("EPSG:4326", "EPSG:3794")  # chosen by PROJ, remembered
            assert "EPSG:4326 -> EPSG:3794" in json.loads(path.read_text("utf-8"))
            coords._transformer.cache_clear()
            Geography(ws)
            again = coords._transformer("EPSG:4326", "EPSG:3794")  # built from the pipeline
            for tr in (first, again):
                got = tr.transform(lon, lat)
                assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        coords.remember_pipelines(None)
        coords._transformer.cache_clear()
        path.unlink()
        coords._transformer("EPSG:4326", "EPSG:3794")
        assert not path.exists()
    finally:
        coords.remember_pipelines(None)
        coords._transformer.cache_clear()
