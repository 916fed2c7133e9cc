"""The library facade the CLI and notebooks use: each function is one verb.

files -> validated frames -> features -> model -> scores -> plan -> writers.

Names are imported on first use (PEP 562): ``from riskmodel.api import run_score`` loads the
scoring modules only, not training, evaluation, simulation or planning (``riskmodel score``
starts faster; bench/bench_cli.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from riskmodel.api._daily import DailyResult, run_daily
    from riskmodel.api._db import audit_target, db_init, export_audit, import_audit
    from riskmodel.api._evaluate import backtest
    from riskmodel.api._geo import build_segments, write_layer
    from riskmodel.api._inputs import read_border, read_inputs, read_segments, validate_inputs
    from riskmodel.api._model import (
        check_bundle_matches,
        load_model,
        model_card,
        train_bundle,
        training_engine,
    )
    from riskmodel.api._plan import (
        audit_report,
        audit_summary,
        repair_log,
        run_plan,
        write_audit_report,
    )
    from riskmodel.api._publish import PublishResult, publish
    from riskmodel.api._registry import list_models, models_root, show_model, use_model
    from riskmodel.api._score import (
        RISK_COLUMNS,
        provenance,
        run_score,
        score_dates,
        score_for_plan,
        write_score_outputs,
    )
    from riskmodel.api._sim import run_field_trial, run_simulation, scenario_params
    from riskmodel.api._workspace import init_workspace
    from riskmodel.io.read.risk import read_risk, read_units_per_area
    from riskmodel.planning import PlanConfig, load_caps, make_plans, parse_ids

# Name -> module that defines it.
_WHERE = {
    "DailyResult": "riskmodel.api._daily",
    "run_daily": "riskmodel.api._daily",
    "audit_target": "riskmodel.api._db",
    "db_init": "riskmodel.api._db",
    "export_audit": "riskmodel.api._db",
    "import_audit": "riskmodel.api._db",
    "backtest": "riskmodel.api._evaluate",
    "build_segments": "riskmodel.api._geo",
    "write_layer": "riskmodel.api._geo",
    "read_border": "riskmodel.api._inputs",
    "read_inputs": "riskmodel.api._inputs",
    "read_segments": "riskmodel.api._inputs",
    "validate_inputs": "riskmodel.api._inputs",
    "check_bundle_matches": "riskmodel.api._model",
    "load_model": "riskmodel.api._model",
    "model_card": "riskmodel.api._model",
    "train_bundle": "riskmodel.api._model",
    "training_engine": "riskmodel.api._model",
    "audit_report": "riskmodel.api._plan",
    "audit_summary": "riskmodel.api._plan",
    "repair_log": "riskmodel.api._plan",
    "run_plan": "riskmodel.api._plan",
    "write_audit_report": "riskmodel.api._plan",
    "PublishResult": "riskmodel.api._publish",
    "publish": "riskmodel.api._publish",
    "list_models": "riskmodel.api._registry",
    "models_root": "riskmodel.api._registry",
    "show_model": "riskmodel.api._registry",
    "use_model": "riskmodel.api._registry",
    "RISK_COLUMNS": "riskmodel.api._score",
    "provenance": "riskmodel.api._score",
    "run_score": "riskmodel.api._score",
    "score_dates": "riskmodel.api._score",
    "score_for_plan": "riskmodel.api._score",
    "write_score_outputs": "riskmodel.api._score",
    "run_field_trial": "riskmodel.api._sim",
    "run_simulation": "riskmodel.api._sim",
    "scenario_params": "riskmodel.api._sim",
    "init_workspace": "riskmodel.api._workspace",
    "read_risk": "riskmodel.io.read.risk",
    "read_units_per_area": "riskmodel.io.read.risk",
    "PlanConfig": "riskmodel.planning",
    "load_caps": "riskmodel.planning",
    "make_plans": "riskmodel.planning",
    "parse_ids": "riskmodel.planning",
}

__all__ = [
    "DailyResult",
    "RISK_COLUMNS",
    "PlanConfig",
    "audit_report",
    "audit_summary",
    "audit_target",
    "backtest",
    "build_segments",
    "import_audit",
    "init_workspace",
    "check_bundle_matches",
    "db_init",
    "export_audit",
    "list_models",
    "load_caps",
    "load_model",
    "make_plans",
    "model_card",
    "models_root",
    "parse_ids",
    "provenance",
    "publish",
    "PublishResult",
    "read_border",
    "read_inputs",
    "read_risk",
    "read_segments",
    "read_units_per_area",
    "run_daily",
    "run_field_trial",
    "repair_log",
    "run_plan",
    "run_score",
    "run_simulation",
    "scenario_params",
    "score_dates",
    "score_for_plan",
    "show_model",
    "train_bundle",
    "training_engine",
    "use_model",
    "validate_inputs",
    "write_audit_report",
    "write_layer",
    "write_score_outputs",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'riskmodel.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
