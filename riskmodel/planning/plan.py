"""Randomised, risk-weighted, legally capped spot-check plans.

From a risk table (one row per 1-km border segment per shift, ``expected`` recorded events) a
plan is made in three steps:

1. **Coverage** ``c_i`` (inclusion probability of segment ``i`` in this shift) from the risk, as
   the defender's strategy of a Stackelberg security game with one resource type (ORIGAMI, as in
   ARMOR/IRIS): equalise the attacker's residual payoff ``r_i (1 - c_i)`` over the covered
   segments, subject to ``sum c_i = N`` units, an exploration floor ``c_i >= floor > 0`` (every
   segment keeps a chance, so recorded data stay unbiased) and a per-shift cap ``c_i <= cap``.
   Solved by vectorised bisection on the residual level.
2. **Frequency caps** over longer windows (7 / 30 days, share of shifts), counted from the
   previous plans in the audit log: a segment whose cap is reached gets ``c_i = 0``.
3. **Sampling** exactly ``N`` checks with inclusion probabilities equal to ``c`` (systematic
   sampling on a random order), each with a time slot inside the shift and a unit.

The seed comes from OS entropy unless given (drills, tests) and is always recorded, so a plan is
unpredictable from public information yet reproducible for an audit (Schengen Borders Code
art. 23; CJEU C-9/16: checks must differ from systematic border checks and national rules must
limit their intensity, frequency and selectivity).

:func:`make_plans` is pure (risk frame in, plans out) and does not care where the risk came
from; :func:`run_plan` adds the audit log, the output files and the locking.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import html
import json
import logging
import math
import os
import re
import secrets
import tomllib
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.audit.log import (
    AuditLog,
    checks_history,
    encode_entry,
    share_cap_count,
    window_max_counts,
)
from riskmodel.errors import ConfigError, InputError
from riskmodel.io.atomic import atomic_write_text, folder_lock, sha256_file

log = logging.getLogger("riskmodel.planning.plan")

REQUIRED_COLUMNS = ("segment_id", "date", "shift", "shift_start", "shift_end", "expected", "area")
REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")
_TOL = 1e-9

LEGAL_NOTE = (
    "These checks are police spot checks in the internal border area under Article 23 of the "
    "Schengen Borders Code (Regulation (EU) 2016/399): they do not have border control as their "
    "objective, rest on general police information and experience about threats to public "
    "security (in particular cross-border crime), are devised and executed distinctly from "
    "systematic checks at external borders, and are carried out as spot checks. The plan is a "
    "random sample from a logged, risk-weighted distribution with per-segment caps on "
    "intensity and frequency, as required by the Court of Justice in C-9/16 (A, 2017) and "
    "C-278/12 PPU (Adil). Every segment keeps a non-zero chance of a check; the seed, caps and "
    "any overrides are recorded in the audit log."
)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanConfig:
    """Caps and planning parameters (``--caps`` TOML/JSON; every key optional).

    Attributes
    ----------
    per_shift : float
        Largest coverage (inclusion probability) of one segment in one shift, ``0 < cap <= 1``.
        At most one check per segment per shift in any case.
    max_per_segment_per_7d, max_per_segment_per_30d : int or None
        Largest number of checks of one segment in any 7 (30) consecutive days.
    max_share_of_shifts : float or None
        Largest share of the calendar shifts of any ``share_window_days`` window in which one
        segment is checked; enforced as the count ``floor(share * days * shifts_per_day)``.
    share_window_days : int
        Window of ``max_share_of_shifts`` (default 30).
    shifts_per_day : int
        Shifts per day (denominator of the share; default 3).
    floor_factor : float
        Exploration floor as a multiple of the uniform coverage ``N / n`` (default 0.2).
    floor : float or None
        Absolute exploration floor; overrides ``floor_factor`` when set.
    entropy_ratio_min : float
        Overrides that push the normalised coverage entropy below this share of the unforced
        entropy trigger a warning (default 0.8).
    slot_hours : float
        Length of a check's time slot in hours (default 2); slots start on whole hours after
        the shift start.
    """

    per_shift: float = 1.0
    max_per_segment_per_7d: int | None = None
    max_per_segment_per_30d: int | None = None
    max_share_of_shifts: float | None = None
    share_window_days: int = 30
    shifts_per_day: int = 3
    floor_factor: float = 0.2
    floor: float | None = None
    entropy_ratio_min: float = 0.8
    slot_hours: float = 2.0

    def __post_init__(self) -> None:
        def bad(key: str, must: str) -> ConfigError:
            return ConfigError(
                f"cap {key} = {getattr(self, key)!r} is invalid: it must be {must}",
                fix=f"correct {key} in the caps file",
            )

        if not 0 < self.per_shift <= 1:
            raise bad("per_shift", "in (0, 1]")
        for k in ("max_per_segment_per_7d", "max_per_segment_per_30d"):
            v = getattr(self, k)
            if v is not None and (int(v) != v or v < 1):
                raise bad(k, "a whole number >= 1")
        if self.max_share_of_shifts is not None:
            if not 0 < self.max_share_of_shifts <= 1:
                raise bad("max_share_of_shifts", "in (0, 1]")
            if (
                share_cap_count(
                    self.max_share_of_shifts, self.share_window_days, self.shifts_per_day
                )
                < 1
            ):
                raise bad(
                    "max_share_of_shifts", "large enough to allow at least one check per window"
                )
        if self.share_window_days < 1:
            raise bad("share_window_days", ">= 1")
        if self.shifts_per_day < 1:
            raise bad("shifts_per_day", ">= 1")
        if not 0 < self.floor_factor <= 1:
            raise bad("floor_factor", "in (0, 1]")
        if self.floor is not None and not 0 < self.floor <= 1:
            raise bad("floor", "in (0, 1]")
        if not 0 <= self.entropy_ratio_min <= 1:
            raise bad("entropy_ratio_min", "in [0, 1]")
        if not self.slot_hours > 0:
            raise bad("slot_hours", "> 0")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in the audit log)."""
        return asdict(self)

    @property
    def has_window_caps(self) -> bool:
        """Whether any frequency cap over days is set."""
        return any(
            v is not None
            for v in (
                self.max_per_segment_per_7d,
                self.max_per_segment_per_30d,
                self.max_share_of_shifts,
            )
        )

    def window_caps(self) -> dict[str, tuple[int, int]]:
        """Window caps as ``name -> (window_days, max_checks)``."""
        out: dict[str, tuple[int, int]] = {}
        if self.max_per_segment_per_7d is not None:
            out["max_per_segment_per_7d"] = (7, int(self.max_per_segment_per_7d))
        if self.max_per_segment_per_30d is not None:
            out["max_per_segment_per_30d"] = (30, int(self.max_per_segment_per_30d))
        if self.max_share_of_shifts is not None:
            out["max_share_of_shifts"] = (
                self.share_window_days,
                share_cap_count(
                    self.max_share_of_shifts, self.share_window_days, self.shifts_per_day
                ),
            )
        return out


