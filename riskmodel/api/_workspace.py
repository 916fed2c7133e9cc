"""Workspace verbs: create a station workspace."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from riskmodel.config.workspace import Workspace
from riskmodel.config.workspace import init_workspace as _init

log = logging.getLogger(__name__)


def init_workspace(path: str | os.PathLike[str]) -> tuple[Workspace, list[Path]]:
    """Create (or complete) a station workspace at ``path``; existing files are kept.

    Returns
    -------
    (Workspace, list of Path)
        The workspace and what was created.
    """
    ws, made = _init(path)
    log.info("workspace %s: created %d item(s)", ws.root, len(made))
    return ws, made
