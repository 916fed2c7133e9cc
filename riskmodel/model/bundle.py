"""Model bundles: write, verify, load and list.

A bundle is a folder ``models/<model-id>/`` with

* ``booster.ubj`` - the XGBoost model in its native UBJSON format (loads without code execution),
* ``preprocess.joblib`` - the fitted preprocessing (feature columns, static segment features,
  category mappings, calibration), persisted with joblib,
* ``manifest.json`` - sha256 of every file, library versions, feature spec and its hash,
  segment-set hash, CRS, training window, input fingerprints, metrics,
* ``MODEL_CARD.md`` - data, window, metrics against the baselines, limitations,
* ``manifest.sig`` - HMAC-SHA256 of the manifest when ``RISKMODEL_SIGNING_KEY`` is set.

Loading verifies every hash (and the signature when a key is configured) **before** anything is
unpickled, and refuses bundles outside the models root unless explicitly trusted: unpickling a
crafted joblib file runs arbitrary code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb

from riskmodel import __version__
from riskmodel.errors import BundleError
from riskmodel.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    canonical_json,
    sha256_file,
)
from riskmodel.model.estimator import RiskRegressor

BUNDLE_FILES = ("booster.ubj", "preprocess.joblib", "MODEL_CARD.md")  # always present


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's output."""
    return {
        "riskmodel": __version__,
        "xgboost": xgb.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


def segment_hash(segment_ids: list[str], lengths: np.ndarray) -> str:
    """Hash of a segment set (ids and lengths to the metre)."""
    payload = json.dumps(
        [list(map(str, segment_ids)), np.round(np.asarray(lengths, float)).astype(int).tolist()]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _signing_key() -> bytes | None:
    k = os.environ.get("RISKMODEL_SIGNING_KEY", "")
    return k.encode() if k else None


@dataclass
class Bundle:
    """A loaded, verified model bundle.

    Attributes
    ----------
    path : Path
    manifest : dict
    model : RiskRegressor
    preprocess : dict
    """

    path: Path
    manifest: dict[str, Any]
    model: RiskRegressor
    preprocess: dict[str, Any]

    @property
    def model_id(self) -> str:
        """The bundle's id."""
        return str(self.manifest["model_id"])


def save_bundle(
    model: RiskRegressor,
    preprocess: dict[str, Any],
    manifest: dict[str, Any],
    model_card: str,
    root: str | os.PathLike[str],
    model_id: str,
) -> Path:
    """Write a bundle atomically file by file into ``root/model_id`` (a new folder).

    Parameters
    ----------
    model : RiskRegressor
        Fitted estimator (its booster is saved natively, the rest in ``preprocess``).
    preprocess : dict
        Fitted preprocessing objects (joblib).
    manifest : dict
        Metadata; file hashes, versions and the id are added here.
    model_card : str
        Markdown model card.
    root : path-like
        Models root.
    model_id : str
    """
    folder = Path(root) / model_id
    tmp = Path(root) / f".{model_id}.partial"
    tmp.mkdir(parents=True, exist_ok=True)
    boosters = getattr(model, "boosters_", None) or [model.booster_]
    names = ["booster.ubj"] + [f"booster_{i}.ubj" for i in range(1, len(boosters))]
    for name, b in zip(names, boosters, strict=True):
        atomic_write_bytes(tmp / name, bytes(b.save_raw(raw_format="ubj")))
    est_params = model.get_params()
    pre = dict(preprocess)
    pre["estimator"] = {
        "params": est_params,
        "best_iteration_": model.best_iteration_,
        "best_iterations_": list(getattr(model, "best_iterations_", [model.best_iteration_])),
        "booster_files": names,
        "feature_names_in_": list(model.feature_names_in_),
        "dispersion_": model.dispersion_,
        "fit_info_": model.fit_info_,
    }
    joblib.dump(pre, tmp / "preprocess.joblib", compress=3)
    atomic_write_text(tmp / "MODEL_CARD.md", model_card)
    man = dict(manifest)
    man["model_id"] = model_id
    man["versions"] = versions()
    man["files"] = {n: sha256_file(tmp / n) for n in (*BUNDLE_FILES, *names[1:])}
    atomic_write_json(tmp / "manifest.json", man)
    key = _signing_key()
    if key:
        sig = hmac.new(key, (tmp / "manifest.json").read_bytes(), hashlib.sha256).hexdigest()
        atomic_write_text(tmp / "manifest.sig", sig + "\n")
    if folder.exists():
        raise BundleError(
            f"model {model_id} already exists", where=str(folder), fix="remove it or retrain"
        )
    os.replace(tmp, folder)  # the bundle appears complete or not at all
    return folder


def verify_bundle(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, trust: bool = False
) -> dict[str, Any]:
    """Check a bundle without unpickling anything; return its manifest.

    Raises
    ------
    BundleError
        Outside the models root (unless ``trust``), missing files, hash mismatch, bad or
        missing signature when a signing key is configured.
    """
    p = Path(path).resolve()
    where = str(path)
    if root is not None and not trust:
        r = Path(root).resolve()
        if r not in p.parents:
            raise BundleError(
                f"model bundle is outside the models root {r}",
                where=where,
                fix="copy it into the models root after checking it, or pass --trust-model",
            )
    man_path = p / "manifest.json"
    if not man_path.is_file():
        raise BundleError(
            "not a model bundle (no manifest.json)",
            where=where,
            fix="point --model at a folder made by riskmodel train",
        )
    man_bytes = man_path.read_bytes()
    key = _signing_key()
    if key:
        sig_path = p / "manifest.sig"
        if not sig_path.is_file():
            raise BundleError(
                "bundle is not signed but a signing key is configured",
                where=where,
                fix="retrain with RISKMODEL_SIGNING_KEY set, or unset the key",
            )
        want = hmac.new(key, man_bytes, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig_path.read_text().strip()):
            raise BundleError(
                "bundle signature does not match (tampered or other key)",
                where=where,
                fix="use a bundle signed with this key, or retrain",
            )
    try:
        man = json.loads(man_bytes)
    except json.JSONDecodeError:
        raise BundleError(
            "manifest.json is not valid JSON (tampered?)", where=where, fix="retrain"
        ) from None
    files = man.get("files", {})
    for name in sorted({*BUNDLE_FILES, *files}):
        f = p / name
        if name not in files or not f.is_file():
            raise BundleError(
                f"bundle file {name} is missing", where=where, fix="retrain the model"
            )
        if sha256_file(f) != files[name]:
            raise BundleError(
                f"bundle file {name} was changed after training (sha256 mismatch); refused before loading",
                where=where,
                fix="restore the original bundle or retrain",
            )
    return man


def load_bundle(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, trust: bool = False
) -> Bundle:
    """Verify (see :func:`verify_bundle`) and then load a bundle."""
    p = Path(path)
    man = verify_bundle(p, root=root, trust=trust)
    pre = joblib.load(p / "preprocess.joblib")  # safe: hash verified above
    est = pre.pop("estimator")
    model = RiskRegressor(**est["params"])
    boosters = []
    for name in est.get("booster_files", ["booster.ubj"]):
        if name not in man["files"]:  # every file loaded must be covered by the verified manifest
            raise BundleError(
                f"bundle file {name} is not in the manifest", where=str(p), fix="retrain"
            )
        b = xgb.Booster()
        b.load_model(bytearray((p / name).read_bytes()))
        boosters.append(b)
    model.booster_ = boosters[0]
    model.boosters_ = boosters
    model.best_iteration_ = est["best_iteration_"]
    model.best_iterations_ = est.get("best_iterations_", [est["best_iteration_"]])
    model.feature_names_in_ = np.array(est["feature_names_in_"], dtype=object)
    model.n_features_in_ = len(model.feature_names_in_)
    model.dispersion_ = est["dispersion_"]
    model.fit_info_ = est["fit_info_"]
    return Bundle(p, man, model, pre)


def list_bundles(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Manifests of the bundles under ``root`` (newest first), each with ``path`` and ``ok``."""
    r = Path(root)
    out = []
    if not r.is_dir():
        return out
    for d in sorted(r.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            man = json.loads((d / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        try:
            verify_bundle(d, root=r)
            ok = "verified"
        except BundleError as exc:
            ok = f"REFUSED: {exc.what}"
        man["path"] = str(d)
        man["status"] = ok
        out.append(man)
    out.sort(key=lambda m: (m.get("created", ""), m.get("model_id", "")), reverse=True)
    return out


def newest_bundle(root: str | os.PathLike[str]) -> Path:
    """Path of the newest bundle in the models root."""
    b = list_bundles(root)
    if not b:
        raise BundleError(
            f"no model bundle in {root}", fix="train one with riskmodel train, or pass --model"
        )
    return Path(b[0]["path"])


def manifest_digest(man: dict[str, Any]) -> str:
    """Short digest of a manifest (for ids)."""
    return hashlib.sha256(canonical_json(man).encode()).hexdigest()[:10]