def load_caps(path: str | os.PathLike[str] | None, **defaults: Any) -> PlanConfig:
    """Read a caps file (TOML or JSON; keys at top level or in a ``[caps]`` table).

    Parameters
    ----------
    path : path-like or None
        The file; ``None`` gives the defaults.
    **defaults
        Values used when the file does not set them (e.g. ``shifts_per_day`` from settings).

    Examples
    --------
    A ``caps.toml``::

        per_shift = 1.0
        max_per_segment_per_7d = 3
        max_per_segment_per_30d = 8
        max_share_of_shifts = 0.1
    """
    known = {f.name for f in fields(PlanConfig)}
    values: dict[str, Any] = {k: v for k, v in defaults.items() if v is not None}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read caps file: {exc.strerror or exc}",
                where=str(p),
                fix="check the --caps path",
            ) from None
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"invalid caps file: {exc}", where=str(p), fix="write TOML (key = value) or JSON"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("caps file must hold a table/object", where=str(p))
        if isinstance(data.get("caps"), dict):
            data = {**{k: v for k, v in data.items() if k != "caps"}, **data["caps"]}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown cap {unknown[0]!r}",
                where=str(p),
                fix=f"use one of: {', '.join(sorted(known))}",
            )
        values.update(data)
    try:
        return PlanConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid caps: {exc}", where=str(path) if path else None) from None


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def read_risk(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a risk table (CSV, Parquet, or a vector file with geometry) and validate it.

    Returns
    -------
    DataFrame or GeoDataFrame
        Validated risk (see :func:`validate_risk`).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("risk file not found", where=str(p), fix="check the --risk path")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            df = pd.read_csv(p, dtype={"segment_id": str, "date": str, "shift": str, "area": str})
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            import geopandas as gpd

            df = gpd.read_file(p)
    except InputError:
        raise
    except Exception as exc:  # readers raise many types on unreadable files
        raise InputError(
            f"cannot read risk file: {str(exc).splitlines()[0]}",
            where=str(p),
            fix="give a CSV/Parquet/GeoJSON risk table from 'riskmodel score'",
        ) from None
    return validate_risk(df, where=str(p))


def validate_risk(risk: pd.DataFrame, where: str | None = None) -> pd.DataFrame:
    """Check the risk contract and normalise types.

    Raises
    ------
    InputError
        Missing columns, negative or non-finite ``expected``, duplicate segment in a shift.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in risk.columns]
    if missing:
        raise InputError(
            f"risk table lacks column(s) {', '.join(missing)}",
            where=where,
            fix=f"a risk table needs {', '.join(REQUIRED_COLUMNS)}",
        )
    if risk.empty:
        raise InputError("risk table is empty", where=where, fix="score at least one shift")
    df = risk.copy()
    for c in ("segment_id", "shift", "area"):
        df[c] = df[c].astype(str).str.strip()
    try:
        df["date"] = pd.to_datetime(df["date"].astype(str)).dt.strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        raise InputError(
            "column date holds values that are not dates",
            where=where,
            fix="write dates as YYYY-MM-DD",
        ) from None
    exp = pd.to_numeric(df["expected"], errors="coerce")
    bad = ~np.isfinite(exp.to_numpy(dtype=float)) | (exp.to_numpy(dtype=float) < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"expected must be a finite number >= 0 (row {row + 2}: {df['expected'].iloc[row]!r})",
            where=where,
            fix="re-run scoring or fix the value",
        )
    df["expected"] = exp.astype(float)
    for c in ("shift_start", "shift_end"):
        try:
            ts = pd.to_datetime(df[c].astype(str), utc=True, format="ISO8601")
        except (ValueError, TypeError):
            raise InputError(
                f"column {c} holds values that are not ISO 8601 times",
                where=where,
                fix="write times like 2024-08-01T06:00:00+02:00",
            ) from None
        df[f"_{c}_utc"] = ts
    dup = df.duplicated(["date", "shift", "segment_id"])
    if dup.any():
        r = df[dup].iloc[0]
        raise InputError(
            f"segment {r['segment_id']} appears twice in {r['date']} {r['shift']}",
            where=where,
            fix="keep one row per segment per shift",
        )
    return df


def read_units_per_area(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a CSV ``area,units`` into ``{area: units}``."""
    p = Path(path)
    try:
        df = pd.read_csv(p, dtype={"area": str})
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read units-per-area file: {exc}",
            where=str(p),
            fix="give a CSV with columns area,units",
        ) from None
    if not {"area", "units"} <= set(df.columns):
        raise InputError("units-per-area file needs columns area,units", where=str(p))
    u = pd.to_numeric(df["units"], errors="coerce")
    if u.isna().any() or (u < 0).any() or (u != u.round()).any():
        raise InputError("units must be whole numbers >= 0", where=str(p))
    if df["area"].duplicated().any():
        raise InputError(
            f"area {df['area'][df['area'].duplicated()].iloc[0]!r} listed twice", where=str(p)
        )
    return {str(a).strip(): int(n) for a, n in zip(df["area"], u, strict=True)}


def parse_ids(text: str | Sequence[str] | None) -> list[str]:
    """Split ``"SIHR-0001, SIHR-0002"`` (or a sequence of such strings) into ids."""
    if not text:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for p in parts:
        out += [s.strip() for s in str(p).split(",") if s.strip()]
    return list(dict.fromkeys(out))


