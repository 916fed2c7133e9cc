"""Simulated histories: run a :class:`riskmodel.sim.world.World` over a period and write what a
station would have recorded.

Outputs: ``events.csv`` (the documented input schema: the *recorded* crossings),
``effort.csv`` (the deployment), ``truth.parquet`` (per segment and shift: the true intensity
``expected_crossings``, all realised true ``crossings``, the ``recorded`` ones, the expected
recorded events ``expected_recorded`` and ``officer_hours``) and ``scenario.json`` (parameters,
seed, summary).
"""

from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from riskmodel import __version__
from riskmodel.files import atomic_write_bytes, atomic_write_json, atomic_write_with, sha256_file
from riskmodel.geo.geodata import Geography
from riskmodel.sim.world import HOUR_PROFILE, ScenarioParams, World, side_sign


@dataclass
class Scenario:
    """A simulated history with its ground truth.

    Attributes
    ----------
    events : DataFrame
        Recorded incidents (input schema: ``event_id, timestamp, lon, lat, persons, type,
        source``; plus ``segment_id`` and ``window`` for convenience).
    effort : DataFrame
        Patrol log: ``segment_id, start, end, officer_hours``.
    truth : DataFrame
        ``segment_id, window, shift, shift_start, expected_crossings, crossings, recorded,
        expected_recorded, officer_hours``: ``crossings`` are *all* realised true crossing
        groups, ``recorded`` the detected ones (``recorded <= crossings``; the events file holds
        exactly the recorded ones).
    windows : DataFrame
        Shift windows (see :func:`riskmodel.geo.shifts.shift_windows`).
    params : ScenarioParams
    attraction : ndarray
        Static attraction per segment (normalised to mean 1).
    """

    events: pd.DataFrame
    effort: pd.DataFrame
    truth: pd.DataFrame
    windows: pd.DataFrame
    params: ScenarioParams
    attraction: np.ndarray
    summary: dict[str, Any]


def simulate(
    geo: Geography, params: ScenarioParams, shifts: str, tz: str = "Europe/Ljubljana"
) -> Scenario:
    """Simulate a multi-year history on ``geo`` (deterministic for ``params.seed``).

    Parameters
    ----------
    geo : Geography
        Geography with segments.
    params : ScenarioParams
        Scenario parameters (dates default to 3 years ending yesterday).
    shifts : str
        Shift definitions (``name=HH:MM-HH:MM,...``).
    tz : str
        Local time zone.

    Returns
    -------
    Scenario
    """
    t0 = time.perf_counter()
    world = World(geo, params, shifts, tz)
    p = world.params
    seg = geo.segments
    S, K, D = world.n_segments, world.n_shifts, world.n_days
    lam_out = np.zeros((D, K, S), dtype=np.float64)
    prec_out = np.zeros((D, K, S), dtype=np.float64)
    eff_out = np.zeros((D, K, S), dtype=np.float32)
    rec_out = np.zeros((D, K, S), dtype=np.int32)
    grp_out = np.zeros((D, K, S), dtype=np.int32)
    for d in range(D):  # days are sequential: today's flows depend on yesterday's
        st = world.step_day()
        lam_out[d] = st.expected_crossings
        prec_out[d] = st.expected_recorded
        eff_out[d] = st.effort
        rec_out[d] = st.recorded
        grp_out[d] = st.groups

    W = D * K
    lam_flat = lam_out.reshape(W, S)
    prec_flat = prec_out.reshape(W, S)
    eff_flat = eff_out.reshape(W, S)
    rec_flat = rec_out.reshape(W, S)
    grp_flat = grp_out.reshape(W, S)
    # windows are ordered (day, shift-by-start); shift_windows sorts by start: same order for
    # non-overlapping shifts defined in start order within a day.
    win = world.windows.sort_values(["date", "shift_idx"]).reset_index(drop=True)
    win["window"] = np.arange(len(win))

    events = _make_events(geo, rec_flat, win, world.shifts, tz, p, world.rng)
    effort_df = _make_effort(seg, eff_flat, win)
    truth = pd.DataFrame(
        {
            "segment_id": np.tile(seg["segment_id"].to_numpy(), W),
            "window": np.repeat(win["window"].to_numpy(), S).astype(np.int32),
            "shift": np.repeat(win["shift"].to_numpy(), S),
            "shift_start": np.repeat(win["start_utc"].dt.tz_localize(None).to_numpy(), S),
            "expected_crossings": lam_flat.ravel().astype(np.float32),
            "crossings": grp_flat.ravel(),
            "recorded": rec_flat.ravel(),
            "expected_recorded": prec_flat.ravel().astype(np.float32),
            "officer_hours": eff_flat.ravel(),
        }
    )
    truth["shift_start"] = truth["shift_start"].dt.tz_localize("UTC")
    summary = _summary(events, seg, win, lam_flat, time.perf_counter() - t0, tz)
    summary.update(_bias_summary(p, grp_flat, rec_flat, eff_flat))
    return Scenario(events, effort_df, truth, win, p, world.attraction, summary)


