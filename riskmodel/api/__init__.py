"""The library facade the CLI and notebooks use: each function is one verb.

files -> validated frames -> features -> model -> scores -> plan -> writers.
"""

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
