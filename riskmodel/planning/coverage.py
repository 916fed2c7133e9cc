"""Coverage: the inclusion probability of every segment in one shift.

ORIGAMI (Stackelberg security game with one resource type, as in ARMOR/IRIS): equalise the
attacker's residual payoff ``r_i (1 - c_i)`` over the covered segments, subject to
``sum c_i = N`` units, an exploration floor ``c_i >= floor > 0`` and a per-shift cap
``c_i <= cap`` (METHODOLOGY.md, section 4.2). :func:`normalised_entropy` measures how random a
coverage is (section 4.6).
"""

from __future__ import annotations

import math

import numpy as np

from riskmodel.errors import InputError

_TOL = 1e-9


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


def solve_group(
    r: np.ndarray,
    n_units: int,
    floor: float,
    cap: np.ndarray,
    forced: np.ndarray,
    off: np.ndarray,
) -> tuple[np.ndarray, float, int]:
    """Coverage of one group of segments (one area, or all) with forced and switched-off segments.

    Parameters
    ----------
    r : ndarray
        Risk of each segment of the group.
    n_units : int
        Units of the group; fewer are used when the caps leave less room.
    floor : float
        Exploration floor (scaled down when the floors alone exceed the units).
    cap : ndarray
        Per-shift cap of each segment.
    forced, off : ndarray of bool
        Segments forced to their cap (``--include``) / to zero (``--exclude``, blocked).

    Returns
    -------
    coverage : ndarray
    level : float
        The equalised residual (:func:`origami_coverage`).
    units : int
        Units actually used.

    Raises
    ------
    InputError
        The forced segments need more units than the group has.
    """
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


def coverage_status(c: np.ndarray, floor: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """``"free"``, ``"floor"`` or ``"cap"``: which bound (if any) holds each coverage."""
    st = np.full(c.shape, "free", dtype=object)
    st[np.isclose(c, floor, atol=1e-9)] = "floor"
    st[np.isclose(c, cap, atol=1e-9)] = "cap"
    return st