def close_ids(sid: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known ids closest to ``sid``: same number (``SIHR-1`` -> ``SIHR-0001``) first, then by
    string similarity."""
    known = list(known)
    digits = re.findall(r"\d+", sid)
    same_num = []
    if digits:
        num = int(digits[-1])
        prefix = sid[: sid.rfind(digits[-1])].lower()
        for k in known:
            kd = re.findall(r"\d+", k)
            if kd and int(kd[-1]) == num and k.lower().startswith(prefix[:3]):
                same_num.append(k)
    rest = difflib.get_close_matches(sid, known, n=n, cutoff=0.6)
    return list(dict.fromkeys(same_num + rest))[:n]


def _check_ids(ids: Iterable[str], known: Sequence[str], flag: str) -> None:
    known_set = set(known)
    for sid in ids:
        if sid not in known_set:
            close = close_ids(sid, sorted(known_set))
            raise InputError(
                f"{flag}: unknown segment id {sid!r}"
                + (f" (did you mean {', '.join(close)}?)" if close else ""),
                fix="use segment ids from the risk table",
            )


# ---------------------------------------------------------------------------------------------
# Core maths
# ---------------------------------------------------------------------------------------------


def origami_coverage(
    risk: np.ndarray,
    n_units: float,
    lower: np.ndarray,
    upper: np.ndarray,
    iters: int = 200,
) -> tuple[np.ndarray, float]:
    """Stackelberg (ORIGAMI) coverage with per-target bounds.

    Finds the residual level ``R`` such that ``c_i = clip(1 - R / r_i, lower_i, upper_i)`` sums
    to ``n_units``: the attacker's payoff ``r_i (1 - c_i)`` equals ``R`` on every segment strictly
    between its bounds, is below ``R`` on segments held at the floor and above it only where the
    cap binds. Zero-risk segments (below ``1e-12`` of the largest risk, or subnormal) stay at
    their floor unless every positive-risk segment is at its cap, then they are filled evenly.

    Parameters
    ----------
    risk : ndarray
        Attacker payoff of an uncovered segment (expected events), ``>= 0``.
    n_units : float
        Total coverage, ``sum(lower) <= n_units <= sum(upper)``.
    lower, upper : ndarray
        Bounds per segment, ``0 <= lower <= upper <= 1``.
    iters : int
        Upper bound on bisection steps over the sorted kinks (each one vectorised pass;
        ``log2(2 n)`` are needed).

    Returns
    -------
    coverage : ndarray
        ``c`` with ``sum(c) == n_units`` (to float precision).
    level : float
        The equalised residual ``R`` (``0`` when every positive-risk segment is at its cap).
    """
    r = np.asarray(risk, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if np.any(lo > hi + _TOL):
        raise ValueError("lower bound above upper bound")
    if n_units < lo.sum() - 1e-7 or n_units > hi.sum() + 1e-7:
        raise ValueError(f"n_units {n_units} outside [{lo.sum()}, {hi.sum()}]")
    # Risks below 1e-12 of the largest, or subnormal (1/r would overflow to inf), are zero for
    # the attacker: this keeps 1/r finite.
    pos = (r > 1e-12 * max(float(r.max(initial=0.0)), 1e-300)) & (r >= np.finfo(float).tiny)
    inv = np.zeros_like(r)
    inv[pos] = 1.0 / r[pos]

    def cov(level: float) -> np.ndarray:
        return np.where(pos, np.clip(1.0 - level * inv, lo, hi), lo)

    full = cov(0.0)
    if n_units >= full.sum() - _TOL:
        # All positive-risk segments at their caps: fill the zero-risk ones evenly.
        rest = n_units - full.sum()
        zero = ~pos
        if rest <= _TOL or not zero.any():
            return full, 0.0
        a, b = 0.0, 1.0
        for _ in range(iters):
            t = 0.5 * (a + b)
            if np.clip(t, lo[zero], hi[zero]).sum() < n_units - full[pos].sum():
                a = t
            else:
                b = t
        full[zero] = np.clip(b, lo[zero], hi[zero])
        return full, 0.0
    # f(R) = sum(cov(R)) is piecewise linear and decreasing, with kinks where a segment leaves
    # its cap (R = r(1-hi)) or reaches its floor (R = r(1-lo)). Bisect over the sorted kinks,
    # then solve the linear piece exactly (plain bisection on R fails when risks span 1e-100..1).
    kinks = np.unique(np.concatenate([[0.0], r[pos] * (1 - hi[pos]), r[pos] * (1 - lo[pos])]))
    a, b = 0, kinks.size - 1  # f(kinks[a]) > n_units >= f(kinks[b]) (f(max r) = sum(lo))
    for _ in range(iters):
        if b - a <= 1:
            break
        m = (a + b) // 2
        if cov(kinks[m]).sum() > n_units:
            a = m
        else:
            b = m
    r_lo, r_hi = kinks[a], kinks[b]
    mid = 0.5 * (r_lo + r_hi)
    interior = pos & (r * (1 - hi) < mid) & (r * (1 - lo) > mid)
    if interior.any():
        fixed = cov(mid)[~interior].sum()
        level = (interior.sum() + fixed - n_units) / inv[interior].sum()
        level = float(np.clip(level, r_lo, r_hi))
    else:
        level = float(r_hi)
    c = cov(level)
    return c, float(level)


def systematic_sample(
    coverage: np.ndarray, rng: np.random.Generator, size: int | None = None
) -> np.ndarray:
    """Draw samples of exactly ``round(sum(coverage))`` segments with inclusion probabilities ``coverage``.

    Systematic (comb) sampling on a uniformly random order: lay the segments end to end as
    intervals of length ``c_i`` in a random permutation and take the points ``u + k``,
    ``u ~ U(0, 1)``, ``k = 0..N-1``. A segment is hit with probability exactly ``c_i``
    (``c_i <= 1``), never twice, and the random order removes the joint-inclusion artefacts of
    a fixed order.

    Parameters
    ----------
    coverage : ndarray, shape (n,)
        Inclusion probabilities in ``[0, 1]`` summing to an integer ``N``.
    rng : numpy Generator
    size : int, optional
        Number of independent samples (vectorised); ``None`` for one.

    Returns
    -------
    ndarray of bool
        Shape ``(n,)`` or ``(size, n)``: selected segments (``N`` per row).
    """
    c = np.clip(np.asarray(coverage, dtype=float), 0.0, 1.0)
    total = c.sum()
    n_pick = int(round(total))
    if abs(total - n_pick) > 1e-6:
        raise ValueError(f"coverage sums to {total}, not a whole number")
    draws = 1 if size is None else int(size)
    n = c.size
    if n_pick == 0 or n == 0:
        out = np.zeros((draws, n), dtype=bool)
        return out[0] if size is None else out
    c = c * (n_pick / total)  # exact integer total for the comb
    perm = rng.permuted(np.broadcast_to(np.arange(n), (draws, n)), axis=1)
    cum = np.cumsum(c[perm], axis=1)
    cum[:, -1] = n_pick  # guard the last boundary against rounding
    prev = np.concatenate([np.zeros((draws, 1)), cum[:, :-1]], axis=1)
    u = rng.random((draws, 1))
    # Points u + k in [prev, cum): ceil(cum - u) - ceil(prev - u).
    hits = np.ceil(cum - u) - np.ceil(prev - u)
    hits = np.clip(hits, 0, 1).astype(bool)
    out = np.zeros((draws, n), dtype=bool)
    np.put_along_axis(out, perm, hits, axis=1)
    return out[0] if size is None else out


def normalised_entropy(coverage: np.ndarray) -> float:
    """Randomness of a coverage vector in ``[0, 1]``: 1 = uniform, 0 = deterministic.

    ``sum_i h(c_i) / (n h(N / n))`` with ``h`` the binary entropy and ``N = sum(c)``: the
    uncertainty about which segments are checked (an upper bound on the entropy of the plan
    distribution), relative to spreading the same units uniformly. A forced segment (``c = 1``)
    or an excluded one (``c = 0``) adds nothing, and a deterministic top-k scores 0.
    """
    c = np.clip(np.asarray(coverage, dtype=float), 0.0, 1.0)
    n = c.size
    if n == 0:
        return 0.0

    def h(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-300, 1.0)
        q = np.clip(1.0 - p, 1e-300, 1.0)
        return -(p * np.log(p) + q * np.log(q)) * ((p > 1e-300) & (q > 1e-300))

    top = n * float(h(np.array([c.sum() / n]))[0])
    return float(h(c).sum() / top) if top > 0 else 0.0


def top_k(risk: np.ndarray, n_units: int, forced: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """Deterministic top-k baseline: forced segments, then the highest risks (ties by order)."""
    r = np.asarray(risk, dtype=float)
    pick = forced.copy()
    k = max(int(n_units) - int(pick.sum()), 0)
    cand = ~(blocked | pick)
    order = np.flatnonzero(cand)[np.argsort(-r[cand], kind="stable")]
    pick[order[:k]] = True
    return pick


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One shift's spot-check plan.

    Attributes
    ----------
    plan_id : str
        UUID drawn from the plan's random stream (reproducible with the seed).
    date, shift, shift_start, shift_end : str
        Shift identity; times ISO 8601 with offset.
    seed : int
        Run seed (OS entropy unless given); ``rng`` states how the plan's stream derives from it.
    units : int
        Checks in the plan (``== len(checks)``).
    coverage : DataFrame
        Index ``segment_id``; ``area``, ``expected``, ``coverage``, ``floor``, ``cap``,
        ``status`` (``free``/``floor``/``cap``/``included``/``excluded``/``blocked``/``no_units``),
        ``reasons``.
    checks : DataFrame
        ``check_no, unit, segment_id, area, slot_start, slot_end, coverage, expected, reasons``.
    stats : dict
        Entropy, max inclusion, expected detections vs deterministic top-k, residual level.
    overrides : dict
        ``include``, ``exclude``, entropy before/after and their ratio.
    blocked : dict
        Segment -> cap that blocked it in this shift (it lost exploration).
    warnings : list of str
    supersedes : list of str
        Plan ids of earlier plans of the same shift in the history.
    """

    plan_id: str
    date: str
    shift: str
    shift_start: str
    shift_end: str
    seed: int
    rng: str
    units: int
    units_requested: int
    units_per_area: dict[str, int] | None
    coverage: pd.DataFrame
    checks: pd.DataFrame
    stats: dict[str, Any]
    overrides: dict[str, Any]
    caps: dict[str, Any]
    blocked: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    supersedes: list[str] = field(default_factory=list)
    geometry: Any = None  # GeoSeries indexed by segment_id, or None
    audit_sha256: str | None = None  # sha256 of its audit-log line, once recorded

    @property
    def stem(self) -> str:
        """File-name stem ``<date>_<shift>``."""
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in self.shift)
        return f"{self.date}_{safe}"

    def audit_entry(
        self,
        *,
        model_id: str | None = None,
        risk_file: str | None = None,
        risk_sha256: str | None = None,
        created: str | None = None,
    ) -> dict[str, Any]:
        """The JSON-ready audit-log entry of this plan."""
        cov = self.coverage
        return {
            "type": "plan",
            "schema": 1,
            "plan_id": self.plan_id,
            "created": created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "software": f"riskmodel {__version__}",
            "model_id": model_id,
            "risk_file": risk_file,
            "risk_sha256": risk_sha256,
            "date": self.date,
            "shift": self.shift,
            "shift_start": self.shift_start,
            "shift_end": self.shift_end,
            "units": self.units,
            "units_requested": self.units_requested,
            "units_per_area": self.units_per_area,
            "seed": self.seed,
            "rng": self.rng,
            "caps": self.caps,
            "coverage": {s: round(float(c), 6) for s, c in cov["coverage"].items()},
            "expected": {s: round(float(r), 6) for s, r in cov["expected"].items()},
            "areas": {str(a): sorted(ids) for a, ids in cov.groupby("area").groups.items()},
            "blocked": dict(self.blocked),
            "exploration_lost": sorted(cov.index[cov["coverage"] <= 0].tolist()),
            "overrides": self.overrides,
            "entropy": self.stats["entropy"],
            "max_inclusion": self.stats["max_inclusion"],
            "chosen": self.checks["segment_id"].tolist(),
            "checks": self.checks[
                ["check_no", "unit", "segment_id", "slot_start", "slot_end"]
            ].to_dict(orient="records"),
            "expected_detections": self.stats["expected_detections"],
            "topk_expected_detections": self.stats["topk_expected_detections"],
            "stats": self.stats,
            "warnings": list(self.warnings),
            "supersedes": list(self.supersedes),
        }


