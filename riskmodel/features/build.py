"""Declarative, leakage-free feature pipeline: one row per (segment, shift window).

The feature set is declared in a TOML file (``features/default.toml``); this module executes
it. Every history feature of window ``w`` is computed from events in windows ``< w`` only:
events are binned into a (windows x segments) count matrix and all look-backs are differences
of cumulative sums ending at ``w`` (exclusive), so nothing at or after the window's start can
leak in. Neighbourhoods are sparse (segments x segments) matrices. No Python loops over
events, segments or windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import holidays as _holidays
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.signal import lfilter

from riskmodel.errors import ConfigError
from riskmodel.geo.geodata import bundled_dir

# ----------------------------------------------------------------------------- spec


@dataclass
class FeatureSpec:
    """A feature-set definition read from TOML.

    Attributes
    ----------
    data : dict
        The parsed TOML (defaults filled in).
    source : str
        Where it came from.
    """

    data: dict[str, Any]
    source: str = "builtin"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> FeatureSpec:
        """Read a spec (default: the bundled ``features/default.toml``)."""
        p = Path(path) if path else bundled_dir("features") / "default.toml"
        if not p.is_file():
            raise ConfigError(f"feature spec not found: {p}", fix="check the feature_spec setting")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"invalid feature spec: {exc}", where=str(p), fix="fix the TOML syntax"
            ) from None
        return cls(_with_defaults(data, str(p)), str(p))

    @property
    def sha256(self) -> str:
        """Hash of the canonical spec (what the model bundle records)."""
        return hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()

    def section(self, name: str) -> dict[str, Any]:
        """One section (``history``, ``route``, ``time``, ``effort``)."""
        return self.data.get(name, {})

    def enabled(self, name: str) -> bool:
        """Whether a feature group is on."""
        return bool(self.section(name).get("enabled", False))


_DEFAULT_SPEC: dict[str, Any] = {
    "history": {
        "enabled": True,
        "windows_days": [1, 7, 28, 91, 365],
        "along_km": [1, 3, 10],
        "radius_km": 5,
        "persons_windows_days": [28, 365],
        "decay_days": [3, 14, 60],
        "near_repeat_km": 3,
        "near_repeat_hours": 72,
        "shift_profile_days": 365,
        "trend_days": [28, 365],
        "area_windows_days": [7, 28],
        "max_days_since": 730,
        "longrun_sigma_km": [1.0, 3.0],
    },
    "route": {"enabled": True, "settlement_radius_km": 10},
    "time": {"enabled": True, "holidays": ["SI", "HR"], "darkness": True},
    "effort": {"enabled": True, "windows_days": [7, 28], "along_km": 3},
}


def _with_defaults(data: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": data.get("name", "custom"), "version": data.get("version", 1)}
    for sec, defaults in _DEFAULT_SPEC.items():
        given = data.get(sec, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[{sec}] must be a table", where=where)
        unknown = set(given) - set(defaults)
        if unknown:
            raise ConfigError(
                f"unknown key(s) in [{sec}]: {', '.join(sorted(unknown))}",
                where=where,
                fix=f"use: {', '.join(sorted(defaults))}",
            )
        merged = dict(defaults)
        merged.update(given)
        out[sec] = merged
    unknown_sec = set(data) - set(_DEFAULT_SPEC) - {"name", "version"}
    if unknown_sec:
        raise ConfigError(
            f"unknown section(s): {', '.join(sorted(unknown_sec))}",
            where=where,
            fix=f"sections are {', '.join(_DEFAULT_SPEC)}",
        )
    return out


# ----------------------------------------------------------------------------- panel


def assign_segments(
    events: pd.DataFrame, segments: gpd.GeoDataFrame, max_distance_m: float = 20_000.0
) -> pd.DataFrame:
    """Attach the nearest segment (``seq``, ``segment_id``), the border chainage
    (``chainage_km``) and ``dist_to_border_m`` to events given by metric ``x``/``y``.

    Events farther than ``max_distance_m`` get ``seq = -1``.
    """
    pts = shapely.points(events["x"].to_numpy(float), events["y"].to_numpy(float))
    tree = shapely.STRtree(segments.geometry.values)
    idx = np.full(len(events), -1)
    dist = np.full(len(events), np.inf)
    if len(events):
        (ei, si), d = tree.query_nearest(pts, return_distance=True, all_matches=False)
        idx[ei] = si
        dist[ei] = d
    ok = (idx >= 0) & (dist <= max_distance_m)
    seqs = segments["seq"].to_numpy()
    out = events.copy()
    out["seq"] = np.where(ok, seqs[np.clip(idx, 0, None)], -1)
    out["segment_id"] = np.where(ok, segments["segment_id"].to_numpy()[np.clip(idx, 0, None)], "")
    along = np.zeros(len(events))
    if ok.any():
        g = segments.geometry.values[idx[ok]]
        along[ok] = shapely.line_locate_point(g, pts[ok])
    out["chainage_km"] = np.where(
        ok, segments["chainage_from_km"].to_numpy()[np.clip(idx, 0, None)] + along / 1000, np.nan
    )
    out["dist_to_border_m"] = dist
    return out


@dataclass
class Panel:
    """Events, effort and windows binned into (windows x segments) matrices.

    Attributes
    ----------
    windows : DataFrame
        Shift windows (``window`` = row index), from :func:`riskmodel.geo.shifts.shift_windows`.
    segments : GeoDataFrame
        Segments ordered by ``seq``.
    counts, persons, effort : ndarray (W, S)
        Recorded events, persons, officer-hours per window and segment.
    n_shifts : int
        Windows per day.
    """

    windows: pd.DataFrame
    segments: gpd.GeoDataFrame
    counts: np.ndarray
    persons: np.ndarray
    effort: np.ndarray
    n_shifts: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        windows: pd.DataFrame,
        segments: gpd.GeoDataFrame,
        events: pd.DataFrame,
        effort: pd.DataFrame | None = None,
    ) -> Panel:
        """Bin events (with ``seq``, ``timestamp`` UTC, ``persons``) and effort (``seq``,
        ``start``, ``end``, ``officer_hours``) into the windows.

        Effort spanning several windows is split in proportion to the overlap.
        """
        W, S = len(windows), len(segments)
        starts = windows["start_utc"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        ends = windows["end_utc"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        counts = np.zeros((W, S), np.float32)
        persons = np.zeros((W, S), np.float32)
        ev = events[events["seq"] >= 0]
        if len(ev):
            t = ev["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            w = np.searchsorted(starts, t, side="right") - 1
            ok = (w >= 0) & (t < ends[np.clip(w, 0, W - 1)])
            s = ev["seq"].to_numpy()[ok]
            np.add.at(counts, (w[ok], s), 1.0)
            pers = ev["persons"].to_numpy(float)[ok] if "persons" in ev else np.ones(ok.sum())
            np.add.at(persons, (w[ok], s), pers)
        eff = np.zeros((W, S), np.float32)
        if effort is not None and len(effort):
            ef = effort[effort["seq"] >= 0]
            a = ef["start"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            b = ef["end"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            w0 = np.clip(np.searchsorted(starts, a, side="right") - 1, 0, W - 1)
            w1 = np.clip(np.searchsorted(starts, b, side="left") - 1, 0, W - 1)
            n = np.maximum(w1 - w0 + 1, 1)
            rep = np.repeat(np.arange(len(ef)), n)
            ww = np.repeat(w0, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
            ov_start = np.maximum(a[rep], starts[ww])
            ov_end = np.minimum(b[rep], ends[ww])
            ov = np.clip((ov_end - ov_start) / np.timedelta64(1, "s"), 0, None)
            dur = np.maximum((b - a) / np.timedelta64(1, "s"), 1.0)[rep]
            hrs = ef["officer_hours"].to_numpy(float)[rep] * ov / dur
            np.add.at(eff, (ww, ef["seq"].to_numpy()[rep]), hrs.astype(np.float32))
        n_shifts = int(windows["shift_idx"].max()) + 1 if W else 1
        return cls(windows.reset_index(drop=True), segments, counts, persons, eff, n_shifts)


# ----------------------------------------------------------------------------- helpers


def _lookback(cum: np.ndarray, targets: np.ndarray, n: int) -> np.ndarray:
    """Sum of rows ``[w - n, w)`` for each target ``w`` from a cumulative matrix with a
    leading zero row (``cum[w]`` = sum of rows ``< w``)."""
    lo = np.clip(targets - n, 0, None)
    return cum[targets] - cum[lo]


def _cum(m: np.ndarray) -> np.ndarray:
    out = np.zeros((m.shape[0] + 1, m.shape[1]), np.float64)
    np.cumsum(m, axis=0, out=out[1:])
    return out


def _band(chain_km: np.ndarray, km: float) -> sparse.csr_matrix:
    """Sparse 0/1 matrix: segments whose midpoints are within +-km along the border."""
    order = np.argsort(chain_km)
    c = chain_km[order]
    lo = np.searchsorted(c, c - km - 1e-9, side="left")
    hi = np.searchsorted(c, c + km + 1e-9, side="right")
    n = hi - lo
    rows = np.repeat(np.arange(len(c)), n)
    cols = np.repeat(lo, n) + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    m = sparse.csr_matrix(
        (np.ones(len(rows), np.float32), (order[rows], order[cols])), shape=(len(c), len(c))
    )
    return m


def _gauss(chain_km: np.ndarray, sigma_km: float) -> sparse.csr_matrix:
    """Sparse Gaussian kernel along the border (cut at 3 sigma), rows sum to ~1."""
    band = _band(chain_km, 3 * sigma_km).tocoo()
    d = chain_km[band.row] - chain_km[band.col]
    w = np.exp(-0.5 * (d / sigma_km) ** 2)
    m = sparse.csr_matrix((w, (band.row, band.col)), shape=band.shape)
    return sparse.diags(1.0 / np.asarray(m.sum(axis=1)).ravel()) @ m


def _radius(x: np.ndarray, y: np.ndarray, km: float) -> sparse.csr_matrix:
    pts = shapely.points(x, y)
    tree = shapely.STRtree(pts)
    a, b = tree.query(pts, predicate="dwithin", distance=km * 1000.0)
    return sparse.csr_matrix((np.ones(len(a), np.float32), (a, b)), shape=(len(x), len(x)))


def _days_since(counts: np.ndarray, targets: np.ndarray, per_day: int, cap: float) -> np.ndarray:
    W, S = counts.shape
    idx = np.where(counts > 0, np.arange(W)[:, None], -1)
    last = np.maximum.accumulate(idx, axis=0)  # last window <= w with an event
    prev = np.vstack([np.full((1, S), -1), last])[targets]  # last window < w
    d = (targets[:, None] - prev) / per_day
    return np.where(prev < 0, cap, np.minimum(d, cap)).astype(np.float32)


def _solar_elevation(ts_utc: np.ndarray, lat: float, lon: float) -> np.ndarray:
    """Solar elevation (deg), NOAA approximation, vectorised over UTC datetimes64."""
    t = ts_utc.astype("datetime64[s]").astype(np.int64) / 86400.0 + 2440587.5  # Julian day
    n = t - 2451545.0
    L = np.deg2rad((280.460 + 0.9856474 * n) % 360)
    g = np.deg2rad((357.528 + 0.9856003 * n) % 360)
    lam = L + np.deg2rad(1.915) * np.sin(g) + np.deg2rad(0.020) * np.sin(2 * g)
    eps = np.deg2rad(23.439 - 0.0000004 * n)
    dec = np.arcsin(np.sin(eps) * np.sin(lam))
    ra = np.arctan2(np.cos(eps) * np.sin(lam), np.cos(lam))
    gmst = (18.697374558 + 24.06570982441908 * n) % 24
    ha = np.deg2rad(gmst * 15 + lon) - ra
    phi = np.deg2rad(lat)
    el = np.arcsin(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(ha))
    return np.rad2deg(el)


# ----------------------------------------------------------------------------- static


def static_features(geo: Any, spec: FeatureSpec) -> pd.DataFrame:
    """Route/environment features per segment (ordered by ``seq``), plus names used in reasons.

    Parameters
    ----------
    geo : Geography
        Border layers in a metric CRS.
    spec : FeatureSpec
    """
    seg = geo.segments
    S = len(seg)
    x, y = seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy()
    pts = shapely.points(x, y)
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
        r_km = float(spec.section("route")["settlement_radius_km"])
        cx = geo.crossings
        if len(cx):
            tree = shapely.STRtree(cx.geometry.values)
            i, d = tree.query_nearest(pts, return_distance=True, all_matches=False)
            dist = np.full(S, np.nan)
            dist[i[0]] = d
            near = np.full(S, "", dtype=object)
            nm = (
                cx["name"].astype(str).to_numpy()
                if "name" in cx
                else np.array(["crossing"] * len(cx))
            )
            near[i[0]] = nm[i[1]]
            out["dist_crossing_km"] = (dist / 1000).astype(np.float32)
            names["crossing_name"] = near
        else:
            out["dist_crossing_km"] = np.full(S, 50.0, np.float32)
            names["crossing_name"] = np.full(S, "", dtype=object)
        co = geo.corridors
        if len(co):
            d = np.stack(
                [shapely.distance(pts, g) for g in co.geometry.values], axis=1
            )  # few corridors
            w = co["weight"].to_numpy(float) if "weight" in co else np.ones(len(co))
            kind = (
                co["kind"].astype(str).to_numpy() if "kind" in co else np.array(["road"] * len(co))
            )
            appr = kind == "approach_route"
            out["dist_corridor_km"] = (d.min(axis=1) / 1000).astype(np.float32)
            out["dist_approach_km"] = (
                (d[:, appr].min(axis=1) if appr.any() else np.full(S, 1e5)) / 1000
            ).astype(np.float32)
            out["corridor_pull"] = (w[None, :] * np.exp(-d / 5000.0)).sum(axis=1).astype(np.float32)
            cn = (
                co["name"].astype(str).to_numpy()
                if "name" in co
                else np.array(["corridor"] * len(co))
            )
            names["corridor_name"] = cn[d.argmin(axis=1)]
        else:
            for c in ("dist_corridor_km", "dist_approach_km"):
                out[c] = np.full(S, 100.0, np.float32)
            out["corridor_pull"] = np.zeros(S, np.float32)
            names["corridor_name"] = np.full(S, "", dtype=object)
        st = geo.settlements
        for side, mask_fn in (("far", lambda c: c != "SI"), ("si", lambda c: c == "SI")):
            if len(st) and "country" in st:
                m = mask_fn(st["country"].astype(str).to_numpy())
            else:
                m = np.zeros(len(st), bool)
            if m.any():
                sx, sy = st.geometry.x.to_numpy()[m], st.geometry.y.to_numpy()[m]
                pop = (
                    st["population"].to_numpy(float)[m] if "population" in st else np.ones(m.sum())
                )
                d = np.hypot(x[:, None] - sx[None, :], y[:, None] - sy[None, :])  # S x settlements
                j = d.argmin(axis=1)
                out[f"dist_settlement_{side}_km"] = (d[np.arange(S), j] / 1000).astype(np.float32)
                out[f"pop_nearest_{side}"] = np.log1p(pop[j]).astype(np.float32)
                out[f"pop_within_{side}"] = np.log1p(
                    (pop[None, :] * (d <= r_km * 1000)).sum(axis=1)
                ).astype(np.float32)
                nm = (
                    st["name"].astype(str).to_numpy()[m]
                    if "name" in st
                    else np.array([""] * m.sum())
                )
                names[f"settlement_{side}_name"] = nm[j]
            else:
                out[f"dist_settlement_{side}_km"] = np.full(S, 50.0, np.float32)
                out[f"pop_nearest_{side}"] = np.zeros(S, np.float32)
                out[f"pop_within_{side}"] = np.zeros(S, np.float32)
                names[f"settlement_{side}_name"] = np.full(S, "", dtype=object)
    df = pd.DataFrame(out)
    df.attrs["names"] = names
    return df


# ----------------------------------------------------------------------------- build


def build_features(
    panel: Panel,
    static: pd.DataFrame,
    spec: FeatureSpec,
    targets: np.ndarray | None = None,
    *,
    effort_override: np.ndarray | None = None,
) -> pd.DataFrame:
    """Feature matrix for target windows x all segments (rows ordered window-major).

    Parameters
    ----------
    panel : Panel
    static : DataFrame
        From :func:`static_features` (one row per segment).
    spec : FeatureSpec
    targets : ndarray of int, optional
        Window indices to build (default all).
    effort_override : ndarray (len(targets), S), optional
        Officer-hours to use as the in-window exposure (e.g. a planned effort, or zeros for
        effort-neutral risk); the history of effort is never overridden.

    Returns
    -------
    DataFrame
        ``float32`` features plus ``window`` and ``seq`` index columns (first two).
    """
    W, S = panel.counts.shape
    tg = np.arange(W) if targets is None else np.asarray(targets, dtype=int)
    T = len(tg)
    K = panel.n_shifts
    seg = panel.segments
    chain = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy()
    cols: dict[str, np.ndarray] = {
        "window": np.repeat(tg, S).astype(np.int32),
        "seq": np.tile(np.arange(S), T).astype(np.int32),
    }

    def put(name: str, arr: np.ndarray) -> None:
        cols[name] = np.asarray(arr, dtype=np.float32).reshape(-1)

    C = panel.counts
    win = panel.windows.iloc[tg]
    h = spec.section("history")
    if spec.enabled("history"):
        cumC = _cum(C)
        bands = {km: _band(chain, km) for km in {*h["along_km"], 3, h["near_repeat_km"]}}
        rad = _radius(seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy(), float(h["radius_km"]))
        for days in h["windows_days"]:
            own = _lookback(cumC, tg, int(days * K))
            put(f"n_{days}d", own)
            for km in h["along_km"]:
                put(f"n_{days}d_pm{km:g}km", (bands[km] @ own.T).T)
            put(f"n_{days}d_r{h['radius_km']:g}km", (rad @ own.T).T)
        cumP = _cum(panel.persons)
        for days in h["persons_windows_days"]:
            put(f"persons_{days}d", _lookback(cumP, tg, int(days * K)))
        for tau in h["decay_days"]:
            a = np.exp(-1.0 / (tau * K))
            # y[w] = a*y[w-1] + C[w-1]: strictly past events, decayed per window.
            dec = lfilter([0.0, 1.0], [1.0, -a], C, axis=0)[tg]
            put(f"decay_{tau}d", dec)
            put(f"decay_{tau}d_pm3km", (bands[3] @ dec.T).T)
        cap = float(h["max_days_since"])
        put("days_since", _days_since(C, tg, K, cap))
        nb3 = (bands[3] @ C.T).T
        put("days_since_pm3km", _days_since(nb3, tg, K, cap))
        nr_windows = max(1, int(round(h["near_repeat_hours"] / 24 * K)))
        nb_nr = (bands[h["near_repeat_km"]] @ _lookback(cumC, tg, nr_windows).T).T
        put("near_repeat", nb_nr)
        # The segment's own share of events in this shift (smoothed towards 1/K).
        n_prof = int(h["shift_profile_days"] * K)
        k_of = panel.windows["shift_idx"].to_numpy()
        own_cnt = (bands[3] @ _lookback(cumC, tg, n_prof).T).T
        same = np.zeros((T, S))
        for k in range(K):  # a handful of shifts
            cumk = _cum(C * (k_of == k)[:, None])
            m = win["shift_idx"].to_numpy() == k
            same[m] = (bands[3] @ _lookback(cumk, tg[m], n_prof).T).T
        put("shift_share", (same + 1.0 / K) / (own_cnt + 1.0))
        a_d, b_d = h["trend_days"]
        short = (bands[3] @ _lookback(cumC, tg, int(a_d * K)).T).T / a_d
        long_ = (bands[3] @ _lookback(cumC, tg, int(b_d * K)).T).T / b_d
        put("trend", (short + 0.01) / (long_ + 0.01))
        area_codes = static["area_code"].to_numpy().astype(int)
        A = sparse.csr_matrix(
            (np.ones(S), (np.arange(S), area_codes)), shape=(S, area_codes.max() + 1)
        )
        for days in h["area_windows_days"]:
            lb = _lookback(cumC, tg, int(days * K))
            put(f"area_n_{days}d", (lb @ A @ A.T))
            put(f"border_n_{days}d", np.repeat(lb.sum(axis=1, keepdims=True), S, axis=1))
        first_w = int(np.argmax(C.sum(axis=1) > 0)) if C.sum() > 0 else 0
        hist_days = np.clip((tg - first_w) / K, 0, None)
        put("history_days", np.repeat(hist_days[:, None], S, axis=1))
        # Long-run rate over the whole history, Gaussian-smoothed along the border (the
        # background rate of a self-exciting model): events per day.
        for sig in h["longrun_sigma_km"]:
            g = _gauss(chain, float(sig))
            put(f"longrun_{sig:g}km", (g @ cumC[tg].T).T / np.maximum(hist_days, 28.0)[:, None])
    if spec.enabled("effort"):
        e = spec.section("effort")
        now = panel.effort[tg] if effort_override is None else effort_override
        put("effort_window", now)
        cumE = _cum(panel.effort)
        bandE = _band(chain, float(e["along_km"]))
        for days in e["windows_days"]:
            own = _lookback(cumE, tg, int(days * K))
            put(f"effort_{days}d", own)
            put(f"effort_{days}d_pm{e['along_km']:g}km", (bandE @ own.T).T)
    if spec.enabled("time"):
        t = spec.section("time")
        local = win["start_local"]
        date = win["date"]
        put("shift_idx", np.repeat(win["shift_idx"].to_numpy()[:, None], S, axis=1))
        hours = win["hours"].to_numpy()
        put("shift_hours", np.repeat(hours[:, None], S, axis=1))
        mid_local = (local.dt.hour + local.dt.minute / 60 + hours / 2) % 24
        put("local_hour", np.repeat(mid_local.to_numpy()[:, None], S, axis=1))
        put("weekday", np.repeat(date.dt.day_of_week.to_numpy()[:, None], S, axis=1))
        doy = date.dt.day_of_year.to_numpy()
        for nm, v in (
            ("doy_sin", np.sin(2 * np.pi * doy / 365.25)),
            ("doy_cos", np.cos(2 * np.pi * doy / 365.25)),
        ):
            put(nm, np.repeat(v[:, None], S, axis=1))
        m = date.dt.month.to_numpy()
        put("month_sin", np.repeat(np.sin(2 * np.pi * m / 12)[:, None], S, axis=1))
        put("month_cos", np.repeat(np.cos(2 * np.pi * m / 12)[:, None], S, axis=1))
        years = (
            range(int(date.dt.year.min()) - 1, int(date.dt.year.max()) + 2)
            if T
            else range(2000, 2001)
        )
        for cc in t["holidays"]:
            cal = _holidays.country_holidays(cc, years=years)
            flag = np.array([d in cal for d in date.dt.date])
            put(f"holiday_{cc.lower()}", np.repeat(flag[:, None], S, axis=1))
        if t["darkness"]:
            lat = float(seg["rep_lat"].mean())
            lon = float(seg["rep_lon"].mean())
            st = win["start_utc"].dt.tz_localize(None).to_numpy()
            en = win["end_utc"].dt.tz_localize(None).to_numpy()
            frac = (np.arange(16) + 0.5) / 16
            samples = st[:, None] + ((en - st)[:, None] * frac[None, :]).astype("timedelta64[ns]")
            el = _solar_elevation(samples, lat, lon)
            put("darkness", np.repeat((el < -6).mean(axis=1)[:, None], S, axis=1))
    for c in static.columns:
        put(c, np.tile(static[c].to_numpy(np.float32), T))
    put("chainage_km", np.tile(chain, T))
    return pd.DataFrame(cols)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Model input columns of a feature frame (everything but the index columns)."""
    return [c for c in frame.columns if c not in ("window", "seq")]
