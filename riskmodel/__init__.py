"""riskmodel: risk engine for compensatory spot checks on the Slovenia-Croatia border.

Data flows one way: files -> validated frames -> features -> model -> scores -> plan -> writers.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# XGBoost's OpenMP threads spin-wait by default; on a busy 2-core machine that made training
# 10-25x slower (bench/README.md). Passive waiting costs nothing measurable when idle. Must be
# set before libgomp loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("riskmodel")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