def _shift_rng(seed: int, date: str, shift: str) -> tuple[np.random.Generator, str]:
    # One independent stream per shift: planning several shifts in one run or one at a time
    # with the same seed gives the same plan for each.
    key = zlib.crc32(f"{date}|{shift}".encode())
    desc = f"numpy PCG64(SeedSequence(entropy=seed, spawn_key=(crc32('{date}|{shift}')={key},)))"
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,))), desc


def _blocked_by_caps(
    seg_ids: np.ndarray, date: str, history: pd.DataFrame, config: PlanConfig
) -> dict[str, str]:
    """Segments whose window cap is already used up around ``date`` -> name of the cap."""
    blocked: dict[str, str] = {}
    if history.empty:
        return blocked
    for name, (days, limit) in config.window_caps().items():
        worst = window_max_counts(history, seg_ids, date, days)
        for sid in seg_ids[worst >= limit]:
            blocked.setdefault(str(sid), f"{name}={limit}")
    return blocked


def _solve_group(
    r: np.ndarray,
    n_units: int,
    floor: float,
    cap: np.ndarray,
    forced: np.ndarray,
    off: np.ndarray,
) -> tuple[np.ndarray, float, int]:
    """Coverage of one group (area or all) with forced/off segments; returns (c, level, units)."""
    upper = np.where(off, 0.0, cap)
    lower = np.where(off, 0.0, np.where(forced, upper, np.minimum(floor, upper)))
    capacity = math.floor(upper.sum() + 1e-9)
    n = min(int(n_units), capacity)
    if lower.sum() > n + _TOL:  # floors alone exceed the units: scale floors, keep forced
        free = ~forced & ~off
        room = n - lower[forced].sum()
        if room < -_TOL:
            raise InputError(
                f"--include forces {int(round(lower[forced].sum()))} checks but only {n} units",
                fix="include fewer segments or add units",
            )
        lower[free] *= max(room, 0.0) / max(lower[free].sum(), _TOL)
    if n <= 0:
        return np.zeros_like(r), 0.0, 0
    c, level = origami_coverage(r, n, lower, upper)
    return c, level, n


