"""A fitted model as scoring uses it: the saved boosters evaluated in numpy.

:class:`ScoringModel` is what :func:`~riskmodel.model.bundle.load_bundle` builds from a
bundle's checked bytes. It predicts exactly what the :class:`~riskmodel.model.estimator.
RiskRegressor` that was saved predicts (the trees are evaluated by
:class:`~riskmodel.model.trees.TreeEnsemble`, TreeSHAP included), with the same methods, but
imports neither XGBoost nor scikit-learn nor scipy: their imports alone took ~2 s of every
``riskmodel score``/``daily`` (bench/bench_cli.py). Training stays with XGBoost.

Both share the effort-neutral input (:func:`zero_exposure`) and the predictive interval
(:func:`~riskmodel.model.counts.count_interval`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.features.effort import EXPOSURE_FEATURE
from riskmodel.model.counts import count_interval
from riskmodel.model.trees import TreeEnsemble


def model_matrix(X: pd.DataFrame | np.ndarray, names: list[str]) -> np.ndarray:
    """The model columns ``names`` of ``X`` as a float32 matrix (the dtype the trees compare
    in); a frame must hold every column, an array must have exactly that many."""
    if isinstance(X, pd.DataFrame):
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature columns the model was fitted with: {missing[:5]}")
        return X[names].to_numpy(np.float32)
    arr = np.asarray(X, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError(f"X has shape {arr.shape}, expected (n, {len(names)})")
    return arr


def zero_exposure(X: pd.DataFrame | np.ndarray, names: list[str]) -> pd.DataFrame | np.ndarray:
    """``X`` (model columns ``names``) with the in-window effort set to zero: the
    effort-neutral input (where crossings happen rather than where they would be recorded);
    ``X`` itself for a model without that feature."""
    if EXPOSURE_FEATURE not in names:
        return X
    if isinstance(X, pd.DataFrame):
        X = X[names].copy()
        X[EXPOSURE_FEATURE] = 0.0
        return X
    X = np.array(X, dtype=np.float32)
    X[:, names.index(EXPOSURE_FEATURE)] = 0.0
    return X


class ScoringModel:
    """A saved :class:`~riskmodel.model.estimator.RiskRegressor` rebuilt for scoring.

    Parameters
    ----------
    ensembles : list of TreeEnsemble
        One per bag, each cut at its best iteration.
    feature_names : list of str
        Model input columns, in order.
    dispersion : float
        Negative-binomial overdispersion (0 = Poisson).
    params : dict
        The estimator's parameters (for cards and reports).
    fit_info : dict
        What training recorded.
    best_iterations : list of int
        Best iteration of each bag.

    Attributes
    ----------
    ensembles_, feature_names_in_, n_features_in_, dispersion_, fit_info_,
    best_iteration_, best_iterations_
        As on the fitted :class:`~riskmodel.model.estimator.RiskRegressor`.
    """

    def __init__(
        self,
        ensembles: list[TreeEnsemble],
        feature_names: list[str],
        dispersion: float,
        params: dict[str, Any],
        fit_info: dict[str, Any],
        best_iterations: list[int],
    ) -> None:
        if not ensembles:
            raise ValueError("a model needs at least one booster")
        for e in ensembles:
            if list(e.feature_names) != list(feature_names):
                raise ValueError("booster feature names differ from the model's columns")
        self.ensembles_ = list(ensembles)
        self.feature_names_in_ = np.array(feature_names, dtype=object)
        self.n_features_in_ = len(feature_names)
        self.dispersion_ = float(dispersion)
        self.params_ = dict(params)
        self.fit_info_ = fit_info
        self.best_iterations_ = list(best_iterations)
        self.best_iteration_ = self.best_iterations_[0]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator parameters the model was trained with."""
        return dict(self.params_)

    def total_gain(self) -> pd.Series:
        """Total gain of each model column (summed loss reduction of its splits, mean over the
        bags; 0 for a column no tree splits on): the global feature importance."""
        per_bag = [pd.Series(e.total_gain(), dtype=float) for e in self.ensembles_]
        out = pd.concat(per_bag, axis=1).fillna(0.0).mean(axis=1) if per_bag else pd.Series()
        return out.reindex(list(self.feature_names_in_), fill_value=0.0)

    def _array(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return model_matrix(X, list(self.feature_names_in_))

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Expected recorded events per row (mean over the bags)."""
        arr = self._array(X)
        return np.mean([e.predict(arr) for e in self.ensembles_], axis=0)

    def predict_neutral(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Effort-neutral expected events (:func:`zero_exposure`)."""
        return self.predict(zero_exposure(X, list(self.feature_names_in_)))

    @timed("reasons (TreeSHAP)")
    def predict_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions on the log scale (TreeSHAP, mean over the bags); the last
        column is the bias."""
        arr = self._array(X)
        cs = np.mean([e.contributions(arr) for e in self.ensembles_], axis=0)
        return pd.DataFrame(cs, columns=[*self.feature_names_in_, "bias"], index=X.index)

    def predict_interval(self, mu: np.ndarray, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """Predictive interval of the event count (:func:`count_interval`)."""
        return count_interval(mu, self.dispersion_, level)
