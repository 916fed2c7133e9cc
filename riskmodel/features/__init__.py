"""Features: a declarative spec (TOML) -> one engine -> feature frames and plain-word reasons.

Modules: ``spec`` (FeatureSpec), ``panel`` (Panel, assign_segments), ``kernels`` (sums and
neighbourhoods), ``family`` (Column, Family, Block), the families ``history``, ``effort``,
``timing``, ``place`` (also static_features), ``registry`` (frame order, describe,
reason_group) and ``engine`` (FeatureContext, build_features, blocks).
"""

from riskmodel.features.effort import EXPOSURE_FEATURE
from riskmodel.features.engine import (
    DEFAULT_BLOCK_ROWS,
    FeatureContext,
    build_features,
    build_features_blocked,
    feature_columns,
)
from riskmodel.features.panel import Panel, assign_segments
from riskmodel.features.place import static_features
from riskmodel.features.registry import describe, reason_group
from riskmodel.features.spec import FeatureSpec

__all__ = [
    "DEFAULT_BLOCK_ROWS",
    "EXPOSURE_FEATURE",
    "FeatureContext",
    "FeatureSpec",
    "Panel",
    "assign_segments",
    "build_features",
    "build_features_blocked",
    "describe",
    "feature_columns",
    "reason_group",
    "static_features",
]
