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

import sys
from typing import Any

import numpy as np

#: Products go to scipy's C loop when scipy.sparse is already imported (tests turn it off to
#: check the numpy path against it).
USE_SCIPY_WHEN_LOADED = True
#: Elements of one column block of x plus its output (~1 MB of float64; see __matmul__).
CACHE_ELEMENTS = 131_072


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

    __slots__ = ("cols", "vals", "shape", "lengths", "_scipy")

    def __init__(
        self, cols: np.ndarray, vals: np.ndarray, n_cols: int, lengths: np.ndarray
    ) -> None:
        self.cols = cols
        self.vals = vals
        self.shape = (cols.shape[0], int(n_cols))
        self.lengths = lengths
        self._scipy: Any = None

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
        """``self @ x`` for dense ``x`` of shape ``(m,)`` or ``(m, t)``.

        When scipy is loaded anyway (training imports it through scikit-learn), its fused
        C loop does the product on a CSR matrix holding the same entries in the same order
        (same bits; 1.5x faster on a whole panel); scoring never imports it for this.
        """
        x = np.asarray(x)
        if x.shape[0] != self.shape[1]:
            raise ValueError(f"shapes {self.shape} and {x.shape} do not match")
        if USE_SCIPY_WHEN_LOADED and "scipy.sparse" in sys.modules:
            return self._csr() @ x
        return self._matmul_numpy(x)

    def _csr(self) -> Any:
        """The same entries as a scipy CSR matrix, in stored order (never re-sorted)."""
        if self._scipy is None:
            from scipy import sparse

            r, c, v = self.entries()
            indptr = np.concatenate([[0], np.cumsum(self.lengths)])
            self._scipy = sparse.csr_matrix((v, c, indptr), shape=self.shape)
        return self._scipy

    def _matmul_numpy(self, x: np.ndarray) -> np.ndarray:
        dtype = np.result_type(self.vals.dtype, x.dtype)
        n, k = self.cols.shape
        # x with a zero row appended: padding reads it and adds 0.0 (exact), so 0/1 matrices
        # need no multiplication and no mask; one buffer for every slot (no temporaries).
        xe = np.zeros((self.shape[1] + 1, *x.shape[1:]), dtype)
        xe[:-1] = x
        cols = np.where(np.arange(k)[None, :] < self.lengths[:, None], self.cols, self.shape[1])
        binary = bool(np.all(self.vals[cols < self.shape[1]] == 1))
        out = np.zeros((n, *x.shape[1:]), dtype)
        if x.ndim == 1:
            xe, out = xe[:, None], out[:, None]
        vals = self.vals.astype(dtype)[:, :, None]
        # Column blocks small enough for the block of x, out and the buffer to stay in cache
        # while every slot passes over them (one pass over the whole arrays per slot was
        # memory-bound: 3x slower than scipy's fused loop on a 2-year panel).
        t = out.shape[1]
        step = max(1, CACHE_ELEMENTS // max(n + xe.shape[0], 1))
        for lo in range(0, t, step):
            xs = np.ascontiguousarray(xe[:, lo : lo + step])
            os_ = out[:, lo : lo + step]
            acc = np.zeros_like(os_)
            tmp = np.empty_like(acc)
            for j in range(k):
                np.take(xs, cols[:, j], axis=0, out=tmp)
                if not binary:
                    np.multiply(tmp, vals[:, j], out=tmp)
                np.add(acc, tmp, out=acc)
            os_[...] = acc
        return out[:, 0] if x.ndim == 1 else out

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