def _make_events(
    geo: Geography,
    rec: np.ndarray,
    win: pd.DataFrame,
    sh: tuple,
    tz: str,
    p: ScenarioParams,
    rng: np.random.Generator,
) -> pd.DataFrame:
    seg = geo.segments
    w_idx, s_idx = np.nonzero(rec)
    reps = rec[w_idx, s_idx]
    w_idx = np.repeat(w_idx, reps)
    s_idx = np.repeat(s_idx, reps)
    n = len(w_idx)
    # Time inside the shift, following the hour profile over the shift's local hours.
    start = win["start_utc"].to_numpy(dtype="datetime64[ns]")[w_idx]
    hours = win["hours"].to_numpy()[w_idx]
    k = win["shift_idx"].to_numpy()[w_idx]
    offs = np.empty(n)
    for i, s in enumerate(sh):  # a few shifts
        m = k == i
        nh = int(round((s.end.hour - s.start.hour) % 24 or 24))
        hrs = (np.arange(nh) + s.start.hour) % 24
        pr = HOUR_PROFILE[hrs] / HOUR_PROFILE[hrs].sum()
        offs[m] = rng.choice(nh, size=int(m.sum()), p=pr) + rng.random(int(m.sum()))
    offs = np.minimum(offs, hours - 1e-3)  # DST nights are 7 h long
    ts = start + (offs * 3600e9).astype("timedelta64[ns]")
    # Place: uniform along the segment, then inland (towards Slovenia) by an exponential distance.
    # Interpolate on the short segment lines (fast) rather than on the whole border line.
    g = seg.geometry.values[s_idx]
    seg_len = seg["length_m"].to_numpy()[s_idx]
    along = rng.random(n) * seg_len
    pt = shapely.get_coordinates(shapely.line_interpolate_point(g, along))
    pt2 = shapely.get_coordinates(
        shapely.line_interpolate_point(g, np.minimum(along + 25, seg_len))
    )
    pt1 = shapely.get_coordinates(shapely.line_interpolate_point(g, np.maximum(along - 25, 0)))
    t = pt2 - pt1
    nrm = np.c_[-t[:, 1], t[:, 0]] / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-9)
    side = side_sign(geo)[s_idx]
    inland = np.minimum(rng.exponential(600.0, n), 8000.0) + 30.0
    xy = pt + nrm * (side * inland)[:, None]
    ll = gpd.GeoSeries(shapely.points(xy), crs=geo.crs).to_crs("EPSG:4326")
    persons = np.minimum(1 + rng.negative_binomial(1.2, 1.2 / (1.2 + p.mean_group_size - 1), n), 45)
    u = rng.random(n)
    typ = np.where(
        u < p.smuggler_share,
        "smuggler_arrest",
        np.where(u < p.smuggler_share + p.detection_share, "detection", "apprehension"),
    )
    persons = np.where(typ == "smuggler_arrest", rng.integers(1, 4, n), persons)
    order = np.lexsort((s_idx, ts))
    ts_local = (
        pd.DatetimeIndex(pd.to_datetime(ts[order]).floor("s")).tz_localize("UTC").tz_convert(tz)
    )
    ev = pd.DataFrame(
        {
            "event_id": [f"SIM-{i + 1:06d}" for i in range(n)],
            "timestamp": ts_local,
            "lon": np.round(ll.x.to_numpy()[order], 6),
            "lat": np.round(ll.y.to_numpy()[order], 6),
            "persons": persons[order].astype(int),
            "type": typ[order],
            "source": "simulator",
            "segment_id": seg["segment_id"].to_numpy()[s_idx[order]],
            "window": w_idx[order],
        }
    )
    return ev


