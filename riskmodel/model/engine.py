"""Training engines: where the features are built and the boosters trained.

Every engine has the same two verbs (:class:`TrainingEngine`) and is passed explicitly to the
verbs that train (``api.train_bundle(..., engine=)``, ``evaluation.backtest.run_backtest(...,
engine=)``, the trial's learner):

* :class:`InMemoryEngine` - the full feature frame in memory, :meth:`RiskRegressor.fit`.
* :class:`ChunkedEngine` - bounded memory on one machine: the features of the kept rows only,
  built block by block (:mod:`riskmodel.model.sample`), ``QuantileDMatrix``.
* :class:`DaskEngine` - the blocks are tasks on a Dask cluster, ``xgboost.dask``.

All three train the same :class:`~riskmodel.model.estimator.RiskRegressor` on the same rows
(the estimator owns the empty-row draw, the boosting parameters and the fitted state), so a
model is saved, loaded and scored the same whichever engine trained it. Dask is imported only
inside :class:`DaskEngine` (``riskmodel train`` without ``--scheduler`` never imports it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from riskmodel.errors import ConfigError, InputError
from riskmodel.features import FeatureContext, FeatureSpec, Panel
from riskmodel.features.dask import DaskFeatures
from riskmodel.features.engine import DEFAULT_BLOCK_ROWS, build_features_blocked
from riskmodel.model.estimator import RiskRegressor
from riskmodel.model.pipeline import fit_model, predict_windows
from riskmodel.model.sample import plan_sample, sample_block, sample_info, sample_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureData:
    """The inputs of a feature build, for engines that need no :class:`Dataset` (e.g. a
    simulation loop): ``panel``, ``static`` and ``spec`` as in a Dataset."""

    panel: Panel
    static: pd.DataFrame
    spec: FeatureSpec

    @property
    def n_segments(self) -> int:
        """Number of segments."""
        return int(self.panel.counts.shape[1])


class TrainingEngine(Protocol):
    """What a training engine does.

    ``ds`` is a :class:`~riskmodel.model.pipeline.Dataset` (or any object with ``panel``,
    ``static``, ``spec`` and ``n_segments``; the in-memory engine also needs ``features()``).
    """

    name: str

    def fit(
        self,
        ds: Any,
        until_window: int,
        params: dict[str, Any] | None = None,
        *,
        drop: tuple[str, ...] = (),
    ) -> RiskRegressor:
        """Fit on the windows before ``until_window``; statistics in ``model.fit_info_``."""
        ...

    def predict(
        self, ds: Any, model: RiskRegressor, w0: int, w1: int, *, effort_neutral: bool = False
    ) -> np.ndarray:
        """Predictions (w1 - w0, S) of windows ``[w0, w1)`` (effort-neutral on request)."""
        ...


def model_columns(columns: list[str], drop: tuple[str, ...] = ()) -> list[str]:
    """Model input columns (``drop``: prefixes to leave out, as in ``fit_model``)."""
    return [c for c in columns if not c.startswith(drop)] if drop else list(columns)


def _predict(model: RiskRegressor, X: pd.DataFrame, S: int, effort_neutral: bool) -> np.ndarray:
    cols = list(model.feature_names_in_)
    mu = model.predict_neutral(X[cols]) if effort_neutral else model.predict(X[cols])
    return np.asarray(mu).reshape(-1, S)


class InMemoryEngine:
    """The full feature frame in memory (``ds.features()``), :meth:`RiskRegressor.fit`."""

    name = "xgboost"

    def fit(
        self,
        ds: Any,
        until_window: int,
        params: dict[str, Any] | None = None,
        *,
        drop: tuple[str, ...] = (),
    ) -> RiskRegressor:
        """See :class:`TrainingEngine`."""
        return fit_model(ds, until_window, params=params, drop=drop)[0]

    def predict(
        self, ds: Any, model: RiskRegressor, w0: int, w1: int, *, effort_neutral: bool = False
    ) -> np.ndarray:
        """See :class:`TrainingEngine`."""
        cols = list(model.feature_names_in_)
        return predict_windows(ds, model, cols, w0, w1, effort_neutral=effort_neutral)


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

    The same rows as :meth:`RiskRegressor.fit` (its empty-row draw, in its order), built while
    the features are built; ``QuantileDMatrix`` (1 byte per value) replaces the ``DMatrix``
    copy. Peak memory: context + validation rows + one training draw.
    """
    import xgboost as xgb

    model = RiskRegressor(**(params or {}))
    cols = model_columns(ctx.columns, drop)
    kw = {
        "validation_fraction": model.validation_fraction,
        "seed": model.random_state,
        "block_rows": block_rows,
    }
    t0 = time.perf_counter()
    va_plan = plan_sample(ctx.panel, until_window, "valid", share=valid_keep, **kw)
    va = sample_rows(ctx, va_plan, cols)
    t_feat, t_fit = time.perf_counter() - t0, 0.0
    qdm = {"feature_names": cols, "max_bin": model.max_bin, "nthread": model.n_jobs}
    boosters, kept = [], []
    for b in range(model.n_draws()):
        t0 = time.perf_counter()
        plan = plan_sample(ctx.panel, until_window, "train", share=model.zero_keep, bag=b, **kw)
        if plan.n_rows == 0:
            raise InputError(
                "no training windows before the cut-off",
                fix="choose a later --until or give more history",
            )
        tr = sample_rows(ctx, plan, cols)
        t1 = time.perf_counter()
        dtrain = xgb.QuantileDMatrix(tr.X, label=tr.y, weight=tr.weight, **qdm)
        dval = None
        if len(va.y):
            dval = xgb.QuantileDMatrix(va.X, label=va.y, weight=va.weight, ref=dtrain, **qdm)
        boosters.append(model.train_booster(cols, dtrain, dval, b))
        t_fit += time.perf_counter() - t1
        t_feat += t1 - t0
        kept.append(len(tr.y))
        del tr, dtrain, dval
    info = sample_info(plan, va_plan, kept)
    info.update(engine="chunked", feature_seconds=round(t_feat, 2))
    wv = va.weight if valid_keep < 1 else None
    model.set_fitted(boosters, cols, (va.X, va.y, wv) if len(va.y) else None, info)
    info["train_seconds"] = round(t_fit, 2)
    log.info(
        "chunked fit: %d of %d rows kept, %d bag(s), features %.1f s, training %.1f s",
        info["rows_kept"], info["rows_train"], len(boosters), t_feat, t_fit,
    )  # fmt: skip
    return model, cols


