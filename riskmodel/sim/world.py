"""Truth-known scenario simulator on the real geography.

The simulated world (documented in the README and METHODOLOGY):

* **Static attraction** per segment: approach routes and road corridors on the far side, the
  size of nearby settlements across the border, crossing points, river difficulty (with a few
  fords) and a smooth random field; rescaled so that each police directorate gets its target
  share (Novo mesto largest, then Koper).
* **Time**: strong night peak (hourly profile), weekday cycle, monthly seasonality (Frontex
  Western Balkan shares, peak Aug-Oct), a log-linear yearly trend, SI/HR holidays.
* **Near-repeat self-excitation**: every true crossing raises the intensity of the stretch
  around it (Hawkes kernel: branching ratio ``theta``, decay ``excitation_days``, spatial
  ``excitation_km``) - a smuggling group re-uses a stretch for days.
* **Adaptive displacement**: crossers learn, with a lag (an exponential moving average over
  ``displacement_lag_days``), their chance of getting through each stretch relative to an
  unpatrolled one, ``e = exp(-k * officer_hours)`` averaged over the day's crossings; a stretch
  keeps the share ``e ** displacement_strength`` of its flow and the rest moves to nearby
  stretches (``displacement_km``), preferring those that are checked less. With strength 1 the
  flow on a stretch is proportional to its attraction times the chance of getting through - the
  attacker model of Stackelberg security games.
* **Patrols and detection bias**: each shift the police place ``units_per_shift`` patrols
  (two officers for the whole shift) on segments drawn from their recent *recorded* events
  plus exploration; a crossing is recorded with probability ``1 - (1 - p0) exp(-k * officer
  hours)`` - only a share is seen, more where patrols are.
* **Groups and types**: each incident has a group size (1 to a few dozen) and a type
  (apprehension, detection, smuggler arrest).

Two worlds (``ScenarioParams.world``; :func:`world_params` applies a world's preset):

* ``default``: detection is high everywhere (``p0`` 0.5), so the recorded events are a nearly
  unbiased sample of the crossings.
* ``patrolled`` (:data:`PATROLLED_WORLD`): the records are made by the patrols. The police
  deploy by *habit* (recorded events over months, ``police_habit_days``) plus a *reaction* to
  the last week's records (``police_reaction_days``, ``police_reaction_weight``), concentrated
  on their hotspots (``police_focus``); detection off patrol is low (``p0``) and rises with
  officer-hours (``detect_per_officer_hour``), so about 60 % of the records come from the few
  patrolled segment-shifts; crossers avoid stretches patrolled in the last days and move to
  nearby ones (displacement with a short lag); routes drift slowly (``drift_sd``). The truth
  keeps every crossing.

Outputs: ``events.csv`` (the documented input schema; the *recorded* crossings only),
``effort.csv`` (the deployment), ``truth.parquet`` (per segment and shift: the true intensity
``expected_crossings``, all realised true ``crossings``, the ``recorded`` ones and their
expectation ``expected_recorded``, ``officer_hours``) and ``scenario.json`` (parameters, seed,
summary).
"""

from __future__ import annotations

from dataclasses import dataclass

import holidays as _holidays
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from riskmodel.geo.geodata import Geography
from riskmodel.geo.shifts import parse_shifts, shift_windows
from riskmodel.sim.params import (  # re-exported: the world's public names
    DEFAULT_AREA_SHARES,
    PATROLLED_WORLD,
    WORLDS,
    ScenarioParams,
    world_params,
)

# Frontex Western Balkan route, monthly share of the year 2019-2024 (METHODOLOGY.md, simulator).
MONTH_SHARE = np.array([5.0, 4.9, 5.7, 6.2, 7.7, 8.3, 9.2, 11.5, 13.9, 14.1, 7.3, 6.4])
# Local-hour profile of crossings: strong night peak (relative weights, hour 0..23).
HOUR_PROFILE = np.array(
    [
        9,
        9,
        8,
        7,
        5,
        3,
        1.2,
        0.8,
        0.6,
        0.6,
        0.7,
        0.8,
        0.9,
        1.0,
        1.1,
        1.3,
        1.6,
        2.0,
        2.8,
        4,
        5.5,
        7,
        8.5,
        9.5,
    ]
)
WEEKDAY_FACTOR = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 1.05])  # Mon..Sun

