"""Place and ``[route]`` features: per-segment values that do not change with time.

:func:`static_features` computes them once per geography; the names of the nearest crossing,
corridor and settlements ride along (``attrs["names"]``) for the reasons.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import shapely

from riskmodel.features.family import Block, Column, Family, Where
from riskmodel.features.spec import FeatureSpec

_SIDES = (("far", "across the border"), ("si", "on the Slovenian side"))


def _crossings(geo: Any, pts: np.ndarray, S: int, out: dict, names: dict) -> None:
    cx = geo.crossings
    if not len(cx):
        out["dist_crossing_km"] = np.full(S, 50.0, np.float32)
        names["crossing_name"] = np.full(S, "", dtype=object)
        return
    tree = shapely.STRtree(cx.geometry.values)
    i, d = tree.query_nearest(pts, return_distance=True, all_matches=False)
    dist = np.full(S, np.nan)
    dist[i[0]] = d
    near = np.full(S, "", dtype=object)
    nm = cx["name"].astype(str).to_numpy() if "name" in cx else np.array(["crossing"] * len(cx))
    near[i[0]] = nm[i[1]]
    out["dist_crossing_km"] = (dist / 1000).astype(np.float32)
    names["crossing_name"] = near


def _corridors(geo: Any, pts: np.ndarray, S: int, out: dict, names: dict) -> None:
    co = geo.corridors
    if not len(co):
        for c in ("dist_corridor_km", "dist_approach_km"):
            out[c] = np.full(S, 100.0, np.float32)
        out["corridor_pull"] = np.zeros(S, np.float32)
        names["corridor_name"] = np.full(S, "", dtype=object)
        return
    d = np.stack([shapely.distance(pts, g) for g in co.geometry.values], axis=1)  # few corridors
    w = co["weight"].to_numpy(float) if "weight" in co else np.ones(len(co))
    kind = co["kind"].astype(str).to_numpy() if "kind" in co else np.array(["road"] * len(co))
    appr = kind == "approach_route"
    out["dist_corridor_km"] = (d.min(axis=1) / 1000).astype(np.float32)
    out["dist_approach_km"] = (
        (d[:, appr].min(axis=1) if appr.any() else np.full(S, 1e5)) / 1000
    ).astype(np.float32)
    out["corridor_pull"] = (w[None, :] * np.exp(-d / 5000.0)).sum(axis=1).astype(np.float32)
    cn = co["name"].astype(str).to_numpy() if "name" in co else np.array(["corridor"] * len(co))
    names["corridor_name"] = cn[d.argmin(axis=1)]


def _settlements(
    geo: Any, x: np.ndarray, y: np.ndarray, r_km: float, out: dict, names: dict
) -> None:
    st = geo.settlements
    S = len(x)
    for side, mask_fn in (("far", lambda c: c != "SI"), ("si", lambda c: c == "SI")):
        if len(st) and "country" in st:
            m = mask_fn(st["country"].astype(str).to_numpy())
        else:
            m = np.zeros(len(st), bool)
        if not m.any():
            out[f"dist_settlement_{side}_km"] = np.full(S, 50.0, np.float32)
            out[f"pop_nearest_{side}"] = np.zeros(S, np.float32)
            out[f"pop_within_{side}"] = np.zeros(S, np.float32)
            names[f"settlement_{side}_name"] = np.full(S, "", dtype=object)
            continue
        sx, sy = st.geometry.x.to_numpy()[m], st.geometry.y.to_numpy()[m]
        pop = st["population"].to_numpy(float)[m] if "population" in st else np.ones(m.sum())
        d = np.hypot(x[:, None] - sx[None, :], y[:, None] - sy[None, :])  # S x settlements
        j = d.argmin(axis=1)
        out[f"dist_settlement_{side}_km"] = (d[np.arange(S), j] / 1000).astype(np.float32)
        out[f"pop_nearest_{side}"] = np.log1p(pop[j]).astype(np.float32)
        out[f"pop_within_{side}"] = np.log1p(
            (pop[None, :] * (d <= r_km * 1000)).sum(axis=1)
        ).astype(np.float32)
        nm = st["name"].astype(str).to_numpy()[m] if "name" in st else np.array([""] * m.sum())
        names[f"settlement_{side}_name"] = nm[j]


def static_features(geo: Any, spec: FeatureSpec) -> pd.DataFrame:
    """Place and route features per segment (ordered by ``seq``), plus names used in reasons.

    Parameters
    ----------
    geo : Geography
        Border layers in a metric CRS.
    spec : FeatureSpec

    Returns
    -------
    DataFrame
        One float32 column per feature; ``attrs["names"]`` holds the names of the nearest
        crossing, corridor and settlements (arrays of str, one per segment).
    """
    seg = geo.segments
    S = len(seg)
    x, y = seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy()
    out: dict[str, Any] = {
        "river": seg["river"].to_numpy(bool).astype(np.float32),
        "segment_length_km": (seg["length_m"].to_numpy() / 1000).astype(np.float32),
    }
    areas = seg["area"].astype(str)
    out["area_code"] = pd.Categorical(areas, categories=sorted(areas.unique())).codes.astype(
        np.float32
    )
    names: dict[str, Any] = {}
    if spec.enabled("route"):
        pts = shapely.points(x, y)
        _crossings(geo, pts, S, out, names)
        _corridors(geo, pts, S, out, names)
        r_km = float(spec.section("route")["settlement_radius_km"])
        _settlements(geo, x, y, r_km, out, names)
    df = pd.DataFrame(out)
    df.attrs["names"] = _Names(names)
    return df


class _Names(dict):  # type: ignore[type-arg]
    """The names riding along in ``attrs``: pandas deep-copies ``attrs`` in every operation on
    the frame (~0.1 s a score for these arrays of strings); they are never changed, so share."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Names:
        return self


