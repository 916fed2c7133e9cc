"""Training samples built block by block: which rows, and their features.

A :class:`SamplePlan` says which rows of which (time block x segment block) a sample keeps,
computed from the counts only: the training draw is exactly the one of
:meth:`riskmodel.model.estimator.RiskRegressor.fit` (:meth:`~riskmodel.model.estimator.
RiskRegressor.keep_rows`: every row with events, a seeded share ``zero_keep`` of the empty
ones, weighted ``1 / zero_keep``); the validation rows are the latest ``validation_fraction``
of the windows (all, or a weighted share ``valid_keep``). The draw depends on the row's
position in the sample only, so the sample does not depend on the blocking nor on the number
of machines, and rows come out in the in-memory (window-major) order.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from riskmodel.errors import ConfigError
from riskmodel.features import FeatureContext, Panel
from riskmodel.features.engine import (
    DEFAULT_BLOCK_ROWS,
    block_windows_for,
    segment_blocks,
    time_blocks,
)
from riskmodel.model.estimator import RiskRegressor, row_uniforms
from riskmodel.model.pipeline import BURN_IN_DAYS

log = logging.getLogger(__name__)

_VALID_STREAM = 0x5EED_0001  # seed offset of the validation draw (independent of the bags)


def train_window_range(panel: Panel, until_window: int) -> tuple[int, int]:
    """``[start, until)`` of the training windows, as :func:`riskmodel.model.pipeline.train_rows`."""
    C = panel.counts
    first = int(np.argmax(C.sum(axis=1) > 0))
    start = first + BURN_IN_DAYS * panel.n_shifts
    if start >= until_window:
        start = first
    return start, int(until_window)


def validation_cut(start: int, until: int, validation_fraction: float) -> int:
    """First validation window, as :meth:`RiskRegressor.fit` (latest share of the windows)."""
    uniq = np.arange(start, until)
    if len(uniq) > 1 and validation_fraction > 0:
        return int(uniq[int(len(uniq) * (1 - validation_fraction))])
    return int(until)


@dataclass
class SamplePlan:
    """Which rows of which blocks a sample keeps (computed from the counts only).

    Attributes
    ----------
    kind : str
        ``"train"`` (windows ``[start, cut)``) or ``"valid"`` (``[cut, until)``).
    blocks : list of (targets, segs, keep)
        ``keep`` is a (T, R) boolean mask.
    share : float
        Share of the empty rows kept (their weight is ``1 / share``).
    start, cut, until, S : int
    """

    kind: str
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    share: float
    start: int
    cut: int
    until: int
    S: int

    @property
    def n_rows(self) -> int:
        """Kept rows."""
        return int(sum(k.sum() for _, _, k in self.blocks))

    @property
    def n_windows(self) -> int:
        """Windows covered."""
        return (self.cut - self.start) if self.kind == "train" else (self.until - self.cut)


def plan_sample(
    panel: Panel,
    until_window: int,
    kind: str = "train",
    *,
    share: float = 0.05,
    validation_fraction: float = 0.12,
    seed: int = 0,
    bag: int = 0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    seg_blocks: int = 1,
) -> SamplePlan:
    """Kept rows of every block: all rows with events and a seeded share ``share`` of the
    empty ones (``bag`` selects an independent draw of the training rows).

    The training draw is :meth:`RiskRegressor.keep_rows` over the rows of windows
    ``[start, until)`` (training and validation, as ``RiskRegressor.fit`` sees them).
    """
    if not 0 < share <= 1:
        raise ConfigError(
            f"share of empty rows must be in (0, 1], got {share}", fix="e.g. zero_keep=0.05"
        )
    start, until = train_window_range(panel, until_window)
    cut = validation_cut(start, until, validation_fraction)
    S = panel.counts.shape[1]
    a, b = (start, cut) if kind == "train" else (cut, until)
    drawer = RiskRegressor(zero_keep=share, random_state=seed)
    total = (until - start) * S
    sblocks = segment_blocks(S, seg_blocks)
    blocks = []
    for tb in time_blocks(np.arange(a, b), block_windows_for(S, block_rows)):
        y = panel.counts[tb]
        offset = (int(tb[0]) - start) * S
        if share >= 1:
            keep = np.ones(y.shape, bool)
        elif kind == "train":
            keep = drawer.keep_rows(y, bag, offset=offset, total=total)
        else:
            u = row_uniforms(seed + _VALID_STREAM, offset, y.size).reshape(y.shape)
            keep = (y > 0) | (u < share)
        for sb in sblocks:
            blocks.append((tb, sb, keep[:, sb]))
    return SamplePlan(kind, blocks, share, start, cut, until, S)


def sample_block(
    ctx: FeatureContext,
    targets: np.ndarray,
    segs: np.ndarray,
    keep: np.ndarray,
    share: float,
    columns: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept rows of one block, window-major: features, label, weight (also a Dask task)."""
    X, win, seq = ctx.block(targets, segs, keep=keep, columns=columns)
    order = np.lexsort((seq, win))  # the block is segment-major; the in-memory order is not
    win, seq = win[order], seq[order]
    X = np.asfortranarray(X[order])
    y = ctx.panel.counts[win, seq].astype(np.float32)
    w = np.where(y > 0, 1.0, 1.0 / share).astype(np.float32)
    return X, y, w


