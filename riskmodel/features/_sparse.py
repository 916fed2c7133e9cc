"""Sparse neighbourhood matrices of the feature engine in numpy (no scipy import on the
scoring path: ~0.1 s of every ``score``).

:class:`RowSparse` keeps each row's entries padded to the longest row (the neighbourhoods
have at most a few dozen entries) and adds them **in the order scipy's CSR products did**:
``out[i] = (0 + v0 x[c0]) + v1 x[c1] + ...`` in stored order. The order is part of the
contract: bundles trained before this module existed must see bit-identical features, and
floating-point sums depend on it (canonical CSR rows are sorted by column; the row-scaled
Gaussian kernel came out of scipy's sparse product in *descending* column order).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RowSparse:
    """An ``(n, m)`` sparse matrix as padded rows: row ``i`` holds ``vals[i, j]`` at column
    ``cols[i, j]``; padding is value 0 at column 0 after the row's entries.

    Parameters
    ----------
    cols : ndarray of int, shape (n, k)
    vals : ndarray, shape (n, k)
    n_cols : int
    lengths : ndarray of int, shape (n,)
        Entries of each row (the rest is padding).
    """

    __slots__ = ("cols", "vals", "shape", "lengths")

    def __init__(
        self, cols: np.ndarray, vals: np.ndarray, n_cols: int, lengths: np.ndarray
    ) -> None:
        self.cols = cols
        self.vals = vals
        self.shape = (cols.shape[0], int(n_cols))
        self.lengths = lengths

    @classmethod
    def from_entries(
        cls,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        shape: tuple[int, int],
        *,
        descending: bool = False,
    ) -> RowSparse:
        """From coordinate entries (no duplicates), each row's columns ascending (or
        ``descending``).

        Raises
        ------
        ValueError
            A (row, column) pair given twice.
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        vals = np.asarray(vals)
        order = np.lexsort((-cols if descending else cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        if len(rows) > 1 and ((np.diff(rows) == 0) & (np.diff(cols) == 0)).any():
            raise ValueError("duplicate entries")
        n = shape[0]
        counts = np.bincount(rows, minlength=n)
        k = int(counts.max()) if len(rows) else 0
        pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        c = np.zeros((n, k), np.int64)
        v = np.zeros((n, k), vals.dtype)
        c[rows, pos] = cols
        v[rows, pos] = vals
        return cls(c, v, shape[1], counts)

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, vals) of the stored entries, in stored order (padding left out)."""
        used = np.arange(self.cols.shape[1])[None, :] < self.lengths[:, None]
        return np.nonzero(used)[0], self.cols[used], self.vals[used]

    def transpose(self) -> RowSparse:
        """The ``(m, n)`` transpose, each row's columns ascending: the order in which scipy's
        ``csr.T @ x`` (a CSC product) adds them."""
        r, c, v = self.entries()
        return RowSparse.from_entries(c, r, v, (self.shape[1], self.shape[0]))

    @property
    def T(self) -> RowSparse:  # noqa: N802 - the matrix convention
        """:meth:`transpose`."""
        return self.transpose()

    def __getitem__(self, rows: Any) -> RowSparse:
        """Rows ``rows`` (each keeps its entries and their order)."""
        return RowSparse(self.cols[rows], self.vals[rows], self.shape[1], self.lengths[rows])

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        """``self @ x`` for dense ``x`` of shape ``(m,)`` or ``(m, t)``."""
        x = np.asarray(x)
        if x.shape[0] != self.shape[1]:
            raise ValueError(f"shapes {self.shape} and {x.shape} do not match")
        dtype = np.result_type(self.vals.dtype, x.dtype)
        out = np.zeros((self.shape[0], *x.shape[1:]), dtype)
        tail = (slice(None),) + (None,) * (x.ndim - 1)
        for j in range(self.cols.shape[1]):
            out += self.vals[:, j][tail] * x[self.cols[:, j]]
        return out

    def scale_rows(self, s: np.ndarray, *, descending: bool = False) -> RowSparse:
        """``diag(s) @ self`` (each entry times its row's factor), entries reordered by
        column (ascending, or ``descending`` as scipy's sparse product left them)."""
        r, c, v = self.entries()
        return RowSparse.from_entries(r, c, v * np.asarray(s)[r], self.shape, descending=descending)

    def row_sums(self) -> np.ndarray:
        """Sums of each row: numpy's ``add.reduceat`` over the entries in stored order, as
        scipy's ``m.sum(axis=1)`` computes them (numpy's pairwise summation, not a running
        sum)."""
        _, _, v = self.entries()
        out = np.zeros(self.shape[0], v.dtype)
        has = self.lengths > 0
        if has.any():
            starts = (np.cumsum(self.lengths) - self.lengths)[has]
            out[has] = np.add.reduceat(v, starts)
        return out
