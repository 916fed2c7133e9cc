"""The whole chain's outputs equal the recorded golden ones (see ``tests/golden/record.py``).

Guards refactoring: the same inputs and seeds must give the same risk tables, maps, plans,
backtest metrics and trial results. When a change of output is intended, re-record with
``python tests/golden/record.py`` and state the before/after figures in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))

import record  # noqa: E402

pytestmark = pytest.mark.slow


def _diff(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: missing" for k in a.keys() - b.keys()]
        out += [f"{path}/{k}: unexpected" for k in b.keys() - a.keys()]
        for k in sorted(a.keys() & b.keys()):
            out += _diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: expected {a!r}, got {b!r}"[:300]]


def test_chain_outputs_equal_golden(tmp_path: Path) -> None:
    expected = json.loads(record.EXPECTED.read_text("utf-8"))
    got = json.loads(json.dumps(record.run_chain(tmp_path), sort_keys=True))
    diffs = _diff(expected, got)
    assert not diffs, f"{len(diffs)} differences, first: " + "\n".join(diffs[:15])
