"""Open riskmodel outputs in real QGIS (headless) and check they come up styled.

The daily GeoPackage (risk per shift, ``segments``, ``plan_<shift>``) is built with the same
writer calls as ``riskmodel daily``; QGIS must open each layer with its default style from
``layer_styles`` (renderer, categories, symbol levels) and read ``date`` as a Date and the
shift and slot times as DateTime fields.

Skipped unless QGIS is installed (``qgis_process.bin`` on PATH and PyQGIS importable by the
system Python; Debian: ``apt-get install -y qgis python3-qgis``). QGIS runs in a subprocess
with ``QT_QPA_PLATFORM=offscreen`` because PyQGIS lives in the system Python, not the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from riskmodel.io.write.geojson import write_geojson
from riskmodel.io.write.gpkg import daily_layers, write_gpkg
from riskmodel.io.write.qml import qml_plan_style, qml_risk_style

sys.path.insert(0, str(Path(__file__).parent))
from test_writers import SHIFTS, plan_frame, scored_frame  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"

_SCRIPT = r"""
import json, sys
from qgis.core import (QgsApplication, QgsExpression, QgsExpressionContext, QgsMapSettings,
                       QgsMapRendererParallelJob, QgsVectorLayer)
from qgis.PyQt.QtCore import QSize, QVariant
from qgis.PyQt.QtGui import QColor

app = QgsApplication([], False)
app.initQgis()
folder = sys.argv[1]

def info(layer):
    r = layer.renderer()
    d = {"valid": layer.isValid(), "renderer": r.type(), "labels": layer.labelsEnabled(),
         "labeling": layer.labeling().type() if layer.labeling() else None,
         "crs": layer.crs().authid(), "count": layer.featureCount()}
    if r.type() == "categorizedSymbol":
        d["attr"] = r.classAttribute()
        d["values"] = [str(c.value()) for c in r.categories()]
        d["orderby"] = r.orderByEnabled()
    d["levels"] = r.usingSymbolLevels()
    names = {QVariant.Date: "Date", QVariant.DateTime: "DateTime", QVariant.String: "String"}
    d["types"] = {f.name(): names.get(f.type(), f.typeName()) for f in layer.fields()}
    if layer.labeling() is not None and layer.labeling().type() == "rule-based":
        rule = layer.labeling().rootRule().children()[0]
        d["label_filter"] = rule.filterExpression()
        d["label_field"] = rule.settings().fieldName
    return d

out = {"version": __import__("qgis.core").core.Qgis.QGIS_VERSION}
gj = QgsVectorLayer(folder + "/risk_morning.geojson", "risk", "ogr")
out["geojson"] = info(gj)
out["gpkg"] = {s: info(QgsVectorLayer(folder + "/risk.gpkg|layername=" + s, s, "ogr"))
               for s in ("morning", "afternoon", "night")}
daily = folder + "/daily.gpkg|layername="
out["daily"] = {n: info(QgsVectorLayer(daily + n, n, "ogr"))
                for n in ("morning", "night", "segments", "plan_morning", "plan_night")}
dplan = QgsVectorLayer(daily + "plan_night", "plan", "ogr")
f = next(dplan.getFeatures())
ctx = QgsExpressionContext()
ctx.setFeature(f)
out["daily_plan_label"] = QgsExpression(
    dplan.labeling().rootRule().children()[0].settings().fieldName).evaluate(ctx)
out["daily_plan_start"] = f["slot_start"].toString("yyyy-MM-ddTHH:mm:ss t")
out["daily_date"] = next(QgsVectorLayer(daily + "night", "n", "ogr").getFeatures())["date"].toString("yyyy-MM-dd")
plan = QgsVectorLayer(folder + "/plan_morning.geojson", "plan", "ogr")
out["plan"] = info(plan)
expr = QgsExpression(plan.labeling().rootRule().children()[0].settings().fieldName)
ctx = QgsExpressionContext()
ctx.setFeature(next(plan.getFeatures()))
out["plan_label"] = expr.evaluate(ctx)

