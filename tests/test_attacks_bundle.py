"""Attacks on model bundles and the registry (issue 15 "Hardening", bundle side).

Catalogue: attack -> expected behaviour -> test.

1. A process swaps a bundle file between the check and the load (the old loader hashed
   ``preprocess.joblib`` and reopened it by path to unpickle)
   -> every file is read once; the model is built from the checked bytes; the swapped file
   is never read -> ``test_swap_after_check_is_never_read``.
2. Anyone who can write to ``models/`` plants a copied bundle (edited preprocessing, sha256
   updated in the manifest, ``"created": "2099..."``)
   -> its signature no longer verifies: listed ``REFUSED``, never chosen; the default /
   newest verified bundle is used; an unedited signed copy under another folder name is
   refused too (ids name folders) -> ``test_planted_edited_copy_is_refused_and_skipped``.
   A format-1 bundle with a pickle -> refused with "bundle format 1 (pickle) is no longer
   loaded; retrain" (exit 4), nothing unpickled -> ``test_format1_pickle_refused_unexecuted``.
   Without a key a forged HR@10 of 0.99 -> listed ``unsigned``, never ``verified``; a signed
   bundle without a key to check it -> refused unless ``--trust-model``, which is logged and
   recorded as ``trusted_unsigned`` -> ``test_without_key_nothing_is_verified``.
   A ``riskmodel.toml`` points ``models_root`` outside the workspace -> one-line ConfigError
   unless ``--allow-external-models`` -> ``test_models_root_outside_workspace_needs_flag``.
3. A binary ``manifest.sig`` -> ``models list`` shows ``REFUSED: ... not a hex signature``
   and exits 0 -> ``test_binary_signature_lists_as_refused``.
4. A planted "newest" bundle that is refused blocked all scoring -> refused bundles are
   skipped with a warning -> ``test_refused_newest_does_not_block_scoring``.
5. ``train --to 2030-01-01`` on two weeks of data registered a 1-tree model as "verified"
   -> InputError (exit 3) naming the events, days and the fix
   -> ``test_too_little_data_is_refused``.
6. ``train --to tomorrow`` (or today) trained on shifts not yet over as if nothing had
   happened -> InputError (exit 3) naming the first open shift and the last complete day
   -> ``test_training_on_shifts_not_yet_over_is_refused``.
Registry use: ``models show UNKNOWN`` and ``--model UNKNOWN`` list the ids there; ``models
use`` accepts only a verified bundle; ``train`` makes its bundle the workspace default;
``models list`` is a table with a header and ``*`` -> ``test_registry_commands``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from riskmodel.cli import main
from riskmodel.config.settings import Settings, load_settings
from riskmodel.config.workspace import init_workspace
from riskmodel.errors import EXIT_DATA, EXIT_MODEL, BundleError, ConfigError, InputError
from riskmodel.model.bundle import list_bundles, load_bundle

FAST = {"n_estimators": 30, "learning_rate": 0.3}


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    for name in ("RISKMODEL_SIGNING_KEY", "RISKMODEL_WORKSPACE", "RISKMODEL_MODELS_ROOT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def trained_ws(dataset, tmp_path_factory):
    """A workspace with one bundle trained in it (signed with the workspace key)."""
    from riskmodel.api import train_bundle

    root = tmp_path_factory.mktemp("ws") / "station"
    init_workspace(root)
    s = load_settings(workspace=root, env={})
    path, man = train_bundle(dataset, "2024-11-30", settings=s, params=FAST)
    return root, path, man


@pytest.fixture
def ws(trained_ws, tmp_path):
    """A fresh copy of the trained workspace (tests may damage it)."""
    src, path, _ = trained_ws
    root = tmp_path / "station"
    shutil.copytree(src, root)
    os.chmod(root / ".riskmodel" / "signing.key", 0o600)
    return root, root / "models" / path.name


def _settings(root: Path, **env: str) -> Settings:
    return load_settings(workspace=root, env=dict(env))


def _plant(good: Path, name: str) -> Path:
    bad = good.parent / name
    shutil.copytree(good, bad)
    return bad


def _rewrite_manifest(folder: Path, **changes: object) -> None:
    man = json.loads((folder / "manifest.json").read_text())
    man.update(changes)
    man["files"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in man["files"]}
    (folder / "manifest.json").write_text(json.dumps(man))


def test_swap_after_check_is_never_read(ws, monkeypatch):
    root, good = ws
    s = _settings(root)
    reads: list[str] = []
    real = Path.read_bytes

    def spy(self: Path) -> bytes:
        data = real(self)
        reads.append(self.name)
        if self.name == "preprocess.json":  # swap it right after it was read
            self.write_text('{"estimator": "evil"}')
        if self.name == "booster.ubj":
            self.write_bytes(b"garbage")
        return data

    monkeypatch.setattr(Path, "read_bytes", spy)
    b = load_bundle(good, root=root / "models", key=s.key())
    monkeypatch.setattr(Path, "read_bytes", real)
    for name in ("manifest.json", "manifest.sig", "preprocess.json", "booster.ubj"):
        assert reads.count(name) == 1, (name, reads)
    assert b.status == "verified" and len(b.model.feature_names_in_) > 5
    X = np.zeros((2, len(b.model.feature_names_in_)))
    assert np.isfinite(b.model.predict(X)).all()
    with pytest.raises(BundleError, match="changed after training"):  # the swap is seen next time
        load_bundle(good, root=root / "models", key=s.key())


def test_planted_edited_copy_is_refused_and_skipped(ws):
    from riskmodel.api import load_model

    root, good = ws
    bad = _plant(good, "rm-20991231-planted")
    pre = json.loads((bad / "preprocess.json").read_text())
    pre["feature_columns"] = pre["feature_columns"][:1]
    (bad / "preprocess.json").write_text(json.dumps(pre))
    _rewrite_manifest(bad, created="2099-01-01T00:00:00+00:00", model_id=bad.name)
    s = _settings(root)
    rows = {m["model_id"]: m for m in list_bundles(root / "models", key=s.key())}
    assert rows[bad.name]["status"].startswith("REFUSED: signature does not match")
    assert load_model(s, None).model_id == good.name  # the workspace default
    (root / ".riskmodel" / "state.json").unlink()  # no default: newest that verifies
    assert load_model(s, None).model_id == good.name
    with pytest.raises(BundleError, match="signature does not match"):
        load_model(s, bad.name)
    renamed = _plant(good, "rm-20991231-renamed")  # a signed copy under another id
    with pytest.raises(BundleError, match="folder name differs from the model id"):
        load_model(s, renamed.name)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_format1_pickle_refused_unexecuted(ws, tmp_path):
    from riskmodel.api import load_model

    root, good = ws
    old = _plant(good, "rm-20991231-format1")
    (old / "preprocess.json").unlink()
    marker = tmp_path / "PWNED"
    with open(old / "preprocess.joblib", "wb") as fh:
        pickle.dump(_Evil(str(marker)), fh)
    man = json.loads((old / "manifest.json").read_text())
    man.pop("format")
    man["files"]["preprocess.joblib"] = man["files"].pop("preprocess.json")
    (old / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(
        BundleError, match=r"bundle format 1 \(pickle\) is no longer loaded; retrain"
    ) as e:
        load_model(_settings(root), old.name, trust=True)
    assert e.value.exit_code == EXIT_MODEL and not marker.exists()
    r = CliRunner().invoke(main, ["--workspace", str(root), "models", "list"])
    assert r.exit_code == 0 and "REFUSED: bundle format 1" in r.output and not marker.exists()


def test_without_key_nothing_is_verified(ws, tmp_path, caplog):
    from riskmodel.api import load_model
    from riskmodel.api._score import provenance

    root, good = ws
    models = tmp_path / "loose"
    models.mkdir()
    forged = Path(shutil.move(_plant(good, "x"), models / "rm-forged"))
    (forged / "manifest.sig").unlink()
    table = json.loads((forged / "manifest.json").read_text())["metrics"]["table"]
    table["model"]["hr_10"] = 0.99
    _rewrite_manifest(
        forged, model_id="rm-forged", metrics={"table": table, "period": ["a", "b"], "note": ""}
    )
    signed = shutil.copytree(good, models / good.name)
    s = Settings(models_root=str(models))  # no workspace, no key
    status = {m["model_id"]: m["status"] for m in list_bundles(models, key=s.key())}
    assert status["rm-forged"] == "unsigned"
    assert status[good.name].startswith("REFUSED: signed by key")
    for m in ("rm-forged", good.name):
        with pytest.raises(BundleError):
            load_model(s, m)
    with pytest.raises(BundleError, match="no verified model bundle"):
        load_model(s, None)
    b = load_model(s, signed.name, trust=True)
    assert b.trusted_unsigned and "trusting model bundle" in caplog.text

    class _Ds:
        inputs: dict = {}

        class spec:  # noqa: N801
            sha256 = "x"

    assert provenance(b, _Ds())["trusted_unsigned"] is True


def test_models_root_outside_workspace_needs_flag(ws, tmp_path):
    from riskmodel.api import list_models, load_model

    root, good = ws
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(root / "models", elsewhere)
    cfg = root / "riskmodel.toml"
    cfg.write_text(
        cfg.read_text().replace('models_root = "models"', f'models_root = "{elsewhere}"')
    )
    s = _settings(root)
    for call in (lambda: list_models(s), lambda: load_model(s, None)):
        with pytest.raises(ConfigError, match="outside the workspace"):
            call()
    r = CliRunner().invoke(main, ["--workspace", str(root), "models", "list"])
    assert r.exit_code != 0 and "--allow-external-models" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    r = CliRunner().invoke(
        main, ["--workspace", str(root), "models", "list", "--allow-external-models"]
    )
    assert r.exit_code == 0 and good.name in r.output


def test_binary_signature_lists_as_refused(ws):
    root, good = ws
    (good / "manifest.sig").write_bytes(b"\xff\xfe\x00\x81binary")
    r = CliRunner().invoke(main, ["--workspace", str(root), "models", "list"])
    assert r.exit_code == 0, r.output
    assert "REFUSED: manifest.sig is not a hex signature" in r.output


def test_refused_newest_does_not_block_scoring(ws, caplog):
    from riskmodel.api import load_model

    root, good = ws
    (root / ".riskmodel" / "state.json").unlink()
    bad = _plant(good, "rm-20991231-newest")
    _rewrite_manifest(bad, created="2099-12-31T00:00:00+00:00", model_id=bad.name)
    s = _settings(root)
    assert list_bundles(root / "models", key=s.key())[0]["model_id"] != good.name
    assert load_model(s, None).model_id == good.name
    assert "skipped model" in caplog.text


def test_too_little_data_is_refused(dataset, scenario, settings, tmp_path):
    from riskmodel.api import train_bundle
    from riskmodel.model.pipeline import prepare_dataset

    ev = scenario.events
    ts = ev["timestamp"]
    short = ev[ts < ts.min() + pd.Timedelta(days=14)]
    last = short["timestamp"].max().date()
    until = (last + pd.Timedelta(days=3)).isoformat()
    # (a date years after the data is refused earlier, when the dataset is built: test_attacks_io)
    ds = prepare_dataset(settings, short, None, geo=dataset.geo, end=until)
    with pytest.raises(
        InputError, match=r"too little data to train: \d+ events on the border over \d+ days"
    ) as e:
        train_bundle(ds, until, settings=settings, params=FAST, root=tmp_path)
    assert e.value.exit_code == EXIT_DATA and "56 days" in str(e.value)
    with pytest.raises(InputError, match="after the last recorded event"):
        train_bundle(dataset, "2025-06-30", settings=settings, params=FAST, root=tmp_path)
    assert not list(tmp_path.iterdir())


def test_training_on_shifts_not_yet_over_is_refused(dataset):
    from riskmodel.api._model import check_enough_data

    until = "2024-12-20"
    w_end = dataset.window_of_date(pd.Timestamp(until) + pd.Timedelta(days=1))
    night_end = dataset.windows["end_utc"].iloc[w_end - 1]
    check_enough_data(dataset, until, w_end, now=night_end)  # the last shift just ended
    with pytest.raises(InputError, match="have not ended yet") as e:
        check_enough_data(dataset, until, w_end, now=night_end - pd.Timedelta(hours=1))
    assert e.value.exit_code == EXIT_DATA
    assert "night shift of 2024-12-20" in str(e.value) and "--to 2024-12-19" in e.value.fix


def test_registry_commands(ws, trained_ws):
    root, good = ws
    assert trained_ws[2]["default"] is True and trained_ws[2]["status"] == "verified"
    run = CliRunner().invoke
    r = run(main, ["--workspace", str(root), "models", "list"])
    lines = r.output.splitlines()
    assert r.exit_code == 0 and lines[0].split()[:2] == ["id", "created"]
    assert lines[1].startswith("*") and good.name in lines[1] and lines[1].endswith("verified")
    assert " vs " in lines[1]
    for args in (["models", "show", "rm-nope"], ["models", "use", "rm-nope"]):
        r = run(main, ["--workspace", str(root), *args])
        assert r.exit_code == EXIT_MODEL and good.name in r.output, r.output
        assert "outside the models root" not in r.output
    bad = _plant(good, "rm-unsigned")
    (bad / "manifest.sig").unlink()
    _rewrite_manifest(bad, model_id=bad.name)
    r = run(main, ["--workspace", str(root), "models", "use", bad.name])
    assert r.exit_code == EXIT_MODEL and "not signed" in r.output
    r = run(main, ["--workspace", str(root), "models", "use", good.name])
    assert (
        r.exit_code == 0
        and json.loads((root / ".riskmodel/state.json").read_text())["default_model"] == good.name
    )
    r = run(main, ["--workspace", str(root), "models", "show", good.name])
    assert r.exit_code == 0 and '"status": "verified"' in r.output
    r = run(main, ["--workspace", str(root), "models", "show"])  # the default model
    assert r.exit_code == 0 and f'"model_id": "{good.name}"' in r.output