def _status(c: np.ndarray, floor: np.ndarray, cap: np.ndarray) -> np.ndarray:
    st = np.full(c.shape, "free", dtype=object)
    st[np.isclose(c, floor, atol=1e-9)] = "floor"
    st[np.isclose(c, cap, atol=1e-9)] = "cap"
    return st


def _slots(
    starts_utc: pd.Timestamp,
    ends_utc: pd.Timestamp,
    n: int,
    slot_hours: float,
    rng: np.random.Generator,
    tz: str,
) -> tuple[list[str], list[str]]:
    # Durations in UTC: DST nights last 7 or 9 h, not the wall-clock 8.
    dur_h = (ends_utc - starts_utc).total_seconds() / 3600.0
    slot_h = min(slot_hours, dur_h)
    n_starts = int(math.floor(dur_h - slot_h + 1e-9)) + 1
    offs = rng.integers(0, n_starts, size=n)
    st = starts_utc + pd.to_timedelta(offs, unit="h")
    en = st + pd.Timedelta(hours=slot_h)
    fmt = [t.isoformat() for t in pd.DatetimeIndex(st).tz_convert(tz)]
    fmt_e = [t.isoformat() for t in pd.DatetimeIndex(en).tz_convert(tz)]
    return fmt, fmt_e


def _reasons(df: pd.DataFrame) -> np.ndarray:
    cols = [c for c in REASON_COLUMNS if c in df.columns]
    out = np.full(len(df), "", dtype=object)
    for c in cols:
        v = df[c].astype(object).where(df[c].notna(), "").astype(str).str.strip()
        v = v.where(v.str.lower() != "nan", "").to_numpy(dtype=object)
        out = np.where((out != "") & (v != ""), out + "; " + v, out + v)
    return out


def _plan_one(
    grp: pd.DataFrame,
    *,
    units: int | None,
    units_per_area: dict[str, int] | None,
    config: PlanConfig,
    include: list[str],
    exclude: list[str],
    seed: int,
    history: pd.DataFrame,
    tz: str,
    geometry: Any,
) -> Plan:
    grp = grp.sort_values("segment_id", kind="stable").set_index("segment_id", drop=False)
    date = str(grp["date"].iloc[0])
    shift = str(grp["shift"].iloc[0])
    rng, rng_desc = _shift_rng(seed, date, shift)
    plan_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    seg = grp["segment_id"].to_numpy(dtype=object)
    r = grp["expected"].to_numpy(dtype=float)
    area = grp["area"].to_numpy(dtype=object)
    n = seg.size
    warnings: list[str] = []

    # Earlier plans of this very shift are replaced by this one: do not count them.
    same = (history["date"] == pd.Timestamp(date)) & (history["shift"] == shift)
    supersedes = sorted(history.loc[same, "plan_id"].unique().tolist()) if len(history) else []
    hist = history.loc[~same] if len(history) else history
    blocked = _blocked_by_caps(seg, date, hist, config)
    is_blocked = np.isin(seg, list(blocked))
    inc = np.isin(seg, include)
    exc = np.isin(seg, exclude)
    both = inc & exc
    if both.any():
        raise InputError(
            f"segment {seg[both][0]} is both in --include and --exclude",
            fix="list it in one of them",
        )
    for sid in seg[inc & is_blocked]:
        # Caps win over overrides: a cap must never be exceeded (CJEU C-9/16).
        warnings.append(f"--include {sid} not forced: it would break cap {blocked[sid]}")
    if config.per_shift < 1 and inc.any():
        warnings.append(f"--include segments limited to the per-shift cap {config.per_shift}")
    forced = inc & ~is_blocked
    cap = np.full(n, float(config.per_shift))

    # Units per group: one global group, or one per area.
    if units_per_area is not None:
        groups = {a: np.flatnonzero(area == a) for a in sorted(set(area))}
        alloc = {a: int(units_per_area.get(a, 0)) for a in groups}
        for a in groups:
            if a not in units_per_area:
                warnings.append(f"area {a!r} has no units: its segments get no coverage")
        requested = int(sum(units_per_area.values()))
    else:
        groups = {"*": np.arange(n)}
        alloc = {"*": int(units or 0)}
        requested = int(units or 0)

    c = np.zeros(n)
    c_unforced = np.zeros(n)
    floors = np.zeros(n)
    level: dict[str, float] = {}
    topk = np.zeros(n, dtype=bool)
    for a, idx in groups.items():
        n_a = alloc[a]
        if n_a <= 0 or idx.size == 0:
            for sid in seg[idx][forced[idx]]:
                warnings.append(f"--include {sid} not forced: area {a!r} has no units")
            continue
        fl = config.floor if config.floor is not None else config.floor_factor * n_a / idx.size
        floors[idx] = np.minimum(fl, cap[idx])
        c[idx], level[a], got = _solve_group(
            r[idx], n_a, fl, cap[idx], forced[idx], exc[idx] | is_blocked[idx]
        )
        c_unforced[idx], _, _ = _solve_group(
            r[idx], n_a, fl, cap[idx], np.zeros(idx.size, bool), is_blocked[idx]
        )
        if got < n_a:
            warnings.append(
                f"only {got} of {n_a} units usable{'' if a == '*' else f' in {a}'}: "
                "caps/exclusions leave too little room"
            )
        topk[idx] = top_k(r[idx], got, forced[idx], exc[idx] | is_blocked[idx])

    # Sample per group (the global group is one comb; per area one comb each).
    chosen = np.zeros(n, dtype=bool)
    for idx in groups.values():
        if c[idx].sum() > 0.5:
            chosen[idx] = systematic_sample(c[idx], rng)
    pick = np.flatnonzero(chosen)
    s_start, s_end = _slots(
        grp["_shift_start_utc"].iloc[0],
        grp["_shift_end_utc"].iloc[0],
        pick.size,
        config.slot_hours,
        rng,
        tz,
    )

    reasons = _reasons(grp)
    checks = pd.DataFrame(
        {
            "segment_id": seg[pick],
            "area": area[pick],
            "slot_start": s_start,
            "slot_end": s_end,
            "coverage": np.round(c[pick], 6),
            "expected": np.round(r[pick], 6),
            "reasons": reasons[pick],
        }
    )
    checks = checks.sort_values(["area", "slot_start", "segment_id"], kind="stable").reset_index(
        drop=True
    )
    checks.insert(0, "unit", [f"U{i + 1:02d}" for i in range(len(checks))])
    checks.insert(0, "check_no", np.arange(1, len(checks) + 1))

    status = _status(c, floors, cap)
    status[forced] = "included"
    status[exc] = "excluded"
    status[is_blocked] = "blocked"
    no_units = (
        np.isin(area, [a for a, v in alloc.items() if v <= 0])
        if units_per_area
        else np.zeros(n, bool)
    )
    status[no_units] = "no_units"
    coverage = pd.DataFrame(
        {
            "area": area,
            "expected": r,
            "coverage": c,
            "floor": floors,
            "cap": np.where(is_blocked | exc, 0.0, cap),
            "status": status,
            "reasons": reasons,
        },
        index=pd.Index(seg, name="segment_id"),
    )

    h_after = normalised_entropy(c)
    h_before = normalised_entropy(c_unforced)
    ratio = h_after / h_before if h_before > 0 else None
    if (inc.any() or exc.any()) and ratio is not None and ratio < config.entropy_ratio_min:
        warnings.append(
            f"overrides lower coverage entropy to {ratio:.2f} of the unforced plan "
            f"(threshold {config.entropy_ratio_min}): the plan gets predictable"
        )
    lost = seg[(c <= 0) & ~exc]
    if len(lost):
        log.info(
            "%s %s: %d segment(s) without coverage (caps/no units): exploration lost",
            date,
            shift,
            len(lost),
        )
    seg_set = set(seg)
    inc_here = [s for s in include if s in seg_set]
    exc_here = [s for s in exclude if s in seg_set]
    stats = {
        "segments": int(n),
        "entropy": round(h_after, 6),
        "max_inclusion": round(float(c.max()) if n else 0.0, 6),
        "min_inclusion_nonblocked": round(float(c[c > 0].min()) if (c > 0).any() else 0.0, 6),
        "expected_detections": round(float((c * r).sum()), 6),
        "realised_expected": round(float(r[chosen].sum()), 6),
        "worst_case_residual": round(float((r * (1 - c)).max()) if n else 0.0, 6),
        "residual_level": {k: round(v, 9) for k, v in level.items()},
        "topk_expected_detections": round(float(r[topk].sum()), 6),
        "topk_entropy": round(normalised_entropy(topk.astype(float)), 6),
        "topk_max_inclusion": 1.0 if topk.any() else 0.0,
        "topk_worst_case_residual": round(float(r[~topk].max()) if (~topk).any() else 0.0, 6),
        "blocked_by_caps": int(is_blocked.sum()),
        "zero_coverage": int((c <= 0).sum()),
    }
    overrides = {
        "include": inc_here,
        "exclude": exc_here,
        "entropy_before": round(h_before, 6),
        "entropy_after": round(h_after, 6),
        "entropy_ratio": round(ratio, 6) if ratio is not None else None,
    }
    for w in warnings:
        log.warning("%s %s: %s", date, shift, w)
    geom = None
    if geometry is not None:
        geom = geometry.reindex(coverage.index)
    return Plan(
        plan_id=plan_id,
        date=date,
        shift=shift,
        shift_start=pd.Timestamp(str(grp["shift_start"].iloc[0])).isoformat(),
        shift_end=pd.Timestamp(str(grp["shift_end"].iloc[0])).isoformat(),
        seed=int(seed),
        rng=rng_desc,
        units=int(len(checks)),
        units_requested=requested,
        units_per_area=(dict(alloc) if units_per_area is not None else None),
        coverage=coverage,
        checks=checks,
        stats=stats,
        overrides=overrides,
        caps=config.as_dict(),
        blocked=blocked,
        warnings=warnings,
        supersedes=supersedes,
        geometry=geom,
    )


