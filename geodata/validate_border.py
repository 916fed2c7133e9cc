"""Compare the bundled border line with an independent reference line (e.g. the survey's).

Maintainer script, not part of the package. The reference is only read, never copied::

    python geodata/validate_border.py REFERENCE.geojson [--write]

Our line is densified every 10 m and each point's distance to the reference is measured in
EPSG:3794. Prints median, p95 and max, the reverse direction (reference -> ours, which
catches missing stretches), both lengths and vertex counts. Exits 1 when the median exceeds
25 m or the p95 exceeds 300 m. ``--write`` stores the figures in ``provenance.json`` and
re-renders ``PROVENANCE.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString

HERE = Path(__file__).resolve().parent
METRIC = "EPSG:3794"
MAX_MEDIAN_M = 25.0
MAX_P95_M = 300.0


def read_line(path: Path) -> LineString:
    """Read a line layer and merge it into one LineString in EPSG:3794.

    Parameters
    ----------
    path : Path
        Any OGR-readable line layer with a CRS.

    Returns
    -------
    LineString

    Raises
    ------
    SystemExit
        No CRS, or the parts do not merge into one line.
    """
    gdf = gpd.read_file(path)
    if gdf.crs is None:
        raise SystemExit(f"{path}: no CRS")
    merged = shapely.line_merge(shapely.union_all(gdf.to_crs(METRIC).geometry.values))
    if merged.geom_type != "LineString":
        raise SystemExit(f"{path}: does not merge into one LineString ({merged.geom_type})")
    return merged


def distances_to(line: LineString, ref: LineString, step_m: float) -> np.ndarray:
    """Distance from points every ``step_m`` along ``line`` to ``ref``.

    Parameters
    ----------
    line, ref : LineString
        Metric CRS.
    step_m : float
        Densification step.

    Returns
    -------
    ndarray
        Distances in metres, one per sample (both ends included).
    """
    d = np.append(np.arange(0.0, line.length, step_m), line.length)
    pts = shapely.line_interpolate_point(line, d)
    # Nearest reference segment via an STRtree: O(n log m) instead of n x m.
    xy = shapely.get_coordinates(ref)
    segs = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
    _, dist = shapely.STRtree(segs).query_nearest(pts, return_distance=True, all_matches=False)
    return dist


def compare(ours: LineString, ref: LineString, step_m: float = 10.0) -> dict[str, Any]:
    """Distance statistics of our line against a reference line.

    Parameters
    ----------
    ours, ref : LineString
        Lines in EPSG:3794.
    step_m : float
        Densification step for both directions.

    Returns
    -------
    dict
        median_m, p95_m, max_m, reverse_median_m, reverse_p95_m, reverse_max_m, lengths,
        length_ratio, vertex counts.
    """
    fwd = distances_to(ours, ref, step_m)
    rev = distances_to(ref, ours, step_m)
    return {
        "densify_m": step_m,
        "median_m": round(float(np.median(fwd)), 1),
        "p95_m": round(float(np.percentile(fwd, 95)), 1),
        "max_m": round(float(fwd.max()), 1),
        "reverse_median_m": round(float(np.median(rev)), 1),
        "reverse_p95_m": round(float(np.percentile(rev, 95)), 1),
        "reverse_max_m": round(float(rev.max()), 1),
        "length_km": round(ours.length / 1000, 3),
        "reference_length_km": round(ref.length / 1000, 3),
        "length_ratio": round(ours.length / ref.length, 4),
        "vertices": int(shapely.get_num_coordinates(ours)),
        "reference_vertices": int(shapely.get_num_coordinates(ref)),
    }


def write_provenance(folder: Path, figures: dict[str, Any], reference: str, border: Path) -> None:
    """Store validation figures in provenance.json and re-render PROVENANCE.md.

    Parameters
    ----------
    folder : Path
        The geodata folder.
    figures : dict
        Output of :func:`compare`.
    reference : str
        Description of the reference (file name; the file itself is not bundled).
    border : Path
        The border file measured (its sha256 ties the figures to it).
    """
    sys.path.insert(0, str(HERE))
    import build_geodata  # sibling maintainer script; not a package module

    prov_path = folder / "provenance.json"
    prov = json.loads(prov_path.read_text(encoding="utf-8"))
    prov["layers"]["border"]["validation"] = {
        "reference": reference,
        "measured": dt.datetime.now(dt.UTC).date().isoformat(),
        "border_sha256": build_geodata.sha256_file(border),
        **figures,
    }
    prov_path.write_text(json.dumps(prov, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (folder / "PROVENANCE.md").write_text(build_geodata.render_markdown(prov), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print the figures.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments.

    Returns
    -------
    int
        0 when within the limits, else 1.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", type=Path, help="reference line (e.g. the survey GeoJSON)")
    ap.add_argument("--border", type=Path, default=HERE / "border.geojson")
    ap.add_argument("--step-m", type=float, default=10.0)
    ap.add_argument("--write", action="store_true", help="store figures in provenance.json")
    args = ap.parse_args(argv)

    ours, ref = read_line(args.border), read_line(args.reference)
    f = compare(ours, ref, args.step_m)
    print(f"ours      {f['length_km']:8.2f} km  {f['vertices']:6d} vertices  ({args.border})")
    print(
        f"reference {f['reference_length_km']:8.2f} km  {f['reference_vertices']:6d} vertices  "
        f"({args.reference})"
    )
    print(f"length ratio {f['length_ratio']:.4f}")
    print(
        f"ours -> reference (every {f['densify_m']:g} m): median {f['median_m']} m, "
        f"p95 {f['p95_m']} m, max {f['max_m']} m"
    )
    print(
        f"reference -> ours: median {f['reverse_median_m']} m, p95 {f['reverse_p95_m']} m, "
        f"max {f['reverse_max_m']} m"
    )
    ok = f["median_m"] <= MAX_MEDIAN_M and f["p95_m"] <= MAX_P95_M
    print(
        f"limits median <= {MAX_MEDIAN_M:g} m, p95 <= {MAX_P95_M:g} m: {'PASS' if ok else 'FAIL'}"
    )
    if args.write:
        # Record the reference by the name of its file plus the project's label for it.
        label = f"{args.reference.name} (GURS survey line, CC BY 4.0)"
        write_provenance(args.border.resolve().parent, f, label, args.border)
        print(f"wrote validation figures to {args.border.resolve().parent / 'provenance.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
