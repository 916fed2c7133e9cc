"""Model bundles: write, check, load and list. No file of a bundle is ever unpickled.

A bundle (format 2) is a folder ``models/<model-id>/`` with

* ``booster.ubj`` (and ``booster_<i>.ubj`` for bags) - XGBoost models in their native UBJSON
  format, parsed from bytes as plain data (no code execution, no XGBoost import:
  :class:`~riskmodel.model.trees.TreeEnsemble` evaluates them),
* ``preprocess.json`` - feature columns, static columns and the estimator's fitted state
  (plain JSON),
* ``MODEL_CARD.md`` - data, window, metrics against the baselines, limitations,
* ``manifest.json`` - ``format``, sha256 of every file, library versions, feature spec and its
  hash, segment-set hash, CRS, training window, input fingerprints (relative paths), metrics,
  ``signed_by`` (fingerprint of the signing key, never the key),
* ``manifest.sig`` - HMAC-SHA256 of the manifest's bytes with the workspace key (or
  ``RISKMODEL_SIGNING_KEY``); absent when the bundle was trained without any key.

Loading reads every file's bytes once, checks the signature and the sha256 of those bytes and
builds the model from the same bytes: nothing is reopened by path after it was checked. A
bundle whose signature is missing, made with another key, or cannot be checked (no key here)
is refused unless the caller trusts it explicitly; a bundle outside the models root likewise.
Format-1 bundles (``preprocess.joblib``, a pickle) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel._timing import timed
from riskmodel.errors import BundleError
from riskmodel.files import atomic_write_bytes, atomic_write_text, canonical_json
from riskmodel.model.fitted import ScoringModel
from riskmodel.model.trees import TreeEnsemble

if TYPE_CHECKING:  # training's estimator; loading a bundle never imports XGBoost
    from riskmodel.model.estimator import RiskRegressor

log = logging.getLogger(__name__)

FORMAT = 2
BUNDLE_FILES = ("booster.ubj", "preprocess.json", "MODEL_CARD.md")  # always present
VERIFIED, UNSIGNED = "verified", "unsigned"
_RETRAIN = "retrain with riskmodel train"


def _installed(*dists: str) -> str:
    """Installed version of the first of ``dists`` found, without importing it (XGBoost's
    import alone costs seconds, and scoring does not need it)."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's output."""
    return {
        "riskmodel": __version__,
        "xgboost": _installed("xgboost-cpu", "xgboost"),  # the project installs the CPU wheel
        "scikit-learn": _installed("scikit-learn"),
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


def key_fingerprint(key: bytes) -> str:
    """Public fingerprint of a signing key (first 16 hex digits of its sha256)."""
    return hashlib.sha256(key).hexdigest()[:16]


def _sign(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _plain(obj: Any) -> Any:
    """``obj`` as plain JSON types (numpy scalars and arrays converted); anything else is a
    bug of the caller, not something to stringify silently."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise TypeError(f"bundle content must be JSON data, got {type(obj).__name__}")


@dataclass
class Bundle:
    """A loaded, checked model bundle.

    Attributes
    ----------
    path : Path
    manifest : dict
    model : ScoringModel
        The saved estimator rebuilt from the checked bytes, evaluated in numpy (same
        predictions and TreeSHAP as the trained :class:`RiskRegressor`, no XGBoost import).
    preprocess : dict
    status : str
        ``"verified"`` (signature checked with this key) or why it was trusted instead.
    trusted_unsigned : bool
        Loaded with ``trust`` although its signature was not verified.
    """

    path: Path
    manifest: dict[str, Any]
    model: ScoringModel
    preprocess: dict[str, Any]
    status: str = VERIFIED
    trusted_unsigned: bool = False

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
    *,
    key: bytes | None = None,
) -> Path:
    """Write a bundle into the new folder ``root/model_id`` (appears complete or not at all).

    Parameters
    ----------
    model : RiskRegressor
        Fitted estimator (boosters saved natively, its fitted state in ``preprocess.json``).
    preprocess : dict
        Fitted preprocessing (JSON data: column lists and the like).
    manifest : dict
        Metadata; format, file hashes, versions, id and ``signed_by`` are added here.
    model_card : str
        Markdown model card.
    root : path-like
        Models root.
    model_id : str
    key : bytes, optional
        Signing key; without one the bundle is written unsigned (refused on load unless
        trusted).
    """
    folder = Path(root) / model_id
    tmp = Path(root) / f".{model_id}.partial"
    tmp.mkdir(parents=True, exist_ok=True)
    boosters = getattr(model, "boosters_", None) or [model.booster_]
    names = ["booster.ubj"] + [f"booster_{i}.ubj" for i in range(1, len(boosters))]
    data: dict[str, bytes] = {
        n: bytes(b.save_raw(raw_format="ubj")) for n, b in zip(names, boosters, strict=True)
    }
    pre = dict(preprocess)
    pre["estimator"] = {
        "params": model.get_params(),
        "best_iteration_": model.best_iteration_,
        "best_iterations_": list(getattr(model, "best_iterations_", [model.best_iteration_])),
        "booster_files": names,
        "feature_names_in_": list(model.feature_names_in_),
        "dispersion_": model.dispersion_,
        "fit_info_": model.fit_info_,
    }
    data["preprocess.json"] = canonical_json(_plain(pre)).encode()
    data["MODEL_CARD.md"] = model_card.encode()
    for name, content in data.items():
        atomic_write_bytes(tmp / name, content)
    man = dict(manifest)
    man["format"] = FORMAT
    man["model_id"] = model_id
    man["versions"] = versions()
    man["files"] = {n: hashlib.sha256(c).hexdigest() for n, c in sorted(data.items())}
    man["signed_by"] = key_fingerprint(key) if key else None
    man_bytes = canonical_json(_plain(man)).encode()
    atomic_write_bytes(tmp / "manifest.json", man_bytes)
    if key:
        atomic_write_text(tmp / "manifest.sig", _sign(key, man_bytes) + "\n")
    if folder.exists():
        raise BundleError(
            f"model {model_id} already exists", where=str(folder), fix="remove it or retrain"
        )
    os.replace(tmp, folder)
    return folder


@dataclass
class Checked:
    """A bundle's bytes, read once and checked: manifest, file contents, signature status."""

    path: Path
    manifest: dict[str, Any]
    status: str  # "verified", "unsigned", or the reason the signature was not verified
    data: dict[str, bytes] = field(default_factory=dict)


def _read(path: Path, name: str, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"bundle file {name} cannot be read ({exc.strerror})", where=where, fix=_RETRAIN
        ) from None


def _manifest(p: Path, where: str) -> tuple[bytes, dict[str, Any]]:
    man_path = p / "manifest.json"
    if not man_path.is_file():
        if (p / "preprocess.joblib").exists():
            raise _format1(where)
        raise BundleError(
            "not a model bundle (no manifest.json)",
            where=where,
            fix="point --model at a folder made by riskmodel train",
        )
    man_bytes = _read(man_path, "manifest.json", where)
    try:
        man = json.loads(man_bytes)
    except ValueError:  # bad JSON or not UTF-8
        raise BundleError(
            "manifest.json is not valid JSON (tampered?)", where=where, fix=_RETRAIN
        ) from None
    if not isinstance(man, dict) or not isinstance(man.get("files"), dict):
        raise BundleError("manifest.json is not a bundle manifest", where=where, fix=_RETRAIN)
    if man.get("format") != FORMAT or "preprocess.joblib" in man["files"]:
        raise _format1(where)
    return man_bytes, man


def _format1(where: str) -> BundleError:
    return BundleError(
        "bundle format 1 (pickle) is no longer loaded; retrain", where=where, fix=_RETRAIN
    )


def _signature_status(p: Path, man_bytes: bytes, man: dict[str, Any], key: bytes | None) -> str:
    """``verified``, ``unsigned`` or why the signature cannot be accepted."""
    where = str(p)
    sig_path = p / "manifest.sig"
    if not sig_path.exists():
        return UNSIGNED
    raw = _read(sig_path, "manifest.sig", where)
    try:
        sig = raw.decode("ascii").strip()
        bytes.fromhex(sig)
    except (UnicodeDecodeError, ValueError):
        raise BundleError(
            "manifest.sig is not a hex signature (tampered?)", where=where, fix=_RETRAIN
        ) from None
    signer = str(man.get("signed_by") or "an unknown key")
    if key is None:
        return f"signed by key {signer}, but no signing key is configured here to check it"
    if not hmac.compare_digest(_sign(key, man_bytes), sig):
        return f"signature does not match this key {key_fingerprint(key)} (tampered, or signed by {signer})"
    return VERIFIED


def check_bundle(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    trust: bool = False,
) -> Checked:
    """Read a bundle's files once and check them (see the module docs).

    Parameters
    ----------
    path : path-like
        The bundle folder.
    root : path-like, optional
        Models root; a bundle outside it is refused unless ``trust``.
    key : bytes, optional
        The signing key to check the signature with.
    trust : bool
        Accept a bundle outside the root or whose signature is not verified (missing, other
        key, no key here). Hashes are checked regardless.

    Returns
    -------
    Checked
        Manifest, the checked bytes of every file and the signature status.

    Raises
    ------
    BundleError
        Not a bundle, format 1, unreadable or missing files, sha256 mismatch, a malformed
        signature; without ``trust`` also outside the root or a signature not verified.
    """
    p = Path(path).resolve()
    where = str(path)
    if root is not None and not trust and Path(root).resolve() not in p.parents:
        raise BundleError(
            f"model bundle is outside the models root {Path(root).resolve()}",
            where=where,
            fix="copy it into the models root after checking it, or pass --trust-model",
        )
    man_bytes, man = _manifest(p, where)
    if man.get("model_id") != p.name:  # ids name folders: a renamed copy is not that model
        raise BundleError(
            f"folder name differs from the model id {man.get('model_id')!r} in its manifest",
            where=where,
            fix="give the folder its model id as name, or retrain",
        )
    status = _signature_status(p, man_bytes, man, key)
    if status != VERIFIED and not trust:
        raise BundleError(
            "bundle is not signed" if status == UNSIGNED else status,
            where=where,
            fix="train it in this workspace (or with RISKMODEL_SIGNING_KEY set), "
            "or pass --trust-model after checking where it came from",
        )
    files = man["files"]
    data: dict[str, bytes] = {}
    for name in sorted({*BUNDLE_FILES, *files}):
        f = p / name
        if name not in files or "/" in name or "\\" in name or not f.is_file():
            raise BundleError(f"bundle file {name} is missing", where=where, fix=_RETRAIN)
        content = _read(f, name, where)
        if hashlib.sha256(content).hexdigest() != files[name]:
            raise BundleError(
                f"bundle file {name} was changed after training (sha256 mismatch); refused before loading",
                where=where,
                fix="restore the original bundle or retrain",
            )
        data[name] = content
    return Checked(p, man, status, data)


def verify_bundle(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    trust: bool = False,
) -> dict[str, Any]:
    """Check a bundle (see :func:`check_bundle`) and return its manifest."""
    return check_bundle(path, root=root, key=key, trust=trust).manifest


@timed("load bundle")
def load_bundle(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    trust: bool = False,
) -> Bundle:
    """Check a bundle (see :func:`check_bundle`) and build its model from the checked bytes."""
    c = check_bundle(path, root=root, key=key, trust=trust)
    where = str(path)
    try:
        pre = json.loads(c.data["preprocess.json"])
        est = pre.pop("estimator")
        best = [int(b) for b in est.get("best_iterations_", [est["best_iteration_"]])]
        ensembles = []
        for name, it in zip(est.get("booster_files", ["booster.ubj"]), best, strict=True):
            if name not in c.data:  # every file loaded is covered by the checked manifest
                raise BundleError(
                    f"bundle file {name} is not in the manifest", where=where, fix=_RETRAIN
                )
            ensembles.append(TreeEnsemble.from_bytes(c.data[name], n_iterations=it + 1))
        model = ScoringModel(
            ensembles,
            list(est["feature_names_in_"]),
            dispersion=est["dispersion_"],
            params=est["params"],
            fit_info=est["fit_info_"],
            best_iterations=best,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(
            f"bundle content is malformed ({type(exc).__name__})", where=where, fix=_RETRAIN
        ) from None
    trusted = c.status != VERIFIED
    if trusted:
        log.warning("trusting model bundle %s although %s", where, c.status)
    return Bundle(c.path, c.manifest, model, pre, c.status, trusted)


def list_bundles(root: str | os.PathLike[str], *, key: bytes | None = None) -> list[dict[str, Any]]:
    """Manifests of the bundles under ``root``, newest first, each with ``path``, ``model_id``
    and ``status`` (``verified``, ``unsigned`` or ``REFUSED: reason``). Never raises for a
    broken bundle: it is listed as refused."""
    r = Path(root)
    out: list[dict[str, Any]] = []
    if not r.is_dir():
        return out
    for d in sorted(r.iterdir()):
        if not d.is_dir() or d.name.startswith(".") or d.name.startswith("_"):
            continue
        try:
            if r.resolve() not in d.resolve().parents:  # a link to a folder elsewhere
                raise BundleError(f"model bundle is outside the models root {r.resolve()}")
            c = check_bundle(d, root=r, key=key, trust=True)
            man = dict(c.manifest)
            man["status"] = c.status if c.status in (VERIFIED, UNSIGNED) else f"REFUSED: {c.status}"
        except BundleError as exc:
            man = {"status": f"REFUSED: {exc.what}"}
        man["model_id"] = d.name
        man["path"] = str(d)
        out.append(man)
    out.sort(key=lambda m: (str(m.get("created", "")), m["model_id"]), reverse=True)
    return out


def newest_bundle(root: str | os.PathLike[str], *, key: bytes | None = None) -> Path:
    """Path of the newest bundle in the models root whose signature verifies; bundles that
    do not verify are skipped with a warning, never chosen."""
    rows = list_bundles(root, key=key)
    for m in rows:
        if m["status"] == VERIFIED:
            return Path(m["path"])
        log.warning("skipped model %s: %s", m["model_id"], m["status"])
    ids = ", ".join(m["model_id"] for m in rows)
    raise BundleError(
        f"no verified model bundle in {root}" + (f" (refused or unsigned: {ids})" if ids else ""),
        fix="train one with riskmodel train, or pass --model ID --trust-model after checking it",
    )


def manifest_digest(man: dict[str, Any]) -> str:
    """Short digest of a manifest (for ids)."""
    return hashlib.sha256(canonical_json(man).encode()).hexdigest()[:10]
