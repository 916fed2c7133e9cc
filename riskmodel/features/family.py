"""What a feature is: a :class:`Column` of a :class:`Family` that computes and describes it.

A family computes its columns for a :class:`Block` of target windows x segments from the
precomputed history of a panel, and turns one value into plain words with the numbers of the
spec that produced it (an analyst who edits the TOML gets reasons with the new numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from riskmodel.features._sparse import RowSparse

if TYPE_CHECKING:
    from riskmodel.features.spec import FeatureSpec

NEIGHBOUR_KM = 3  # fixed +-km stretch of the decay, days-since, shift-profile and trend features


@dataclass(frozen=True)
class Column:
    """One feature column.

    Attributes
    ----------
    name : str
        Column name in feature frames and models (internal; never shown in a reason).
    family : str
        Key of the :class:`Family` that computes and describes it.
    group : str
        Reason group: a scored shift gets at most one reason per group, so its reasons are
        not three variants of one count.
    params : dict
        The spec's numbers for this column (days, km, hours, ...).
    """

    name: str
    family: str
    group: str
    params: Mapping[str, Any] = field(default_factory=dict)


Where = Mapping[str, Any]
"""Plain-word context of one scored row: ``shift``, ``month``, ``area`` and the names of /
distances to the nearest crossing, corridor and settlements (see ``scoring``)."""


@dataclass(frozen=True)
class Family:
    """A family of feature columns.

    Attributes
    ----------
    key : str
        Registry key.
    section : str or None
        Spec section that switches the family on (``None``: always present).
    columns : callable (spec) -> list of Column
        The family's columns for a spec, in frame order.
    compute : callable (ctx, block, columns) -> iterator of ndarray
        One (R, T) array per column, in the order of ``columns``; ``ctx`` is the
        :class:`riskmodel.features.engine.FeatureContext`.
    describe : callable (column, value, where) -> str
        Plain words for one value.
    """

    key: str
    section: str | None
    columns: Callable[[FeatureSpec], list[Column]]
    compute: Callable[[Any, Block, list[Column]], Iterator[np.ndarray]]
    describe: Callable[[Column, float, Where], str]


class Block:
    """Target windows x segments being computed; helpers return segment-major (R, T) arrays.

    Parameters
    ----------
    targets : ndarray of int
        Window indices.
    segs : ndarray of int or None
        Segment indices (``None``: all ``S`` segments).
    S : int
        Number of segments.
    effort_now : ndarray (T, S), optional
        In-window officer-hours override.
    """

    def __init__(
        self,
        targets: np.ndarray,
        segs: np.ndarray | None,
        S: int,
        effort_now: np.ndarray | None = None,
    ) -> None:
        self.tg = np.asarray(targets, dtype=int)
        self.full = segs is None
        self.rows = np.arange(S) if segs is None else np.asarray(segs, dtype=int)
        self.T, self.R = len(self.tg), len(self.rows)
        self.effort_now = effort_now

    def lookback(self, cum_t: np.ndarray, n: int) -> np.ndarray:
        """(S, T) sums of the ``n`` windows before each target from a segment-major
        cumulative matrix (all segments: neighbourhoods read them)."""
        tg = self.tg
        return cum_t[:, tg] - cum_t[:, np.clip(tg - n, 0, None)]

    def nb(self, m: RowSparse, arr_t: np.ndarray) -> np.ndarray:
        """Neighbourhood sums ``m @ arr_t`` for the block's segments."""
        # Row-slicing keeps each row's entries in order: same sums as the full product, for
        # the block's segments only.
        return (m if self.full else m[self.rows]) @ arr_t

    def sel(self, arr_t: np.ndarray) -> np.ndarray:
        """The block's segments of a segment-major array."""
        return arr_t if self.full else arr_t[self.rows]

    def per_window(self, v: np.ndarray) -> np.ndarray:
        """Broadcast one value per target window to (R, T)."""
        return np.broadcast_to(np.asarray(v)[None, :], (self.R, self.T))

    def per_segment(self, v: np.ndarray) -> np.ndarray:
        """Broadcast one value per segment (all ``S``) to the block's (R, T)."""
        return np.broadcast_to(np.asarray(v)[self.rows][:, None], (self.R, self.T))


# ----------------------------------------------------------------------------- words


def plural(n: float, word: str, words: str | None = None) -> str:
    """``"1 incident"``, ``"3 incidents"`` (``n`` rounded to a whole number)."""
    k = round(float(n))
    return f"{k:.0f} {word if k == 1 else (words or word + 's')}"


def period(days: float) -> str:
    """A look-back in words: ``"day"``, ``"7 days"``, ``"365 days"``, ``"2 years"``."""
    d = float(days)
    if d >= 730 and d % 365 == 0:
        return f"{d / 365:g} years"
    return "day" if d == 1 else f"{d:g} days"


def hours(h: float) -> str:
    """Hours in words: ``"72 h"``, or whole days past 72 h (``"4 days"``)."""
    h = float(h)
    return f"{h / 24:g} days" if h > 72 and h % 24 == 0 else f"{h:g} h"
