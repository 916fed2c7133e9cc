"""riskmodel: risk engine for compensatory spot checks on the Slovenia-Croatia border.

Data flows one way: files -> validated frames -> features -> model -> scores -> plan -> writers.
"""

from __future__ import annotations

import os

# XGBoost's OpenMP threads spin-wait by default; on a busy 2-core machine that made training
# 10-25x slower (bench/README.md). Passive waiting costs nothing measurable when idle. Must be
# set before libgomp loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Resolved on first use: importlib.metadata costs ~0.07 s, which `riskmodel --help` skips.
    if name != "__version__":
        raise AttributeError(f"module 'riskmodel' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("riskmodel")
    except PackageNotFoundError:  # running from a source tree without install
        value = "0.0.0+src"
    globals()["__version__"] = value
    return value
