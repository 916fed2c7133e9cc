"""Publish verb: what a ``score``, ``plan`` or ``daily`` run wrote, into PostGIS for QGIS.

The outputs are read back through the readers (:func:`~riskmodel.io.read.risk.read_risk` for
risk layers, the plan CSVs and their GeoJSON), so the database holds exactly what the files
hold; the writer is :mod:`riskmodel.io.write.postgis`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from riskmodel.config.settings import Settings
from riskmodel.errors import ConfigError, InputError

log = logging.getLogger(__name__)

_RISK = re.compile(r"^risk_(\d{4}-\d{2}-\d{2})_(.+)\.geojson$")
_PLAN = re.compile(r"^plan_(\d{4}-\d{2}-\d{2})_(.+)\.csv$")
_TIMES = ("shift_start", "shift_end", "slot_start", "slot_end")
RISK_TABLE = "risk_segments"
PLAN_TABLE = "plan_checks"


@dataclass
class PublishResult:
    """What one publish run wrote.

    Attributes
    ----------
    database : str
        ``user@host:port/dbname`` (no password).
    schema : str
    rows : dict
        Rows written per table.
    days : list of str
        Dates published.
    files : list of Path
        Output files read.
    """

    database: str
    schema: str
    rows: dict[str, int] = field(default_factory=dict)
    days: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _find(outdir: Path) -> tuple[list[Path], list[Path]]:
    """Risk layers and plan tables under ``outdir`` (a daily folder has maps/ and plans/)."""
    files = sorted(p for p in outdir.rglob("*") if p.is_file())
    return [p for p in files if _RISK.match(p.name)], [p for p in files if _PLAN.match(p.name)]


def _provenance(outdir: Path) -> dict[str, Any]:
    """The run's provenance.json (the first found under ``outdir``), minus the output list."""
    for p in sorted(outdir.rglob("provenance.json")):
        try:
            prov = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("%s: unreadable provenance, not recorded", p)
            continue
        prov.pop("outputs", None)
        return prov
    return {}


def _risk_layers(paths: list[Path]) -> gpd.GeoDataFrame:
    from riskmodel.io.read.risk import read_risk

    parts = []
    for p in paths:
        g = read_risk(p)
        g = g.drop(columns=[c for c in g.columns if c.startswith("_")])
        parts.append(g.to_crs(3794))
    return _typed(gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=3794))


def _plan_layers(
    paths: list[Path], risk: gpd.GeoDataFrame | None, settings: Settings
) -> gpd.GeoDataFrame:
    parts = []
    lookup: pd.Series | None = None
    for p in paths:
        m = _PLAN.match(p.name)
        assert m is not None
        gj = p.with_suffix(".geojson")
        if gj.is_file():
            from riskmodel.io.read.layers import read_layer

            g = read_layer(gj, what="plan").to_crs(3794)
        else:
            try:
                df = pd.read_csv(p, dtype={"segment_id": str, "unit": str, "plan_id": str})
            except Exception as exc:  # pandas raises many types on unreadable files
                raise InputError(
                    f"cannot read plan table ({str(exc).splitlines()[0]})",
                    where=str(p),
                    fix="publish the folder a 'riskmodel plan' run wrote",
                ) from None
            if lookup is None:
                lookup = _segment_geometry(risk, settings)
            g = gpd.GeoDataFrame(df, geometry=lookup.reindex(df["segment_id"]).to_numpy(), crs=3794)
        g["date"], g["shift"] = m.group(1), m.group(2)
        parts.append(g)
    frame = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=3794)
    front = ["date", "shift"]
    frame = frame[front + [c for c in frame.columns if c not in front]]
    return _typed(frame)


def _segment_geometry(risk: gpd.GeoDataFrame | None, settings: Settings) -> pd.Series:
    """segment_id -> geometry (EPSG:3794): from the run's risk layers, else the border's."""
    if risk is not None:
        return risk.drop_duplicates("segment_id").set_index("segment_id").geometry
    from riskmodel.geo.geodata import Geography

    seg = Geography(settings).segments.to_crs(3794)
    return seg.set_index("segment_id").geometry


def _typed(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``date`` as dates, times as UTC timestamps: the database's own types."""
    frame = frame.copy()
    frame["date"] = [dt.date.fromisoformat(str(d)[:10]) for d in frame["date"]]
    for c in _TIMES:
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c].astype(str), utc=True, format="ISO8601")
    return frame


def publish(
    settings: Settings,
    outdir: str | os.PathLike[str],
    *,
    db: str | None = None,
    schema: str | None = None,
) -> PublishResult:
    """Publish the risk layers and plans a run wrote into ``outdir`` (one transaction).

    Parameters
    ----------
    settings : Settings
    outdir : path-like
        Output folder of ``riskmodel score``, ``plan`` or ``daily`` (searched recursively
        for ``risk_<date>_<shift>.geojson`` and ``plan_<date>_<shift>.csv``).
    db : str, optional
        libpq URI or ``service=NAME`` (default: setting ``database``).
    schema : str, optional
        Target schema (default: setting ``db_schema``).

    Returns
    -------
    PublishResult

    Raises
    ------
    ConfigError
        No database given or set.
    InputError
        Nothing to publish in ``outdir``, or an output that does not read back.
    OutputError
        The database refused or dropped the run (nothing of it is visible then).
    """
    from riskmodel.io import db as dbmod
    from riskmodel.io.write.postgis import PublishLayer, publish_layers
    from riskmodel.io.write.qml import qml_plan_style, qml_risk_style

    uri = db or settings.database
    if not uri:
        raise ConfigError(
            "no database to publish to",
            where="--db",
            fix="give --db postgresql://user@host/db (or service=NAME), or set database",
        )
    schema = schema or settings.db_schema or "riskmodel"
    out = Path(outdir)
    if not out.is_dir():
        raise InputError("output folder not found", where=str(out), fix="give a run's --out")
    risk_paths, plan_paths = _find(out)
    if not risk_paths and not plan_paths:
        raise InputError(
            "no risk layers (risk_<date>_<shift>.geojson) or plans (plan_<date>_<shift>.csv)",
            where=str(out),
            fix="give the folder a score, plan or daily run wrote",
        )
    risk = _risk_layers(risk_paths) if risk_paths else None
    layers = []
    if risk is not None:
        layers.append(
            PublishLayer(RISK_TABLE, risk, ("segment_id",), qml_risk_style(), "riskmodel risk")
        )
    if plan_paths:
        plans = _plan_layers(plan_paths, risk, settings)
        layers.append(
            PublishLayer(PLAN_TABLE, plans, ("check_no",), qml_plan_style(), "riskmodel plan")
        )
    prov = _provenance(out)
    rows = publish_layers(uri, layers, schema=schema, provenance=prov, source=str(out.resolve()))
    days = sorted({str(d) for layer in layers for d in layer.frame["date"]})
    return PublishResult(dbmod.label(uri), schema, rows, days, risk_paths + plan_paths)
