"""Feature blocks computed as tasks on a Dask cluster.

:class:`DaskFeatures` puts one :class:`riskmodel.features.engine.FeatureContext` on the cluster
(the panel is scattered once) and computes any block of target windows x segments as a task,
with the same code that builds whole frames on one machine. Training on these blocks (the sample
of kept rows, the chunked and Dask engines) is in :mod:`riskmodel.model.sample` and
:mod:`riskmodel.model.engine`.

Dask is imported only by callers that need it (``riskmodel train`` without ``--scheduler``
never imports it). Install it with ``pip install 'riskmodel[dask]'``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.features.engine import (
    DEFAULT_BLOCK_ROWS,
    FeatureContext,
    block_windows_for,
    feature_frame,
    segment_blocks,
    time_blocks,
)
from riskmodel.features.panel import Panel
from riskmodel.features.spec import FeatureSpec

log = logging.getLogger(__name__)


def _make_context(panel: Panel, static: pd.DataFrame, spec: FeatureSpec) -> FeatureContext:
    return FeatureContext(panel, static, spec)


def _frame_block(ctx: FeatureContext, targets: np.ndarray, segs: np.ndarray) -> np.ndarray:
    return ctx.window_block(targets, segs)


def _columns(ctx: FeatureContext) -> list[str]:
    return list(ctx.columns)


class DaskFeatures:
    """Feature context living on a Dask cluster; blocks are computed as tasks.

    Parameters
    ----------
    client : distributed.Client
    panel, static, spec
        As for :class:`FeatureContext` (the panel is scattered once; the context is built on
        a worker and fetched by the others on first use).
    """

    def __init__(self, client: Any, panel: Panel, static: pd.DataFrame, spec: FeatureSpec) -> None:
        self.client = client
        self.panel = panel
        self.W, self.S = panel.counts.shape
        panel_f = client.scatter(panel)
        self.ctx = client.submit(_make_context, panel_f, static, spec, pure=False)
        self.columns: list[str] = client.submit(_columns, self.ctx).result()

    def frame(
        self,
        targets: np.ndarray | None = None,
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        seg_blocks: int = 2,
    ) -> pd.DataFrame:
        """The feature frame of ``targets`` (default all) x all segments, computed as one task
        per (time block, segment block), as ``build_features``."""
        tg = np.arange(self.W) if targets is None else np.asarray(targets, dtype=int)
        S, F = self.S, len(self.columns)
        tbs = time_blocks(tg, block_windows_for(S, block_rows))
        sbs = segment_blocks(S, seg_blocks)
        futs = [
            [self.client.submit(_frame_block, self.ctx, tb, sb, pure=False) for sb in sbs]
            for tb in tbs
        ]
        XT = np.empty((F, len(tg) * S), np.float32)
        at = 0
        for tb, row in zip(tbs, futs, strict=True):
            dest = XT[:, at : at + len(tb) * S].reshape(F, len(tb), S)
            for part, sb in zip(self.client.gather(row), sbs, strict=True):
                dest[:, :, sb[0] : sb[-1] + 1] = part
            at += len(tb) * S
        return feature_frame(XT, self.columns, tg, np.arange(S))
