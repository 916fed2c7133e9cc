"""``[effort]`` features: the exposure (officer-hours in the window and recently).

The in-window effort :data:`EXPOSURE_FEATURE` is what the model's monotone constraint and the
effort-neutral risk refer to (METHODOLOGY.md, section 2.4).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from riskmodel.features.family import Block, Column, Family, Where, period
from riskmodel.features.history import _T
from riskmodel.features.kernels import band, cumulative
from riskmodel.features.spec import FeatureSpec

EXPOSURE_FEATURE = "effort_window"


@dataclass
class EffortState:
    """Segment-major effort and its cumulative sums (S x W, S x W + 1)."""

    effort_T: np.ndarray
    cumE: np.ndarray
    bandE: sparse.csr_matrix

    @classmethod
    def build(cls, ctx: Any) -> EffortState:
        """Precompute from ``ctx`` (a :class:`~riskmodel.features.engine.FeatureContext`)."""
        e = ctx.spec.section("effort")
        eff = ctx.panel.effort
        return cls(_T(eff), _T(cumulative(eff)), band(ctx.chain, float(e["along_km"])))


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
    return out


def _compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    es = ctx.effort
    own, cur = None, None
    for c in cols:
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
    hrs = f"patrol effort {float(v):.0f} officer-hours"
    p = c.params
    if p["where"] == "window":
        return f"{hrs} on this segment in this shift"
    place = (
        "on this segment" if p["where"] == "segment" else f"within {p['km']:g} km along the border"
    )
    return f"{hrs} {place} in the last {period(p['days'])}"


FAMILIES: tuple[Family, ...] = (Family("effort", "effort", _columns, _compute, _describe),)