ms = QgsMapSettings()
ms.setLayers([plan, gj])
ms.setDestinationCrs(gj.crs())
ms.setExtent(gj.extent())
ms.setOutputSize(QSize(800, 400))
ms.setBackgroundColor(QColor("white"))
job = QgsMapRendererParallelJob(ms)
job.start()
job.waitForFinished()
img = job.renderedImage()
img.save(folder + "/qgis.png")
colours = {img.pixelColor(x, y).name() for x in range(0, 800, 4) for y in range(0, 400, 4)}
out["n_colours"] = len(colours)
print("RESULT " + json.dumps(out))
"""


def _qgis_available() -> bool:
    if shutil.which("qgis_process.bin") is None or not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60, check=False
    )
    return probe.returncode == 0


pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(
        not _qgis_available(), reason="needs QGIS (qgis_process.bin + python3-qgis)"
    ),
]


def test_outputs_open_styled_in_qgis(tmp_path: Path) -> None:
    risk = {s: scored_frame(s, seed=i) for i, s in enumerate(SHIFTS)}
    write_geojson(risk["morning"], tmp_path / "risk_morning.geojson", qml=qml_risk_style())
    write_gpkg(risk, tmp_path / "risk.gpkg", style_qml=qml_risk_style())
    write_geojson(
        plan_frame(risk["morning"]), tmp_path / "plan_morning.geojson", qml=qml_plan_style()
    )
    plans = {
        "morning": plan_frame(risk["morning"]),
        "night": plan_frame(risk["night"]).assign(
            slot_start="2024-08-14T23:00:00+02:00", slot_end="2024-08-15T01:00:00+02:00"
        ),
    }
    extra, styles = daily_layers(risk["morning"].drop(columns=["date", "shift"]), plans)
    write_gpkg(
        {**risk, **extra}, tmp_path / "daily.gpkg", style_qml=qml_risk_style(), styles=styles
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    run = subprocess.run(
        [SYSTEM_PYTHON, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, run.stderr[-3000:]
    res = json.loads(line[len("RESULT ") :])
    styled = [res["geojson"], *res["gpkg"].values()]
    for layer in styled:
        assert layer["valid"] and layer["count"] == 30
        assert layer["renderer"] == "categorizedSymbol" and layer["attr"] == "risk_class"
        assert sorted(layer["values"]) == ["1", "2", "3", "4", "5"] and layer["orderby"]
        assert layer["labels"] and layer["labeling"] == "rule-based"
        assert layer["label_filter"] == '"rank" <= 10' and layer["label_field"] == "segment_id"
    assert {v["crs"] for v in res["gpkg"].values()} == {"EPSG:3794"}
    assert res["plan"]["renderer"] == "singleSymbol" and res["plan"]["labels"]
    assert res["plan_label"] == "PP Metlika 1: 07:00\u201309:00"
    assert res["n_colours"] > 5  # the styled layers actually rendered
    daily = res["daily"]
    for name in ("morning", "night"):
        risk_layer = daily[name]
        assert risk_layer["valid"] and risk_layer["count"] == 30
        assert risk_layer["renderer"] == "categorizedSymbol" and risk_layer["attr"] == "risk_class"
        assert sorted(risk_layer["values"]) == ["1", "2", "3", "4", "5"]
        assert risk_layer["levels"]  # casing under every fill: no beads at national scale
        assert risk_layer["types"]["date"] == "Date"
        assert risk_layer["types"]["shift_start"] == risk_layer["types"]["shift_end"] == "DateTime"
    assert daily["segments"]["valid"] and daily["segments"]["count"] == 30
    assert daily["segments"]["renderer"] == "singleSymbol" and not daily["segments"]["labels"]
    for name in ("plan_morning", "plan_night"):
        plan_layer = daily[name]
        assert plan_layer["valid"] and plan_layer["count"] == 4 and plan_layer["labels"]
        assert plan_layer["renderer"] == "categorizedSymbol" and plan_layer["attr"] == "unit"
        assert sorted(plan_layer["values"]) == ["PP Metlika 1", "PP Črnomelj 2"]
        assert plan_layer["levels"]
        assert plan_layer["types"]["slot_start"] == plan_layer["types"]["slot_end"] == "DateTime"
    # Stored in UTC (GeoPackage rule); the label still says the local slot.
    assert res["daily_plan_start"] == "2024-08-14T21:00:00 UTC"
    assert res["daily_plan_label"] == "PP Metlika 1: 23:00\u201301:00"
    assert res["daily_date"] == "2024-08-14"
