"""Benchmark: validate a 5 M-row events CSV (time and peak memory).

Generates a realistic export in a temporary folder (a child process, so its memory does not
count), then runs :func:`riskmodel.io.read.events.read_events` with the border distance check in this
process and reports wall time and peak RSS (``resource.getrusage``). ~1 % of rows are broken
on purpose (bad / naive / DST-gap times, empty or swapped coordinates, far points, duplicates).

Usage::

    python bench/bench_validate.py [--rows 5000000] [--keep DIR]

Writes ``bench/results/validate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Rough SI-HR border course (lon, lat), tripoint -> Dragonja mouth, for a synthetic line when
# the bundled border is not built yet.
_WAYPOINTS = np.array(
    [
        (16.596, 46.476),
        (16.38, 46.31),
        (16.01, 46.29),
        (15.65, 46.21),
        (15.60, 46.00),
        (15.70, 45.84),
        (15.30, 45.70),
        (15.33, 45.45),
        (14.95, 45.48),
        (14.57, 45.63),
        (14.33, 45.48),
        (13.92, 45.53),
        (13.592, 45.472),
    ]
)


def synthetic_border(n_vertices: int = 9000):
    """A wiggly line along the SI-HR border (EPSG:3794), ~650 km, ``n_vertices`` vertices."""
    import geopandas as gpd
    import shapely
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:3794", always_xy=True)
    x, y = tr.transform(_WAYPOINTS[:, 0], _WAYPOINTS[:, 1])
    t = np.linspace(0, len(x) - 1, n_vertices)
    bx, by = np.interp(t, np.arange(len(x)), x), np.interp(t, np.arange(len(y)), y)
    by = by + 600 * np.sin(t * 7.0) + 150 * np.sin(t * 61.0)  # meanders like a river
    return gpd.GeoDataFrame(
        geometry=[shapely.linestrings(np.column_stack([bx, by]))], crs="EPSG:3794"
    )


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write the events CSV with pyarrow (fast), ~1 % bad rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv
    import shapely
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    c = shapely.get_coordinates(synthetic_border().geometry.values[0])
    i, f = rng.integers(0, len(c) - 1, rows), rng.random(rows)[:, None]
    p = c[i] + f * (c[i + 1] - c[i])  # uniform along the vertices, then scattered ~3 km
    x = p[:, 0] + rng.normal(0, 3000, rows)
    y = p[:, 1] + rng.normal(0, 3000, rows)
    lon, lat = Transformer.from_crs("EPSG:3794", "EPSG:4326", always_xy=True).transform(x, y)
    start = np.datetime64("2022-01-01T00:00:00", "s").astype(np.int64)
    secs = start + rng.integers(0, 3 * 365 * 86400, rows)
    ts = pa.array(secs * 1_000_000, type=pa.timestamp("us", tz="Europe/Ljubljana"))
    text = pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S%z")
    lat_s = pc.cast(pa.array(np.round(lat, 6)), pa.string())
    lon_s = pc.cast(pa.array(np.round(lon, 6)), pa.string())
    text, lat_s, lon_s = (
        np.asarray(a.to_numpy(zero_copy_only=False), dtype=object) for a in (text, lat_s, lon_s)
    )
    k = max(rows // 700, 1)  # ~7 kinds of damage, 1/700 each

    def pick() -> np.ndarray:
        return rng.choice(rows, k, replace=False)

    text[pick()] = "31.02.2023 25:61"  # malformed
    text[pick()] = "2023-07-01 12:00:00"  # naive among aware rows
    lat_s[pick()] = ""  # missing coordinate
    i = pick()
    lat_s[i], lon_s[i] = lon_s[i], lat_s[i]  # swapped
    lat_s[pick()] = "44.0"  # far from the border
    i = pick()
    dup_src = rng.choice(rows, k)
    text[i], lat_s[i], lon_s[i] = text[dup_src], lat_s[dup_src], lon_s[dup_src]  # duplicates
    persons = pa.array(rng.integers(1, 30, rows))
    tbl = pa.table(
        {
            "event_id": pc.binary_join_element_wise(
                "E", pc.cast(pa.array(np.arange(rows)), pa.string()), ""
            ),
            "timestamp": pa.array(text, type=pa.string()),
            "lat": pa.array(lat_s, type=pa.string()),
            "lon": pa.array(lon_s, type=pa.string()),
            "persons": persons,
            "type": pa.array(np.where(rng.random(rows) < 0.05, "smuggler_arrest", "apprehension")),
            "source": pa.array(rng.choice(["PU Novo mesto", "PU Koper", "PU Celje"], rows)),
        }
    )
    pv.write_csv(tbl, path, write_options=pv.WriteOptions(quoting_style="needed"))


def main() -> None:
    """Run the benchmark and write ``bench/results/validate.json``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--keep", default=None, help="folder to keep the generated CSV in")
    ap.add_argument("--generate-only", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        generate(Path(args.generate_only), args.rows)
        return

    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        path = Path(tmp) / "events.csv"
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--generate-only", str(path)],
            check=True,
        )
        gen_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in {gen_s:.1f} s")

        from riskmodel.errors import InputError
        from riskmodel.geo import geodata as geodata
        from riskmodel.io.read.events import read_events

        try:
            border = geodata.load_layer("border")
            border_src = "bundled geodata/border.geojson"
        except InputError:
            border, border_src = synthetic_border(), "synthetic (bundled border not built yet)"
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load0 = os.getloadavg()[0]
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        res = read_events(path, border=border, max_distance_m=20000.0, now="2025-06-01")
        secs = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        s = res.summary
        out = {
            "rows": args.rows,
            "file_mb": round(size_mb, 1),
            "seconds": round(secs, 2),
            "cpu_seconds": round(cpu, 2),  # user + system, all threads; load-independent
            "rows_per_second": round(args.rows / secs),
            "peak_rss_mb": round(peak_mb, 1),
            "rss_before_mb": round(rss0, 1),
            "target_peak_mb": 3072,
            "within_target": peak_mb < 3072,
            "accepted": s["accepted"],
            "quarantined": s["quarantined"],
            "by_reason": s["by_reason"],
            "border": border_src,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # The machine is shared: a load above the core count inflates "seconds".
            "load_average_1m_before": round(load0, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        }
        print(
            f"validated in {secs:.1f} s wall, {cpu:.1f} s CPU ({out['rows_per_second']:,} rows/s,"
            f" load {load0:.1f}); "
            f"peak RSS {peak_mb:.0f} MB (before {rss0:.0f} MB); target < 3072 MB"
        )
        print(f"read {s['rows_read']} = accepted {s['accepted']} + quarantined {s['quarantined']}")
        print("by reason:", s["by_reason"])
    (HERE / "results").mkdir(exist_ok=True)
    target = HERE / "results" / "validate.json"
    target.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