def _make_effort(seg: gpd.GeoDataFrame, eff: np.ndarray, win: pd.DataFrame) -> pd.DataFrame:
    w_idx, s_idx = np.nonzero(eff)
    st = win["start_utc"].dt.tz_localize(None).to_numpy()[w_idx]
    en = win["end_utc"].dt.tz_localize(None).to_numpy()[w_idx]
    tz = win["start_local"].dt.tz
    return pd.DataFrame(
        {
            "segment_id": seg["segment_id"].to_numpy()[s_idx],
            "start": pd.DatetimeIndex(st).tz_localize("UTC").tz_convert(tz),
            "end": pd.DatetimeIndex(en).tz_localize("UTC").tz_convert(tz),
            "officer_hours": eff[w_idx, s_idx].astype(float),
        }
    )


def _summary(
    ev: pd.DataFrame,
    seg: gpd.GeoDataFrame,
    win: pd.DataFrame,
    lam: np.ndarray,
    secs: float,
    tz: str,
) -> dict:
    ts = pd.to_datetime(ev["timestamp"]).dt.tz_convert(tz)
    year = ts.dt.year
    per_year = (
        ev.assign(year=year.to_numpy())
        .groupby("year")
        .agg(
            incidents=("event_id", "size"),
            persons=("persons", "sum"),
            smugglers=("type", lambda t: int((t == "smuggler_arrest").sum())),
        )
    )
    area = seg.set_index("segment_id")["area"]
    by_area = ev["persons"].groupby(ev["segment_id"].map(area)).sum()
    hour = ts.dt.hour
    night = ((hour >= 22) | (hour < 6)).mean() if len(ev) else 0.0
    return {
        "incidents": int(len(ev)),
        "persons": int(ev["persons"].sum()),
        "per_year": {int(y): {k: int(v) for k, v in r.items()} for y, r in per_year.iterrows()},
        "share_by_area": {
            str(k): round(float(v / by_area.sum()), 4)
            for k, v in by_area.sort_values(ascending=False).items()
        },
        "share_night_22_06": round(float(night), 4),
        "true_crossings_expected": round(float(lam.sum()), 1),
        "recorded_share": round(float(len(ev) / max(lam.sum(), 1e-9)), 4),
        "segments": int(len(seg)),
        "windows": int(len(win)),
        "runtime_s": round(secs, 2),
    }


def _bias_summary(
    p: ScenarioParams, groups: np.ndarray, rec: np.ndarray, eff: np.ndarray
) -> dict[str, Any]:
    """How far the records are made by the patrols (the patrolled world's calibration)."""
    patrolled = eff > 0
    n_rec = max(int(rec.sum()), 1)
    n_true = max(int(groups.sum()), 1)
    return {
        "world": p.world,
        "true_crossing_groups": int(groups.sum()),
        "recorded_share_of_true": round(float(rec.sum() / n_true), 4),
        "patrolled_cell_share": round(float(patrolled.mean()), 5),
        "records_from_patrolled_share": round(float(rec[patrolled].sum() / n_rec), 4),
        "true_in_patrolled_share": round(float(groups[patrolled].sum() / n_true), 4),
    }


def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n", float_format="%.6g")
    return buf.getvalue().encode("utf-8")


def write_scenario(sc: Scenario, out: str | Path) -> dict[str, Path]:
    """Write ``events.csv``, ``effort.csv``, ``truth.parquet`` and ``scenario.json`` atomically.

    Timestamps are ISO 8601 with the local offset (the documented input schema).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ev = sc.events[["event_id", "timestamp", "lon", "lat", "persons", "type", "source"]].copy()
    ev["timestamp"] = ev["timestamp"].map(lambda t: t.isoformat())
    ef = sc.effort.copy()
    for c in ("start", "end"):
        ef[c] = pd.to_datetime(ef[c]).map(lambda t: t.isoformat())
    paths = {
        "events": atomic_write_bytes(out / "events.csv", _csv_bytes(ev)),
        "effort": atomic_write_bytes(out / "effort.csv", _csv_bytes(ef)),
        "truth": atomic_write_with(
            out / "truth.parquet",
            lambda pth: sc.truth.to_parquet(pth, index=False, compression="zstd"),
        ),
    }
    meta = {
        "params": dataclasses.asdict(sc.params),
        "summary": sc.summary,
        "riskmodel_version": __version__,
        "files": {k: {"name": v.name, "sha256": sha256_file(v)} for k, v in paths.items()},
    }
    paths["scenario"] = atomic_write_json(out / "scenario.json", meta)
    return paths
