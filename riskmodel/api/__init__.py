"""The library facade the CLI and notebooks use: each function is one verb.

files -> validated frames -> features -> model -> scores -> plan -> writers.
"""

from riskmodel.api._geo import build_segments, write_layer
from riskmodel.api._model import check_bundle_matches, load_model, model_card, train_bundle
from riskmodel.api._score import RISK_COLUMNS, provenance, score_dates, write_score_outputs
from riskmodel.api._sim import run_simulation, scenario_params

__all__ = [
    "RISK_COLUMNS",
    "build_segments",
    "check_bundle_matches",
    "load_model",
    "model_card",
    "provenance",
    "run_simulation",
    "scenario_params",
    "score_dates",
    "train_bundle",
    "write_layer",
    "write_score_outputs",
]
