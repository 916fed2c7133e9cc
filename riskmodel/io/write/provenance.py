"""``provenance.json``: what produced a folder of outputs, with each file's size and hash."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from riskmodel.errors import OutputError
from riskmodel.files import atomic_write_text, canonical_json, sha256_file
from riskmodel.io.write.common import json_safe

log = logging.getLogger(__name__)


def write_provenance(
    folder: str | os.PathLike[str], files: Sequence[str | os.PathLike[str]], info: Mapping[str, Any]
) -> Path:
    """Write ``provenance.json`` in ``folder``: ``info`` plus each output's size and sha256.

    Parameters
    ----------
    folder : path-like
        Output folder; file paths inside it are recorded relative to it.
    files : sequence of path-like
        Output files to list (sorted by path in the record).
    info : mapping
        Model id, input hashes, versions, settings ...; must not contain ``outputs``.

    Returns
    -------
    Path
        Path of ``provenance.json``.
    """
    folder = Path(folder)
    if "outputs" in info:
        raise OutputError("provenance info must not contain 'outputs'", where=str(folder))
    outputs = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise OutputError(
                f"output file missing: {p}", where=str(folder), fix="write it before the provenance"
            )
        try:
            rel = p.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            rel = p.resolve().as_posix()
        outputs.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    outputs.sort(key=lambda o: o["path"])
    record = {**json_safe(dict(info)), "outputs": outputs}
    return atomic_write_text(folder / "provenance.json", canonical_json(record))
