"""Scoring verbs: score dates with a bundle and write the risk maps."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError, InputError

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
]


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
    from riskmodel.api._model import check_bundle_matches
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
        raise InputError(f"no shift windows on {date}", fix="check --date (or --from/--to)")
    return score_windows(bundle, ds, targets, reasons=reasons)


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
) -> tuple[pd.DataFrame, Any, list[Path]]:
    """Load a bundle, read the inputs, score ``date`` (.. ``to``) and write the risk maps.

    The output folder is locked for the run (a second run on it fails cleanly).

    Returns
    -------
    (DataFrame, Bundle, list of Path)
        Scored rows of every shift in the range, the bundle used, the files written.
    """
    from riskmodel.api._inputs import read_inputs
    from riskmodel.api._model import load_model
    from riskmodel.files import folder_lock

    bundle = load_model(settings, model, trust=trust)
    with folder_lock(out):
        ds = read_inputs(
            settings,
            events,
            effort,
            border=border,
            end=to or date,
            read_kwargs=read_kwargs,
            quarantine_dir=out,
        )
        scored = score_dates(settings, bundle, ds, date, to, shift)
        files = write_score_outputs(
            settings,
            scored,
            ds,
            bundle,
            out,
            date=date,
            forecast=to is not None,
            html=html,
            png=png,
        )
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
    risk = score_dates(settings, bundle, ds, date, None, shift).drop(columns=["window", "seq"])
    return risk, bundle.model_id, ds.geo.segments


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
    from riskmodel.io.write.csv import write_csv
    from riskmodel.io.write.geojson import write_geojson
    from riskmodel.io.write.gpkg import write_gpkg
    from riskmodel.io.write.html import write_html_map
    from riskmodel.io.write.png import write_png_map
    from riskmodel.io.write.provenance import write_provenance
    from riskmodel.io.write.qml import qml_risk_style

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
            write_geojson(
                g, out / f"risk_{date}_{sh}.geojson", provenance=prov, qml=qml_risk_style()
            )
        )
    if layers:
        files.append(
            write_gpkg(
                layers, out / f"risk_{date}.gpkg", provenance=prov, style_qml=qml_risk_style()
            )
        )
        if html:
            files.append(
                write_html_map(
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
                write_png_map(
                    out / f"risk_{date}.png",
                    risk=layers,
                    border=ds.geo.border,
                    settlements=ds.geo.settlements,
                    title=f"Border risk {date}",
                )
            )
        files.append(
            write_csv(
                day[RISK_COLUMNS].sort_values(["shift_start", "rank"]), out / f"risk_{date}.csv"
            )
        )
    if forecast:
        fc = scored[["segment_id", "shift", "shift_start", "shift_end", "expected", "rank"]]
        files.append(write_csv(fc, out / "forecast.csv"))
    files.append(write_provenance(out, files, prov))
    return files


def provenance(bundle: Any, ds: Any) -> dict[str, Any]:
    """Provenance recorded in every output: model id, input hashes, versions (no wall-clock
    time here, so outputs are byte-identical for identical inputs; ``provenance.json`` adds it)."""
    from riskmodel.model.bundle import versions

    return {
        "model_id": bundle.model_id,
        "model_manifest_files": bundle.manifest.get("files", {}),
        **({"trusted_unsigned": True} if getattr(bundle, "trusted_unsigned", False) else {}),
        "inputs": ds.inputs,
        "feature_spec_sha256": ds.spec.sha256,
        "versions": versions(),
    }