# ----------------------------------------------------------------------------- families


def _static_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    for c in cols:
        yield blk.per_segment(ctx.static_cols[c.name])


def _place_columns(spec: FeatureSpec) -> list[Column]:
    return [
        Column("river", "place", "river"),
        Column("segment_length_km", "place", "place"),
        Column("area_code", "place", "place"),
    ]


def _place_describe(c: Column, v: float, where: Where) -> str:
    if c.name == "river":
        return "river border" if v else "land border (no river)"
    if c.name == "segment_length_km":
        return f"segment {float(v):.1f} km long"
    return (
        f"in the {where['area']} directorate"
        if where.get("area")
        else "in this segment's directorate"
    )


def _route_columns(spec: FeatureSpec) -> list[Column]:
    r = spec.section("route")["settlement_radius_km"]
    cols = [
        Column("dist_crossing_km", "route", "crossing", {"kind": "crossing"}),
        Column("dist_corridor_km", "route", "corridor", {"kind": "corridor"}),
        Column("dist_approach_km", "route", "corridor", {"kind": "corridor"}),
        Column("corridor_pull", "route", "corridor", {"kind": "corridor"}),
    ]
    for side, _ in _SIDES:
        g = f"settle_{side}"
        cols += [
            Column(f"dist_settlement_{side}_km", "route", g, {"kind": "settlement", "side": side}),
            Column(f"pop_nearest_{side}", "route", g, {"kind": "population", "side": side}),
            Column(
                f"pop_within_{side}",
                "route",
                g,
                {"kind": "population_within", "side": side, "km": r},
            ),
        ]
    return cols


def _route_describe(c: Column, v: float, where: Where) -> str:
    kind = c.params["kind"]
    if kind == "crossing":
        nm = where.get("crossing_name")
        return f"{float(v):.1f} km from " + (f"crossing point {nm}" if nm else "a crossing point")
    if kind == "corridor":
        d = float(where.get("dist_corridor_km", v))
        nm = where.get("corridor_name")
        return f"{d:.1f} km from " + (f"route {nm}" if nm else "a route corridor")
    side = c.params["side"]
    words = dict(_SIDES)[side]
    nm = where.get(f"settlement_{side}_name") or "a settlement"
    if kind == "population_within":
        return f"{_inhabitants(v)} inhabitants within {c.params['km']:g} km {words}"
    if kind == "population":
        return f"near {nm} {words} ({_inhabitants(v)} inhabitants)"
    return f"near {nm} {words} ({float(where.get(f'dist_settlement_{side}_km', v)):.1f} km)"


def _inhabitants(log1p_pop: float) -> str:
    return f"{np.expm1(np.clip(float(log1p_pop), 0.0, 40.0)):,.0f}"


def _chainage_columns(spec: FeatureSpec) -> list[Column]:
    return [Column("chainage_km", "chainage", "place")]


def _chainage_compute(ctx: Any, blk: Block, cols: list[Column]) -> Iterator[np.ndarray]:
    yield blk.per_segment(ctx.chain)


def _chainage_describe(c: Column, v: float, where: Where) -> str:
    return f"location along the border (km {float(v):.0f})"


PLACE: Family = Family("place", None, _place_columns, _static_compute, _place_describe)
ROUTE: Family = Family("route", "route", _route_columns, _static_compute, _route_describe)
CHAINAGE: Family = Family(
    "chainage", None, _chainage_columns, _chainage_compute, _chainage_describe
)