def _geometry_of(risk: pd.DataFrame, segments: pd.DataFrame | None) -> Any:
    src = None
    if segments is not None and "geometry" in segments.columns:
        src = segments
    elif "geometry" in risk.columns and hasattr(risk, "crs"):
        src = risk.drop_duplicates("segment_id")
    if src is None:
        return None
    import geopandas as gpd

    gs = gpd.GeoSeries(
        src["geometry"].to_numpy(),
        index=src["segment_id"].astype(str).to_numpy(),
        crs=getattr(src, "crs", None),
    )
    return gs[~gs.index.duplicated()]


def make_plans(
    risk: pd.DataFrame,
    units: int | None = None,
    *,
    units_per_area: dict[str, int] | None = None,
    config: PlanConfig | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    shift: str | None = None,
    seed: int | None = None,
    history: pd.DataFrame | None = None,
    segments: pd.DataFrame | None = None,
    tz: str = "Europe/Ljubljana",
) -> list[Plan]:
    """Make one plan per (date, shift) of a risk table, in chronological order.

    This is the library entry point: it does not care where the risk came from (a CSV, or
    scoring run just before). It is pure: nothing is read or written.

    Parameters
    ----------
    risk : DataFrame
        Risk contract (see module docs); several shifts may be stacked.
    units : int, optional
        Checks per shift (``N``); required unless ``units_per_area`` is given.
    units_per_area : dict, optional
        ``{area: units}``: coverage is solved and sampled per area.
    config : PlanConfig, optional
        Caps and parameters (default :class:`PlanConfig`).
    include, exclude : sequence of str
        Segment ids forced to full (capped) coverage / to zero coverage.
    shift : str, optional
        Plan only this shift name.
    seed : int, optional
        Seed; default 64 bits of OS entropy (``secrets.randbits(64)``).
    history : DataFrame, optional
        Executed checks of earlier plans (:func:`riskmodel.audit.log.checks_history`); frequency
        caps are counted from it. Plans made here are added for the later shifts.
    segments : GeoDataFrame, optional
        Segment geometry (for maps); else the risk's own geometry if it has one.
    tz : str
        Zone of the printed slot times.

    Returns
    -------
    list of Plan

    Raises
    ------
    InputError
        Unknown override ids (with close matches), unknown shift, bad unit counts.
    """
    config = config or PlanConfig()
    if "threat" in risk.columns and risk["threat"].notna().all():
        # Plans follow the effort-neutral risk (where people cross), not expected *recorded*
        # events, which rise wherever patrols already are (detection bias, PAWS/iWare-E).
        risk = risk.assign(expected=risk["threat"])
    if not {"_shift_start_utc", "_shift_end_utc"} <= set(risk.columns):
        risk = validate_risk(risk)
    seed = secrets.randbits(64) if seed is None else int(seed)
    if seed < 0:
        raise InputError(f"seed {seed} is negative", fix="use a seed >= 0")
    include, exclude = parse_ids(include), parse_ids(exclude)
    known = risk["segment_id"].unique().tolist()
    _check_ids(include, known, "--include")
    _check_ids(exclude, known, "--exclude")
    if shift is not None:
        if shift not in set(risk["shift"]):
            raise InputError(
                f"shift {shift!r} is not in the risk table",
                fix=f"use one of: {', '.join(sorted(set(risk['shift'])))}",
            )
        risk = risk[risk["shift"] == shift]
    if units_per_area is not None:
        unknown = sorted(set(units_per_area) - set(risk["area"]))
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(set(risk["area"])), n=3)
            raise InputError(
                f"units-per-area: unknown area {unknown[0]!r}"
                + (f" (did you mean {', '.join(close)}?)" if close else ""),
                fix="use area names from the risk table",
            )
        total = sum(units_per_area.values())
        if units is not None and units != total:
            raise InputError(
                f"--units {units} differs from the {total} units of --units-per-area",
                fix="drop --units or make them agree",
            )
        if total < 1:
            raise InputError("units-per-area assigns no units", fix="give at least one unit")
    elif units is None or units < 1:
        raise InputError(f"--units must be >= 1 (got {units})", fix="give the number of checks")
    hist = history if history is not None else checks_history([])
    geometry = _geometry_of(risk, segments)
    order = (
        risk.groupby(["date", "shift"], sort=False)["_shift_start_utc"]
        .min()
        .sort_values(kind="stable")
    )
    plans: list[Plan] = []
    for date, shift_name in order.index:
        grp = risk[(risk["date"] == date) & (risk["shift"] == shift_name)]
        p = _plan_one(
            grp,
            units=units,
            units_per_area=units_per_area,
            config=config,
            include=include,
            exclude=exclude,
            seed=seed,
            history=hist,
            tz=tz,
            geometry=geometry,
        )
        plans.append(p)
        new = checks_history(
            [
                {
                    "type": "plan",
                    "date": p.date,
                    "shift": p.shift,
                    "plan_id": p.plan_id,
                    "chosen": p.checks["segment_id"].tolist(),
                }
            ]
        )
        same = (hist["date"] == pd.Timestamp(p.date)) & (hist["shift"] == p.shift)
        hist = pd.concat([hist.loc[~same], new], ignore_index=True) if len(hist) else new
    return plans


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def plan_csv(plan: Plan) -> str:
    """The plan table as CSV text (deterministic for a seed)."""
    return plan.checks.to_csv(index=False, lineterminator="\n")


