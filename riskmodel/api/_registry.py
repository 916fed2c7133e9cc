"""Registry verbs: the models root, list and inspect bundles, choose the workspace default."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from riskmodel.config.settings import Settings
from riskmodel.errors import BundleError, ConfigError
from riskmodel.model.bundle import VERIFIED, check_bundle, list_bundles

log = logging.getLogger(__name__)


def models_root(settings: Settings) -> Path:
    """The models root, refused when a workspace's settings put it outside the workspace.

    A root outside the workspace is accepted only when given on the command line
    (``--models-root DIR`` or ``--allow-external-models``, i.e. source ``flag``): a planted
    ``riskmodel.toml`` or environment variable cannot point scoring at foreign models.

    Raises
    ------
    ConfigError
    """
    root = Path(settings.models_root)
    ws = settings.workspace
    source = settings.sources.get("models_root", "default")
    if ws is not None and not ws.contains(root) and source != "flag":
        raise ConfigError(
            f"models root {root} (from {source}) is outside the workspace {ws.root}",
            fix="keep models in the workspace's models/ folder, or pass --allow-external-models",
        )
    return root


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Manifests of the bundles in the models root, newest first, each with ``status``
    (``verified``, ``unsigned``, ``REFUSED: reason``) and ``default`` (bool)."""
    rows = list_bundles(models_root(settings), key=settings.key())
    default = _default_id(settings)
    for m in rows:
        m["default"] = m["model_id"] == default
    return rows


def _default_id(settings: Settings) -> str | None:
    ws = settings.workspace
    return str(ws.read_state().get("default_model") or "") or None if ws is not None else None


def resolve_model(settings: Settings, model: str) -> Path:
    """The folder of ``model`` (a bundle folder, or an id in the models root).

    Raises
    ------
    BundleError
        Neither: the message lists the ids that are there.
    """
    root = models_root(settings)
    given = Path(model)
    if given.is_dir() and (given / "manifest.json").exists():
        return given
    if model and "/" not in model and "\\" not in model and (root / model).is_dir():
        return root / model
    ids = [m["model_id"] for m in list_bundles(root)]
    raise BundleError(
        f"no model {model!r} in {root}",
        fix=("use one of: " + ", ".join(ids)) if ids else "train one with riskmodel train",
    )


def show_model(settings: Settings, model: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Check a bundle (a folder or an id in the models root; default: the workspace's default
    model) without loading it.

    Returns
    -------
    (dict, str or None)
        Its manifest without the feature spec (with ``status``), and its model card.
    """
    if not model:
        model = _default_id(settings)
        if model is None:
            raise BundleError(
                "no model given and no default model",
                fix="give MODEL_ID (riskmodel models list), or train one in the workspace",
            )
    path = resolve_model(settings, model)
    c = check_bundle(path, key=settings.key(), trust=True)  # hashes checked; nothing executed
    shown = {k: v for k, v in c.manifest.items() if k != "feature_spec"}
    shown["status"] = c.status if c.status in (VERIFIED, "unsigned") else f"REFUSED: {c.status}"
    card = c.data.get("MODEL_CARD.md")
    return shown, card.decode("utf-8", "replace") if card is not None else None


def use_model(settings: Settings, model: str) -> str:
    """Make ``model`` (an id in the models root) the workspace's default model.

    Raises
    ------
    ConfigError
        No workspace.
    BundleError
        Unknown id, or a bundle whose signature does not verify with the workspace key.
    """
    ws = settings.workspace
    if ws is None:
        raise ConfigError(
            "no workspace: the default model is kept in a workspace",
            fix="run in a workspace (riskmodel init DIR), or pass --model to score and plan",
        )
    root = models_root(settings)
    path = resolve_model(settings, model)
    check_bundle(path, root=root, key=settings.key())  # refused unless its signature verifies
    ws.update_state(default_model=path.name)
    return path.name
