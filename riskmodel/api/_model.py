"""Model verbs: train a bundle, write its model card, load and check a bundle."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel.config.settings import Settings
from riskmodel.errors import InputError
from riskmodel.model.engine import InMemoryEngine, TrainingEngine

log = logging.getLogger(__name__)


def train_bundle(
    ds: Any,
    until: str,
    *,
    settings: Settings,
    params: dict[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
    engine: TrainingEngine | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train on all shifts up to and including local date ``until`` and write a bundle.

    The bundle's metrics compare the model with the baselines on the time-ordered validation
    windows (the last ``validation_fraction`` of the training period, also used for early
    stopping, so slightly optimistic; ``riskmodel backtest`` gives the honest figures).

    Parameters
    ----------
    ds : Dataset
    until : str
        Last local date trained on.
    settings : Settings
    params : dict, optional
        :class:`~riskmodel.model.estimator.RiskRegressor` parameters.
    root : path-like, optional
        Models root (default ``settings.models_root``).
    engine : TrainingEngine, optional
        Where features are built and the model trained (default in memory; see
        :mod:`riskmodel.model.engine`).

    Returns
    -------
    (Path, dict)
        Bundle folder and its manifest.
    """
    import datetime as _dt

    from riskmodel.model.bundle import save_bundle, segment_hash

    w_end = ds.window_of_date(pd.Timestamp(until) + pd.Timedelta(days=1))
    if w_end <= 0:
        raise InputError(f"--until {until} is before the first event", fix="choose a later date")
    engine = engine or InMemoryEngine()
    model = engine.fit(ds, w_end, params)
    cols = list(model.feature_names_in_)
    info = model.fit_info_
    metrics = _validation_metrics(ds, engine, model, w_end)
    seg = ds.geo.segments
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    first = ds.windows["date"].iloc[0].date()
    manifest = {
        "created": created,
        "training_window": {"from": str(first), "until": str(until)},
        "feature_spec": ds.spec.data,
        "feature_spec_sha256": ds.spec.sha256,
        "feature_spec_source": ds.spec.source,
        "segment_set_sha256": segment_hash(seg["segment_id"].tolist(), seg["length_m"].to_numpy()),
        "segments": int(len(seg)),
        "segment_length_m": float(ds.geo.segment_length_m),
        "crs": ds.geo.crs,
        "border": ds.geo.border_path if hasattr(ds.geo, "border_path") else "",
        "shifts": settings.shifts,
        "timezone": settings.timezone,
        "inputs": ds.inputs,
        "params": model.get_params(),
        "fit": info,
        "metrics": metrics,
    }
    preprocess = {"feature_columns": cols, "static_columns": list(ds.static.columns)}
    from riskmodel.model.bundle import manifest_digest

    model_id = f"rm-{str(until).replace('-', '')}-{manifest_digest({k: v for k, v in manifest.items() if k != 'created'})}"
    card = model_card(model_id, manifest)
    root = Path(root or settings.models_root)
    path = save_bundle(model, preprocess, manifest, card, root, model_id)
    return path, manifest