def _svg_sketch(plan: Plan, width: int = 900) -> str:
    """Inline SVG of the border with checked segments (no external references)."""
    cov = plan.coverage
    checked = plan.checks.set_index("segment_id")["check_no"]
    geom = plan.geometry
    if geom is not None and geom.notna().any():
        import shapely

        g = geom[geom.notna()]
        coords, idx = shapely.get_coordinates(g.to_numpy(), return_index=True)
        if len(coords):
            x0, y0 = coords.min(axis=0)
            x1, y1 = coords.max(axis=0)
            span = max(x1 - x0, y1 - y0, 1.0)
            pad = 12
            sc = (width - 2 * pad) / span
            height = int((y1 - y0) * sc + 2 * pad)
            px = (coords[:, 0] - x0) * sc + pad
            py = (y1 - coords[:, 1]) * sc + pad  # SVG y grows downwards
            ids = g.index.to_numpy()
            splits = np.flatnonzero(np.diff(idx)) + 1
            parts = []
            labels = []
            for k, (xs, ys) in enumerate(
                zip(np.split(px, splits), np.split(py, splits), strict=True)
            ):
                sid = ids[idx[np.concatenate([[0], splits])[k]]]
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
                if sid in checked.index:
                    parts.append(f'<polyline points="{pts}" class="chk"/>')
                    labels.append(
                        f'<text x="{xs[len(xs) // 2] + 4:.1f}" y="{ys[len(ys) // 2] - 4:.1f}">'
                        f"{int(checked[sid])}</text>"
                    )
                else:
                    parts.append(f'<polyline points="{pts}" class="seg"/>')
            body = "".join(parts) + "".join(labels)
            return (
                f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
                f'aria-label="Border sketch with checked segments">'
                f"<style>.seg{{fill:none;stroke:#999;stroke-width:1.5}}"
                f".chk{{fill:none;stroke:#c00;stroke-width:5}}"
                f"text{{font:bold 12px sans-serif;fill:#c00}}</style>{body}</svg>"
            )
    # No geometry: a strip of segments in id order (bar height = coverage), checks in red.
    n = len(cov)
    if n == 0:
        return ""
    h = 90
    bw = width / n
    bars = []
    cmax = max(float(cov["coverage"].max()), 1e-9)
    for k, (sid, c) in enumerate(cov["coverage"].items()):
        bh = 60 * float(c) / cmax
        cls = "chk" if sid in checked.index else "seg"
        bars.append(
            f'<rect x="{k * bw:.2f}" y="{70 - bh:.2f}" width="{max(bw, 0.5):.2f}" '
            f'height="{bh:.2f}" class="{cls}"/>'
        )
    return (
        f'<svg viewBox="0 0 {width} {h}" width="100%" role="img" '
        f'aria-label="Coverage per segment along the border, checked segments in red">'
        f"<style>.seg{{fill:#bbb}}.chk{{fill:#c00}}text{{font:11px sans-serif}}</style>"
        f"{''.join(bars)}"
        f'<text x="0" y="86">{html.escape(str(cov.index[0]))}</text>'
        f'<text x="{width}" y="86" text-anchor="end">{html.escape(str(cov.index[-1]))}</text>'
        f"</svg>"
    )


def briefing_html(plan: Plan) -> str:
    """Self-contained printable shift briefing (no external URLs)."""
    e = html.escape
    s = plan.stats
    rows = []
    for unit, sub in plan.checks.groupby("unit", sort=True):
        for rec in sub.itertuples(index=False):
            rows.append(
                f"<tr><td>{e(str(unit))}</td><td>{rec.check_no}</td><td>{e(str(rec.segment_id))}</td>"
                f"<td>{e(str(rec.area))}</td><td>{e(rec.slot_start[11:16])}&ndash;{e(rec.slot_end[11:16])}"
                f"<br><small>{e(rec.slot_start)}</small></td><td>{e(str(rec.reasons))}</td>"
                f"<td>{rec.coverage:.3f}</td></tr>"
            )
    warn = "".join(f"<li>{e(w)}</li>" for w in plan.warnings)
    ov = plan.overrides
    summary = [
        ("Checks (units)", f"{plan.units} of {plan.units_requested} requested"),
        (
            "Segments",
            f"{s['segments']} ({s['zero_coverage']} without coverage, "
            f"{s['blocked_by_caps']} blocked by frequency caps)",
        ),
        (
            "Coverage entropy (normalised)",
            f"{s['entropy']:.3f} (deterministic top-k: {s['topk_entropy']:.3f})",
        ),
        ("Largest inclusion probability", f"{s['max_inclusion']:.3f} (top-k: 1.000)"),
        (
            "Expected detections, this distribution",
            f"{s['expected_detections']:.2f} "
            f"(deterministic top-k: {s['topk_expected_detections']:.2f})",
        ),
        (
            "Worst-case residual for an adaptive adversary",
            f"{s['worst_case_residual']:.3f} (top-k: {s['topk_worst_case_residual']:.3f})",
        ),
        (
            "Overrides",
            f"include {', '.join(ov['include']) or 'none'}; exclude "
            f"{', '.join(ov['exclude']) or 'none'}",
        ),
        (
            "Per-shift cap / frequency caps",
            ", ".join(
                f"{k}={v}"
                for k, v in plan.caps.items()
                if k
                in (
                    "per_shift",
                    "max_per_segment_per_7d",
                    "max_per_segment_per_30d",
                    "max_share_of_shifts",
                )
                and v is not None
            ),
        ),
    ]
    summ = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Spot-check briefing {e(plan.date)} {e(plan.shift)}</title>
