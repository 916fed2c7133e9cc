"""Bounded-memory and distributed feature building and training.

:func:`riskmodel.features.engine.build_features` materialises every (window, segment) row at once:
fine for the demo (~2 M rows, ~0.6 GB), too much for 250 m segments x 4-hour bands x 5 years
(~29 M rows x 73 features x 4 B ~ 8.5 GB). This module trains from features built block by
block:

* The features come from the one engine, :class:`riskmodel.features.engine.FeatureContext`:
  any block of target windows x segments is built from its precomputed history, so a sample
  or a Dask task never materialises the full frame.
* :func:`plan_sample` / :func:`sample_rows` keep, per block, all rows with events plus a
  seeded random share ``zero_keep`` of the empty rows (weight ``1 / zero_keep``), and the rows
  of the time-ordered validation windows (all, or a weighted share ``valid_keep``); the draw
  is a function of ``(seed, bag, window)`` only, so the sample does not depend on the blocking
  nor on the number of machines.
* :func:`fit_chunked` trains the same Poisson XGBoost as :class:`riskmodel.model.estimator.RiskRegressor`
  (same parameters, bags, early stopping and dispersion estimate) on ``QuantileDMatrix`` and
  returns a ``RiskRegressor``, so :func:`riskmodel.model.bundle.save_bundle` works unchanged.
* With a Dask ``Client`` the blocks are tasks (time block x segment block) on the cluster and
  the model is trained with ``xgboost.dask``; the result is a plain ``xgboost.Booster`` wrapped
  in a ``RiskRegressor``: it is saved, loaded and scored exactly like a single-machine model.

Dask is imported only inside the functions that need it (``riskmodel train`` without
``--scheduler`` never imports it). Install it with ``pip install 'riskmodel[dask]'``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import ConfigError, InputError
from riskmodel.features.engine import (
    DEFAULT_BLOCK_ROWS,
    FeatureContext,
    block_windows_for,
    build_features_blocked,
    feature_frame,
    segment_blocks,
    time_blocks,
)
from riskmodel.features.panel import Panel
from riskmodel.features.spec import FeatureSpec
from riskmodel.model.estimator import EXPOSURE_FEATURE, RiskRegressor

log = logging.getLogger("riskmodel")


# ----------------------------------------------------------------------------- sampling


def window_uniforms(key: tuple[int, ...], windows: np.ndarray, S: int) -> np.ndarray:
    """(len(windows), S) uniforms, a pure function of ``(key, window)``: the subsample does
    not depend on how windows are blocked or distributed."""
    out = np.empty((len(windows), S))
    for i, w in enumerate(np.asarray(windows, dtype=int)):
        out[i] = np.random.default_rng([*map(int, key), int(w)]).random(S)
    return out


def train_window_range(panel: Panel, until_window: int) -> tuple[int, int]:
    """``[start, until)`` of the training windows, as :func:`riskmodel.model.pipeline.train_rows`."""
    from riskmodel.model.pipeline import BURN_IN_DAYS

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
    empty ones (``bag`` selects an independent draw of the training rows)."""
    if not 0 < share <= 1:
        raise ConfigError(
            f"share of empty rows must be in (0, 1], got {share}", fix="e.g. zero_keep=0.05"
        )
    start, until = train_window_range(panel, until_window)
    cut = validation_cut(start, until, validation_fraction)
    S = panel.counts.shape[1]
    a, b = (start, cut) if kind == "train" else (cut, until)
    key = (seed, 0, bag) if kind == "train" else (seed, 1)
    sblocks = segment_blocks(S, seg_blocks)
    blocks = []
    for tb in time_blocks(np.arange(a, b), block_windows_for(S, block_rows)):
        keep = None
        if share < 1:
            keep = (panel.counts[tb] > 0) | (window_uniforms(key, tb, S) < share)
        for sb in sblocks:
            k = np.ones((len(tb), len(sb)), bool) if keep is None else keep[:, sb]
            blocks.append((tb, sb, k))
    return SamplePlan(kind, blocks, share, start, cut, until, S)


