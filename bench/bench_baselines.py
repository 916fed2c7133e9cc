"""Runtime of the baselines and of the metrics at the stated size: ~550 windows x 650
segments, ~5,000 events a year over 3 years (a self-exciting synthetic history).

    python bench/bench_baselines.py [--segments 650] [--days 183] [--repeat 1]

Prints one line per baseline (seconds, output shape) and the time of ``evaluate``. The
synthetic history comes from the helpers of ``tests/test_baselines.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_baselines import (  # noqa: E402
    actual_counts,
    make_segments,
    make_windows,
    simulate_hawkes,
)

from riskmodel.evaluation import baselines as bl  # noqa: E402
from riskmodel.evaluation import metrics as ev  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--segments", type=int, default=650)
    ap.add_argument("--days", type=int, default=183, help="evaluated days (3 shifts each)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per baseline (the best counts)")
    a = ap.parse_args()
    seg = make_segments(a.segments, seed=7)
    events = simulate_hawkes(
        seg, 3 * 365 + a.days, mu_per_day=7.0, theta=0.5, omega=0.5, sigma=1.5, seed=8
    )
    win = make_windows("2024-01-01", a.days)
    print(f"{len(win)} windows x {len(seg)} segments, {len(events)} events")
    out = None
    for name, fn in bl.BASELINES.items():
        best = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            out = fn(events, seg, win)
            best = min(best, time.perf_counter() - t)
        print(f"  {name:<10} {best:6.2f} s  shape={out.shape}")
    actual = actual_counts(events, win, len(seg))
    t = time.perf_counter()
    ev.evaluate(out, actual, (seg["length_m"] / 1000).to_numpy(), oracle_pred=out)
    print(f"  evaluate   {time.perf_counter() - t:6.2f} s")


if __name__ == "__main__":
    main()
