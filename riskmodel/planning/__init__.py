"""Planning: coverage, sampling, caps, plans.

The library entry points are :func:`make_plans` (risk frame in, plans out) and
:class:`PlanConfig` (the caps); the rule book of caps is :mod:`riskmodel.planning.caps`.
"""

from riskmodel.planning.caps import PlanConfig, load_caps, share_cap_count
from riskmodel.planning.coverage import normalised_entropy, origami_coverage
from riskmodel.planning.overrides import parse_ids
from riskmodel.planning.plan import Plan, make_plans
from riskmodel.planning.sampling import systematic_sample, top_k

__all__ = [
    "Plan",
    "PlanConfig",
    "load_caps",
    "make_plans",
    "normalised_entropy",
    "origami_coverage",
    "parse_ids",
    "share_cap_count",
    "systematic_sample",
    "top_k",
]