def _validation_metrics(ds: Any, engine: TrainingEngine, model: Any, w_end: int) -> dict[str, Any]:
    """The model against the baselines on its validation windows (the last ones before
    ``w_end``; also used for early stopping)."""
    from riskmodel.evaluation import metrics as ev
    from riskmodel.evaluation.baselines import compute_baselines

    info = model.fit_info_
    S = ds.n_segments
    n_val = max(ds.panel.n_shifts, int(info["rows_valid"] // S))
    v0 = max(w_end - n_val, 0)
    metrics: dict[str, Any] = {}
    if n_val > 0 and v0 < w_end:
        win = ds.windows.iloc[v0:w_end].reset_index(drop=True)
        evf = ds.events[ds.events["seq"] >= 0][["timestamp", "seq", "chainage_km", "persons"]]
        seg = ds.geo.segments[
            ["segment_id", "seq", "length_m", "chainage_from_km", "chainage_to_km"]
        ]
        preds = {"model": engine.predict(ds, model, v0, w_end)}
        preds.update(compute_baselines(evf, seg, win))
        table = ev.compare(preds, ds.panel.counts[v0:w_end], seg["length_m"].to_numpy())
        metrics = {
            "period": [str(win["date"].iloc[0].date()), str(win["date"].iloc[-1].date())],
            "note": "validation windows of the training period (used for early stopping)",
            "table": {
                m: {
                    k: (None if pd.isna(v) else (float(v) if not isinstance(v, str) else v))
                    for k, v in r.items()
                }
                for m, r in table.iterrows()
            },
        }
    return metrics


def model_card(model_id: str, man: dict[str, Any]) -> str:
    """Markdown model card for a bundle."""
    m = man.get("metrics", {})
    lines = [
        f"# Model card: {model_id}",
        "",
        f"- Created: {man['created']}",
        f"- Training window: {man['training_window']['from']} .. {man['training_window']['until']}",
        f"- Segments: {man['segments']} (~{man['segment_length_m']:.0f} m, CRS {man['crs']}), set hash "
        f"`{man['segment_set_sha256'][:16]}`",
        f"- Shifts: {man['shifts']} ({man['timezone']})",
        f"- Feature spec: {man['feature_spec_source']} (sha256 `{man['feature_spec_sha256'][:16]}`)",
        f"- Model: XGBoost Poisson, {man['fit'].get('best_iteration', 0) + 1} trees, "
        f"{man['fit'].get('rows_kept')} of {man['fit'].get('rows_train')} training rows kept "
        f"(empty rows subsampled at {man['fit'].get('zero_keep')} with weights)",
        "- Inputs: "
        + ", ".join(
            f"{k} sha256 {str(v.get('sha256', ''))[:12]}" for k, v in man.get("inputs", {}).items()
        ),
        "",
        "## Intended use",
        "Relative risk of *recorded* irregular crossings per border segment and shift, to weight",
        "randomised, legally capped spot-check plans (Schengen Borders Code art. 23). Not for",
        "decisions about individuals; not a measure of all crossings.",
        "",
        "## Metrics",
    ]
    if m:
        lines.append(f"Validation period {m['period'][0]} .. {m['period'][1]} ({m['note']}).")
        lines.append("")
        lines.append("| method | HR 5 % | HR 10 % | HR 20 % | deviance |")
        lines.append("|---|---|---|---|---|")
        for meth, r in m["table"].items():
            f = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
            lines.append(
                f"| {meth} | {f(r.get('hr_5'))} | {f(r.get('hr_10'))} | {f(r.get('hr_20'))} | {f(r.get('deviance'))} |"
            )
    else:
        lines.append("No validation metrics (training period too short).")
    lines += [
        "",
        "Run `riskmodel backtest` for the rolling-origin evaluation against the baselines and the oracle.",
        "",
        "## Limitations",
        "- **Detection bias / feedback loop**: events are recorded where patrols are. Patrol effort",
        "  enters the model as exposure (monotone), and plans keep an exploration floor, but a model",
        "  trained on detections can still follow past patrols; compare with non-crime covariates and",
        "  retrain at least monthly.",
        "- **Displacement**: networks adapt within weeks; risk maps age quickly.",
        "- **Approximate geodata**: corridors, crossing points and responsibility areas shipped with",
        "  riskmodel are approximate; replace them with official layers.",
        "- Trained on the data above only; a change of recording practice invalidates it.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- score


def load_model(settings: Settings, model: str | None, *, trust: bool = False) -> Any:
    """Load a verified bundle: ``model`` path or id, else the newest in the models root."""
    from riskmodel.model.bundle import load_bundle, newest_bundle

    root = Path(settings.models_root)
    if model is None:
        path = newest_bundle(root)
    else:
        path = Path(model)
        if not path.is_dir() and (root / model).is_dir():
            path = root / model
    return load_bundle(path, root=root, trust=trust)


def check_bundle_matches(bundle: Any, ds: Any) -> None:
    """Refuse a bundle whose feature spec, segments or shifts differ from the data in use."""
    from riskmodel.errors import BundleError
    from riskmodel.model.bundle import segment_hash

    man = bundle.manifest
    where = str(bundle.path)
    if man.get("feature_spec_sha256") != ds.spec.sha256:
        raise BundleError(
            f"feature spec mismatch: model {man.get('feature_spec_sha256', '')[:12]} vs "
            f"{ds.spec.source} {ds.spec.sha256[:12]}",
            where=where,
            fix="use the feature spec the model was trained with, or retrain (riskmodel train)",
        )
    seg = ds.geo.segments
    if man.get("segment_set_sha256") != segment_hash(
        seg["segment_id"].tolist(), seg["length_m"].to_numpy()
    ):
        raise BundleError(
            f"segment set mismatch: model has {man.get('segments')} segments of "
            f"{man.get('segment_length_m')} m, data has {len(seg)} of {ds.geo.segment_length_m} m",
            where=where,
            fix="use the same --border and segment length as for training, or retrain",
        )
    if man.get("shifts") != ds.settings.shifts:
        raise BundleError(
            f"shift definitions differ: model {man.get('shifts')!r}, now {ds.settings.shifts!r}",
            where=where,
            fix="use the model's shift definitions or retrain",
        )


@contextlib.contextmanager
def training_engine(scheduler: str | None = None) -> Iterator[TrainingEngine]:
    """The training engine of a run: in memory, or on a Dask cluster.

    Parameters
    ----------
    scheduler : str, optional
        ``"local"`` (an in-process cluster) or a scheduler address (``tcp://HOST:8786``);
        ``None`` trains in memory. Dask is imported only when one is given.

    Yields
    ------
    TrainingEngine
        Closed (with any cluster it started) when the block ends.
    """
    if not scheduler:
        yield InMemoryEngine()
        return
    from riskmodel.model.engine import DaskEngine

    with DaskEngine(scheduler) as engine:
        yield engine
