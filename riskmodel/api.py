"""High-level library API used by the CLI and notebooks: each function is one verb.

files -> validated frames -> features -> model -> scores -> plan -> writers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError, InputError
from riskmodel.geo.geodata import Geography
from riskmodel.geo.segments import segment_summary
from riskmodel.io.atomic import atomic_write_with

log = logging.getLogger("riskmodel")


def write_layer(gdf: gpd.GeoDataFrame, out: str | os.PathLike[str]) -> Path:
    """Write a layer by extension: ``.geojson`` (RFC 7946), ``.gpkg`` (its own CRS), ``.csv``
    (attributes plus WKT geometry), atomically."""
    out = Path(out)
    ext = out.suffix.lower()
    if ext in (".geojson", ".json"):
        from riskmodel.io.write.maps import write_geojson

        return write_geojson(gdf, out)
    if ext == ".gpkg":
        return atomic_write_with(out, lambda p: gdf.to_file(p, driver="GPKG", layer=out.stem))
    if ext == ".csv":
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["wkt"] = gdf.geometry.to_wkt(rounding_precision=3)
        return atomic_write_with(out, lambda p: df.to_csv(p, index=False, lineterminator="\n"))
    raise ConfigError(
        f"unknown output format {ext!r}", where=str(out), fix="use .geojson, .gpkg or .csv"
    )


def build_segments(
    settings: Settings,
    *,
    border: str | None = None,
    out: str | None = None,
    max_gap_m: float = 200.0,
) -> dict[str, Any]:
    """Segment a border (bundled or the user's) and optionally write the segments.

    Returns
    -------
    dict
        Count, lengths and CRS (see :func:`riskmodel.geo.segments.segment_summary`).
    """
    from riskmodel.geo.segments import make_segments, read_border

    if border is None:
        geo = Geography(settings)
        seg, b = geo.segments, geo.border
    else:
        b = read_border(border, metric_crs=None, max_gap_m=max_gap_m)
        seg = make_segments(b, float(settings.segment_length_m))
    info = segment_summary(seg, b)
    info["mean_length_m"] = float(seg["length_m"].mean())
    info["crs"] = str(seg.crs)
    if out:
        write_layer(seg, out)
    return info


def scenario_params(
    seed: int,
    start: str | None,
    end: str | None,
    persons_per_year: float | None,
    params: tuple[str, ...] | dict[str, Any] = (),
) -> Any:
    """Build :class:`~riskmodel.sim.world.ScenarioParams` from flags (``NAME=VALUE`` pairs)."""
    from riskmodel.sim.world import ScenarioParams

    p = ScenarioParams(seed=seed, start=start or "", end=end or "")
    if persons_per_year is not None:
        p.persons_per_year = float(persons_per_year)
    items = params.items() if isinstance(params, dict) else [kv.split("=", 1) for kv in params]
    fields = {f.name: f for f in dataclasses.fields(p)}
    for kv in items:
        if len(kv) != 2 or kv[0] not in fields:
            raise ConfigError(
                f"unknown scenario parameter {kv[0]!r}",
                fix=f"use one of {', '.join(sorted(fields))}",
            )
        name, val = kv
        cur = getattr(p, name)
        try:
            if isinstance(cur, tuple):
                val = tuple(int(v) for v in str(val).split(","))
            elif isinstance(cur, dict):
                val = json.loads(val) if isinstance(val, str) else dict(val)
            else:
                val = type(cur)(val)
        except (ValueError, json.JSONDecodeError):
            raise ConfigError(
                f"bad value for {name}: {val!r}", fix=f"give a {type(cur).__name__}"
            ) from None
        setattr(p, name, val)
    return p.resolved()


def run_simulation(
    settings: Settings,
    *,
    out: Path,
    seed: int = 0,
    start: str | None = None,
    end: str | None = None,
    persons_per_year: float | None = None,
    params: tuple[str, ...] | dict[str, Any] = (),
    geo: Geography | None = None,
) -> dict[str, Any]:
    """Simulate and write a scenario; return its summary."""
    from riskmodel.sim.world import simulate, write_scenario

    p = scenario_params(seed, start, end, persons_per_year, params)
    geo = geo or Geography(settings)
    sc = simulate(geo, p, settings.shifts, settings.timezone)
    write_scenario(sc, out)
    return sc.summary


__all__ = ["build_segments", "run_simulation", "scenario_params", "write_layer"]


# ----------------------------------------------------------------------------- train


def train_bundle(
    ds: Any,
    until: str,
    *,
    settings: Settings,
    params: dict[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train on all shifts up to and including local date ``until`` and write a bundle.

    The bundle's metrics compare the model with the baselines on the time-ordered validation
    windows (the last ``validation_fraction`` of the training period, also used for early
    stopping, so slightly optimistic; ``riskmodel backtest`` gives the honest figures).

    Returns
    -------
    (Path, dict)
        Bundle folder and its manifest.
    """
    import datetime as _dt

    from riskmodel.evaluation import metrics as ev
    from riskmodel.evaluation.baselines import compute_baselines
    from riskmodel.model.bundle import save_bundle, segment_hash
    from riskmodel.model.pipeline import fit_model, predict_windows

    w_end = ds.window_of_date(pd.Timestamp(until) + pd.Timedelta(days=1))
    if w_end <= 0:
        raise InputError(f"--until {until} is before the first event", fix="choose a later date")
    model, cols = fit_model(ds, w_end, params=params)
    info = model.fit_info_
    # Validation metrics against the baselines on the last validation windows.
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
        preds = {"model": predict_windows(ds, model, cols, v0, w_end)}
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

RISK_COLUMNS = [
    "segment_id",
    "area",
    "length_m",
    "date",
    "shift",
    "shift_start",
    "shift_end",
    "expected",
    "lower",
    "upper",
    "rank",
    "percentile",
    "risk_class",
    "risk_label",
    "reason_1",
    "reason_2",
    "reason_3",
    "threat",
    "vulnerability",
    "impact",
]


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


def score_dates(
    settings: Settings,
    bundle: Any,
    ds: Any,
    date: str,
    to: str | None = None,
    shift: str | None = None,
    *,
    reasons: bool = True,
) -> pd.DataFrame:
    """Score every shift of local dates ``date .. to`` (one-step-ahead), optionally one shift."""
    from riskmodel.scoring.score import score_windows

    check_bundle_matches(bundle, ds)
    w0 = ds.window_of_date(date)
    w1 = ds.window_of_date(pd.Timestamp(to or date) + pd.Timedelta(days=1))
    targets = np.arange(w0, w1)
    if shift:
        names = ds.windows["shift"].iloc[targets].to_numpy()
        if shift not in set(ds.windows["shift"]):
            raise ConfigError(
                f"unknown shift {shift!r}", fix=f"use one of {sorted(set(ds.windows['shift']))}"
            )
        targets = targets[names == shift]
    if len(targets) == 0:
        raise InputError(f"no shift windows on {date}", fix="check --date/--to")
    return score_windows(bundle, ds, targets, reasons=reasons)


def write_score_outputs(
    settings: Settings,
    scored: pd.DataFrame,
    ds: Any,
    bundle: Any,
    out: str | os.PathLike[str],
    *,
    date: str,
    forecast: bool = False,
    html: bool = True,
    png: bool = True,
) -> list[Path]:
    """Write risk_<date>_<shift>.geojson(+.qml), risk_<date>.gpkg/.html/.png/.csv, forecast.csv,
    provenance.json for the shifts of ``date`` (the range goes to ``forecast.csv``)."""
    from riskmodel.io.write import maps as wr

    out = Path(out)
    seg = ds.geo.segments
    geom = seg.set_index("segment_id").geometry
    day = scored[scored["date"] == date]
    prov = provenance(bundle, ds)
    files: list[Path] = []
    layers: dict[str, gpd.GeoDataFrame] = {}
    for sh in dict.fromkeys(day["shift"]):  # shift order of the day
        part = day[day["shift"] == sh].sort_values("rank")
        g = gpd.GeoDataFrame(
            part[RISK_COLUMNS].reset_index(drop=True),
            geometry=geom.reindex(part["segment_id"]).to_numpy(),
            crs=seg.crs,
        )
        for c in ("chainage_from_km", "chainage_to_km", "river"):
            g[c] = seg.set_index("segment_id")[c].reindex(part["segment_id"]).to_numpy()
        layers[sh] = g
        files.append(
            wr.write_geojson(
                g, out / f"risk_{date}_{sh}.geojson", provenance=prov, qml=wr.qml_risk_style()
            )
        )
    if layers:
        files.append(
            wr.write_gpkg(
                layers, out / f"risk_{date}.gpkg", provenance=prov, style_qml=wr.qml_risk_style()
            )
        )
        if html:
            files.append(
                wr.write_html_map(
                    out / f"risk_{date}.html",
                    risk=layers,
                    border=ds.geo.border,
                    settlements=ds.geo.settlements,
                    title=f"Border risk {date}",
                    provenance=prov,
                )
            )
        if png:
            files.append(
                wr.write_png_map(
                    out / f"risk_{date}.png",
                    risk=layers,
                    border=ds.geo.border,
                    settlements=ds.geo.settlements,
                    title=f"Border risk {date}",
                )
            )
        files.append(
            wr.write_csv(
                day[RISK_COLUMNS].sort_values(["shift_start", "rank"]), out / f"risk_{date}.csv"
            )
        )
    if forecast:
        fc = scored[["segment_id", "shift", "shift_start", "shift_end", "expected", "rank"]]
        files.append(wr.write_csv(fc, out / "forecast.csv"))
    files.append(wr.write_provenance(out, files, prov))
    return files


def provenance(bundle: Any, ds: Any) -> dict[str, Any]:
    """Provenance recorded in every output: model id, input hashes, versions (no wall-clock
    time here, so outputs are byte-identical for identical inputs; ``provenance.json`` adds it)."""
    from riskmodel.model.bundle import versions

    return {
        "model_id": bundle.model_id,
        "model_manifest_files": bundle.manifest.get("files", {}),
        "inputs": ds.inputs,
        "feature_spec_sha256": ds.spec.sha256,
        "versions": versions(),
    }
