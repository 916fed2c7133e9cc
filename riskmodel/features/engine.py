"""The feature engine: one leakage-free computation of every feature, for any block of rows.

:class:`FeatureContext` precomputes, once per panel, everything a feature of window ``w`` looks
back at (cumulative sums, decayed counts, last-event indices, per-window calendar values). A
block of target windows x segments is then row look-ups and sparse neighbourhood products
computed by the families of :mod:`riskmodel.features.registry`; neighbourhood features read the
full history matrices, so a segment block needs no halo. The same code serves the whole frame
(:func:`build_features`), bounded-memory blocks (:func:`build_features_blocked`, the training
samples of :mod:`riskmodel.model.scale`) and Dask tasks: a block-built frame equals the
whole-frame build bit for bit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.errors import ConfigError
from riskmodel.features.effort import EffortState
from riskmodel.features.family import Block
from riskmodel.features.history import HistoryState
from riskmodel.features.panel import Panel
from riskmodel.features.registry import active_families
from riskmodel.features.spec import FeatureSpec
from riskmodel.features.timing import time_columns

log = logging.getLogger(__name__)

DEFAULT_BLOCK_ROWS = 1_000_000  # target rows (windows x segments) per block


class FeatureContext:
    """History state of one panel from which any block of feature rows is cheap to build.

    State is stored segment-major (segments x windows, C order), so a neighbourhood product
    ``band @ lookback`` reads and writes contiguous rows. :meth:`block` returns rows
    segment-major (``seq`` then ``window``, for sampling); :meth:`frame` window-major, as
    :func:`build_features`.

    Parameters
    ----------
    panel : Panel
    static : DataFrame
        From :func:`riskmodel.features.place.static_features`.
    spec : FeatureSpec

    Notes
    -----
    Memory: about 8 B x (3 cumulative sums + one per decay time + one for the shift
    profiles) + 4 B x 3 per (window, segment) cell, plus the panel: ~1.9 GB for 2,600 segments
    x 10,956 windows, ~2.4 GB for 12,000 x 3,288.
    """

    def __init__(self, panel: Panel, static: pd.DataFrame, spec: FeatureSpec) -> None:
        t0 = time.perf_counter()
        self.panel = panel
        self.static = static
        self.spec = spec
        self.W, self.S = panel.counts.shape
        self.K = panel.n_shifts
        seg = panel.segments
        self.chain = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy()
        self.shift_of = panel.windows["shift_idx"].to_numpy()
        self.static_cols = {c: static[c].to_numpy(np.float32) for c in static.columns}
        self.families = active_families(spec)
        self.columns = [c.name for _, cols in self.families for c in cols]
        missing = [
            c.name
            for f, cols in self.families
            if f.key in ("place", "route")
            for c in cols
            if c.name not in self.static_cols
        ]
        if missing:
            raise ConfigError(
                f"static features missing: {missing[:5]}",
                fix="build them with static_features(geo, spec) for the same spec",
            )
        self.history = HistoryState.build(self) if spec.enabled("history") else None
        self.effort = EffortState.build(self) if spec.enabled("effort") else None
        self.time_cols = (
            time_columns(panel.windows, seg, spec, cache_dir=panel.extra.get("cache_dir"))
            if spec.enabled("time")
            else {}
        )
        self.seconds = time.perf_counter() - t0
        log.debug(
            "feature context: %d windows x %d segments, %d columns, %.2f s",
            self.W, self.S, len(self.columns), self.seconds,
        )  # fmt: skip

    @property
    def nbytes(self) -> int:
        """Memory held by the precomputed arrays (not counting the panel)."""

        def size(v: Any) -> int:
            if isinstance(v, np.ndarray):
                return v.nbytes
            if isinstance(v, dict):
                return sum(size(a) for a in v.values())
            if isinstance(v, list):
                return sum(size(a) for a in v)
            return 0

        n = size(self.time_cols) + size(self.static_cols)
        for st in (self.history, self.effort):
            if st is not None:
                n += size(vars(st))
        return n

    def iter_block(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None = None,
        *,
        effort_now: np.ndarray | None = None,
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, values)`` per feature for ``segs x targets``: (R, T) arrays,
        segment-major, in frame order (cast to float32 they are the feature values).

        ``effort_now`` is a (T, S) in-window officer-hours override.
        """
        blk = Block(targets, segs, self.S, effort_now)
        for fam, cols in self.families:
            for col, arr in zip(cols, fam.compute(self, blk, cols), strict=True):
                yield col.name, arr

    def _fill(
        self,
        XT: np.ndarray,
        tg: np.ndarray,
        segs: np.ndarray | None,
        cols: list[str],
        *,
        window_major: bool,
        flat: np.ndarray | None = None,
        effort_now: np.ndarray | None = None,
    ) -> None:
        """Write ``cols`` of the block into ``XT`` (F, n): (F, T, R) window-major, (F, R, T)
        segment-major, or (F, len(flat)) the ``flat`` rows of the segment-major block."""
        pos = {c: i for i, c in enumerate(cols)}
        seen = set()
        for name, arr in self.iter_block(tg, segs, effort_now=effort_now):
            j = pos.get(name)
            if j is None:
                continue
            # Casting on assignment: one pass, no float32 temporary.
            if flat is not None:
                XT[j] = np.asarray(arr).reshape(-1)[flat]
            elif window_major:
                XT[j] = np.asarray(arr).T
            else:
                XT[j] = arr
            seen.add(name)
        missing = [c for c in cols if c not in seen]
        if missing:
            raise ConfigError(f"unknown feature column(s): {missing[:5]}")

    def block(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None = None,
        *,
        keep: np.ndarray | None = None,
        columns: list[str] | None = None,
        effort_now: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows of ``segs x targets`` in segment-major order, optionally only the
        ``keep`` ones.

        Parameters
        ----------
        targets : ndarray of int
            Window indices.
        segs : ndarray of int, optional
            Segment indices (``seq``), default all.
        keep : ndarray of bool (T, R), optional
            Rows to return (window-major mask, as ``counts[targets][:, segs] > 0``).
        columns : list of str, optional
            Feature columns to return, in this order (default :attr:`columns`).
        effort_now : ndarray (T, S), optional
            In-window officer-hours override (as ``build_features(effort_override=...)``).

        Returns
        -------
        X : ndarray float32 (n, len(columns)), column-major (Fortran order)
        window, seq : ndarray int32 (n,)
            Rows are ordered by ``seq`` then ``window``.
        """
        tg = np.asarray(targets, dtype=int)
        rows = np.arange(self.S) if segs is None else np.asarray(segs, dtype=int)
        T, R = len(tg), len(rows)
        cols = self.columns if columns is None else list(columns)
        flat = None if keep is None else np.flatnonzero(np.asarray(keep).T.reshape(-1))
        n = T * R if flat is None else len(flat)
        XT = np.empty((len(cols), n), np.float32)  # column-major: contiguous column writes
        dest = XT if flat is not None else XT.reshape(len(cols), R, T)
        self._fill(dest, tg, segs, cols, window_major=False, flat=flat, effort_now=effort_now)
        win = np.tile(tg, R).astype(np.int32)
        seq = np.repeat(rows, T).astype(np.int32)
        if flat is not None:
            win, seq = win[flat], seq[flat]
        return XT.T, win, seq

    def window_block(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None = None,
        *,
        out: np.ndarray | None = None,
        effort_now: np.ndarray | None = None,
    ) -> np.ndarray:
        """All feature columns of ``segs x targets`` window-major: (F, T, R) float32, written
        into ``out`` (which may be a strided view of a larger frame) when given."""
        tg = np.asarray(targets, dtype=int)
        R = self.S if segs is None else len(segs)
        if out is None:
            out = np.empty((len(self.columns), len(tg), R), np.float32)
        self._fill(out, tg, segs, self.columns, window_major=True, effort_now=effort_now)
        return out

    def frame(
        self,
        targets: np.ndarray | None = None,
        segs: np.ndarray | None = None,
        *,
        effort_now: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Feature frame of ``targets`` (default all) x ``segs`` (default all): window-major,
        ``window`` and ``seq`` first."""
        tg = np.arange(self.W) if targets is None else np.asarray(targets, dtype=int)
        rows = np.arange(self.S) if segs is None else np.asarray(segs, dtype=int)
        XT = np.empty((len(self.columns), len(tg) * len(rows)), np.float32)
        out = _view(XT, (len(self.columns), len(tg), len(rows)))
        self.window_block(tg, segs, out=out, effort_now=effort_now)
        return feature_frame(XT, self.columns, tg, rows)


def _view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped without a copy (blocks are written through it)."""
    v = a.reshape(shape)
    if v.size and not np.shares_memory(v, a):
        raise RuntimeError("block destination is not a view")  # pragma: no cover
    return v


def feature_frame(
    XT: np.ndarray, columns: list[str], targets: np.ndarray, segs: np.ndarray
) -> pd.DataFrame:
    """A feature frame from (F, T x R) window-major values: ``window``, ``seq``, features."""
    df = pd.DataFrame(XT.T, columns=columns, copy=False)
    df.insert(0, "seq", np.tile(segs, len(targets)).astype(np.int32))
    df.insert(0, "window", np.repeat(targets, len(segs)).astype(np.int32))
    return df


@timed("features")
def build_features(
    panel: Panel,
    static: pd.DataFrame,
    spec: FeatureSpec,
    targets: np.ndarray | None = None,
    *,
    effort_override: np.ndarray | None = None,
) -> pd.DataFrame:
    """Feature matrix for target windows x all segments (rows ordered window-major): the
    engine on one block covering everything.

    Parameters
    ----------
    panel : Panel
    static : DataFrame
        From :func:`riskmodel.features.place.static_features` (one row per segment).
    spec : FeatureSpec
    targets : ndarray of int, optional
        Window indices to build (default all).
    effort_override : ndarray (len(targets), S), optional
        Officer-hours to use as the in-window exposure (e.g. a planned effort, or zeros for
        effort-neutral risk); the history of effort is never overridden.

    Returns
    -------
    DataFrame
        ``float32`` features plus ``window`` and ``seq`` index columns (first two).
    """
    return FeatureContext(panel, static, spec).frame(targets, effort_now=effort_override)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Model input columns of a feature frame (everything but the index columns)."""
    return [c for c in frame.columns if c not in ("window", "seq")]


# ----------------------------------------------------------------------------- blocks


def time_blocks(targets: np.ndarray, block_windows: int) -> list[np.ndarray]:
    """Split target windows into consecutive blocks of ``block_windows``."""
    tg = np.asarray(targets, dtype=int)
    b = max(1, int(block_windows))
    return [tg[i : i + b] for i in range(0, len(tg), b)]


def segment_blocks(S: int, n_blocks: int) -> list[np.ndarray]:
    """Split ``range(S)`` into ``n_blocks`` contiguous blocks."""
    return [a for a in np.array_split(np.arange(S), max(1, min(int(n_blocks), S))) if len(a)]


def block_windows_for(S: int, block_rows: int = DEFAULT_BLOCK_ROWS) -> int:
    """Windows per block so that a block has about ``block_rows`` rows."""
    return max(1, int(block_rows) // max(S, 1))


def build_features_blocked(
    panel: Panel,
    static: pd.DataFrame,
    spec: FeatureSpec,
    targets: np.ndarray | None = None,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    seg_blocks: int = 1,
    context: FeatureContext | None = None,
) -> pd.DataFrame:
    """The feature frame of :func:`build_features`, built block by block (time blocks x
    segment blocks; peak memory = the output + one block + the context)."""
    ctx = context or FeatureContext(panel, static, spec)
    tg = np.arange(ctx.W) if targets is None else np.asarray(targets, dtype=int)
    S, F = ctx.S, len(ctx.columns)
    XT = np.empty((F, len(tg) * S), np.float32)
    at = 0
    for tb in time_blocks(tg, block_windows_for(S, block_rows)):
        dest = _view(XT[:, at : at + len(tb) * S], (F, len(tb), S))
        for sb in segment_blocks(S, seg_blocks):
            segs = None if len(sb) == S else sb
            ctx.window_block(tb, segs, out=dest[:, :, sb[0] : sb[-1] + 1])
        at += len(tb) * S
    return feature_frame(XT, ctx.columns, tg, np.arange(S))
