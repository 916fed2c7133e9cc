"""Golden outputs: a fixed-seed, fixed-date run of the whole chain through the CLI.

``python tests/golden/record.py`` rewrites ``tests/golden/expected.json``; ``tests/test_golden.py``
re-runs the same chain and compares. Run it only when an output change is intended, and say
why in the commit. Everything goes through the command line (the stable interface), so the
package can be reorganised underneath without touching this file.

What is compared: text outputs byte for byte (after removing run-dependent fields: timings,
absolute paths, creation times, versions, random OS seeds), GeoPackage layers by their
attribute tables and WKB geometry, the backtest ``metrics.json`` and the trial's ``trial.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.json"

# Fixed world and dates: nothing depends on today.
SIM = ["simulate", "--seed", "3", "--start", "2024-01-01", "--end", "2024-12-31"]
MODEL = ["--param", "n_estimators=60", "--param", "learning_rate=0.2", "--param", "n_bags=1"]
DAY = "2025-01-01"

# Keys whose values change from run to run by design (wall time, where it ran, when, versions).
_VOLATILE = re.compile(
    r"(seconds|_s$|runtime|elapsed|created|timestamp_utc|written_at|path|folder|root|"
    r"versions?|python|platform|host|started|finished|duration|model_id|sha256|bundle|"
    r"out$|outputs|head|log_|audit_log|wall)",
    re.IGNORECASE,
)


def _scrub(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: ("<volatile>" if _VOLATILE.search(k) else _scrub(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 10)
    if isinstance(obj, str) and obj.startswith("/"):
        return "<path>"  # where the checkout or the temporary folder lies
    return obj


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _csv_digest(path: Path) -> str:
    # Model ids embed the creation time; replace them before hashing.
    text = re.sub(r"\b\d{8}T\d{6}Z?[-_][0-9a-f]{6,}\b", "<model>", path.read_text("utf-8"))
    return _digest(text.encode())


def _gpkg_digest(path: Path) -> dict[str, str]:
    import pyogrio

    out = {}
    for name, _geom in pyogrio.list_layers(path):
        if name in ("layer_styles", "riskmodel_provenance"):
            continue
        df = pyogrio.read_dataframe(path, layer=name)
        geom = df.geometry.to_wkb(hex=True)
        table = df.drop(columns="geometry").astype(str)
        table["geometry"] = geom
        out[name] = _digest(table.to_csv(index=False).encode())
    return out


def _json_digest(path: Path) -> Any:
    return _scrub(json.loads(path.read_text("utf-8")))


def _geojson_digest(path: Path) -> str:
    doc = json.loads(path.read_text("utf-8"))
    doc = _scrub({k: v for k, v in doc.items() if k not in ("riskmodel", "provenance", "metadata")})
    return _digest(json.dumps(doc, sort_keys=True).encode())


def run_chain(workdir: Path) -> dict[str, Any]:
    """Run the fixed chain in ``workdir`` and return the comparable digest of its outputs."""
    from click.testing import CliRunner

    from riskmodel.cli import main

    runner = CliRunner(env={"RISKMODEL_SIGNING_KEY": "golden-chain-key"})  # bundles signed

    def cli(*args: str) -> None:
        res = runner.invoke(main, list(args), catch_exceptions=False)
        if res.exit_code != 0:
            raise RuntimeError(f"riskmodel {' '.join(args)} -> {res.exit_code}\n{res.output}")

    w = workdir
    models = str(w / "models")
    ev, ef = str(w / "sim" / "events.csv"), str(w / "sim" / "effort.csv")
    cli(*SIM, "--out", str(w / "sim"))
    cli(
        "train",
        "--events",
        ev,
        "--effort",
        ef,
        "--until",
        "2024-12-31",
        "--models-root",
        models,
        *MODEL,
    )
    cli(
        "--config",
        str(_config(w)),
        "score",
        "--events",
        ev,
        "--effort",
        ef,
        "--date",
        DAY,
        "--to",
        "2025-01-02",
        "--out",
        str(w / "maps"),
    )
    cli(
        "--config",
        str(_config(w)),
        "plan",
        "--risk",
        str(w / "maps" / f"risk_{DAY}.csv"),
        "--units",
        "8",
        "--seed",
        "7",
        "--audit-log",
        str(w / "audit.jsonl"),
        "--out",
        str(w / "plans"),
    )
    cli(
        "backtest",
        "--events",
        ev,
        "--effort",
        ef,
        "--truth",
        str(w / "sim" / "truth.parquet"),
        "--from",
        "2024-12-04",
        "--to",
        "2024-12-17",
        "--step-days",
        "14",
        *MODEL,
        "--out",
        str(w / "bt"),
    )
    cli(
        "trial",
        "--weeks",
        "6",
        "--burn-in-days",
        "182",
        "--policy",
        "randomised",
        "--policy",
        "top-k",
        "--seed",
        "0",
        "--out",
        str(w / "trial"),
    )

    digest: dict[str, Any] = {}
    for p in sorted((w / "maps").iterdir()):
        if p.suffix == ".csv":
            digest[f"maps/{p.name}"] = _csv_digest(p)
        elif p.suffix == ".geojson":
            digest[f"maps/{p.name}"] = _geojson_digest(p)
        elif p.suffix == ".gpkg":
            digest[f"maps/{p.name}"] = _gpkg_digest(p)
    for p in sorted((w / "plans").glob("*.csv")):
        digest[f"plans/{p.name}"] = _csv_digest(p)
    digest["bt/metrics.json"] = _json_digest(w / "bt" / "metrics.json")
    trial = json.loads((w / "trial" / "trial.json").read_text("utf-8"))
    digest["trial/trial.json"] = _scrub({k: v for k, v in trial.items() if k != "provenance"})
    return digest


def _config(w: Path) -> Path:
    cfg = w / "riskmodel.toml"
    cfg.write_text(f'models_root = "{w / "models"}"\n')
    return cfg


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        digest = run_chain(Path(d))
    EXPECTED.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED} ({len(digest)} outputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
