"""Deterministic CSV tables."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.files import atomic_write_text

log = logging.getLogger(__name__)

# A text cell starting with one of these is a formula to Excel/LibreOffice (CSV injection).
_FORMULA = r"^[=+\-@\t\r]"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that a spreadsheet would run as a formula (starting with
    ``= + - @``, tab or CR), so a crafted area name or reason cannot execute on opening.
    Numeric columns, and text cells that are plain numbers (``-3.5``), are left unchanged."""
    out = None
    for col in df.columns:
        s = df[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        text = s.astype("string")
        risky = text.str.contains(_FORMULA, regex=True).fillna(False).to_numpy(bool)
        if risky.any():  # the number test only where a formula character leads (rare)
            risky[risky] = ~text[risky].str.match(_NUMBER).fillna(False).to_numpy(bool)
        if risky.any():
            out = df.copy() if out is None else out
            out[col] = s.astype(object).where(~risky, "'" + text[risky].astype(object))
    return df if out is None else out


@timed("write csv")
def write_csv(
    df: pd.DataFrame, path: str | os.PathLike[str], *, float_format: str = "%.6g"
) -> Path:
    """Write a table as deterministic CSV (UTF-8, ``\\n``, no index), atomically; text cells
    that would run as spreadsheet formulas are neutralised (:func:`neutralise_formulas`).

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
    text = format_floats(neutralise_formulas(df), float_format).to_csv(
        index=False, lineterminator="\n"
    )
    return atomic_write_text(path, text)


def format_floats(df: pd.DataFrame, float_format: str) -> pd.DataFrame:
    """Float columns as the text ``to_csv(float_format=...)`` writes (empty for NaN), made
    here: pandas formats each value through several Python calls (~4 us), ~0.1 s of a day's
    risk table; a list comprehension takes a tenth of that. Bytes are the same."""
    cols = [c for c in df.columns if pd.api.types.is_float_dtype(df[c].dtype)]
    if not cols:
        return df
    out = df.copy()
    for c in cols:
        v = df[c].to_numpy(dtype=float, na_value=np.nan)
        out[c] = pd.Series(
            ["" if x != x else float_format % x for x in v.tolist()],
            index=df.index,
            dtype=object,
        )
    return out
