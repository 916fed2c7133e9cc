"""Bounded-memory and distributed feature building.

:func:`riskmodel.features.build.build_features` materialises every (window, segment) row at once:
fine for the demo (~2 M rows, ~0.6 GB), too much for 250 m segments x 4-hour bands x 5 years
(~29 M rows x 73 features x 4 B ~ 8.5 GB). This module builds the same features block by block:

* :class:`FeatureContext` precomputes, once per panel, everything a feature of window ``w``
  looks back at (cumulative sums, decayed counts, last-event indices, per-window calendar
  values). A block of target windows x a block of segments is then a handful of row look-ups
  and sparse neighbourhood products; neighbourhood features read the full history matrices, so
  a segment block needs no halo logic. Every value is **bit-identical** to ``build_features``
  (asserted in ``tests/test_dask.py``; :meth:`FeatureContext.verify` re-checks one window
  against ``build_features`` at run time, so a change of the feature code that this module has
  not followed fails loudly instead of silently training on different features).
* :class:`DaskFeatures` computes the blocks as tasks on a Dask cluster.

Training on these blocks (the sample of kept rows, the chunked and Dask engines) is in
:mod:`riskmodel.model.sample` and :mod:`riskmodel.model.engine`.

Dask is imported only inside the functions that need it (``riskmodel train`` without
``--scheduler`` never imports it). Install it with ``pip install 'riskmodel[dask]'``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import holidays as _holidays
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.signal import lfilter

from riskmodel.errors import ConfigError
from riskmodel.features.build import (
    FeatureSpec,
    Panel,
    _band,
    _cum,
    _gauss,
    _radius,
    _solar_elevation,
    build_features,
)
from riskmodel.model.estimator import EXPOSURE_FEATURE

log = logging.getLogger("riskmodel")

DEFAULT_BLOCK_ROWS = 1_000_000  # target rows (windows x segments) per block


# ----------------------------------------------------------------------------- context


def _T(a: np.ndarray) -> np.ndarray:
    """C-contiguous transpose (segment-major layout)."""
    return np.ascontiguousarray(a.T)


def _put_window_major(dest_t: np.ndarray, part: np.ndarray, T: int, r0: int) -> None:
    """Write a segment-major block ``part`` (R*T, F) into ``dest_t`` (F, T*S), window-major,
    at segment offset ``r0``."""
    F = dest_t.shape[0]
    R = len(part) // max(T, 1)
    dest_t.reshape(F, T, -1)[:, :, r0 : r0 + R] = part.T.reshape(F, R, T).transpose(0, 2, 1)


def _last_event_index_T(m: np.ndarray) -> np.ndarray:
    """(S, W + 1) int32: index of the last window ``< w`` with ``m > 0`` (``-1`` if none), as
    in :func:`riskmodel.features.build._days_since`; ``m`` is (W, S)."""
    W, S = m.shape
    idx = np.where(m.T > 0, np.arange(W, dtype=np.int32)[None, :], np.int32(-1))
    np.maximum.accumulate(idx, axis=1, out=idx)
    return np.hstack([np.full((S, 1), -1, np.int32), idx])


class FeatureContext:
    """History state of one panel from which any block of feature rows is cheap to build.

    Everything is stored segment-major (segments x windows, C order), so a block is computed
    without transposes: a neighbourhood product ``band @ lookback`` reads and writes
    contiguous rows. Block rows are therefore ordered segment-major (``seq`` then ``window``);
    :meth:`frame` reorders to the window-major order of ``build_features``.

    Parameters
    ----------
    panel : Panel
    static : DataFrame
        From :func:`riskmodel.features.build.static_features`.
    spec : FeatureSpec

    Notes
    -----
    Memory: about 8 B x (3 cumulative sums + one per decay time + one for the shift
    profiles) + 4 B x 3 per (window, segment) cell, plus the panel: ~1.9 GB for 2,600 segments
    x 10,956 windows, ~2.4 GB for 12,000 x 3,288.
    """

    def __init__(self, panel: Panel, static: pd.DataFrame, spec: FeatureSpec) -> None:
        t0 = time.perf_counter()
        self.panel = panel
        self.static = static
        self.spec = spec
        C = panel.counts
        W, S = C.shape
        self.W, self.S, self.K = W, S, panel.n_shifts
        K = self.K
        seg = panel.segments
        self.chain = ((seg["chainage_from_km"] + seg["chainage_to_km"]) / 2).to_numpy()
        self.shift_of = panel.windows["shift_idx"].to_numpy()
        self.static_cols = {c: static[c].to_numpy(np.float32) for c in static.columns}
        h = spec.section("history")
        self.h = h
        if spec.enabled("history"):
            # Same helpers as build_features, transposed afterwards: identical values.
            self.cumC = _T(_cum(C))
            kms = {*h["along_km"], 3, h["near_repeat_km"]}
            self.bands = {km: _band(self.chain, km) for km in kms}
            self.rad = _radius(
                seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy(), float(h["radius_km"])
            )
            self.cumP = _T(_cum(panel.persons))
            self.decay = {}
            for tau in h["decay_days"]:
                a = np.exp(-1.0 / (tau * K))
                self.decay[tau] = _T(lfilter([0.0, 1.0], [1.0, -a], C, axis=0))
            self.prev_own = _last_event_index_T(C)
            self.prev_nb3 = _last_event_index_T((self.bands[3] @ C.T).T)
            # Per-shift cumulative counts over that shift's windows only: adding the zero rows
            # of the other shifts (as build_features does) leaves every partial sum unchanged.
            self.rows_k = [np.flatnonzero(self.shift_of == k) for k in range(K)]
            self.cum_k = [_T(_cum(C[r])) for r in self.rows_k]
            codes = static["area_code"].to_numpy().astype(int)
            A = sparse.csr_matrix((np.ones(S), (np.arange(S), codes)), shape=(S, codes.max() + 1))
            # lb @ A @ A.T is evaluated by scipy as (A @ (A.T @ lb.T)).T: keep both formats.
            self.A_t = A.transpose()
            self.A_tt = self.A_t.transpose()
            self.first_w = int(np.argmax(C.sum(axis=1) > 0)) if C.sum() > 0 else 0
            self.gauss = {
                sig: _gauss(self.chain, float(sig)) for sig in h.get("longrun_sigma_km", ())
            }
        if spec.enabled("effort"):
            e = spec.section("effort")
            self.effort_T = _T(panel.effort)
            self.cumE = _T(_cum(panel.effort))
            self.bandE = _band(self.chain, float(e["along_km"]))
        self.time_cols = self._time_columns() if spec.enabled("time") else {}
        self.columns = self._column_names()
        self.seconds = time.perf_counter() - t0

    @property
    def nbytes(self) -> int:
        """Memory held by the precomputed arrays (not counting the panel)."""
        n = 0
        for v in self.__dict__.values():
            if isinstance(v, np.ndarray):
                n += v.nbytes
            elif isinstance(v, dict | list):
                vals = v.values() if isinstance(v, dict) else v
                n += sum(a.nbytes for a in vals if isinstance(a, np.ndarray))
        return n

    # -- per-window calendar values (computed for all windows once) ------------------------
    def _time_columns(self) -> dict[str, np.ndarray]:
        t = self.spec.section("time")
        win = self.panel.windows
        out: dict[str, np.ndarray] = {}
        local = win["start_local"]
        date = win["date"]
        out["shift_idx"] = win["shift_idx"].to_numpy()
        hours = win["hours"].to_numpy()
        out["shift_hours"] = hours
        out["local_hour"] = ((local.dt.hour + local.dt.minute / 60 + hours / 2) % 24).to_numpy()
        out["weekday"] = date.dt.day_of_week.to_numpy()
        doy = date.dt.day_of_year.to_numpy()
        out["doy_sin"] = np.sin(2 * np.pi * doy / 365.25)
        out["doy_cos"] = np.cos(2 * np.pi * doy / 365.25)
        m = date.dt.month.to_numpy()
        out["month_sin"] = np.sin(2 * np.pi * m / 12)
        out["month_cos"] = np.cos(2 * np.pi * m / 12)
        years = (
            range(int(date.dt.year.min()) - 1, int(date.dt.year.max()) + 2)
            if len(win)
            else range(2000, 2001)
        )
        for cc in t["holidays"]:
            cal = _holidays.country_holidays(cc, years=years)
            out[f"holiday_{cc.lower()}"] = np.array([d in cal for d in date.dt.date])
        if t["darkness"]:
            seg = self.panel.segments
            lat = float(seg["rep_lat"].mean())
            lon = float(seg["rep_lon"].mean())
            st = win["start_utc"].dt.tz_localize(None).to_numpy()
            en = win["end_utc"].dt.tz_localize(None).to_numpy()
            frac = (np.arange(16) + 0.5) / 16
            samples = st[:, None] + ((en - st)[:, None] * frac[None, :]).astype("timedelta64[ns]")
            out["darkness"] = (_solar_elevation(samples, lat, lon) < -6).mean(axis=1)
        return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}

    def _column_names(self) -> list[str]:
        # Same order as build_features (checked by verify()).
        spec, h = self.spec, self.h
        cols: list[str] = []
        if spec.enabled("history"):
            for days in h["windows_days"]:
                cols.append(f"n_{days}d")
                cols += [f"n_{days}d_pm{km:g}km" for km in h["along_km"]]
                cols.append(f"n_{days}d_r{h['radius_km']:g}km")
            cols += [f"persons_{d}d" for d in h["persons_windows_days"]]
            for tau in h["decay_days"]:
                cols += [f"decay_{tau}d", f"decay_{tau}d_pm3km"]
            cols += ["days_since", "days_since_pm3km", "near_repeat", "shift_share", "trend"]
            for days in h["area_windows_days"]:
                cols += [f"area_n_{days}d", f"border_n_{days}d"]
            cols.append("history_days")
            cols += [f"longrun_{sig:g}km" for sig in h.get("longrun_sigma_km", ())]
        if spec.enabled("effort"):
            e = spec.section("effort")
            cols.append(EXPOSURE_FEATURE)
            for days in e["windows_days"]:
                cols += [f"effort_{days}d", f"effort_{days}d_pm{e['along_km']:g}km"]
        cols += list(self.time_cols)
        cols += list(self.static_cols)
        cols.append("chainage_km")
        return cols

    # -- one block -------------------------------------------------------------------------
    def iter_block(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None = None,
        *,
        effort_now: np.ndarray | None = None,
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, values)`` per feature for ``segs x targets``: (R, T) arrays,
        segment-major (cast to float32 they equal ``build_features``, transposed).

        ``effort_now`` is a (T, S) in-window officer-hours override.
        """
        tg = np.asarray(targets, dtype=int)
        T = len(tg)
        K = self.K
        rows = np.arange(self.S) if segs is None else np.asarray(segs, dtype=int)
        R = len(rows)
        full = segs is None
        spec, h = self.spec, self.h

        def lookback(cum_t: np.ndarray, n: int) -> np.ndarray:  # (S, T) = _lookback(...).T
            return cum_t[:, tg] - cum_t[:, np.clip(tg - n, 0, None)]

        def nb(m: sparse.csr_matrix, arr_t: np.ndarray) -> np.ndarray:
            # Row-slicing a CSR matrix keeps each row's entries in order: same sums as the
            # full product, for the block's segments only.
            return (m if full else m[rows]) @ arr_t

        def sel(arr_t: np.ndarray) -> np.ndarray:
            return arr_t if full else arr_t[rows]

        def rep(v: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.asarray(v)[None, :], (R, T))

        if spec.enabled("history"):
            cumC = self.cumC
            for days in h["windows_days"]:
                own = lookback(cumC, int(days * K))
                yield f"n_{days}d", sel(own)
                for km in h["along_km"]:
                    yield f"n_{days}d_pm{km:g}km", nb(self.bands[km], own)
                yield f"n_{days}d_r{h['radius_km']:g}km", nb(self.rad, own)
            for days in h["persons_windows_days"]:
                yield f"persons_{days}d", sel(lookback(self.cumP, int(days * K)))
            for tau in h["decay_days"]:
                dec = self.decay[tau][:, tg]
                yield f"decay_{tau}d", sel(dec)
                yield f"decay_{tau}d_pm3km", nb(self.bands[3], dec)
            cap = float(h["max_days_since"])
            for name, prev_all in (
                ("days_since", self.prev_own),
                ("days_since_pm3km", self.prev_nb3),
            ):
                prev = prev_all[rows][:, tg] if not full else prev_all[:, tg]
                d = (tg[None, :] - prev) / K
                yield name, np.where(prev < 0, cap, np.minimum(d, cap)).astype(np.float32)
            nr_windows = max(1, int(round(h["near_repeat_hours"] / 24 * K)))
            yield "near_repeat", nb(self.bands[h["near_repeat_km"]], lookback(cumC, nr_windows))
            n_prof = int(h["shift_profile_days"] * K)
            own_cnt = nb(self.bands[3], lookback(cumC, n_prof))
            same = np.zeros((R, T))
            k_tg = self.shift_of[tg]
            for k in range(K):
                m = k_tg == k
                if not m.any():
                    continue
                rk = self.rows_k[k]
                hi = np.searchsorted(rk, tg[m])
                lo = np.searchsorted(rk, np.clip(tg[m] - n_prof, 0, None))
                ck = self.cum_k[k]
                same[:, m] = nb(self.bands[3], ck[:, hi] - ck[:, lo])
            yield "shift_share", (same + 1.0 / K) / (own_cnt + 1.0)
            a_d, b_d = h["trend_days"]
            short = nb(self.bands[3], lookback(cumC, int(a_d * K))) / a_d
            long_ = nb(self.bands[3], lookback(cumC, int(b_d * K))) / b_d
            yield "trend", (short + 0.01) / (long_ + 0.01)
            for days in h["area_windows_days"]:
                lb = lookback(cumC, int(days * K))
                yield f"area_n_{days}d", sel(self.A_tt @ (self.A_t @ lb))
                # integer-valued counts: the sum is exact in any order
                yield f"border_n_{days}d", rep(lb.sum(axis=0))
            hist_days = np.clip((tg - self.first_w) / K, 0, None)
            yield "history_days", rep(hist_days)
            for sig in h.get("longrun_sigma_km", ()):
                yield (
                    f"longrun_{sig:g}km",
                    nb(self.gauss[sig], cumC[:, tg]) / np.maximum(hist_days, 28.0)[None, :],
                )
        if spec.enabled("effort"):
            e = spec.section("effort")
            now = self.effort_T[:, tg] if effort_now is None else np.asarray(effort_now).T
            yield EXPOSURE_FEATURE, sel(now)
            for days in e["windows_days"]:
                own = lookback(self.cumE, int(days * K))
                yield f"effort_{days}d", sel(own)
                yield f"effort_{days}d_pm{e['along_km']:g}km", nb(self.bandE, own)
        for name, v in self.time_cols.items():
            yield name, rep(v[tg])
        for name, v in self.static_cols.items():
            yield name, np.broadcast_to(v[rows][:, None], (R, T))
        yield "chainage_km", np.broadcast_to(self.chain[rows][:, None], (R, T))

    def block(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None = None,
        *,
        keep: np.ndarray | None = None,
        columns: list[str] | None = None,
        effort_now: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows of ``segs x targets`` in segment-major order, optionally only the
        ``keep`` ones.

        Parameters
        ----------
        targets : ndarray of int
            Window indices.
        segs : ndarray of int, optional
            Segment indices (``seq``), default all.
        keep : ndarray of bool (T, R), optional
            Rows to return (window-major mask, as ``counts[targets][:, segs] > 0``).
        columns : list of str, optional
            Feature columns to return, in this order (default :attr:`columns`).
        effort_now : ndarray (T, S), optional
            In-window officer-hours override (as ``build_features(effort_override=...)``).

        Returns
        -------
        X : ndarray float32 (n, len(columns)), column-major (Fortran order)
        window, seq : ndarray int32 (n,)
            Rows are ordered by ``seq`` then ``window``.
        """
        tg = np.asarray(targets, dtype=int)
        rows = np.arange(self.S) if segs is None else np.asarray(segs, dtype=int)
        T, R = len(tg), len(rows)
        cols = self.columns if columns is None else list(columns)
        pos = {c: i for i, c in enumerate(cols)}
        flat = None if keep is None else np.flatnonzero(np.asarray(keep).T.reshape(-1))
        n = T * R if flat is None else len(flat)
        XT = np.empty((len(cols), n), np.float32)  # column-major: contiguous column writes
        seen = set()
        for name, arr in self.iter_block(tg, segs, effort_now=effort_now):
            j = pos.get(name)
            if j is None:
                continue
            if flat is None:  # cast on assignment: one pass, no float32 temporary
                XT[j].reshape(R, T)[...] = arr
            else:
                XT[j] = np.asarray(arr).reshape(-1)[flat]
            seen.add(name)
        missing = [c for c in cols if c not in seen]
        if missing:
            raise ConfigError(f"unknown feature column(s): {missing[:5]}")
        win = np.tile(tg, R).astype(np.int32)
        seq = np.repeat(rows, T).astype(np.int32)
        if flat is not None:
            win, seq = win[flat], seq[flat]
        return XT.T, win, seq

    def frame(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None = None,
        *,
        effort_now: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Block as a frame shaped like ``build_features`` (window-major, ``window`` and
        ``seq`` first)."""
        tg = np.asarray(targets, dtype=int)
        rows = np.arange(self.S) if segs is None else np.asarray(segs, dtype=int)
        X, _, _ = self.block(tg, rows, effort_now=effort_now)
        XT = np.empty((len(self.columns), len(tg) * len(rows)), np.float32)
        _put_window_major(XT, X, len(tg), 0)
        df = pd.DataFrame(XT.T, columns=self.columns, copy=False)
        df.insert(0, "seq", np.tile(rows, len(tg)).astype(np.int32))
        df.insert(0, "window", np.repeat(tg, len(rows)).astype(np.int32))
        return df

    def verify(self, window: int | None = None) -> None:
        """Check one window against :func:`build_features` bit for bit (raises on mismatch).

        Costs one ``build_features`` call for a single window (one pass over the history).
        """
        w = self.W - 1 if window is None else int(window)
        ref = build_features(self.panel, self.static, self.spec, np.array([w]))
        got = self.frame(np.array([w]))
        if list(ref.columns) != list(got.columns):
            raise RuntimeError(
                "riskmodel.model.scale is out of sync with features.build_features: columns differ "
                f"({[c for c in ref.columns if c not in got.columns][:5]} / "
                f"{[c for c in got.columns if c not in ref.columns][:5]})"
            )
        a = ref.drop(columns=["window", "seq"]).to_numpy()
        b = got.drop(columns=["window", "seq"]).to_numpy()
        bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if bad.any():
            cols = sorted({ref.columns[2 + j] for j in np.nonzero(bad)[1]})
            raise RuntimeError(
                f"riskmodel.model.scale is out of sync with features.build_features at window {w}: "
                f"{cols[:8]} differ"
            )


# ----------------------------------------------------------------------------- blocks


def time_blocks(targets: np.ndarray, block_windows: int) -> list[np.ndarray]:
    """Split target windows into consecutive blocks of ``block_windows``."""
    tg = np.asarray(targets, dtype=int)
    b = max(1, int(block_windows))
    return [tg[i : i + b] for i in range(0, len(tg), b)]


def segment_blocks(S: int, n_blocks: int) -> list[np.ndarray]:
    """Split ``range(S)`` into ``n_blocks`` contiguous blocks."""
    return [a for a in np.array_split(np.arange(S), max(1, min(int(n_blocks), S))) if len(a)]


def block_windows_for(S: int, block_rows: int = DEFAULT_BLOCK_ROWS) -> int:
    """Windows per block so that a block has about ``block_rows`` rows."""
    return max(1, int(block_rows) // max(S, 1))


def build_features_blocked(
    panel: Panel,
    static: pd.DataFrame,
    spec: FeatureSpec,
    targets: np.ndarray | None = None,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    seg_blocks: int = 1,
    context: FeatureContext | None = None,
) -> pd.DataFrame:
    """The full feature frame of :func:`build_features`, built block by block (identical
    values; peak memory = the output + one block + the context)."""
    ctx = context or FeatureContext(panel, static, spec)
    tg = np.arange(ctx.W) if targets is None else np.asarray(targets, dtype=int)
    S = ctx.S
    XT = np.empty((len(ctx.columns), len(tg) * S), np.float32)
    at = 0
    for tb in time_blocks(tg, block_windows_for(S, block_rows)):
        dest = XT[:, at : at + len(tb) * S]
        for sb in segment_blocks(S, seg_blocks):
            _put_window_major(dest, ctx.block(tb, sb)[0], len(tb), int(sb[0]))
        at += len(tb) * S
    df = pd.DataFrame(XT.T, columns=ctx.columns, copy=False)
    df.insert(0, "seq", np.tile(np.arange(S), len(tg)).astype(np.int32))
    df.insert(0, "window", np.repeat(tg, S).astype(np.int32))
    return df


# ----------------------------------------------------------------------------- Dask


def _make_context(panel: Panel, static: pd.DataFrame, spec: FeatureSpec) -> FeatureContext:
    return FeatureContext(panel, static, spec)


def _frame_block(ctx: FeatureContext, targets: np.ndarray, segs: np.ndarray) -> np.ndarray:
    return ctx.block(targets, segs)[0]


def _columns(ctx: FeatureContext) -> list[str]:
    return list(ctx.columns)


class DaskFeatures:
    """Feature context living on a Dask cluster; blocks are computed as tasks.

    Parameters
    ----------
    client : distributed.Client
    panel, static, spec
        As for :class:`FeatureContext` (the panel is scattered once; the context is built on
        a worker and fetched by the others on first use).
    """

    def __init__(self, client: Any, panel: Panel, static: pd.DataFrame, spec: FeatureSpec) -> None:
        self.client = client
        self.panel = panel
        self.W, self.S = panel.counts.shape
        panel_f = client.scatter(panel)
        self.ctx = client.submit(_make_context, panel_f, static, spec, pure=False)
        self.columns: list[str] = client.submit(_columns, self.ctx).result()

    def frame(
        self,
        targets: np.ndarray | None = None,
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        seg_blocks: int = 2,
    ) -> pd.DataFrame:
        """The feature frame of ``targets`` (default all) x all segments, computed as one task
        per (time block, segment block); equals ``build_features`` exactly."""
        tg = np.arange(self.W) if targets is None else np.asarray(targets, dtype=int)
        S = self.S
        tbs = time_blocks(tg, block_windows_for(S, block_rows))
        sbs = segment_blocks(S, seg_blocks)
        futs = [
            [self.client.submit(_frame_block, self.ctx, tb, sb, pure=False) for sb in sbs]
            for tb in tbs
        ]
        XT = np.empty((len(self.columns), len(tg) * S), np.float32)
        at = 0
        for tb, row in zip(tbs, futs, strict=True):
            dest = XT[:, at : at + len(tb) * S]
            for part, sb in zip(self.client.gather(row), sbs, strict=True):
                _put_window_major(dest, part, len(tb), int(sb[0]))
            at += len(tb) * S
        df = pd.DataFrame(XT.T, columns=self.columns, copy=False)
        df.insert(0, "seq", np.tile(np.arange(S), len(tg)).astype(np.int32))
        df.insert(0, "window", np.repeat(tg, S).astype(np.int32))
        return df