class ChunkedEngine:
    """Bounded-memory features and training on one machine (:func:`fit_chunked`).

    Parameters
    ----------
    block_rows : int
        Rows per block.
    valid_keep : float
        Share of empty validation rows kept (1 = all, as ``RiskRegressor.fit``).
    """

    name = "chunked"

    def __init__(self, *, block_rows: int = DEFAULT_BLOCK_ROWS, valid_keep: float = 1.0) -> None:
        self.block_rows = block_rows
        self.valid_keep = valid_keep
        self._ds: Any = None
        self._ctx: FeatureContext | None = None

    def context(self, ds: Any) -> FeatureContext:
        """The feature context of ``ds`` (built once per dataset object)."""
        if self._ds is not ds or self._ctx is None:
            self._ctx = FeatureContext(ds.panel, ds.static, ds.spec)
            self._ds = ds
        return self._ctx

    def fit(
        self,
        ds: Any,
        until_window: int,
        params: dict[str, Any] | None = None,
        *,
        drop: tuple[str, ...] = (),
    ) -> RiskRegressor:
        """See :class:`TrainingEngine`."""
        return fit_chunked(
            self.context(ds),
            until_window,
            params=params,
            drop=drop,
            valid_keep=self.valid_keep,
            block_rows=self.block_rows,
        )[0]

    def predict(
        self, ds: Any, model: RiskRegressor, w0: int, w1: int, *, effort_neutral: bool = False
    ) -> np.ndarray:
        """See :class:`TrainingEngine`."""
        X = build_features_blocked(
            ds.panel,
            ds.static,
            ds.spec,
            np.arange(w0, w1),
            block_rows=self.block_rows,
            context=self.context(ds),
        )
        return _predict(model, X, ds.n_segments, effort_neutral)


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


def dask_collections(dfe: DaskFeatures, plan: Any, cols: list[str]) -> tuple[Any, Any, Any]:
    """Dask arrays (X, y, weight) of a sample plan, one chunk per block task."""
    import dask
    import dask.array as da

    xs, ys, ws = [], [], []
    for tb, sb, keep in plan.blocks:
        n = int(keep.sum())
        if n == 0:
            continue
        f = dfe.client.submit(sample_block, dfe.ctx, tb, sb, keep, plan.share, cols, pure=False)
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


