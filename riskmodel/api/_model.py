"""Model verbs: train a bundle, write its model card, load and check a bundle."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from riskmodel._timing import timed
from riskmodel.config.settings import Settings
from riskmodel.errors import InputError

if TYPE_CHECKING:  # the engines import XGBoost: only training needs them
    from riskmodel.model.engine import TrainingEngine

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
        Bundle folder and its manifest, with ``default``, ``previous_default``, ``status`` and
        ``below_baseline`` (:func:`below_baseline`, the run's warning when a baseline ranked
        the validation windows better).
    """
    import datetime as _dt

    from riskmodel.api._registry import models_root
    from riskmodel.model.bundle import manifest_digest, save_bundle, segment_hash

    w_end = ds.window_of_date(pd.Timestamp(until) + pd.Timedelta(days=1))
    if w_end <= 0:
        raise InputError(f"--to {until} is before the first event", fix="choose a later date")
    check_enough_data(ds, until, w_end)
    root = Path(root) if root is not None else models_root(settings)
    from riskmodel.model.engine import InMemoryEngine

    engine = engine or InMemoryEngine()
    model = engine.fit(ds, w_end, params)
    cols = list(model.feature_names_in_)
    metrics = _validation_metrics(ds, engine, model, w_end)
    seg = ds.geo.segments
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    first = ds.windows["date"].iloc[0].date()
    inputs = {
        k: ({**v, "file": portable_path(v["file"], settings)} if "file" in v else v)
        for k, v in ds.inputs.items()
    }
    manifest = {
        "created": created,
        "training_window": {"from": str(first), "until": str(until)},
        "feature_spec": ds.spec.data,
        "feature_spec_sha256": ds.spec.sha256,
        "feature_spec_source": portable_path(ds.spec.source, settings),
        "segment_set_sha256": segment_hash(seg["segment_id"].tolist(), seg["length_m"].to_numpy()),
        "segments": int(len(seg)),
        "segment_length_m": float(ds.geo.segment_length_m),
        "crs": ds.geo.crs,
        "border": portable_path(getattr(ds.geo, "border_path", ""), settings),
        "shifts": settings.shifts,
        "timezone": settings.timezone,
        "inputs": inputs,
        "params": model.get_params(),
        "fit": model.fit_info_,
        "metrics": metrics,
    }
    preprocess = {"feature_columns": cols, "static_columns": list(ds.static.columns)}
    digest = manifest_digest({k: v for k, v in manifest.items() if k != "created"})
    model_id = f"rm-{str(until).replace('-', '')}-{digest}"
    card = model_card(model_id, manifest)
    key = settings.key()
    path = save_bundle(model, preprocess, manifest, card, root, model_id, key=key)
    manifest = _register(settings, path, root, key)
    manifest["below_baseline"] = below_baseline(manifest.get("metrics", {}).get("table", {}))
    return path, manifest


# Too little data for a model worth registering. Eight weeks fill the 28-day look-back
# features twice and leave the 12 % validation split a full week of every weekday and shift;
# below 100 recorded events the validation hit rate HR@10 has a standard error above ~0.05
# (binomial, p ~ 0.3), too wide to tell the model from the baselines. A --to more than four
# weeks after the last recorded event would teach the model that crossings stopped.
MIN_TRAINING_DAYS = 56
MIN_TRAINING_EVENTS = 100
MAX_DAYS_AFTER_LAST_EVENT = 28