__all__ = [
    "DEFAULT_AREA_SHARES",
    "HOUR_PROFILE",
    "MONTH_SHARE",
    "PATROLLED_WORLD",
    "WEEKDAY_FACTOR",
    "WORLDS",
    "DayStep",
    "ScenarioParams",
    "World",
    "side_sign",
    "static_attraction",
    "world_params",
]


# ----------------------------------------------------------------------------- attraction
def _kernel_along(chain_km: np.ndarray, scale_km: float, cutoff: float = 3.0) -> np.ndarray:
    """Dense (S, S) Gaussian kernel along the border chainage (S ~ 650: fine)."""
    d = np.abs(chain_km[:, None] - chain_km[None, :])
    k = np.exp(-0.5 * (d / scale_km) ** 2)
    k[d > cutoff * scale_km] = 0.0
    return k


def static_attraction(
    geo: Geography, params: ScenarioParams, rng: np.random.Generator
) -> np.ndarray:
    """Relative crossing attraction per segment (mean 1), before time effects.

    Parameters
    ----------
    geo : Geography
        Border, segments and route layers (metric CRS).
    params : ScenarioParams
    rng : numpy Generator
    """
    seg = geo.segments
    pts = shapely.points(seg["rep_x"].to_numpy(), seg["rep_y"].to_numpy())
    n = len(seg)
    logit = np.zeros(n)
    if len(geo.corridors):
        w = (
            geo.corridors["weight"].to_numpy(float)
            if "weight" in geo.corridors
            else np.ones(len(geo.corridors))
        )
        d = np.stack([shapely.distance(pts, g) for g in geo.corridors.geometry.values], axis=1)
        logit += 1.6 * np.log1p((w[None, :] * np.exp(-d / 5000.0)).sum(axis=1) * 3)
    if len(geo.settlements):
        st = geo.settlements
        far = st["country"].astype(str) != "SI" if "country" in st else np.ones(len(st), bool)
        sx, sy = st.geometry.x.to_numpy()[far], st.geometry.y.to_numpy()[far]
        pop = st["population"].to_numpy(float)[far] if "population" in st else np.ones(far.sum())
        d = np.hypot(seg["rep_x"].to_numpy()[:, None] - sx, seg["rep_y"].to_numpy()[:, None] - sy)
        mass = (np.sqrt(pop)[None, :] * np.exp(-d / 4000.0)).sum(axis=1)
        logit += 0.5 * np.log1p(mass / 50.0)
    if len(geo.crossings):
        d = shapely.distance(pts[:, None], geo.crossings.geometry.to_numpy()[None, :]).min(axis=1)
        logit += 0.5 * np.exp(-d / 3000.0)
    river = seg["river"].to_numpy(bool)
    fords = river & (rng.random(n) < 0.15)
    logit += np.where(river, -0.5, 0.0) + np.where(fords, 0.8, 0.0)
    # Smooth random field along the border (correlated over a few km).
    noise = rng.normal(0.0, 1.0, n)
    k = _kernel_along(seg["chainage_from_km"].to_numpy(), 2.0)
    field_ = k @ noise
    field_ = (field_ - field_.mean()) / (field_.std() + 1e-12) * params.field_sd
    a = np.exp(logit + field_)
    areas = seg["area"].astype(str).to_numpy()
    if params.area_shares and set(areas) & set(params.area_shares):
        uniq = np.unique(areas)
        for name in uniq:  # a handful of areas
            m = areas == name
            share = params.area_shares.get(name, 0.0)
            a[m] = a[m] / a[m].sum() * (share if share > 0 else 1e-3)
    return a / a.mean()


