"""riskmodel: risk engine for compensatory spot checks on the Slovenia-Croatia border.

Data flows one way: files -> validated frames -> features -> model -> scores -> plan -> writers.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("riskmodel")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
