"""Sampling: seeded random streams, systematic sampling, time slots and the top-k baseline.

See METHODOLOGY.md, sections 4.4 (sampling), 4.5 (seed) and 4.7 (top-k).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd


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


def top_k(risk: np.ndarray, n_units: int, forced: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """Deterministic top-k baseline: forced segments, then the highest risks (ties by order)."""
    r = np.asarray(risk, dtype=float)
    pick = forced.copy()
    k = max(int(n_units) - int(pick.sum()), 0)
    cand = ~(blocked | pick)
    order = np.flatnonzero(cand)[np.argsort(-r[cand], kind="stable")]
    pick[order[:k]] = True
    return pick


def shift_rng(seed: int, date: str, shift: str) -> tuple[np.random.Generator, str]:
    """The random stream of one shift, derived from the run seed and ``crc32(date|shift)``.

    One independent stream per shift: planning several shifts in one run or one at a time with
    the same seed gives the same plan for each.

    Returns
    -------
    rng : numpy Generator
    description : str
        How the stream derives from the seed (recorded in the audit log).
    """
    key = zlib.crc32(f"{date}|{shift}".encode())
    desc = f"numpy PCG64(SeedSequence(entropy=seed, spawn_key=(crc32('{date}|{shift}')={key},)))"
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,))), desc


def draw_slots(
    starts_utc: pd.Timestamp,
    ends_utc: pd.Timestamp,
    n: int,
    slot_hours: float,
    rng: np.random.Generator,
    tz: str,
) -> tuple[list[str], list[str]]:
    """Random time slots of ``n`` checks inside a shift, starting on whole hours after its start.

    Parameters
    ----------
    starts_utc, ends_utc : Timestamp
        Shift start and end (UTC).
    n : int
        Number of slots.
    slot_hours : float
        Slot length (cut to the shift length).
    rng : numpy Generator
    tz : str
        Zone of the returned times.

    Returns
    -------
    starts, ends : list of str
        ISO 8601 times with offset in ``tz``.
    """
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
