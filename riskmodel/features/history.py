"""``[history]`` features: counts of past events on a segment and around it.

Every value of window ``w`` uses events in windows ``< w`` only: look-backs are differences of
cumulative sums ending at ``w`` (exclusive), decayed counts are filtered strictly past counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskmodel.features._sparse import RowSparse
from riskmodel.features.family import (
    NEIGHBOUR_KM,
    Block,
    Column,
    Family,
    Where,
    period,
    plural,
)
from riskmodel.features.family import hours as hours_words
from riskmodel.features.kernels import band, cumulative, gauss, last_event_index, radius
from riskmodel.features.spec import FeatureSpec


def _decayed(C: np.ndarray, a: float) -> np.ndarray:
    """``y[0] = 0``, ``y[w] = a * y[w-1] + C[w-1]`` in float64: bit for bit what
    ``scipy.signal.lfilter([0, 1], [1, -a], C, axis=0)`` gives, without importing scipy.signal
    (~0.2-0.5 s of every command's start)."""
    return _decayed_many([(C, a)])[0]


def _decayed_many(pairs: list[tuple[np.ndarray, float]]) -> list[np.ndarray]:
    """:func:`_decayed` of several ``(C, a)`` (same number of windows) in one recursion.

    The series sit side by side, each column with its own factor: the same multiply and add
    per element as one at a time (bit for bit), but one numpy call per window for all of
    them instead of one per series (the call overhead is most of the cost at 640 segments).
    """
    if not pairs:
        return []
    X = np.concatenate([np.asarray(C, dtype=np.float64) for C, _ in pairs], axis=1)
    a = np.concatenate([np.full(np.shape(C)[1], a, np.float64) for C, a in pairs])
    y = np.zeros(X.shape, np.float64)
    for w in range(1, X.shape[0]):
        np.multiply(y[w - 1], a, out=y[w])
        y[w] += X[w - 1]
    edges = np.cumsum([0] + [np.shape(C)[1] for C, _ in pairs])
    return [y[:, lo:hi] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _T(a: np.ndarray) -> np.ndarray:
    """C-contiguous transpose (segment-major layout)."""
    return np.ascontiguousarray(a.T)


@dataclass
class HistoryState:
    """Everything a history feature of any window looks back at, segment-major (S x W + 1).

    Built once per panel; a block of rows is then row look-ups and sparse products.
    """

    cumC: np.ndarray
    cumP: np.ndarray
    bands: dict[float, RowSparse]
    rad: RowSparse
    decay: dict[float, np.ndarray]
    prev_own: np.ndarray
    prev_nb: np.ndarray
    rows_k: list[np.ndarray]
    cum_k: list[np.ndarray]
    A_t: RowSparse
    A_tt: RowSparse
    first_w: int
    gauss: dict[float, RowSparse]
    smooth_decay: dict[float, np.ndarray]

    @classmethod
    def build(cls, ctx: Any) -> HistoryState:
        """Precompute from ``ctx`` (a :class:`~riskmodel.features.engine.FeatureContext`)."""
        h = ctx.spec.section("history")
        panel, K, S, chain = ctx.panel, ctx.K, ctx.S, ctx.chain
        seg = panel.segments
        C = panel.counts
        bands = {km: band(chain, km) for km in {*h["along_km"], NEIGHBOUR_KM, h["near_repeat_km"]}}
        decay, smooth_decay = {}, {}
        taus = sorted({*h["decay_days"], *h["smooth_decay_days"]})
        # y[w] = a*y[w-1] + C[w-1]: strictly past events, decayed per window.
        series = _decayed_many([(C, np.exp(-1.0 / (tau * K))) for tau in taus])
        for tau, y in zip(taus, series, strict=True):
            arr = _T(y)
            if tau in h["decay_days"]:
                decay[tau] = arr
            if tau in h["smooth_decay_days"]:
                smooth_decay[tau] = arr
        sigmas = {*h["longrun_sigma_km"], *([h["smooth_km"]] if h["smooth_decay_days"] else [])}
        # Per-shift cumulative counts over that shift's windows only (a shift's profile).
        rows_k = [np.flatnonzero(ctx.shift_of == k) for k in range(K)]
        codes = ctx.static["area_code"].to_numpy().astype(int)
        A = RowSparse.from_entries(np.arange(S), codes, np.ones(S), (S, int(codes.max()) + 1))
        # area sums A @ (A.T @ lb): A.T adds each area's segments in segment order.
        A_t = A.transpose()
        return cls(
            cumC=cumulative(C),
            cumP=cumulative(panel.persons),
            bands=bands,
            rad=radius(seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy(), float(h["radius_km"])),
            decay=decay,
            prev_own=last_event_index(C),
            prev_nb=last_event_index((bands[NEIGHBOUR_KM] @ C.T).T),
            rows_k=rows_k,
            cum_k=[cumulative(C[r]) for r in rows_k],
            A_t=A_t,
            A_tt=A_t.transpose(),
            first_w=int(np.argmax(C.sum(axis=1) > 0)) if C.sum() > 0 else 0,
            gauss={sig: gauss(chain, float(sig)) for sig in sigmas},
            smooth_decay=smooth_decay,
        )


def horizon(days: float) -> str:
    """Reason group of a look-back: ``recent`` (up to a week), ``month``, ``long``."""
    return "recent" if days <= 7 else "month" if days <= 31 else "long"


def _where(c: Column) -> str:
    w = c.params.get("where", "segment")
    if w == "along":
        return f"within {c.params['km']:g} km along the border"
    if w == "radius":
        return f"within {c.params['km']:g} km"
    return "on this segment"


def _hist(spec: FeatureSpec) -> dict[str, Any]:
    return spec.section("history")


def _hist_days(ctx: Any, blk: Block) -> np.ndarray:
    return np.clip((blk.tg - ctx.history.first_w) / ctx.K, 0, None)


# ----------------------------------------------------------------------------- counts


def _count_columns(spec: FeatureSpec) -> list[Column]:
    h = _hist(spec)
    out = []
    for d in h["windows_days"]:
        g = horizon(d)
        out.append(Column(f"n_{d}d", "counts", g, {"days": d, "where": "segment"}))
        for km in h["along_km"]:
            out.append(
                Column(f"n_{d}d_pm{km:g}km", "counts", g, {"days": d, "where": "along", "km": km})
            )
        r = h["radius_km"]
        out.append(Column(f"n_{d}d_r{r:g}km", "counts", g, {"days": d, "where": "radius", "km": r}))
    return out


def _count_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    hs = ctx.history
    own, cur = None, None
    for c in cols:
        if c.params["days"] != cur:
            cur = c.params["days"]
            own = blk.lookback(hs.cumC, int(cur * ctx.K))
        where = c.params["where"]
        if where == "segment":
            yield blk.sel(own)
        elif where == "along":
            yield blk.nb(hs.bands[c.params["km"]], own)
        else:
            yield blk.nb(hs.rad, own)


def _count_describe(c: Column, v: float, where: Where) -> str:
    return f"{plural(v, 'incident')} {_where(c)} in the last {period(c.params['days'])}"


# ----------------------------------------------------------------------------- persons


def _persons_columns(spec: FeatureSpec) -> list[Column]:
    return [
        Column(f"persons_{d}d", "persons", "long", {"days": d})
        for d in _hist(spec)["persons_windows_days"]
    ]


def _persons_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    for c in cols:
        yield blk.sel(blk.lookback(ctx.history.cumP, int(c.params["days"] * ctx.K)))


def _persons_describe(c: Column, v: float, where: Where) -> str:
    return (
        f"{plural(v, 'person')} apprehended on this segment in the last {period(c.params['days'])}"
    )


# ----------------------------------------------------------------------------- decay


def _decay_columns(spec: FeatureSpec) -> list[Column]:
    out = []
    for tau in _hist(spec)["decay_days"]:
        g = horizon(tau)
        out.append(Column(f"decay_{tau}d", "decay", g, {"days": tau, "where": "segment"}))
        out.append(
            Column(
                f"decay_{tau}d_pm{NEIGHBOUR_KM}km",
                "decay",
                g,
                {"days": tau, "where": "along", "km": NEIGHBOUR_KM},
            )
        )
    return out


def _decay_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    hs = ctx.history
    for c in cols:
        dec = hs.decay[c.params["days"]][:, blk.tg]
        yield (
            blk.sel(dec) if c.params["where"] == "segment" else blk.nb(hs.bands[NEIGHBOUR_KM], dec)
        )


def _decay_describe(c: Column, v: float, where: Where) -> str:
    return (
        f"recent activity {_where(c)} (time-weighted count {float(v):.1f}, "
        f"{c.params['days']:g}-day memory)"
    )


# ----------------------------------------------------------------------------- days since


def _since_columns(spec: FeatureSpec) -> list[Column]:
    cap = _hist(spec)["max_days_since"]
    return [
        Column("days_since", "since", "since", {"cap": cap, "where": "segment"}),
        Column(
            f"days_since_pm{NEIGHBOUR_KM}km",
            "since",
            "since",
            {"cap": cap, "where": "along", "km": NEIGHBOUR_KM},
        ),
    ]


def _since_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    hs, tg = ctx.history, blk.tg
    for c in cols:
        prev_all = hs.prev_own if c.params["where"] == "segment" else hs.prev_nb
        prev = prev_all[:, tg] if blk.full else prev_all[blk.rows][:, tg]
        cap = float(c.params["cap"])
        d = (tg[None, :] - prev) / ctx.K
        yield np.where(prev < 0, cap, np.minimum(d, cap)).astype(np.float32)


def _since_describe(c: Column, v: float, where: Where) -> str:
    cap = float(c.params["cap"])
    if float(v) >= cap:
        return f"no incident {_where(c)} in the last {period(cap)}"
    return f"last incident {_where(c)} {float(v):.0f} days ago"


# ----------------------------------------------------------------------------- near repeat


def _near_columns(spec: FeatureSpec) -> list[Column]:
    h = _hist(spec)
    p = {"km": h["near_repeat_km"], "hours": h["near_repeat_hours"]}
    return [Column("near_repeat", "near_repeat", "near", p)]


def _near_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    (c,) = cols
    n = max(1, int(round(c.params["hours"] / 24 * ctx.K)))
    yield blk.nb(ctx.history.bands[c.params["km"]], blk.lookback(ctx.history.cumC, n))


def _near_describe(c: Column, v: float, where: Where) -> str:
    return (
        f"{plural(v, 'incident')} within {c.params['km']:g} km in the last "
        f"{hours_words(c.params['hours'])} (near-repeat)"
    )


# ----------------------------------------------------------------------------- shift profile


def _share_columns(spec: FeatureSpec) -> list[Column]:
    p = {"days": _hist(spec)["shift_profile_days"], "km": NEIGHBOUR_KM}
    return [Column("shift_share", "shift_share", "time", p)]


def _share_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    (c,) = cols
    hs, tg, K = ctx.history, blk.tg, ctx.K
    n_prof = int(c.params["days"] * K)
    own_cnt = blk.nb(hs.bands[NEIGHBOUR_KM], blk.lookback(hs.cumC, n_prof))
    same = np.zeros((blk.R, blk.T))
    k_tg = ctx.shift_of[tg]
    for k in range(K):  # a handful of shifts
        m = k_tg == k
        if not m.any():
            continue
        rk = hs.rows_k[k]
        hi = np.searchsorted(rk, tg[m])
        lo = np.searchsorted(rk, np.clip(tg[m] - n_prof, 0, None))
        ck = hs.cum_k[k]
        same[:, m] = blk.nb(hs.bands[NEIGHBOUR_KM], ck[:, hi] - ck[:, lo])
    # The stretch's own share of events in this shift, smoothed towards 1/K.
    yield (same + 1.0 / K) / (own_cnt + 1.0)


def _share_describe(c: Column, v: float, where: Where) -> str:
    return (
        f"{float(v):.0%} of the incidents within {c.params['km']:g} km in the last "
        f"{period(c.params['days'])} fell in the {where.get('shift', 'same')} shift"
    )


# ----------------------------------------------------------------------------- trend


def _trend_columns(spec: FeatureSpec) -> list[Column]:
    a, b = _hist(spec)["trend_days"]
    return [Column("trend", "trend", "trend", {"short": a, "long": b, "km": NEIGHBOUR_KM})]


def _trend_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    (c,) = cols
    hs, K = ctx.history, ctx.K
    a_d, b_d = c.params["short"], c.params["long"]
    short = blk.nb(hs.bands[NEIGHBOUR_KM], blk.lookback(hs.cumC, int(a_d * K))) / a_d
    long_ = blk.nb(hs.bands[NEIGHBOUR_KM], blk.lookback(hs.cumC, int(b_d * K))) / b_d
    yield (short + 0.01) / (long_ + 0.01)


def _trend_describe(c: Column, v: float, where: Where) -> str:
    p = c.params
    return (
        f"activity within {p['km']:g} km {'rising' if float(v) >= 1 else 'falling'}: the last "
        f"{period(p['short'])} at {float(v):.1f}x the rate of the last {period(p['long'])}"
    )


# ----------------------------------------------------------------------------- area, border


def _area_columns(spec: FeatureSpec) -> list[Column]:
    out = []
    for d in _hist(spec)["area_windows_days"]:
        out.append(Column(f"area_n_{d}d", "area", "area", {"days": d, "where": "area"}))
        out.append(Column(f"border_n_{d}d", "area", "area", {"days": d, "where": "border"}))
    return out


def _area_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    hs = ctx.history
    for c in cols:
        lb = blk.lookback(hs.cumC, int(c.params["days"] * ctx.K))
        if c.params["where"] == "area":
            yield blk.sel(hs.A_tt @ (hs.A_t @ lb))
        else:
            yield blk.per_window(lb.sum(axis=0))  # integer-valued: exact in any order


def _area_describe(c: Column, v: float, where: Where) -> str:
    if c.params["where"] == "border":
        place = "on the whole border"
    else:
        place = (
            f"in the {where['area']} directorate" if where.get("area") else "in this directorate"
        )
    return f"{plural(v, 'incident')} {place} in the last {period(c.params['days'])}"


# ----------------------------------------------------------------------------- history length


def _length_columns(spec: FeatureSpec) -> list[Column]:
    return [Column("history_days", "history_days", "place")]


def _length_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    yield blk.per_window(_hist_days(ctx, blk))


def _length_describe(c: Column, v: float, where: Where) -> str:
    return f"{float(v):.0f} days of recorded history before this shift"


# ----------------------------------------------------------------------------- long-run rate


def _longrun_columns(spec: FeatureSpec) -> list[Column]:
    return [
        Column(f"longrun_{s:g}km", "longrun", "longrun", {"sigma": s})
        for s in _hist(spec)["longrun_sigma_km"]
    ]


def _longrun_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    # All events before the window, smoothed along the border, per day of history.
    hs = ctx.history
    days = np.maximum(_hist_days(ctx, blk), 28.0)[None, :]
    for c in cols:
        yield blk.nb(hs.gauss[c.params["sigma"]], hs.cumC[:, blk.tg]) / days


def _longrun_describe(c: Column, v: float, where: Where) -> str:
    return f"long-run rate {float(v) * 30:.1f} incidents a month within ~{c.params['sigma']:g} km"


# ----------------------------------------------------------------------------- local level


def _level_columns(spec: FeatureSpec) -> list[Column]:
    h = _hist(spec)
    km = h["smooth_km"]
    out = []
    for tau in h["smooth_decay_days"]:
        p = {"days": tau, "km": km}
        out.append(Column(f"rate_{tau:g}d_g{km:g}km", "level", horizon(tau), p))
        out.append(Column(f"level_{tau:g}d_g{km:g}km", "level", "trend", {**p, "ratio": True}))
        out.append(Column(f"selfexc_{tau:g}d_g{km:g}km", "level", "longrun", {**p, "sum": True}))
    return out


def _level_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    # The recent rate of the stretch (events a day: exponentially decayed counts with memory
    # tau, smoothed along the border with a Gaussian of the spec's km) and its ratio to the
    # long-run rate of the same stretch: where routes drift, the ratio says how far the
    # stretch is above or below its usual level now (the self-exciting and drift terms).
    hs = ctx.history
    km = cols[0].params["km"]
    g = hs.gauss[km]
    days = np.maximum(_hist_days(ctx, blk), 28.0)[None, :]
    longrun = blk.nb(g, hs.cumC[:, blk.tg]) / days
    for c in cols:
        tau = c.params["days"]
        rate = blk.nb(g, hs.smooth_decay[tau][:, blk.tg]) / tau
        if c.params.get("ratio"):
            yield (rate + 0.01) / (longrun + 0.01)
        elif c.params.get("sum"):
            yield longrun + rate  # background + recent excitation: a fixed-kernel ETAS rate
        else:
            yield rate


def _level_describe(c: Column, v: float, where: Where) -> str:
    p = c.params
    if p.get("sum"):
        return (
            f"expected rate {float(v) * 30:.1f} incidents a month within ~{p['km']:g} km "
            f"(long-run plus the last {period(p['days'])})"
        )
    if p.get("ratio"):
        return (
            f"activity within ~{p['km']:g} km at {float(v):.1f}x its long-run level "
            f"({period(p['days'])} memory)"
        )
    return (
        f"recent rate {float(v) * 30:.1f} incidents a month within ~{p['km']:g} km "
        f"({period(p['days'])} memory)"
    )


FAMILIES: tuple[Family, ...] = tuple(
    Family(key, "history", cols, comp, desc)
    for key, cols, comp, desc in (
        ("counts", _count_columns, _count_compute, _count_describe),
        ("persons", _persons_columns, _persons_compute, _persons_describe),
        ("decay", _decay_columns, _decay_compute, _decay_describe),
        ("since", _since_columns, _since_compute, _since_describe),
        ("near_repeat", _near_columns, _near_compute, _near_describe),
        ("shift_share", _share_columns, _share_compute, _share_describe),
        ("trend", _trend_columns, _trend_compute, _trend_describe),
        ("area", _area_columns, _area_compute, _area_describe),
        ("history_days", _length_columns, _length_compute, _length_describe),
        ("longrun", _longrun_columns, _longrun_compute, _longrun_describe),
        ("level", _level_columns, _level_compute, _level_describe),
    )
)
