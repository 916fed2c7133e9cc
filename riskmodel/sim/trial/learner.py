"""The engine in the trial's loop: the recorded panel, the product's training engine and the
current model, its effort-neutral map and the residual correction."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pandas as pd

from riskmodel.features import FeatureSpec, Panel, build_features
from riskmodel.features.kernels import band as _band
from riskmodel.model.counts import recent_residual_factor
from riskmodel.model.engine import ChunkedEngine, FeatureData
from riskmodel.model.estimator import RiskRegressor
from riskmodel.sim.trial.config import TrialConfig

log = logging.getLogger(__name__)


class _Learner:
    """The engine in the loop: the recorded panel, the product's chunked training engine (the
    estimator's own empty-row draw, burn-in and early stopping) and the current model.

    A retrain builds the features of the kept rows of the recorded windows (a window's
    features only use data before it, which never changes) and fits a
    :class:`~riskmodel.model.estimator.RiskRegressor`, exactly as ``riskmodel train`` does.
    """

    def __init__(
        self, panel: Panel, static: pd.DataFrame, spec: FeatureSpec, cfg: TrialConfig, seed: int
    ) -> None:
        self.panel = panel
        # No attrs: pandas deep-copies them on every column access (slow, unused here).
        self.static = static.copy()
        self.static.attrs = {}
        self.spec = spec
        self.cfg = cfg
        self.seed = seed
        self.S = panel.counts.shape[1]
        self.K = panel.n_shifts
        # Validation rows subsampled like the training rows (weighted): the retrains stay cheap.
        self.engine = ChunkedEngine(valid_keep=cfg.zero_keep)
        self.params = {
            "n_estimators": cfg.n_estimators,
            "learning_rate": cfg.learning_rate,
            "zero_keep": cfg.zero_keep,
            "n_bags": 1,
            "random_state": seed,
            "n_jobs": cfg.n_jobs,
        }
        self.cols: list[str] = []
        self.model: RiskRegressor | None = None
        self.fits = 0
        # The engine's own forecasts of past windows with the effort spent (out of sample: made
        # by the model of the day, after the window was recorded), for the residual correction.
        W = panel.counts.shape[0]
        self.forecast = np.zeros((W, self.S), np.float32)
        self.has_forecast = np.zeros(W, bool)
        seg = panel.segments
        mid = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy()
        self.pool = _band(mid, cfg.recalibrate_km)  # segments within +-km along the border

    def fork(self) -> _Learner:
        """Independent copy (panel arrays copied; the model is shared until the next fit)."""
        new = copy.copy(self)
        p = self.panel
        new.panel = Panel(
            p.windows, p.segments, p.counts.copy(), p.persons.copy(), p.effort.copy(), p.n_shifts
        )
        new.forecast = self.forecast.copy()
        new.has_forecast = self.has_forecast.copy()
        return new

    def record(self, w0: int, counts: np.ndarray, persons: np.ndarray, effort: np.ndarray) -> None:
        """Write observed windows ``w0 ..`` (rows of ``counts``) into the panel."""
        n = counts.shape[0]
        self.panel.counts[w0 : w0 + n] = counts
        self.panel.persons[w0 : w0 + n] = persons
        self.panel.effort[w0 : w0 + n] = effort

    def _upto(self, end: int) -> Panel:
        # Windows >= end are not used by features of earlier windows: views, exact, cheaper.
        p = self.panel
        return Panel(
            p.windows.iloc[:end],
            p.segments,
            p.counts[:end],
            p.persons[:end],
            p.effort[:end],
            p.n_shifts,
        )

    def fit(self, until: int) -> None:
        """Retrain on all completed windows before ``until`` (recorded events and effort)."""
        data = FeatureData(self._upto(until), self.static, self.spec)
        self.model = self.engine.fit(data, until, self.params)
        self.cols = list(self.model.feature_names_in_)
        self.fits += 1

    def _features(self, w0: int, n: int) -> pd.DataFrame:
        return build_features(self._upto(w0 + n), self.static, self.spec, np.arange(w0, w0 + n))[
            self.cols
        ]

    def predict_neutral(self, w0: int, n: int) -> np.ndarray:
        """Effort-neutral risk ``(n, S)`` of windows ``w0 .. w0 + n`` from the data so far."""
        assert self.model is not None
        risk = np.asarray(self.model.predict_neutral(self._features(w0, n)), np.float64)
        return risk.reshape(n, self.S) * self.residual_factor(w0)[None, :]

    def residual_factor(self, w0: int) -> np.ndarray:
        """Correction ``(S,)`` from the recorded events and forecasts of the recent windows."""
        days = self.cfg.recalibrate_days
        if days <= 0:
            return np.ones(self.S)
        a = max(0, w0 - days * self.K)
        have = self.has_forecast[a:w0]
        if not have.any():
            return np.ones(self.S)
        return recent_residual_factor(
            self.panel.counts[a:w0][have],
            self.forecast[a:w0][have],
            self.pool,
            prior=self.cfg.recalibrate_prior,
        )

    def note_forecast(self, w0: int, n: int) -> None:
        """Once windows ``w0 .. w0 + n`` are recorded: keep the model's forecast of them made
        with the effort spent (the features see only data before each window)."""
        if self.cfg.recalibrate_days <= 0:
            return
        assert self.model is not None
        pred = np.asarray(self.model.predict(self._features(w0, n)), np.float64).reshape(n, self.S)
        self.forecast[w0 : w0 + n] = pred
        self.has_forecast[w0 : w0 + n] = True