<style>
body{{font:13px/1.4 sans-serif;margin:1.5em;color:#111}}
h1{{font-size:20px;margin:0 0 .2em}} h2{{font-size:15px;margin:1.2em 0 .4em}}
table{{border-collapse:collapse;width:100%}} td,th{{border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top}}
thead th{{background:#eee}} .meta{{color:#444}} .legal{{font-size:11px;border-top:1px solid #999;margin-top:1.5em;padding-top:.5em}}
.warn{{color:#a00}} @media print{{body{{margin:0}} tr{{page-break-inside:avoid}}}}
</style></head><body>
<h1>Spot-check briefing &mdash; {e(plan.date)}, {e(plan.shift)} shift</h1>
<p class="meta">Shift {e(plan.shift_start)} to {e(plan.shift_end)} &middot; plan {e(plan.plan_id)}</p>
<h2>Checks by unit</h2>
<table><thead><tr><th>Unit</th><th>No.</th><th>Segment</th><th>Area</th><th>Time slot</th>
<th>Why (risk factors)</th><th>Coverage</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
<h2>Border sketch</h2>
{_svg_sketch(plan)}
<h2>Coverage summary</h2>
<table>{summ}</table>
{f'<h2>Warnings</h2><ul class="warn">{warn}</ul>' if warn else ""}
<p class="legal"><b>Legal basis.</b> {e(LEGAL_NOTE)}</p>
</body></html>
"""


def write_plan_outputs(
    plan: Plan, out: str | os.PathLike[str], provenance: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``plan_<date>_<shift>.csv``, ``briefing_<date>_<shift>.html`` and, with geometry,
    ``plan_<date>_<shift>.geojson`` + ``.qml`` into ``out`` (atomic; deterministic for a seed).

    Returns
    -------
    list of Path
        Files written.
    """
    out = Path(out)
    written = [
        atomic_write_text(out / f"plan_{plan.stem}.csv", plan_csv(plan)),
        atomic_write_text(out / f"briefing_{plan.stem}.html", briefing_html(plan)),
    ]
    if plan.geometry is not None and plan.geometry.notna().any():
        import geopandas as gpd

        from riskmodel.io.write.geojson import write_geojson
        from riskmodel.io.write.qml import qml_plan_style

        crs = plan.geometry.crs
        if crs is None:  # RFC 7946 with no CRS writes empty geometries: assume the contract CRS
            log.warning("segment geometry has no CRS; assuming EPSG:3794")
            crs = "EPSG:3794"
        # One feature per check (the plan style draws every feature as a check).
        chk = plan.checks
        gdf = gpd.GeoDataFrame(
            chk.assign(status=plan.coverage["status"].reindex(chk["segment_id"]).to_numpy()),
            geometry=plan.geometry.reindex(chk["segment_id"]).to_numpy(),
            crs=crs,
        )
        gdf = gdf[gdf.geometry.notna()]
        prov = {
            "plan_id": plan.plan_id,
            "date": plan.date,
            "shift": plan.shift,
            **(provenance or {}),
        }
        path = out / f"plan_{plan.stem}.geojson"
        write_geojson(gdf, path, provenance=prov, qml=qml_plan_style())
        written += [path, path.with_suffix(".qml")]
    return written


def run_plan(
    risk: pd.DataFrame,
    out: str | os.PathLike[str],
    audit_log: str | os.PathLike[str],
    units: int | None = None,
    *,
    units_per_area: dict[str, int] | None = None,
    config: PlanConfig | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    shift: str | None = None,
    seed: int | None = None,
    segments: pd.DataFrame | None = None,
    tz: str = "Europe/Ljubljana",
    model_id: str | None = None,
    risk_file: str | os.PathLike[str] | None = None,
) -> list[tuple[Plan, list[Path]]]:
    """Plan, record and write: the full ``riskmodel plan`` run.

    Locks the output folder and the audit log, reads the executed checks from the log, makes
    the plans (:func:`make_plans`), and for each plan first appends its audit entry (O_APPEND,
    fsync) and then writes its files. A plan is never handed out unrecorded.

    Parameters
    ----------
    risk : DataFrame
        Risk table (e.g. :func:`read_risk`, or fresh from scoring).
    out : path-like
        Output folder.
    audit_log : path-like
        Append-only JSON-lines audit log.
    units, units_per_area, config, include, exclude, shift, seed, segments, tz
        As in :func:`make_plans`.
    model_id : str, optional
        Id of the model that scored the risk (recorded; else the risk's ``model_id`` column).
    risk_file : path-like, optional
        The risk file (its sha256 is recorded).

    Returns
    -------
    list of (Plan, list of Path)
    """
    config = config or PlanConfig()
    if not config.has_window_caps:
        log.warning(
            "no frequency caps configured (--caps): CJEU C-9/16 requires limits on the "
            "frequency of checks"
        )
    risk_sha = sha256_file(risk_file) if risk_file else None
    if model_id is None and "model_id" in risk.columns:
        ids = sorted(set(risk["model_id"].dropna().astype(str)))
        model_id = ",".join(ids) or None
    results: list[tuple[Plan, list[Path]]] = []
    with folder_lock(out), AuditLog(audit_log) as alog:
        entries, _ = alog.read()
        history = checks_history(entries)
        plans = make_plans(
            risk,
            units,
            units_per_area=units_per_area,
            config=config,
            include=include,
            exclude=exclude,
            shift=shift,
            seed=seed,
            history=history,
            segments=segments,
            tz=tz,
        )
        for p in plans:
            written = alog.append(
                p.audit_entry(
                    model_id=model_id,
                    risk_file=str(risk_file) if risk_file else None,
                    risk_sha256=risk_sha,
                )
            )
            p.audit_sha256 = hashlib.sha256(encode_entry(written)).hexdigest()
            prov = {"model_id": model_id, "risk_sha256": risk_sha, "audit_log": str(audit_log)}
            files = write_plan_outputs(p, out, provenance=prov)
            results.append((p, files))
    return results
