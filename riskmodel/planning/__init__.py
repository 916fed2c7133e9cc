"""Planning: coverage, sampling, caps, plans."""

from riskmodel.planning.plan import PlanConfig, make_plans

__all__ = ["PlanConfig", "make_plans"]
