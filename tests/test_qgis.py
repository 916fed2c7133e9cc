"""Open riskmodel outputs in real QGIS (headless) and check they come up styled.

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
from riskmodel.io.write.gpkg import write_gpkg
from riskmodel.io.write.qml import qml_plan_style, qml_risk_style

sys.path.insert(0, str(Path(__file__).parent))
from test_writers import SHIFTS, plan_frame, scored_frame  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"

_SCRIPT = r"""
import json, sys
from qgis.core import (QgsApplication, QgsExpression, QgsExpressionContext, QgsMapSettings,
                       QgsMapRendererParallelJob, QgsVectorLayer)
from qgis.PyQt.QtCore import QSize
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
