"""Deterministic CSV tables."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd

from riskmodel.files import atomic_write_text

log = logging.getLogger(__name__)


def write_csv(
    df: pd.DataFrame, path: str | os.PathLike[str], *, float_format: str = "%.6g"
) -> Path:
    """Write a table as deterministic CSV (UTF-8, ``\\n``, no index), atomically.

    Parameters
    ----------
    df : DataFrame
        Table; for a GeoDataFrame the geometry column is dropped.
    path : path-like
        Target ``.csv``.
    float_format : str
        printf-style float format.

    Returns
    -------
    Path
        The CSV path.
    """
    if isinstance(df, gpd.GeoDataFrame):
        df = pd.DataFrame(df.drop(columns=df.geometry.name))
    text = df.to_csv(index=False, float_format=float_format, lineterminator="\n")
    return atomic_write_text(path, text)
