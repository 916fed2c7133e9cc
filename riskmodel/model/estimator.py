"""Exposure-aware Poisson gradient boosting (XGBoost) wrapped as a scikit-learn estimator.

Exposure: patrol effort enters as features (officer-hours in the window, recent effort in and
around the segment), with a *monotone increasing* constraint on the in-window effort: more
patrol can only mean more recorded events. Predicting with the in-window effort set to zero
gives the effort-neutral risk ("where crossings happen"), which is what plans should follow;
predicting with the real or planned effort gives expected *recorded* events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from riskmodel._timing import timed
from riskmodel.features.effort import EXPOSURE_FEATURE
from riskmodel.model.counts import count_interval, poisson_deviance
from riskmodel.model.fitted import model_matrix, zero_exposure

# Features the risk can only grow with (besides the exposure): the fixed-kernel self-exciting
# rate (long-run background + recent excitation); the constraint keeps noisy trees from
# inverting it.
MONOTONE_PREFIXES = ("selfexc_",)


class RiskRegressor(RegressorMixin, BaseEstimator):
    """Poisson XGBoost for expected recorded events per segment-shift.

    Parameters
    ----------
    n_estimators : int
        Maximum boosting rounds (early stopping picks fewer).
    learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, reg_lambda : float
        XGBoost tree parameters.
    max_bin : int
        Histogram bins.
    early_stopping_rounds : int
        Rounds without improvement of the validation Poisson deviance before stopping.
    validation_fraction : float
        Share of the *latest* training windows held out for early stopping (time-ordered).
    zero_keep : float
        Share of rows with no event kept for training (weighted ``1 / zero_keep``); 1 keeps all.
    n_bags : int
        Boosters trained on different random subsets of the empty rows (and tree seeds) and
        averaged: variance reduction for the rare-event subsampling.
    random_state : int
        Seed (the fit is deterministic for a seed).
    n_jobs : int
        Threads.

    Attributes
    ----------
    booster_ : xgboost.Booster
        The first booster (``boosters_`` holds all bags).
    boosters_ : list of xgboost.Booster
    best_iterations_ : list of int
    feature_names_in_ : ndarray of str
    n_features_in_ : int
    best_iteration_ : int
    dispersion_ : float
        Negative-binomial overdispersion estimated on the validation windows (0 = Poisson).
    fit_info_ : dict
        Rows used, rows kept after subsampling, validation deviance.
    """

    def __init__(
        self,
        n_estimators: int = 1000,
        learning_rate: float = 0.06,
        max_depth: int = 5,
        min_child_weight: float = 2.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.6,
        reg_lambda: float = 1.0,
        max_bin: int = 64,
        early_stopping_rounds: int = 40,
        validation_fraction: float = 0.12,
        zero_keep: float = 0.05,
        n_bags: int = 1,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.zero_keep = zero_keep
        self.n_bags = n_bags
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- helpers ---------------------------------------------------------------------------
    def _params(self, names: list[str], seed: int | None = None) -> dict[str, Any]:
        mono = tuple(
            1 if n == EXPOSURE_FEATURE or n.startswith(MONOTONE_PREFIXES) else 0 for n in names
        )
        return {
            "objective": "count:poisson",
            "eval_metric": "poisson-nloglik",
            "tree_method": "hist",
            "max_bin": self.max_bin,
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "max_delta_step": 0.7,  # recommended for Poisson: keeps early steps stable
            "monotone_constraints": "(" + ",".join(map(str, mono)) + ")",
            "seed": self.random_state if seed is None else seed,
            "nthread": self.n_jobs,
            "verbosity": 0,
        }

    # -- the empty-row subsample (one implementation for every engine) ---------------------
    def keep_rows(
        self, y: np.ndarray, bag: int = 0, *, offset: int = 0, total: int | None = None
    ) -> np.ndarray:
        """Rows of training draw ``bag``: every row with an event and a seeded share
        ``zero_keep`` of the empty ones.

        The draw of row ``i`` of a sample of ``total`` rows is uniform number ``bag * total +
        i`` of the stream seeded by ``random_state``: ``y`` may be any consecutive slice of
        the rows (starting at row ``offset``), so a sample built block by block, or on several
        machines, keeps exactly the rows :meth:`fit` keeps.

        Parameters
        ----------
        y : ndarray
            Counts of rows ``offset .. offset + len(y)``.
        bag : int
            Training draw (each bag draws its own share).
        offset : int
            Position of the first row in the sample.
        total : int, optional
            Rows in the whole sample (default ``offset + len(y)``).
        """
        y = np.asarray(y)
        n_total = offset + y.size if total is None else int(total)
        u = row_uniforms(self.random_state, bag * n_total + offset, y.size)
        return (y > 0) | (u.reshape(y.shape) < self.zero_keep)

    def row_weights(self, y: np.ndarray) -> np.ndarray:
        """Weights of kept rows: 1 for rows with events, ``1 / zero_keep`` for empty ones."""
        return np.where(np.asarray(y) > 0, 1.0, 1.0 / self.zero_keep)

    def n_draws(self) -> int:
        """Training draws (bags)."""
        return max(1, int(self.n_bags))

    def bag_seed(self, bag: int) -> int:
        """Tree seed of bag ``bag``."""
        return self.random_state + 7919 * bag

    def train_booster(
        self,
        names: list[str],
        dtrain: Any,
        dval: Any,
        bag: int,
        *,
        train: Callable[..., Any] = xgb.train,
        distributed: bool = False,
    ) -> xgb.Booster:
        """Boost one bag on prepared matrices (early stopping on ``dval`` when given).

        ``train`` is ``xgboost.train`` or a ``xgboost.dask.train`` bound to a client
        (``distributed``: each worker uses its own thread count).
        """
        params = self._params(names, seed=self.bag_seed(bag))
        if distributed:
            params.pop("nthread", None)
        evals = [(dtrain, "train")] + ([(dval, "valid")] if dval is not None else [])
        out = train(
            params,
            dtrain,
            num_boost_round=self.n_estimators,
            evals=evals,
            early_stopping_rounds=self.early_stopping_rounds if dval is not None else None,
            verbose_eval=False,
        )
        return out["booster"] if isinstance(out, dict) else out

    def set_fitted(
        self,
        boosters: list[xgb.Booster],
        names: list[str],
        valid: tuple[Any, np.ndarray, np.ndarray | None] | None,
        info: dict[str, Any],
    ) -> RiskRegressor:
        """Set the fitted attributes from trained boosters (the last step of every engine).

        Parameters
        ----------
        boosters : list of xgboost.Booster
            One per bag.
        names : list of str
            Feature names.
        valid : (X, y, weight or None) or None
            Validation rows: the validation deviance and the dispersion are estimated on them
            (weight None = all 1; weighted when empty validation rows were subsampled).
        info : dict
            Sample statistics; completed and stored as ``fit_info_``.
        """
        best = [int(getattr(b, "best_iteration", self.n_estimators - 1)) for b in boosters]
        self.boosters_ = boosters
        self.best_iterations_ = best
        self.booster_ = boosters[0]
        self.best_iteration_ = best[0]
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self.dispersion_ = 0.0
        info.update(n_bags=len(boosters), best_iterations=best, best_iteration=best[0])
        if valid is not None and len(valid[1]):
            Xv, yv, wv = valid
            mu = self.predict(Xv)
            yv = np.asarray(yv, np.float64)
            info["valid_poisson_deviance"] = poisson_deviance(yv, mu, weight=wv)
            # Method-of-moments NB2 dispersion: Var = mu + alpha mu^2.
            if wv is None:
                num, den = ((yv - mu) ** 2 - yv).sum(), (mu**2).sum()
            else:
                wv = np.asarray(wv, np.float64)
                num, den = (wv * ((yv - mu) ** 2 - yv)).sum(), (wv * mu**2).sum()
            self.dispersion_ = float(max(num / max(den, 1e-12), 0.0))
        info["dispersion"] = self.dispersion_
        self.fit_info_ = info
        return self

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        *,
        time: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> RiskRegressor:
        """Fit on features ``X`` and recorded counts ``y``.

        Parameters
        ----------
        X : DataFrame
            Feature columns (see :func:`riskmodel.features.engine.feature_columns`).
        y : array-like
            Recorded events per row (non-negative).
        time : array-like, optional
            Ordering key (window index); the latest ``validation_fraction`` of distinct times
            is the early-stopping set. Default: row order.
        sample_weight : array-like, optional

        Returns
        -------
        self
        """
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(
                np.asarray(X, dtype=np.float32),
                columns=[f"f{i}" for i in range(np.asarray(X).shape[1])],
            )
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y has shape {y.shape}, expected ({len(X)},)")
        if (y < 0).any() or not np.isfinite(y).all():
            raise ValueError("y must be finite non-negative counts")
        if not 0 < self.zero_keep <= 1:
            raise ValueError(f"zero_keep must be in (0, 1], got {self.zero_keep}")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        t = np.arange(len(y)) if time is None else np.asarray(time)
        names = [str(c) for c in X.columns]
        uniq = np.unique(t)
        cut = (
            uniq[int(len(uniq) * (1 - self.validation_fraction))]
            if len(uniq) > 1 and self.validation_fraction > 0
            else uniq[-1] + 1
        )
        is_val = t >= cut
        tr = ~is_val
        wk = self.row_weights(y) * w
        Xv = X.to_numpy(np.float32)
        dval = None
        if is_val.any():
            dval = xgb.DMatrix(Xv[is_val], label=y[is_val], weight=w[is_val], feature_names=names)
        boosters = []
        kept = 0
        for b in range(self.n_draws()):
            keep = tr & self.keep_rows(y, b)
            kept += int(keep.sum())
            dtrain = xgb.DMatrix(Xv[keep], label=y[keep], weight=wk[keep], feature_names=names)
            boosters.append(self.train_booster(names, dtrain, dval, b))
        info: dict[str, Any] = {
            "rows": int(len(y)),
            "rows_train": int(tr.sum()),
            "rows_kept": kept // self.n_draws(),
            "rows_valid": int(is_val.sum()),
            "zero_keep": self.zero_keep,
        }
        wv = None if sample_weight is None else w[is_val]
        valid = (X[is_val], y[is_val], wv) if dval is not None else None
        return self.set_fitted(boosters, names, valid, info)

    def _dmatrix(self, X: pd.DataFrame) -> xgb.DMatrix:
        check_is_fitted(self, "booster_")
        names = list(self.feature_names_in_)
        return xgb.DMatrix(model_matrix(X, names), feature_names=names)

    def _bags(self) -> list[tuple[xgb.Booster, int]]:
        boosters = getattr(self, "boosters_", None) or [self.booster_]
        best = getattr(self, "best_iterations_", None) or [self.best_iteration_]
        return list(zip(boosters, best, strict=True))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected recorded events per row (mean over the bags)."""
        dm = self._dmatrix(X)
        preds = [b.predict(dm, iteration_range=(0, it + 1)) for b, it in self._bags()]
        return np.mean(preds, axis=0)

    def predict_neutral(self, X: pd.DataFrame) -> np.ndarray:
        """Effort-neutral expected events: :meth:`predict` with the in-window effort
        (``EXPOSURE_FEATURE``) set to zero, i.e. where crossings happen rather than where
        they would be recorded (what plans follow; :func:`~riskmodel.model.fitted.zero_exposure`)."""
        check_is_fitted(self, "booster_")
        return self.predict(zero_exposure(X, list(self.feature_names_in_)))

    @timed("reasons (TreeSHAP)")
    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions on the log scale (TreeSHAP, mean over the bags); the last
        column is the bias."""
        dm = self._dmatrix(X)
        cs = [
            b.predict(dm, pred_contribs=True, iteration_range=(0, it + 1)) for b, it in self._bags()
        ]
        return pd.DataFrame(
            np.mean(cs, axis=0), columns=[*self.feature_names_in_, "bias"], index=X.index
        )

    def predict_interval(self, mu: np.ndarray, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """Predictive interval of the event count (negative binomial with ``dispersion_``;
        :func:`~riskmodel.model.counts.count_interval`)."""
        check_is_fitted(self, "booster_")
        return count_interval(mu, self.dispersion_, level)


def row_uniforms(seed: int, offset: int, n: int) -> np.ndarray:
    """Uniforms number ``offset .. offset + n`` of the stream ``default_rng(seed)``.

    Random access (PCG64 ``advance``, one 64-bit draw per double): any slice of a long
    sequence of draws is computed without drawing the rows before it.
    """
    bitgen = np.random.PCG64(seed)
    if offset:
        bitgen.advance(int(offset))
    return np.random.Generator(bitgen).random(int(n))
