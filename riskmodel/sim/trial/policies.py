"""Where the units check in one day, per policy; ``randomised`` and ``oracle`` run the shipped
planner (:func:`riskmodel.planning.make_plans`) with the trial's caps and its running checks
history."""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from riskmodel.planning import PlanConfig, make_plans, top_k
from riskmodel.planning.caps import checks_history
from riskmodel.sim.trial.config import _S_POLICY, TrialConfig, _stream

log = logging.getLogger(__name__)


class _Policy:
    """Where the units check in one day: (checked mask, inclusion probabilities) per shift.

    ``randomised`` and ``oracle`` call the shipped planner (ORIGAMI coverage with the
    exploration floor and the per-shift cap, the share-of-shifts cap counted over the running
    checks history exactly as for a real deployment, systematic sampling); when caps leave too
    few segments the planner places fewer units, as in the field.

    Parameters
    ----------
    name : str
        Policy (see :data:`~riskmodel.sim.trial.config.POLICIES`).
    cfg : TrialConfig
    segments : DataFrame
        ``segment_id``, ``area`` in ``seq`` order.
    windows : DataFrame
        The panel's shift windows (day-major, ``shift_idx`` within a day).
    seed : int
        World seed (the plans' seed derives from it and the policy).
    tz : str
        Local time zone.
    """

    def __init__(
        self,
        name: str,
        cfg: TrialConfig,
        segments: pd.DataFrame,
        windows: pd.DataFrame,
        seed: int,
        tz: str,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.S = len(segments)
        self.K = int(windows["shift_idx"].max()) + 1
        self.U = min(cfg.units, self.S)
        self.code = zlib.crc32(name.encode())
        self.static_plan: np.ndarray | None = None  # (K, S) for "static"
        self.tz = tz
        self.ids = segments["segment_id"].astype(str).to_numpy()
        self.areas = segments["area"].astype(str).to_numpy()
        self.windows = windows
        self.plan_config = PlanConfig(
            per_shift=cfg.per_shift_cap,
            max_share_of_shifts=cfg.max_share_of_shifts,
            share_window_days=cfg.share_window_days,
            shifts_per_day=self.K,
            floor_factor=cfg.floor_factor,
        )
        self.plan_seed = int(_stream(seed, _S_POLICY, self.code).integers(2**63))
        self.history = checks_history([])  # checks of the trial's plans (for the caps)

    def _risk_frame(self, d: int, risk: np.ndarray) -> pd.DataFrame:
        """The planner's risk table of day ``d`` (``risk`` (K, S) is the effort-neutral map)."""
        K, S = self.K, self.S
        win = self.windows.iloc[d * K : (d + 1) * K]
        rep = lambda v: np.repeat(np.asarray(v), S)  # noqa: E731
        return pd.DataFrame(
            {
                "segment_id": np.tile(self.ids, K),
                "date": rep(win["date"].dt.strftime("%Y-%m-%d")),
                "shift": rep(win["shift"].astype(str)),
                "shift_start": rep(win["start_local"].map(lambda t: t.isoformat())),
                "shift_end": rep(
                    win["end_utc"].dt.tz_convert(self.tz).map(lambda t: t.isoformat())
                ),
                "expected": np.maximum(risk, 0.0).reshape(-1),
                "threat": np.maximum(risk, 0.0).reshape(-1),
                "area": np.tile(self.areas, K),
            }
        )

    def _planned(self, d: int, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plans = make_plans(
            self._risk_frame(d, risk),
            self.U,
            config=self.plan_config,
            seed=self.plan_seed,
            history=self.history,
            tz=self.tz,
        )
        pick = np.zeros((self.K, self.S), bool)
        cov = np.zeros((self.K, self.S))
        pos = pd.Index(self.ids)
        for k, plan in enumerate(plans):
            pick[k, pos.get_indexer(plan.checks["segment_id"].astype(str))] = True
            c = plan.coverage["coverage"]
            cov[k, pos.get_indexer(c.index.astype(str))] = c.to_numpy(float)
        entries = [
            {
                "type": "plan",
                "date": p.date,
                "shift": p.shift,
                "plan_id": p.plan_id,
                "chosen": p.checks["segment_id"].tolist(),
            }
            for p in plans
        ]
        self._remember(checks_history(entries))
        return pick, cov

    def _remember(self, new: pd.DataFrame) -> None:
        """Add a day's checks to the history; checks older than two cap windows can never
        count again and are dropped (keeps the history small)."""
        if len(new) == 0:
            return
        if len(self.history) == 0:
            self.history = new
            return
        horizon = int(new["day"].max()) - 2 * self.cfg.share_window_days
        old = self.history[self.history["day"] > horizon]
        self.history = pd.concat([old, new], ignore_index=True)

    def decide_day(
        self, d: int, risk: np.ndarray, truth: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Checks ``(K, S)`` and inclusion probabilities ``(K, S)`` of day ``d`` from the
        model's ``risk`` and (oracle only) the ``truth``."""
        K, S = self.K, self.S
        if self.name in ("randomised", "oracle"):
            return self._planned(d, risk if self.name == "randomised" else truth)
        pick = np.zeros((K, S), bool)
        if self.name == "top-k":
            none = np.zeros(S, bool)
            for k in range(K):
                pick[k] = top_k(risk[k], self.U, none, none)
            return pick, pick.astype(float)
        if self.name == "static":
            assert self.static_plan is not None
            pick = self.static_plan.copy()
            return pick, pick.astype(float)
        for k in range(K):  # uniform
            pick[k, rng.choice(S, self.U, replace=False)] = True
        return pick, np.full((K, S), self.U / S)
