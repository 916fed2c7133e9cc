"""``[effort]`` features: the exposure (officer-hours in the window and recently).

The in-window effort :data:`EXPOSURE_FEATURE` is what the model's monotone constraint and the
effort-neutral risk refer to (METHODOLOGY.md, section 2.4).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskmodel.features._sparse import RowSparse
from riskmodel.features.family import Block, Column, Family, Where, period
from riskmodel.features.history import _T, _decayed_many
from riskmodel.features.kernels import band, cumulative
from riskmodel.features.spec import FeatureSpec

EXPOSURE_FEATURE = "effort_window"


@dataclass
class EffortState:
    """Segment-major effort and its cumulative sums (S x W, S x W + 1)."""

    effort_T: np.ndarray
    cumE: np.ndarray
    bandE: RowSparse
    split: dict[tuple[float, bool], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, ctx: Any) -> EffortState:
        """Precompute from ``ctx`` (a :class:`~riskmodel.features.engine.FeatureContext`)."""
        e = ctx.spec.section("effort")
        eff = ctx.panel.effort
        keys, pairs = [], []
        for tau in e["split_decay_days"]:
            a = np.exp(-1.0 / (tau * ctx.K))
            for patrolled in (False, True):
                m = (eff > 0) if patrolled else (eff <= 0)
                # decayed records and decayed window counts of one kind of window, strictly past
                keys.append((tau, patrolled))
                pairs += [(ctx.panel.counts * m, a), (m, a)]
        series = _decayed_many(pairs)
        split = {k: (_T(series[2 * i]), _T(series[2 * i + 1])) for i, k in enumerate(keys)}
        return cls(_T(eff), cumulative(eff), band(ctx.chain, float(e["along_km"])), split)


def _columns(spec: FeatureSpec) -> list[Column]:
    e = spec.section("effort")
    km = e["along_km"]
    out = [Column(EXPOSURE_FEATURE, "effort", "effort", {"where": "window"})]
    for d in e["windows_days"]:
        out.append(Column(f"effort_{d}d", "effort", "effort", {"days": d, "where": "segment"}))
        out.append(
            Column(
                f"effort_{d}d_pm{km:g}km",
                "effort",
                "effort",
                {"days": d, "where": "along", "km": km},
            )
        )
    for tau in e["split_decay_days"]:
        for kind in ("unpatrolled", "patrolled"):
            p = {"days": tau, "km": km, "kind": kind}
            out.append(Column(f"rate_{kind}_{tau:g}d_pm{km:g}km", "effort", "effort", p))
    return out


def _compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    es = ctx.effort
    own, cur = None, None
    for c in cols:
        if "kind" in c.params:
            # Records per window of that kind (patrolled or not) within +-km, decayed: the
            # unpatrolled rate is free of the patrols' detection bias, the patrolled one is not.
            num, den = es.split[(c.params["days"], c.params["kind"] == "patrolled")]
            n = blk.nb(es.bandE, num[:, blk.tg])
            d = blk.nb(es.bandE, den[:, blk.tg])
            yield (n + 0.05) / (d + 5.0)
            continue
        where = c.params["where"]
        if where == "window":
            now = es.effort_T[:, blk.tg] if blk.effort_now is None else np.asarray(blk.effort_now).T
            yield blk.sel(now)
            continue
        if c.params["days"] != cur:
            cur = c.params["days"]
            own = blk.lookback(es.cumE, int(cur * ctx.K))
        yield blk.sel(own) if where == "segment" else blk.nb(es.bandE, own)


def _describe(c: Column, v: float, where: Where) -> str:
    p = c.params
    if "kind" in p:
        return (
            f"{float(v):.2f} incidents per shift within {p['km']:g} km in {p['kind']} shifts "
            f"({period(p['days'])} memory)"
        )
    hrs = f"patrol effort {float(v):.0f} officer-hours"
    if p["where"] == "window":
        return f"{hrs} on this segment in this shift"
    place = (
        "on this segment" if p["where"] == "segment" else f"within {p['km']:g} km along the border"
    )
    return f"{hrs} {place} in the last {period(p['days'])}"


FAMILIES: tuple[Family, ...] = (Family("effort", "effort", _columns, _compute, _describe),)
