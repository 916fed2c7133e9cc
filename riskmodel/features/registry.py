"""The feature registry: every feature family in frame order, and the words for a value.

A spec's columns are the columns of its enabled families, in the order of :data:`FAMILIES`
(the order of feature frames and models). Reasons are rendered here, with the spec's own
numbers: :func:`describe` and :func:`reason_group` are what scoring uses.
"""

from __future__ import annotations

from collections.abc import Mapping

from riskmodel.errors import ConfigError
from riskmodel.features import effort, history, place, timing
from riskmodel.features.family import Column, Family, Where
from riskmodel.features.spec import FeatureSpec

FAMILIES: tuple[Family, ...] = (
    *history.FAMILIES,
    *effort.FAMILIES,
    *timing.FAMILIES,
    place.PLACE,
    place.ROUTE,
    place.CHAINAGE,
)
"""Every family, in frame order."""

_BY_KEY = {f.key: f for f in FAMILIES}


def family(key: str) -> Family:
    """The family registered under ``key``."""
    return _BY_KEY[key]


def active_families(spec: FeatureSpec) -> list[tuple[Family, list[Column]]]:
    """The spec's enabled families with their columns, in frame order."""
    out = []
    for fam in FAMILIES:
        if fam.section is None or spec.enabled(fam.section):
            cols = fam.columns(spec)
            if cols:
                out.append((fam, cols))
    return out


def columns(spec: FeatureSpec) -> list[Column]:
    """Every feature column of ``spec``, in frame order."""
    return [c for _, cols in active_families(spec) for c in cols]


def column_map(spec: FeatureSpec) -> dict[str, Column]:
    """Column name -> :class:`Column` for ``spec``."""
    return {c.name: c for c in columns(spec)}


def _column(name: str, spec: FeatureSpec | Mapping[str, Column]) -> Column:
    cmap = spec if isinstance(spec, Mapping) else column_map(spec)
    try:
        return cmap[name]
    except KeyError:
        raise ConfigError(
            f"feature {name!r} is not produced by the feature spec",
            fix="score with the feature spec the model was trained with",
        ) from None


def reason_group(name: str, spec: FeatureSpec | Mapping[str, Column]) -> str:
    """Reason group of a feature (a scored row gets at most one reason per group)."""
    return _column(name, spec).group


def describe(
    name: str,
    value: float,
    spec: FeatureSpec | Mapping[str, Column],
    where: Where | None = None,
) -> str:
    """Plain words for one value of feature ``name``, with the numbers of ``spec``.

    Parameters
    ----------
    name : str
        Feature column.
    value : float
    spec : FeatureSpec or dict
        The spec (or its :func:`column_map`, to reuse it over many rows).
    where : dict, optional
        Context of the row: ``shift``, ``month``, ``area``, the names of the nearest
        ``crossing_name``, ``corridor_name``, ``settlement_far_name``, ``settlement_si_name``
        and the distances ``dist_corridor_km``, ``dist_settlement_far_km``,
        ``dist_settlement_si_km``.
    """
    col = _column(name, spec)
    return _BY_KEY[col.family].describe(col, float(value), where or {})
