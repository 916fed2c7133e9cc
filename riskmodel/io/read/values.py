"""Vectorised value helpers shared by the readers: Arrow strings, numbers, duplicates.

Strings stay in pandas' pyarrow-backed dtype so regex and casts run in Arrow's C++ kernels.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

# pandas' default string dtype (pyarrow-backed); regex and casts run in Arrow's C++ kernels.
STR = pd.StringDtype("pyarrow", na_value=np.nan)
NAT = np.datetime64("NaT", "us")


def str_arrow(values: pd.Series) -> pa.ChunkedArray:
    """Values as whitespace-trimmed Arrow strings, nulls as ``""`` (zero-copy when possible)."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype(STR)
    arr = values.array.__arrow_array__()
    if not isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([arr])
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    return pc.utf8_trim_whitespace(arr)


def to_np_bool(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow boolean result as a numpy bool array (null -> False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def str_series(arr: pa.ChunkedArray) -> pd.Series:
    """Arrow strings as a pandas ``str`` Series with a 0..n-1 index."""
    return pd.Series(pd.array(arr, dtype=STR))


def norm_name(name: object) -> str:
    """Normalise a column name: ASCII-fold (č -> c), lower case, non-alphanumerics -> ``_``."""
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^0-9a-z]+", "_", s.lower()).strip("_")


_NULL_TOKENS = pa.array(["na", "n/a", "nan", "null", "none", "-"])


def to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse numbers (decimal point or a single decimal comma).

    Returns
    -------
    tuple of ndarray
        ``(values, missing, bad)``: float64 with NaN where not a finite number; ``missing``
        for blank / null tokens; ``bad`` for present but unparseable or non-finite values.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        v = np.array(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        missing = np.isnan(v)
        bad = ~missing & ~np.isfinite(v)
        v[bad] = np.nan
        return v, missing, bad
    arr = str_arrow(values)
    missing = to_np_bool(pc.or_(pc.equal(arr, ""), pc.is_in(pc.utf8_lower(arr), _NULL_TOKENS)))
    masked = pc.if_else(pa.chunked_array([pa.array(missing)]), None, arr)
    try:
        v = np.array(pc.cast(masked, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        s = str_series(pc.fill_null(masked, ""))
        one_comma = (s.str.count(",") == 1) & ~s.str.contains(".", regex=False)
        s = s.where(~one_comma, s.str.replace(",", ".", regex=False))
        v = np.array(pd.to_numeric(s, errors="coerce"), dtype=np.float64)
    bad = ~missing & ~np.isfinite(v)
    v[~np.isfinite(v)] = np.nan
    return v, missing, bad


# Sort-based: pandas' hash-based duplicated() costs ~1 GB on 5 M strings.
def duplicated_strings(arr: pa.ChunkedArray) -> np.ndarray:
    """True for every repeat of an earlier value (first occurrence kept), via a stable sort."""
    n = len(arr)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    order = pc.sort_indices(arr).to_numpy()  # stable: equal values keep file order
    srt = arr.take(pa.array(order))
    same = to_np_bool(pc.equal(srt.slice(1), srt.slice(0, n - 1)))
    out[order[1:][same]] = True
    return out


def duplicated_keys(*keys: np.ndarray) -> np.ndarray:
    """True for every repeat of an earlier key tuple (first occurrence kept)."""
    n = len(keys[0])
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    order = np.lexsort(keys[::-1])  # stable
    same = np.ones(n - 1, dtype=bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    out[order[1:][same]] = True
    return out


def as_strings(data: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The selected rows with every value rendered as a string (blank for null)."""
    sub = data.loc[mask].reset_index(drop=True)
    out = {}
    for c in sub.columns:
        s = sub[c]
        out[c] = s.astype(STR).fillna("") if len(s) else pd.Series([], dtype=STR)
    return pd.DataFrame(out, index=pd.RangeIndex(len(sub)))
