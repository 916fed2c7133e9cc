"""Scoring verbs: score dates with a bundle and write the risk maps."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskmodel._timing import timed
from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError, InputError, OutputError
from riskmodel.io.write.background import Background, background

log = logging.getLogger(__name__)


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
    "exposure",
    "adapt_factor",
]
"""Columns of every risk table (CSV, GeoJSON, GeoPackage, HTML popups). ``expected``: recorded
events expected in the shift with ``exposure`` officer-hours (the effort file's planned effort,
0 without one), band ``lower``-``upper``; ``threat``: effort-neutral expected events (where
people cross), which ``rank``, ``percentile``, ``risk_class`` and plans follow;
``adapt_factor``: the recent-residual correction applied to both (1 = none)."""

FORECAST_COLUMNS = [
    "segment_id",
    "date",
    "shift",
    "shift_start",
    "shift_end",
    "expected",
    "threat",
    "exposure",
    "adapt_factor",
    "rank",
]
"""Columns of ``forecast.csv`` (``score --from/--to``): as :data:`RISK_COLUMNS`."""


@timed("score")
def score_dates(
    settings: Settings,
    bundle: Any,
    ds: Any,
    date: str,
    to: str | None = None,
    shift: str | None = None,
    *,
    reasons: bool = True,
    adapt: bool = True,
) -> pd.DataFrame:
    """Score every shift of local dates ``date .. to`` (one-step-ahead), optionally one shift.

    With ``adapt`` and a workspace forecast store holding the engine's recent forecasts, the
    scores are corrected by the recent residuals (:mod:`riskmodel.scoring.adapt`); what was
    done is in ``attrs["adaptation"]`` of the result (recorded in the provenance).
    """
    from riskmodel.api._model import check_bundle_matches
    from riskmodel.scoring.score import score_windows

    check_timezone(bundle, settings)
    check_bundle_matches(bundle, ds)
    first_event = ds.events["timestamp"].min().tz_convert(ds.settings.timezone).date()
    if pd.Timestamp(date).date() < first_event:
        raise InputError(
            f"date {date} is before the first event ({first_event}): nothing to score from",
            fix=f"choose a date from {first_event} on, or give the older events",
        )
    check_model_age(bundle, date)
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
        raise InputError(f"no shift windows on {date}", fix="check --date (or --from/--to)")
    factor, info = adaptation(settings, bundle, ds, int(targets[0]), adapt=adapt)
    scored = score_windows(bundle, ds, targets, reasons=reasons, factor=factor)
    scored.attrs["adaptation"] = info
    return scored


def forecast_store(settings: Settings, bundle: Any) -> Any:
    """The workspace's forecast store for this bundle's segments (None without a workspace)."""
    from riskmodel.scoring.store import ForecastStore

    return ForecastStore.of_workspace(
        settings.workspace, str(bundle.manifest.get("segment_set_sha256", ""))
    )


def adaptation(
    settings: Settings, bundle: Any, ds: Any, w0: int, *, adapt: bool = True
) -> tuple[Any, dict[str, Any]]:
    """Residual factors for windows from ``w0`` (None when off) and what was done."""
    import datetime as _dt

    from riskmodel.model import RESIDUAL_DAYS
    from riskmodel.scoring.adapt import residual_correction

    if not adapt:
        return None, {"ran": False, "why": "turned off (--no-adapt)"}
    store = forecast_store(settings, bundle)
    if store is None:
        return None, {"ran": False, "why": "no workspace: no forecast store"}
    day = ds.windows["date"].iloc[w0].date()
    first = (day - _dt.timedelta(days=RESIDUAL_DAYS + 1)).isoformat()
    last = (day - _dt.timedelta(days=1)).isoformat()
    factor, info = residual_correction(ds, bundle, store.read(first, last), w0)
    if info["ran"]:
        log.info("adaptation: %s", info["factor"])
    return (factor if info["ran"] else None), info


def store_forecasts(settings: Settings, bundle: Any, scored: pd.DataFrame) -> list[Path]:
    """Append the model's own forecasts of ``scored`` to the workspace store (none without
    a workspace); see :mod:`riskmodel.scoring.store`."""
    store = forecast_store(settings, bundle)
    if store is None:
        return []
    until = str(bundle.manifest.get("training_window", {}).get("until", ""))
    rows = pd.DataFrame(
        {
            "date": scored["date"].astype(str),
            "shift": scored["shift"].astype(str),
            "shift_start": scored["shift_start"].astype(str),
            "segment_id": scored["segment_id"].astype(str),
            "model_id": bundle.model_id,
            "trained_until": until,
            "segment_set_sha256": store.segment_set,
            "expected": scored["expected_model"].astype(float),
            "threat": scored["threat_model"].astype(float),
            "exposure": scored["exposure"].astype(float),
            "adapt_factor": scored["adapt_factor"].astype(float),
        }
    )
    return store.append(rows)


def _days(settings: Settings, date: str, to: str | None) -> tuple[str, str | None]:
    """``date`` and ``to`` by the one date rule, as ``YYYY-MM-DD`` (the names of the outputs)."""
    from riskmodel.config.dates import parse_range

    a, b = parse_range(date, to, tz=settings.timezone, names=("date", "to"))
    return a.isoformat(), None if b is None else b.isoformat()  # type: ignore[union-attr]


#: Days after its training end from which a model is called old: the backtests retrain every
#: 28 days (``--step-days``), and routes move within weeks.
MODEL_OLD_DAYS = 35


def check_model_age(bundle: Any, date: str) -> None:
    """Warn when ``date`` lies inside the model's training window (in-sample scores) or more
    than :data:`MODEL_OLD_DAYS` days after its end (retrain)."""
    until = (bundle.manifest.get("training_window") or {}).get("until")
    if not until:
        return
    age = (pd.Timestamp(date) - pd.Timestamp(until)).days
    if age < 0:
        log.warning(
            "the model %s was trained on shifts up to %s: scores for %s are in-sample (it has "
            "seen what happened then) -- for an honest look back use riskmodel backtest",
            bundle.model_id,
            until,
            date,
        )
    elif age > MODEL_OLD_DAYS:
        log.warning(
            "the model %s was trained on shifts up to %s, %d days before %s: routes move "
            "within weeks -- retrain (riskmodel train) at least every %d days",
            bundle.model_id,
            until,
            age,
            date,
            MODEL_OLD_DAYS - 7,
        )


def check_timezone(bundle: Any, settings: Settings) -> None:
    """Refuse a bundle trained in another time zone: its shifts would move by the offset."""
    from riskmodel.errors import BundleError

    tz = bundle.manifest.get("timezone")
    if tz is not None and tz != settings.timezone:
        raise BundleError(
            f"time zone differs: model trained in {tz}, this run uses {settings.timezone} "
            "(shifts would move by the offset)",
            where=str(bundle.path),
            fix=f"set timezone = {tz!r} for this run, or retrain",
        )


def run_score(
    settings: Settings,
    events: str | os.PathLike[str],
    effort: str | os.PathLike[str] | None = None,
    *,
    date: str,
    to: str | None = None,
    shift: str | None = None,
    model: str | None = None,
    trust: bool = False,
    border: str | None = None,
    read_kwargs: dict[str, Any] | None = None,
    out: str | os.PathLike[str],
    html: bool = True,
    png: bool = True,
    adapt: bool = True,
) -> tuple[pd.DataFrame, Any, list[Path]]:
    """Load a bundle, read the inputs, score ``date`` (.. ``to``) and write the risk maps.

    In a workspace the forecasts are appended to its forecast store once the outputs are in
    place, and (unless ``adapt`` is False) the scores are corrected by the recent residuals
    of the stored forecasts (:mod:`riskmodel.scoring.adapt`).

    The output folder is locked for the run (a second run on it fails cleanly). All outputs
    are written into a staging folder beside ``out`` and moved in together at the end: an
    interrupted or failed run leaves the previous complete set (rejected-row files, written
    before scoring, go straight to ``out``).

    Returns
    -------
    (DataFrame, Bundle, list of Path)
        Scored rows of every shift in the range, the bundle used, the files written.
    """
    from riskmodel.api._inputs import read_inputs
    from riskmodel.api._model import load_model
    from riskmodel.files import folder_lock, staged_outputs
    from riskmodel.io.write.png import warm_up

    date, to = _days(settings, date, to)
    bundle = load_model(settings, model, trust=trust)
    check_timezone(bundle, settings)
    with background(png, warm=warm_up) as bg, folder_lock(out):
        ds = read_inputs(
            settings,
            events,
            effort,
            border=border,
            end=to or date,
            read_kwargs=read_kwargs,
            quarantine_dir=out,
        )
        scored = score_dates(settings, bundle, ds, date, to, shift, adapt=adapt)
        with staged_outputs(out, replaces=(f"risk_{date}*", "forecast.csv")) as stage:
            staged = write_score_outputs(
                settings,
                scored,
                ds,
                bundle,
                stage,
                date=date,
                forecast=to is not None,
                html=html,
                png=png,
                bg=bg,
            )
        files = [Path(out) / p.name for p in staged]
        store_forecasts(settings, bundle, scored)
    return scored, bundle, files


def score_for_plan(
    settings: Settings,
    events: str | os.PathLike[str],
    effort: str | os.PathLike[str] | None = None,
    *,
    date: str,
    shift: str | None = None,
    model: str | None = None,
    trust: bool = False,
    border: str | None = None,
    read_kwargs: dict[str, Any] | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
    adapt: bool = True,
) -> tuple[pd.DataFrame, str, gpd.GeoDataFrame]:
    """Score the shifts of one local date into a risk table for planning.

    Returns
    -------
    (DataFrame, str, GeoDataFrame)
        The risk table (the contract of :func:`riskmodel.planning.plan.read_risk`), the model
        id and the segments scored.
    """
    from riskmodel.api._inputs import read_inputs
    from riskmodel.api._model import load_model

    date, _ = _days(settings, date, None)
    bundle = load_model(settings, model, trust=trust)
    ds = read_inputs(
        settings,
        events,
        effort,
        border=border,
        end=date,
        read_kwargs=read_kwargs,
        quarantine_dir=quarantine_dir,
    )
    risk = score_dates(settings, bundle, ds, date, None, shift, adapt=adapt).drop(
        columns=["window", "seq", "expected_model", "threat_model"]
    )
    return risk, bundle.model_id, ds.geo.segments


@timed("write maps")
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
    plans: Mapping[str, gpd.GeoDataFrame] | None = None,
    bg: Background | None = None,
) -> list[Path]:
    """Write risk_<date>_<shift>.geojson(+.qml), risk_<date>.gpkg/.html/.png/.csv, forecast.csv,
    provenance.json for the shifts of ``date`` (the range goes to ``forecast.csv``).

    With ``bg`` (:func:`riskmodel.io.write.background.background`) the PNG map is drawn in
    that child while the other files are written; the result is the same.
    """
    from riskmodel.io.write.background import submit
    from riskmodel.io.write.csv import write_csv
    from riskmodel.io.write.geojson import geojson_geometries, write_geojson
    from riskmodel.io.write.gpkg import daily_layers, write_gpkg
    from riskmodel.io.write.html import write_html_map
    from riskmodel.io.write.png import write_png_map
    from riskmodel.io.write.provenance import write_provenance
    from riskmodel.io.write.qml import qml_risk_style

    out = Path(out)
    seg = ds.geo.segments
    seg_ids = pd.Index(seg["segment_id"])
    day = scored[scored["date"] == date]
    prov = provenance(bundle, ds, scored.attrs.get("adaptation"))
    files: list[Path] = []
    layers: dict[str, gpd.GeoDataFrame] = {}
    rows: dict[str, np.ndarray] = {}  # each layer's segments, by position
    for sh in dict.fromkeys(day["shift"]):  # shift order of the day
        part = day[day["shift"] == sh].sort_values("rank")
        at = seg_ids.get_indexer(part["segment_id"])
        if (at < 0).any():  # scores come from these segments; anything else is a bug
            raise OutputError(
                f"scored segment(s) {sorted(set(part['segment_id'][at < 0]))[:3]} are not in "
                "the geography's segments",
                fix="score and write with the same geography",
            )
        g = gpd.GeoDataFrame(
            part[RISK_COLUMNS].reset_index(drop=True),
            geometry=seg.geometry.to_numpy()[at],
            crs=seg.crs,
        )
        for c in ("chainage_from_km", "chainage_to_km", "river"):
            g[c] = seg[c].to_numpy()[at]
        layers[sh], rows[sh] = g, at
    if layers:
        # what both maps draw
        drawn = {"risk": layers, "border": ds.geo.border, "settlements": ds.geo.settlements,
                 "plans": plans, "title": f"Border risk {date}"}  # fmt: skip
        png_job = None
        if png:  # first: the child draws while this process writes the rest
            png_job = submit(bg, write_png_map, out / f"risk_{date}.png", **drawn)
        shapes = geojson_geometries(seg.geometry)  # once for the day's layers
        for sh, g in layers.items():
            files.append(
                write_geojson(
                    g,
                    out / f"risk_{date}_{sh}.geojson",
                    provenance=prov,
                    qml=qml_risk_style(),
                    geometries=shapes.take(rows[sh]),
                )
            )
        # The daily GeoPackage also holds the segments and each shift's plan, styled.
        extra, styles = daily_layers(seg, plans) if plans else ({}, {})
        files.append(
            write_gpkg(
                {**layers, **extra},
                out / f"risk_{date}.gpkg",
                provenance=prov,
                style_qml=qml_risk_style(),
                created=str(day["shift_start"].min()),  # from the data: same inputs, same bytes
                styles=styles,
            )
        )
        if html:
            files.append(write_html_map(out / f"risk_{date}.html", **drawn, provenance=prov))
        csv = write_csv(
            day[RISK_COLUMNS].sort_values(["shift_start", "rank"]), out / f"risk_{date}.csv"
        )
        if png_job is not None:  # last: the child had the whole time above
            files.append(png_job.result())
        files.append(csv)
    if not files:  # never announce outputs that are not there
        raise InputError(f"nothing scored on {date}", fix="check --date (or --from/--to)")
    if forecast:
        files.append(write_csv(scored[FORECAST_COLUMNS], out / "forecast.csv"))
    files.append(write_provenance(out, files, prov))
    return files


def provenance(bundle: Any, ds: Any, adaptation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance recorded in every output: model id, input hashes, versions, and whether the
    recent-residual adaptation ran (window, factor summary, store files used). No wall-clock
    time here, so outputs are byte-identical for identical inputs; ``provenance.json`` adds it."""
    from riskmodel.model.bundle import versions

    return {
        "adaptation": adaptation or {"ran": False, "why": "not requested"},
        "model_id": bundle.model_id,
        "model_manifest_files": bundle.manifest.get("files", {}),
        **({"trusted_unsigned": True} if getattr(bundle, "trusted_unsigned", False) else {}),
        "inputs": ds.inputs,
        "feature_spec_sha256": ds.spec.sha256,
        "versions": versions(),
    }