# ----------------------------------------------------------------------------- simulation
def side_sign(geo: Geography) -> np.ndarray:
    """Which side of each segment is Slovenia: +1 left of the line direction, -1 right."""
    seg = geo.segments
    g = seg.geometry.values
    a = shapely.get_coordinates(shapely.line_interpolate_point(g, 0.45, normalized=True))
    b = shapely.get_coordinates(shapely.line_interpolate_point(g, 0.55, normalized=True))
    t = b - a
    nrm = np.c_[-t[:, 1], t[:, 0]] / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-9)
    mid = np.c_[seg["rep_x"], seg["rep_y"]]
    st = geo.settlements
    if not len(st) or "country" not in st:
        return np.ones(len(seg))
    tree = shapely.STRtree(st.geometry.values)
    country = st["country"].astype(str).to_numpy()
    vote = np.zeros(len(seg))
    for dist in (1500.0, 3000.0, 6000.0):  # several probes: robust near bends
        left = tree.nearest(shapely.points(mid + nrm * dist))
        right = tree.nearest(shapely.points(mid - nrm * dist))
        vote += (country[left] == "SI").astype(float) - (country[right] == "SI").astype(float)
    sign = np.sign(vote)
    # Undecided: follow the neighbours (smooth along the border).
    if (sign == 0).any():
        k = _kernel_along(seg["chainage_from_km"].to_numpy(), 5.0)
        sign = np.where(sign == 0, np.sign(k @ sign), sign)
    return np.where(sign == 0, 1.0, sign)


@dataclass
class DayStep:
    """One simulated day: arrays of shape ``(shifts, segments)``.

    Attributes
    ----------
    expected_crossings : ndarray of float
        True intensity (expected crossing groups) per shift and segment.
    expected_recorded : ndarray of float
        ``expected_crossings x`` detection probability.
    effort : ndarray of float
        Officer-hours spent per shift and segment.
    groups : ndarray of int
        Realised true crossing groups.
    recorded : ndarray of int
        Realised recorded incidents.
    patrol_recorded : ndarray of int or None
        Recorded incidents that would *not* have been recorded without the patrol (the
        counterfactual at the baseline ``p0``); only with common random numbers.
    """

    expected_crossings: np.ndarray
    expected_recorded: np.ndarray
    effort: np.ndarray
    groups: np.ndarray
    recorded: np.ndarray
    patrol_recorded: np.ndarray | None = None


# Groups per segment-shift that get their own detection uniform in CRN mode (more are rare).
_CRN_GROUPS = 64