def _sample_block(
    ctx: FeatureContext,
    targets: np.ndarray,
    segs: np.ndarray,
    keep: np.ndarray,
    share: float,
    columns: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept rows of one block: features, label, weight (a Dask task)."""
    X, win, seq = ctx.block(targets, segs, keep=keep, columns=columns)
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
        Xb, yb, wb = _sample_block(ctx, tb, sb, keep, plan.share, cols)
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


# ----------------------------------------------------------------------------- fitting


def _finish(
    model: RiskRegressor,
    boosters: list[Any],
    names: list[str],
    Xv: np.ndarray | None,
    yv: np.ndarray,
    wv: np.ndarray,
    info: dict[str, Any],
) -> RiskRegressor:
    """Set the fitted attributes of ``model`` as :meth:`RiskRegressor.fit` does."""
    best = [int(getattr(b, "best_iteration", model.n_estimators - 1)) for b in boosters]
    model.boosters_ = boosters
    model.best_iterations_ = best
    model.booster_ = boosters[0]
    model.best_iteration_ = best[0]
    model.feature_names_in_ = np.array(names, dtype=object)
    model.n_features_in_ = len(names)
    model.dispersion_ = 0.0
    info.update(n_bags=len(boosters), best_iterations=best, best_iteration=best[0])
    if Xv is not None and len(yv):
        mu = np.asarray(model.predict(Xv), dtype=np.float64)
        yv = np.asarray(yv, np.float64)
        wv = np.asarray(wv, np.float64)
        m = np.maximum(mu, 1e-9)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(yv > 0, yv * np.log(yv / m), 0.0)
        # weights are 1 unless the empty validation rows are subsampled (unbiased estimates)
        info["valid_poisson_deviance"] = float((wv * 2 * (term - (yv - m))).sum() / wv.sum())
        num = (wv * ((yv - mu) ** 2 - yv)).sum()  # NB2 moments: Var = mu + alpha mu^2
        model.dispersion_ = float(max(num / max((wv * mu**2).sum(), 1e-12), 0.0))
    info["dispersion"] = model.dispersion_
    model.fit_info_ = info
    return model


def _info(tr: SamplePlan, va: SamplePlan, kept: list[int]) -> dict[str, Any]:
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


def _train_local(model: RiskRegressor, tr: Rows, va: Rows, seed: int) -> Any:
    import xgboost as xgb

    names = tr.columns
    dtrain = xgb.QuantileDMatrix(
        tr.X, label=tr.y, weight=tr.weight, feature_names=names,
        max_bin=model.max_bin, nthread=model.n_jobs,
    )  # fmt: skip
    evals = [(dtrain, "train")]
    if len(va.y):
        dval = xgb.QuantileDMatrix(
            va.X, label=va.y, weight=va.weight, feature_names=names, ref=dtrain,
            max_bin=model.max_bin, nthread=model.n_jobs,
        )  # fmt: skip
        evals.append((dval, "valid"))
    return xgb.train(
        model._params(names, seed=seed),
        dtrain,
        num_boost_round=model.n_estimators,
        evals=evals,
        early_stopping_rounds=model.early_stopping_rounds if len(evals) > 1 else None,
        verbose_eval=False,
    )


def model_columns(ctx: FeatureContext, drop: tuple[str, ...] = ()) -> list[str]:
    """Model input columns (``drop``: prefixes to leave out, as in ``fit_model``)."""
    return [c for c in ctx.columns if not c.startswith(drop)] if drop else list(ctx.columns)


def fit_chunked(
    ctx: FeatureContext,
    until_window: int,
    *,
    params: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    valid_keep: float = 1.0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[RiskRegressor, list[str]]:
    """Single-machine, bounded-memory counterpart of :func:`riskmodel.model.pipeline.fit_model`.

    Same objective, parameters, bags, early stopping (time-ordered validation windows) and
    dispersion estimate as :meth:`RiskRegressor.fit`; the empty rows are subsampled while the
    features are built, and ``QuantileDMatrix`` (1 byte per value) replaces the ``DMatrix``
    copy. Peak memory: context + validation rows + one training draw.
    """
    model = RiskRegressor(**(params or {}))
    cols = model_columns(ctx, drop)
    kw = {
        "validation_fraction": model.validation_fraction,
        "seed": model.random_state,
        "block_rows": block_rows,
    }
    t_feat = t_fit = 0.0
    t0 = time.perf_counter()
    va_plan = plan_sample(ctx.panel, until_window, "valid", share=valid_keep, **kw)
    va = sample_rows(ctx, va_plan, cols)
    t_feat += time.perf_counter() - t0
    boosters, kept = [], []
    for b in range(max(1, int(model.n_bags))):
        t0 = time.perf_counter()
        plan = plan_sample(ctx.panel, until_window, "train", share=model.zero_keep, bag=b, **kw)
        if plan.n_rows == 0:
            raise InputError(
                "no training windows before the cut-off",
                fix="choose a later --until or give more history",
            )
        tr = sample_rows(ctx, plan, cols)
        t1 = time.perf_counter()
        boosters.append(_train_local(model, tr, va, model.random_state + 7919 * b))
        t_fit += time.perf_counter() - t1
        t_feat += t1 - t0
        kept.append(len(tr.y))
        del tr
    info = _info(plan, va_plan, kept)
    info.update(engine="chunked", feature_seconds=round(t_feat, 2))
    _finish(model, boosters, cols, va.X if len(va.y) else None, va.y, va.weight, info)
    info["train_seconds"] = round(t_fit, 2)
    log.info(
        "chunked fit: %d of %d rows kept, %d bag(s), features %.1f s, training %.1f s",
        info["rows_kept"], info["rows_train"], len(boosters), t_feat, t_fit,
    )  # fmt: skip
    return model, cols


# ----------------------------------------------------------------------------- Dask


def connect(scheduler: str, **cluster_kwargs: Any) -> tuple[Any, Any]:
    """A Dask client for ``scheduler`` (``"local"`` or ``tcp://HOST:8786``).

    ``"local"`` starts an in-process ``LocalCluster(processes=False)`` with one worker using
    all cores (threads; no pickling, no re-import of ``__main__``).

    Returns
    -------
    (Client, LocalCluster or None)
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "--scheduler needs Dask: it is not installed",
            fix="pip install 'riskmodel[dask]'  (or: pip install 'dask[distributed]')",
        ) from None
    import os

    if log.getEffectiveLevel() > logging.INFO:  # Dask's INFO chatter only with riskmodel -v
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler == "local":
        kw = {
            "processes": False,
            "n_workers": 1,
            "threads_per_worker": os.cpu_count() or 1,
            # the diagnostics HTTP servers always start: keep them on localhost, any free port
            "dashboard_address": "127.0.0.1:0",
            "worker_dashboard_address": "127.0.0.1:0",
        }
        kw.update(cluster_kwargs)
        cluster = LocalCluster(**kw)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="30s"), None
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler {scheduler}: {exc}",
            fix="start it with `dask scheduler` and check the address (tcp://HOST:8786)",
        ) from None


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

    def collections(self, plan: SamplePlan, cols: list[str]) -> tuple[Any, Any, Any]:
        """Dask arrays (X, y, weight) of a sample plan, one chunk per block task."""
        import dask
        import dask.array as da

        xs, ys, ws = [], [], []
        for tb, sb, keep in plan.blocks:
            n = int(keep.sum())
            if n == 0:
                continue
            f = self.client.submit(
                _sample_block, self.ctx, tb, sb, keep, plan.share, cols, pure=False
            )
            part = dask.delayed(f)
            xs.append(da.from_delayed(part[0], shape=(n, len(cols)), dtype=np.float32))
            ys.append(da.from_delayed(part[1], shape=(n,), dtype=np.float32))
            ws.append(da.from_delayed(part[2], shape=(n,), dtype=np.float32))
        if not xs:
            return (
                da.zeros((0, len(cols)), np.float32),
                da.zeros(0, np.float32),
                da.zeros(0, np.float32),
            )
        return da.concatenate(xs), da.concatenate(ys), da.concatenate(ws)

    def fit(
        self,
        until_window: int,
        *,
        params: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        valid_keep: float = 1.0,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        seg_blocks: int = 2,
    ) -> tuple[RiskRegressor, list[str]]:
        """Distributed counterpart of :func:`riskmodel.model.pipeline.fit_model` (``xgboost.dask``)."""
        import xgboost.dask as dxgb

        model = RiskRegressor(**(params or {}))
        cols = [c for c in self.columns if not c.startswith(drop)] if drop else list(self.columns)
        kw = {
            "validation_fraction": model.validation_fraction,
            "seed": model.random_state,
            "block_rows": block_rows,
            "seg_blocks": seg_blocks,
        }
        t0 = time.perf_counter()
        va_plan = plan_sample(self.panel, until_window, "valid", share=valid_keep, **kw)
        va = self.client.persist(list(self.collections(va_plan, cols)))
        t_feat = time.perf_counter() - t0
        t_fit = 0.0
        boosters, kept = [], []
        for b in range(max(1, int(model.n_bags))):
            plan = plan_sample(
                self.panel, until_window, "train", share=model.zero_keep, bag=b, **kw
            )
            if plan.n_rows == 0:
                raise InputError(
                    "no training windows before the cut-off",
                    fix="choose a later --until or give more history",
                )
            t0 = time.perf_counter()
            tr = self.collections(plan, cols)
            dtrain = dxgb.DaskQuantileDMatrix(
                self.client, tr[0], tr[1], weight=tr[2], feature_names=cols,
                max_bin=model.max_bin,
            )  # fmt: skip
            evals = [(dtrain, "train")]
            if va_plan.n_rows:
                dval = dxgb.DaskQuantileDMatrix(
                    self.client, va[0], va[1], weight=va[2], feature_names=cols, ref=dtrain,
                    max_bin=model.max_bin,
                )  # fmt: skip
                evals.append((dval, "valid"))
            t1 = time.perf_counter()
            xgb_params = model._params(cols, seed=model.random_state + 7919 * b)
            xgb_params.pop("nthread", None)  # each worker uses its own thread count
            out = dxgb.train(
                self.client,
                xgb_params,
                dtrain,
                num_boost_round=model.n_estimators,
                evals=evals,
                early_stopping_rounds=model.early_stopping_rounds if len(evals) > 1 else None,
                verbose_eval=False,
            )
            boosters.append(out["booster"])
            kept.append(plan.n_rows)
            t_fit += time.perf_counter() - t1
            t_feat += t1 - t0
            del dtrain, evals
        info = _info(plan, va_plan, kept)
        info.update(
            engine="dask",
            scheduler=str(self.client.scheduler.address),
            workers=len(self.client.scheduler_info().get("workers", {})),
            feature_seconds=round(t_feat, 2),
            train_seconds=round(t_fit, 2),
        )
        # The validation rows come back to the client once, for the dispersion estimate with
        # the model's own predict (whatever it does with several bags).
        Xv, yv, wv = (a.compute() for a in va) if va_plan.n_rows else (None, [], [])
        _finish(model, boosters, cols, Xv, yv, wv, info)
        return model, cols


