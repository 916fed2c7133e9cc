"""Reading the simulator's truth table (validation data, never a product input)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from riskmodel.errors import InputError

TRUTH_COLUMNS = ("segment_id", "shift_start", "expected_crossings", "expected_recorded")


def read_truth(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``truth.parquet`` or ``truth.csv`` written by ``riskmodel simulate``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "truth file not found",
            where=str(p),
            fix="give the truth file written by riskmodel simulate",
        )
    try:
        df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    except Exception as exc:  # pyarrow/pandas raise several types
        raise InputError(
            f"cannot read truth file ({str(exc)[:100]})",
            where=str(p),
            fix="give a truth.parquet or truth.csv",
        ) from None
    missing = [c for c in TRUTH_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"truth file lacks columns {missing}",
            where=str(p),
            fix="give the truth file written by riskmodel simulate",
        )
    df["shift_start"] = pd.to_datetime(df["shift_start"], utc=True)
    return df
