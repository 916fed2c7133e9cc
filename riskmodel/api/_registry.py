"""Registry verbs: list and inspect model bundles without loading them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from riskmodel.config.settings import Settings
from riskmodel.model.bundle import list_bundles, verify_bundle

log = logging.getLogger(__name__)


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Manifests of the bundles in the models root, newest first (each with ``status``)."""
    return list_bundles(settings.models_root)


def show_model(settings: Settings, model: str) -> tuple[dict[str, Any], str | None]:
    """Verify a bundle (a folder, trusted as given, or an id in the models root).

    Returns
    -------
    (dict, str or None)
        Its manifest without the feature spec, and its model card (Markdown) if present.
    """
    given = Path(model)
    path = given if given.is_dir() else Path(settings.models_root) / model
    manifest = verify_bundle(path, root=settings.models_root, trust=given.is_dir())
    card = path / "MODEL_CARD.md"
    shown = {k: v for k, v in manifest.items() if k != "feature_spec"}
    return shown, card.read_text(encoding="utf-8") if card.is_file() else None