@dataclass
class Rows:
    """Sampled rows: ``X`` (n, F) float32 column-major, label, weight.

    Attributes
    ----------
    X : ndarray float32 (n, F)
    y, weight : ndarray float32 (n,)
    columns : list of str
    plan : SamplePlan
    seconds : float
        Build time.
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    columns: list[str]
    plan: SamplePlan
    seconds: float = 0.0

    @property
    def nbytes(self) -> int:
        """Memory of the arrays."""
        return int(self.X.nbytes + self.y.nbytes + self.weight.nbytes)


def sample_rows(ctx: FeatureContext, plan: SamplePlan, columns: list[str] | None = None) -> Rows:
    """Build the kept rows of ``plan`` block by block into preallocated arrays (peak memory =
    the rows + one block, besides the context)."""
    t0 = time.perf_counter()
    cols = ctx.columns if columns is None else list(columns)
    n = plan.n_rows
    X = np.empty((len(cols), n), np.float32).T  # column-major, like the blocks
    y = np.empty(n, np.float32)
    w = np.empty(n, np.float32)
    at = 0
    for tb, sb, keep in plan.blocks:
        Xb, yb, wb = sample_block(ctx, tb, sb, keep, plan.share, cols)
        m = len(yb)
        X[at : at + m], y[at : at + m], w[at : at + m] = Xb, yb, wb
        at += m
    return Rows(X, y, w, cols, plan, time.perf_counter() - t0)


@dataclass
class TrainingSample:
    """The rows one booster is trained on: a training draw and the validation rows.

    Attributes
    ----------
    train, valid : Rows
    seconds : float
        Build time of both.
    """

    train: Rows
    valid: Rows
    seconds: float = 0.0

    @property
    def nbytes(self) -> int:
        """Memory of the arrays."""
        return self.train.nbytes + self.valid.nbytes


def training_sample(
    ctx: FeatureContext,
    until_window: int,
    *,
    columns: list[str] | None = None,
    zero_keep: float = 0.05,
    valid_keep: float = 1.0,
    validation_fraction: float = 0.12,
    seed: int = 0,
    bag: int = 0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> TrainingSample:
    """Training draw ``bag`` (events + a share ``zero_keep`` of the empty rows, weighted) and
    the validation rows (a share ``valid_keep`` of the empty ones; 1 = all, as
    :class:`RiskRegressor`) of the windows before ``until_window``."""
    t0 = time.perf_counter()
    kw = {"validation_fraction": validation_fraction, "seed": seed, "block_rows": block_rows}
    tr = plan_sample(ctx.panel, until_window, "train", share=zero_keep, bag=bag, **kw)
    va = plan_sample(ctx.panel, until_window, "valid", share=valid_keep, **kw)
    return TrainingSample(
        sample_rows(ctx, tr, columns), sample_rows(ctx, va, columns), time.perf_counter() - t0
    )


def sample_info(tr: SamplePlan, va: SamplePlan, kept: list[int]) -> dict[str, object]:
    """Row counts of a blockwise fit, with the keys of ``RiskRegressor.fit_info_``."""
    S = tr.S
    return {
        "rows": int((tr.until - tr.start) * S),
        "rows_train": int(tr.n_windows * S),
        "rows_kept": int(sum(kept) // max(len(kept), 1)),
        "rows_valid": int(va.n_windows * S),
        "rows_valid_kept": int(va.n_rows),
        "zero_keep": tr.share,
        "valid_keep": va.share,
    }
