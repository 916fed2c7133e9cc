"""Published layers open styled in real QGIS through its ``postgres`` provider.

Skipped unless QGIS is installed (``qgis_process.bin`` and PyQGIS in the system Python,
Debian: ``apt-get install -y qgis python3-qgis``) and a PostgreSQL/PostGIS server is available
(the ``pg_db`` fixture). QGIS runs headless in a subprocess (``QT_QPA_PLATFORM=offscreen``)
and loads the published table and its ``_latest`` view with no style given: the renderer must
be the categorised risk-class style that ``riskmodel publish`` put in ``public.layer_styles``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_qgis import SYSTEM_PYTHON, _qgis_available  # noqa: E402
from test_writers import SHIFTS, plan_frame, scored_frame  # noqa: E402

pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(
        not _qgis_available(), reason="needs QGIS (qgis_process.bin + python3-qgis)"
    ),
]

_SCRIPT = r"""
import json, sys
from qgis.core import QgsApplication, QgsDataSourceUri, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
conn = json.loads(sys.argv[1])
out = {}
for table, key in (("risk_segments", "fid"), ("risk_segments_latest", "fid"),
                   ("plan_checks", "fid")):
    uri = QgsDataSourceUri()
    uri.setConnection(conn["host"], conn["port"], conn["dbname"], conn["user"], "")
    uri.setDataSource("riskmodel", table, "geom", "", key)
    layer = QgsVectorLayer(uri.uri(False), table, "postgres")
    r = layer.renderer()
    d = {"valid": layer.isValid(), "count": layer.featureCount(), "crs": layer.crs().authid(),
         "renderer": r.type() if r else None, "labels": layer.labelsEnabled()}
    if r is not None and r.type() == "categorizedSymbol":
        d["attr"] = r.classAttribute()
        d["values"] = sorted(str(c.value()) for c in r.categories())
    out[table] = d
print("RESULT " + json.dumps(out))
"""


def test_published_layers_open_styled_in_qgis(pg_db: str, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    from riskmodel.api import publish
    from riskmodel.config.settings import Settings
    from riskmodel.io.write.geojson import write_geojson
    from riskmodel.io.write.qml import qml_plan_style, qml_risk_style

    risk = {s: scored_frame(s, seed=i) for i, s in enumerate(SHIFTS)}
    for s, g in risk.items():
        write_geojson(g, tmp_path / f"risk_2024-08-14_{s}.geojson", qml=qml_risk_style())
    plan = plan_frame(risk["morning"])
    plan.drop(columns="geometry").to_csv(tmp_path / "plan_2024-08-14_morning.csv", index=False)
    write_geojson(plan, tmp_path / "plan_2024-08-14_morning.geojson", qml=qml_plan_style())
    publish(Settings(), tmp_path, db=pg_db)

    conn = psycopg.conninfo.conninfo_to_dict(pg_db)
    conn = {k: str(conn.get(k) or "") for k in ("host", "port", "dbname", "user")}
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    run = subprocess.run(
        [SYSTEM_PYTHON, "-c", _SCRIPT, json.dumps(conn)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, run.stderr[-3000:]
    res = json.loads(line[len("RESULT ") :])
    for table in ("risk_segments", "risk_segments_latest"):
        layer = res[table]
        assert layer["valid"] and layer["count"] == 90 and layer["crs"] == "EPSG:3794"
        assert layer["renderer"] == "categorizedSymbol" and layer["attr"] == "risk_class"
        assert layer["values"] == ["1", "2", "3", "4", "5"] and layer["labels"]
    plan = res["plan_checks"]
    assert plan["valid"] and plan["count"] == 4
    assert plan["renderer"] == "singleSymbol" and plan["labels"]  # the plan QML, not QGIS's default