def _poisson_inverse(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson quantile ``F^-1(u; lam)`` by the CDF recursion (vectorised, monotone in lam).

    Monotone in ``lam`` for a fixed ``u``: with common uniforms, more intensity never means
    fewer crossings, so policies are compared on the same draws (common random numbers).
    """
    n = np.zeros(u.shape, dtype=np.int64)
    pk = np.exp(-lam)
    cdf = pk.copy()
    k = 0
    while True:
        more = u > cdf
        if not more.any() or k > 10_000:
            return n
        n += more
        k += 1
        pk = pk * lam / k
        cdf = cdf + pk


class World:
    """The simulator's world as a day-by-day stepper (see the module docstring).

    :func:`simulate` runs it with the simulated police; :mod:`riskmodel.sim.trial` runs it with
    patrols placed by a policy and common random numbers, so that only the patrols differ
    between policies.

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

    Attributes
    ----------
    params : ScenarioParams
        Resolved parameters.
    rng : numpy Generator
        The world's own stream (attraction, simulated police, legacy draws, events).
    windows : DataFrame
        Shift windows of the whole period (``shift_windows`` order).
    days : DatetimeIndex
        Local dates.
    hours : ndarray (days, shifts)
        Shift lengths (DST nights are 7 or 9 h).
    attraction : ndarray (S,)
        Static attraction (mean 1).
    base : ndarray (S,)
        Expected true groups per day at a daily multiplier of 1 (mutable: route shifts).
    day : int
        Index of the next day to simulate.
    """

    def __init__(
        self, geo: Geography, params: ScenarioParams, shifts: str, tz: str = "Europe/Ljubljana"
    ) -> None:
        p = params.resolved()
        self.params = p
        self.rng = rng = np.random.default_rng(p.seed)
        seg = geo.segments
        self.n_segments = S = len(seg)
        self.shifts = sh = parse_shifts(shifts)
        self.n_shifts = K = len(sh)
        self.windows = win = shift_windows(p.start, p.end, sh, tz)
        self.days = days = pd.date_range(p.start, p.end, freq="D")
        D = len(days)
        self.attraction = attraction = static_attraction(geo, p, rng)

        # Share of a day's crossings falling in each shift, from the local hour profile.
        prof = HOUR_PROFILE / HOUR_PROFILE.sum()
        shift_share = np.zeros(K)
        for k, s in enumerate(sh):
            hrs = (
                np.arange(int(round((s.end.hour - s.start.hour) % 24 or 24))) + s.start.hour
            ) % 24
            shift_share[k] = prof[hrs].sum()
        self.shift_share = shift_share / shift_share.sum()

        # Daily multipliers: season x weekday x trend x holidays.
        month = days.month.to_numpy() - 1
        season = MONTH_SHARE[month] / MONTH_SHARE.mean()
        weekday = WEEKDAY_FACTOR[days.day_of_week.to_numpy()]
        years = (days - days[0]).days.to_numpy() / 365.25
        trend = np.exp(p.annual_trend * years)
        yrs = range(days[0].year, days[-1].year + 1)
        hol_si = _holidays.country_holidays("SI", years=yrs)
        hol_hr = _holidays.country_holidays("HR", years=yrs)
        is_hol = np.array([(d in hol_si) or (d in hol_hr) for d in days.date])
        self.daily = season * weekday * trend * np.where(is_hol, p.holiday_factor, 1.0)

        # Scale: recorded persons in year one ~= persons_per_year (assumes detected_share
        # of the groups recorded).
        groups_per_day = p.persons_per_year / p.mean_group_size / p.detected_share / 365.25
        # expected true groups per day at daily=1
        self.base = attraction / attraction.sum() * groups_per_day

        chain = (seg["chainage_from_km"].to_numpy() + seg["chainage_to_km"].to_numpy()) / 2
        self.chainage_km = chain
        # Banded kernels along the border as sparse matrices: a day step costs O(S * band).
        k_exc = _kernel_along(chain, p.excitation_km)
        self._k_exc = sparse.csr_matrix(k_exc / k_exc.sum(axis=0, keepdims=True))  # mass-preserving
        k_disp = _kernel_along(chain, p.displacement_km)
        np.fill_diagonal(k_disp, 0.0)
        self._k_disp = sparse.csr_matrix(k_disp)
        self._k_disp_t = self._k_disp.T.tocsr()
        self._k_pol = sparse.csr_matrix(_kernel_along(chain, 2.0))  # police smooth over ~2 km
        self._decay_exc = np.exp(-1.0 / p.excitation_days)
        self._decay_p = np.exp(-1.0 / p.displacement_lag_days)
        self.units = np.array(
            [p.units_per_shift[min(k, len(p.units_per_shift) - 1)] for k in range(K)]
        )
        self.H = np.zeros(S)  # excitation (expected extra groups per day)
        # Route drift (off unless drift_sd > 0): its own stream, so the same for every policy of
        # a trial and without effect on the other draws; started stationary.
        self.drift = np.zeros(S)
        if p.drift_sd > 0:
            self._drift_rng = np.random.default_rng([p.seed, 0xD1F7])
            k_drift = _kernel_along(chain, max(p.drift_km, 1e-6))
            k_drift /= np.sqrt((k_drift**2).sum(axis=1, keepdims=True))  # unit variance
            self._k_drift = sparse.csr_matrix(k_drift)
            self._phi_drift = np.exp(-1.0 / max(p.drift_days, 1e-6))
            self.drift = p.drift_sd * (self._k_drift @ self._drift_rng.standard_normal(S))
        # EMA of the chance to get through a stretch relative to an unpatrolled one,
        # exp(-k officer_hours) averaged over the day's crossings (what crossers learn).
        self.escape = np.ones(S)
        self.police_map = np.full(S, 1.0)  # EMA of recorded events (the police's hotspot map)
        self._decay_police = np.exp(-1.0 / p.police_habit_days) ** (1.0 / K)
        # Short memory (the last week's records): only the patrolled world reacts to it.
        self.police_recent = np.full(S, 1.0)
        self._decay_recent = np.exp(-1.0 / max(p.police_reaction_days, 1e-6)) ** (1.0 / K)
        self.hours = win.sort_values(["date", "shift_idx"])["hours"].to_numpy().reshape(D, K)
        self.day = 0

    @property
    def n_days(self) -> int:
        """Number of days of the period."""
        return len(self.days)

    def intensity(self) -> np.ndarray:
        """Expected true groups per shift ``(K, S)`` of the next day, before any patrol of it.

        Patrols act through what crossers learnt up to yesterday (lag), so today's intensity is
        fixed before today's patrols are placed: an oracle may look at it.
        """
        lam_day = self._mu_eff(self.day) + self.H
        d = self.day
        return lam_day[None, :] * self.shift_share[:, None] * self.hours[d][:, None] / 8.0

    def _mu_eff(self, d: int) -> np.ndarray:
        p = self.params
        S = self.n_segments
        mu = self.base * self.daily[d]
        if p.drift_sd > 0:  # mean-preserving log-normal multiplier
            mu = mu * np.exp(self.drift - 0.5 * p.drift_sd**2)
        # Displacement: the deterred share moves to nearby stretches, preferring little-checked
        # ones (high escape chance):
        # mu_eff_j = mu_j deter_j + deter_j * sum_s K[s, j] moved_s / (K deter)_s
        deter = self.escape**p.displacement_strength
        moved = mu * (1.0 - deter)
        denom = self._k_disp @ deter
        share = np.divide(moved, denom, out=np.zeros(S), where=denom > 0)
        return mu * deter + deter * (self._k_disp_t @ share)

    def police_effort(self, k: int) -> np.ndarray:
        """Officer-hours ``(S,)`` the simulated police place in shift ``k`` of the next day.

        Recent recorded hotspots (smoothed) plus exploration; units are drawn without
        replacement by the Gumbel top-k trick (consumes the world's stream).
        """
        p = self.params
        S = self.n_segments
        pol = self._k_pol @ self.police_map
        if p.police_reaction_weight > 0:  # habit plus reaction to the last days
            w = p.police_reaction_weight
            rec = self._k_pol @ self.police_recent
            pol = (1 - w) * pol / pol.sum() + w * rec / rec.sum()
        if p.police_focus != 1.0:
            pol = pol**p.police_focus
        prob = (1 - p.patrol_exploration) * pol / pol.sum() + p.patrol_exploration / S
        n_u = min(int(self.units[k]), S)
        keys = np.log(prob) - np.log(-np.log(self.rng.random(S)))
        chosen = np.argpartition(-keys, n_u - 1)[:n_u]
        effort = np.zeros(S)
        effort[chosen] = p.officers_per_unit * self.hours[self.day, k]
        return effort

    def step_day(
        self, effort: np.ndarray | None = None, crn: np.random.Generator | None = None
    ) -> DayStep:
        """Simulate the next day and advance the state.

        Parameters
        ----------
        effort : ndarray (K, S), optional
            Officer-hours per shift and segment placed by someone else (a policy); default:
            the simulated police place ``units_per_shift`` patrols.
        crn : numpy Generator, optional
            Common-random-numbers stream for this day: crossings and detections are drawn by
            inverse CDF from uniforms of fixed shape, so two runs that differ only in patrols
            share their randomness. Default: the world's own stream (as :func:`simulate`).

        Returns
        -------
        DayStep
        """
        p = self.params
        S, K, d = self.n_segments, self.n_shifts, self.day
        if d >= self.n_days:
            raise IndexError(f"the world ends after {self.n_days} days")
        if effort is not None:
            effort = np.asarray(effort, dtype=np.float64)
            if effort.shape != (K, S):
                raise ValueError(f"effort has shape {effort.shape}, expected {(K, S)}")
        if crn is not None:
            # Fixed shapes: the draws do not depend on the intensities or the patrols.
            u_groups = crn.random((K, S))
            u_detect = crn.random((K, S, _CRN_GROUPS))
        lam_day = self._mu_eff(d) + self.H
        out = DayStep(
            expected_crossings=np.zeros((K, S)),
            expected_recorded=np.zeros((K, S)),
            effort=np.zeros((K, S)),
            groups=np.zeros((K, S), dtype=np.int64),
            recorded=np.zeros((K, S), dtype=np.int64),
            patrol_recorded=np.zeros((K, S), dtype=np.int64) if crn is not None else None,
        )
        day_groups = np.zeros(S)
        day_escape = np.zeros(S)
        for k in range(K):
            lam = lam_day * self.shift_share[k] * self.hours[d, k] / 8.0
            eff_k = self.police_effort(k) if effort is None else effort[k]
            pdet = 1.0 - (1.0 - p.p0) * np.exp(-p.detect_per_officer_hour * eff_k)
            if crn is None:
                groups = self.rng.poisson(lam)
                recorded = self.rng.binomial(groups, pdet)
            else:
                groups = _poisson_inverse(u_groups[k], lam)
                # One uniform per group: recorded if u < pdet, thanks to the patrol if also
                # u >= p0 (it would have been missed without it).
                u = u_detect[k]
                live = np.arange(_CRN_GROUPS)[None, :] < groups[:, None]
                recorded = ((u < pdet[:, None]) & live).sum(axis=1)
                out.patrol_recorded[k] = ((u >= p.p0) & (u < pdet[:, None]) & live).sum(axis=1)
                extra = np.maximum(groups - _CRN_GROUPS, 0)
                if extra.any():  # beyond the fixed uniforms (very rare): plain binomial
                    recorded = recorded + crn.binomial(extra, pdet)
            out.expected_crossings[k] = lam
            out.expected_recorded[k] = lam * pdet
            out.effort[k] = eff_k
            out.groups[k] = groups
            out.recorded[k] = recorded
            day_groups += groups
            day_escape += self.shift_share[k] * np.exp(-p.detect_per_officer_hour * eff_k)
            self.police_map = self.police_map * self._decay_police + recorded
            if p.police_reaction_weight > 0:
                self.police_recent = self.police_recent * self._decay_recent + recorded
        self.H = self._decay_exc * self.H + p.theta * (1 - self._decay_exc) * (
            self._k_exc @ day_groups
        )
        self.escape = self._decay_p * self.escape + (1 - self._decay_p) * day_escape
        if p.drift_sd > 0:
            innov = self._k_drift @ self._drift_rng.standard_normal(S)
            self.drift = self._phi_drift * self.drift + np.sqrt(1 - self._phi_drift**2) * (
                p.drift_sd * innov
            )
        self.day = d + 1
        return out

    def relocate(self, source: np.ndarray, target: np.ndarray, share: float) -> float:
        """Move ``share`` of the static attraction of ``source`` segments onto ``target``.

        A route shift: a smuggling route closes on one stretch and opens on another with the
        same pattern (segment ``source[i]`` gives to ``target[i]``), so the new stretch is as
        concentrated as the old one. Only the base intensity moves; excitation and
        displacement keep running.

        Parameters
        ----------
        source, target : ndarray of int
            Segment indices (equal length, disjoint), in matching order along the border.
        share : float
            Share of the source's attraction moved, in ``[0, 1]``.

        Returns
        -------
        float
            Moved share of the total base intensity.
        """
        source = np.asarray(source, dtype=np.int64)
        target = np.asarray(target, dtype=np.int64)
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must lie in [0, 1]")
        if source.shape != target.shape or not target.size or np.intersect1d(source, target).size:
            raise ValueError("source and target must be disjoint index arrays of equal length")
        moved = self.base[source] * share
        total = self.base.sum()
        self.base = self.base.copy()
        self.base[source] -= moved
        self.base[target] += moved
        return float(moved.sum() / total)