def fit_dask(
    dfe: DaskFeatures,
    until_window: int,
    *,
    params: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    valid_keep: float = 1.0,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[RiskRegressor, list[str]]:
    """Distributed counterpart of :func:`fit_chunked` (``xgboost.dask``; same rows)."""
    import functools

    import xgboost.dask as dxgb

    model = RiskRegressor(**(params or {}))
    cols = model_columns(dfe.columns, drop)
    # Sample tasks are whole time blocks (all segments): the rows then come in the in-memory
    # order, so the sample is exactly RiskRegressor.fit's (``seg_blocks`` splits the
    # feature-frame tasks only).
    kw = {
        "validation_fraction": model.validation_fraction,
        "seed": model.random_state,
        "block_rows": block_rows,
    }
    client = dfe.client
    t0 = time.perf_counter()
    va_plan = plan_sample(dfe.panel, until_window, "valid", share=valid_keep, **kw)
    va = client.persist(list(dask_collections(dfe, va_plan, cols)))
    t_feat, t_fit = time.perf_counter() - t0, 0.0
    qdm = {"feature_names": cols, "max_bin": model.max_bin}
    train = functools.partial(dxgb.train, client)
    boosters, kept = [], []
    for b in range(model.n_draws()):
        plan = plan_sample(dfe.panel, until_window, "train", share=model.zero_keep, bag=b, **kw)
        if plan.n_rows == 0:
            raise InputError(
                "no training windows before the cut-off",
                fix="choose a later --until or give more history",
            )
        t0 = time.perf_counter()
        tr = dask_collections(dfe, plan, cols)
        dtrain = dxgb.DaskQuantileDMatrix(client, tr[0], tr[1], weight=tr[2], **qdm)
        dval = None
        if va_plan.n_rows:
            dval = dxgb.DaskQuantileDMatrix(client, va[0], va[1], weight=va[2], ref=dtrain, **qdm)
        t1 = time.perf_counter()
        boosters.append(model.train_booster(cols, dtrain, dval, b, train=train, distributed=True))
        kept.append(plan.n_rows)
        t_fit += time.perf_counter() - t1
        t_feat += t1 - t0
        del dtrain, dval
    info = sample_info(plan, va_plan, kept)
    info.update(
        engine="dask",
        scheduler=str(client.scheduler.address),
        workers=len(client.scheduler_info().get("workers", {})),
        feature_seconds=round(t_feat, 2),
        train_seconds=round(t_fit, 2),
    )
    # The validation rows come back to the client once, for the deviance and dispersion.
    valid = None
    if va_plan.n_rows:
        Xv, yv, wv = (a.compute() for a in va)
        valid = (Xv, yv, wv if valid_keep < 1 else None)
    model.set_fitted(boosters, cols, valid, info)
    return model, cols


class DaskEngine:
    """Features and training as tasks on a Dask cluster (a context manager: closes the client
    and cluster it started).

    Parameters
    ----------
    scheduler : str, optional
        ``"local"`` or a scheduler address (``tcp://HOST:8786``).
    client : distributed.Client, optional
        An existing client (instead of ``scheduler``; not closed here).
    block_rows, valid_keep
        As for :class:`ChunkedEngine`.
    seg_blocks : int
        Segment blocks per time block of the feature frames (prediction).
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        client: Any = None,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        seg_blocks: int = 2,
        valid_keep: float = 1.0,
    ) -> None:
        if client is None and not scheduler:
            raise ConfigError("the Dask engine needs a scheduler or a client")
        self.block_rows = block_rows
        self.seg_blocks = seg_blocks
        self.valid_keep = valid_keep
        self._cluster = None
        self._own_client = client is None
        if client is None:
            client, self._cluster = connect(str(scheduler))
        self.client = client
        self._ds: Any = None
        self._dfe: DaskFeatures | None = None

    def features_of(self, ds: Any) -> DaskFeatures:
        """The cluster-side feature context of ``ds`` (built once per dataset object)."""
        if self._ds is not ds or self._dfe is None:
            # The blocks come from the same engine as whole frames (tests/test_dask.py checks
            # equality), so no run-time comparison is made here.
            dfe = DaskFeatures(self.client, ds.panel, ds.static, ds.spec)
            self._ds, self._dfe = ds, dfe
        return self._dfe

    def fit(
        self,
        ds: Any,
        until_window: int,
        params: dict[str, Any] | None = None,
        *,
        drop: tuple[str, ...] = (),
    ) -> RiskRegressor:
        """See :class:`TrainingEngine`."""
        return fit_dask(
            self.features_of(ds),
            until_window,
            params=params,
            drop=drop,
            valid_keep=self.valid_keep,
            block_rows=self.block_rows,
        )[0]

    def predict(
        self, ds: Any, model: RiskRegressor, w0: int, w1: int, *, effort_neutral: bool = False
    ) -> np.ndarray:
        """See :class:`TrainingEngine`."""
        X = self.features_of(ds).frame(
            np.arange(w0, w1), block_rows=self.block_rows, seg_blocks=self.seg_blocks
        )
        return _predict(model, X, ds.n_segments, effort_neutral)

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and cluster this engine started."""
        if self._own_client and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close()
            self.client = None