# ----------------------------------------------------------------------------- pipeline


class ScaledPipeline:
    """Run the library's train/backtest verbs with bounded-memory (and optionally Dask)
    feature building and training.

    Inside ``with ScaledPipeline(ds, scheduler=...)``, :func:`riskmodel.model.pipeline.fit_model`
    and :func:`~riskmodel.model.pipeline.predict_windows` (as used by
    :func:`riskmodel.api.train_bundle` and :func:`riskmodel.evaluation.backtest.run_backtest`) are served
    from this object for ``ds``: no full feature frame is ever built. Other datasets fall
    through to the original functions.

    Parameters
    ----------
    ds : Dataset
    scheduler : str, optional
        ``"local"`` or a scheduler address; ``None`` = single machine, chunked.
    client : distributed.Client, optional
        An existing client (instead of ``scheduler``).
    block_rows : int
        Rows per block.
    seg_blocks : int
        Segment blocks per time block (Dask only).
    valid_keep : float
        Share of empty validation rows kept (1 = all, as ``RiskRegressor``).
    """

    def __init__(
        self,
        ds: Any,
        *,
        scheduler: str | None = None,
        client: Any = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        seg_blocks: int = 2,
        valid_keep: float = 1.0,
    ) -> None:
        self.ds = ds
        self.block_rows = block_rows
        self.seg_blocks = seg_blocks
        self.valid_keep = valid_keep
        self._cluster = None
        self._own_client = False
        if client is None and scheduler:
            client, self._cluster = connect(scheduler)
            self._own_client = True
        self.client = client
        self._saved: list[tuple[Any, str, Any]] = []
        self.dask: DaskFeatures | None = None
        self.ctx: FeatureContext | None = None
        t0 = time.perf_counter()
        try:
            if client is not None:
                self.dask = DaskFeatures(client, ds.panel, ds.static, ds.spec)
            else:
                self.ctx = FeatureContext(ds.panel, ds.static, ds.spec)
        except BaseException:
            self.close()
            raise
        self.context_seconds = time.perf_counter() - t0

    # -- the two verbs ---------------------------------------------------------------------
    def fit_model(
        self,
        ds: Any,
        until_window: int,
        *,
        params: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> tuple[RiskRegressor, list[str]]:
        """Same contract as :func:`riskmodel.model.pipeline.fit_model`."""
        if ds is not self.ds:
            return self._orig["fit_model"](ds, until_window, params=params, drop=drop)
        if self.dask is not None:
            return self.dask.fit(
                until_window,
                params=params,
                drop=drop,
                valid_keep=self.valid_keep,
                block_rows=self.block_rows,
                seg_blocks=self.seg_blocks,
            )
        assert self.ctx is not None
        return fit_chunked(
            self.ctx,
            until_window,
            params=params,
            drop=drop,
            valid_keep=self.valid_keep,
            block_rows=self.block_rows,
        )

    def features(self, w0: int, w1: int) -> pd.DataFrame:
        """Feature frame of windows ``[w0, w1)`` x all segments."""
        tg = np.arange(w0, w1)
        if self.dask is not None:
            return self.dask.frame(tg, block_rows=self.block_rows, seg_blocks=self.seg_blocks)
        assert self.ctx is not None
        return build_features_blocked(
            self.ds.panel,
            self.ds.static,
            self.ds.spec,
            tg,
            block_rows=self.block_rows,
            context=self.ctx,
        )

    def predict_windows(
        self,
        ds: Any,
        model: RiskRegressor,
        cols: list[str],
        w0: int,
        w1: int,
        *,
        effort_neutral: bool = False,
    ) -> np.ndarray:
        """Same contract as :func:`riskmodel.model.pipeline.predict_windows`."""
        if ds is not self.ds:
            return self._orig["predict_windows"](
                ds, model, cols, w0, w1, effort_neutral=effort_neutral
            )
        sub = self.features(w0, w1)[cols]
        if effort_neutral and EXPOSURE_FEATURE in cols:
            sub = sub.copy()
            sub[EXPOSURE_FEATURE] = 0.0
        return model.predict(sub).reshape(w1 - w0, self.ds.n_segments)

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> ScaledPipeline:
        from riskmodel.evaluation import backtest as backtest
        from riskmodel.model import pipeline as pipeline

        self._orig = {"fit_model": pipeline.fit_model, "predict_windows": pipeline.predict_windows}
        for mod in (pipeline, backtest):
            for name in ("fit_model", "predict_windows"):
                if hasattr(mod, name):
                    self._saved.append((mod, name, getattr(mod, name)))
                    setattr(mod, name, getattr(self, name))
        return self

    def __exit__(self, *exc: Any) -> None:
        for mod, name, fn in reversed(self._saved):
            setattr(mod, name, fn)
        self._saved.clear()
        self.close()

    def close(self) -> None:
        """Close the client and cluster this object started."""
        if self._own_client and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close()
            self.client = None


def train_bundle_scaled(
    ds: Any,
    until: str,
    *,
    settings: Any,
    params: dict[str, Any] | None = None,
    root: Any = None,
    scheduler: str | None = None,
    client: Any = None,
    **kw: Any,
) -> tuple[Any, dict[str, Any]]:
    """:func:`riskmodel.api.train_bundle` with bounded-memory / Dask training (same bundle)."""
    from riskmodel.api import train_bundle

    with ScaledPipeline(ds, scheduler=scheduler, client=client, **kw):
        return train_bundle(ds, until, settings=settings, params=params, root=root)


def run_backtest_scaled(
    ds: Any,
    start: Any,
    end: Any,
    *,
    scheduler: str | None = None,
    client: Any = None,
    pipeline_kw: dict[str, Any] | None = None,
    **kw: Any,
) -> Any:
    """:func:`riskmodel.evaluation.backtest.run_backtest` with bounded-memory / Dask training."""
    from riskmodel.evaluation.backtest import run_backtest

    with ScaledPipeline(ds, scheduler=scheduler, client=client, **(pipeline_kw or {})):
        return run_backtest(ds, start, end, **kw)