def default_training_end(ds: Any, *, now: pd.Timestamp | None = None) -> str:
    """``train``'s ``--to`` when none is given: the last local day whose shifts have all
    ended (``now``: the clock) and that is not after the last recorded event.

    A day still running holds no records yet for its later shifts (they would teach the model
    that nothing happens); a day after the last event says nothing either (an old export).
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    win = ds.windows
    open_days = set(win.loc[win["end_utc"] > now, "date"])
    done = win["date"][~win["date"].isin(open_days)]
    last_event = ds.events["timestamp"].max().tz_convert(ds.settings.timezone).date()
    if len(done) == 0:
        raise InputError(
            "no day with all its shifts over in the data: nothing to train on",
            fix="give --to, or events from past days",
        )
    return min(done.iloc[-1].date(), last_event).isoformat()


def check_enough_data(ds: Any, until: str, w_end: int, *, now: pd.Timestamp | None = None) -> None:
    """Refuse to train on too little data (see ``MIN_TRAINING_DAYS`` and friends).

    Raises
    ------
    InputError
        Fewer than ``MIN_TRAINING_DAYS`` days from the first to the last event, fewer than
        ``MIN_TRAINING_EVENTS`` events, ``until`` too long after the last event, or a shift up
        to ``until`` that has not ended yet.
    """
    import numpy as np

    per_window = np.asarray(ds.panel.counts[:w_end]).sum(axis=1)
    nz = np.flatnonzero(per_window)
    n_events = int(per_window.sum())
    dates = ds.windows["date"]
    first = dates.iloc[0].date()
    last = dates.iloc[int(nz[-1])].date() if len(nz) else first
    days = (last - first).days + 1
    fix = "train on a longer history (more events), or wait until more events are recorded"
    if days < MIN_TRAINING_DAYS or n_events < MIN_TRAINING_EVENTS:
        raise InputError(
            f"too little data to train: {n_events} events on the border over {days} days "
            f"({first} .. {last}); at least {MIN_TRAINING_EVENTS} events and "
            f"{MIN_TRAINING_DAYS} days are needed",
            where=str(ds.inputs.get("events", {}).get("file", "events")),
            fix=fix,
        )
    # Shifts that have not ended yet hold no records yet: as training rows they would teach
    # the model that nothing happens (e.g. --to tomorrow).
    win = ds.windows.iloc[:w_end]
    open_ = win[win["end_utc"] > (now if now is not None else pd.Timestamp.now(tz="UTC"))]
    if len(open_):
        sh = open_.iloc[0]
        ends = pd.Timestamp(sh["end_utc"]).tz_convert(ds.settings.timezone)
        done = win["date"][~win["date"].isin(open_["date"])]
        raise InputError(
            f"--to {until} includes shifts that have not ended yet (the {sh['shift']} shift of "
            f"{sh['date'].date()} ends {ends:%Y-%m-%d %H:%M}): their events are not recorded",
            fix=f"train --to {done.iloc[-1].date()}, the last day whose shifts are all over"
            if len(done)
            else "train on past days only",
        )
    gap = (pd.Timestamp(until).date() - last).days
    if gap > MAX_DAYS_AFTER_LAST_EVENT:
        raise InputError(
            f"--to {until} is {gap} days after the last recorded event ({last}); at most "
            f"{MAX_DAYS_AFTER_LAST_EVENT} days are allowed",
            fix=f"train --to {last} or earlier, or add the missing recent events",
        )


def portable_path(value: Any, settings: Settings) -> str:
    """A path for manifests and model cards: relative to the workspace or to the installed
    package's folder; another absolute path keeps only its file name (its sha256 identifies
    it); names that are not paths (``builtin``) stay as they are."""
    text = str(value or "")
    p = Path(text)
    if not text or not p.is_absolute():
        return text.replace(os.sep, "/")
    import riskmodel

    bases = [Path(riskmodel.__file__).resolve().parent.parent]
    if settings.workspace is not None:
        bases.insert(0, settings.workspace.root)
    for base in bases:
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return p.name


def below_baseline(table: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The best baseline when it ranks the validation windows better than the model (HR@10):
    ``{"baseline", "model", "baseline_hr_10"}``; None when the model leads or there is no
    table."""
    model = (table.get("model") or {}).get("hr_10")
    rows = {
        k: v["hr_10"]
        for k, v in table.items()
        if k not in ("model", "oracle") and v.get("hr_10") is not None
    }
    if model is None or not rows:
        return None
    best = max(rows, key=lambda k: rows[k])
    if rows[best] <= model:
        return None
    return {"baseline": best, "model": float(model), "baseline_hr_10": float(rows[best])}


def _register(settings: Settings, path: Path, root: Path, key: bytes | None) -> dict[str, Any]:
    """Check the bundle just written; in a workspace make it the default model once its
    signature verifies. Returns its manifest with ``default`` (bool), ``previous_default`` (the
    id it replaced, if any) and ``status``."""
    from riskmodel.model.bundle import UNSIGNED, VERIFIED, check_bundle

    c = check_bundle(path, root=root, key=key, trust=key is None)
    man = dict(c.manifest)
    man["status"] = c.status
    man["default"] = False
    ws = settings.workspace
    is_registry = Path(root).resolve() == Path(settings.models_root).resolve()
    if c.status == VERIFIED and ws is not None and ws.contains(root) and is_registry:
        man["previous_default"] = ws.read_state().get("default_model")
        ws.update_state(default_model=man["model_id"])
        man["default"] = True
    elif c.status == UNSIGNED:
        log.warning(
            "model %s is unsigned (no workspace and no RISKMODEL_SIGNING_KEY): score and plan "
            "refuse it unless --trust-model is given",
            man["model_id"],
        )
    return man


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
        lines.append(
            "Scored against **recorded events** (the events file), not true crossings: where "
            "patrols make the records, these figures say how well the model predicts the "
            "records. `riskmodel backtest --truth FILE --against truth` on a simulated world "
            "scores the true crossings."
        )
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


@timed("load model")
def load_model(
    settings: Settings, model: str | None, *, trust: bool = False, key: bytes | None = None
) -> Any:
    """Load a checked bundle: ``model`` (a folder or an id in the models root), else the
    workspace's default model, else the newest bundle in the models root that verifies.

    Parameters
    ----------
    settings : Settings
    model : str, optional
    trust : bool
        Accept a bundle outside the models root or whose signature is not verified (logged
        with a warning and recorded as ``trusted_unsigned``).
    key : bytes, optional
        Signing key (default ``settings.key()``).
    """
    from riskmodel.api._registry import models_root, resolve_model
    from riskmodel.model.bundle import load_bundle, newest_bundle

    root = models_root(settings)
    key = key if key is not None else settings.key()
    if model is not None:
        path = resolve_model(settings, model)
    else:
        ws = settings.workspace
        default = ws.read_state().get("default_model") if ws is not None else None
        if default:
            path = resolve_model(settings, str(default))
        else:
            path = newest_bundle(root, key=key)
    return load_bundle(path, root=root, key=key, trust=trust)


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
        from riskmodel.model.engine import InMemoryEngine

        yield InMemoryEngine()
        return
    from riskmodel.model.engine import DaskEngine

    with DaskEngine(scheduler) as engine:
        yield engine
