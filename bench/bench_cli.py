"""Benchmark: the planner's commands as a user runs them (whole process, cold start).

Builds once (cached in ``--dir``) a station workspace with a 2-year history of ~17 k events
on the 640 bundled 1 km segments: ``riskmodel demo --years 2 --backtest-days 0`` (workspace,
default model) whose data/ is then replaced by ``riskmodel simulate`` over the two years up
to yesterday at 60,000 persons a year (16.9 k events, 35 k effort rows). Then times, each as
a fresh ``python -m riskmodel`` process:

* ``riskmodel --help``
* ``riskmodel score`` for the day after the data, every shift, all outputs (GeoJSON + QML per
  shift, GeoPackage, HTML map, PNG map, CSV, provenance)
* ``riskmodel daily`` for the same day (score + 3 plans + audit + daily map + briefing);
  the workspace's audit log and state are restored before every run, untimed.

One untimed warm-up run (it also writes the tree's bytecode, as an installed package has it),
then ``--repeat`` (5) timed runs: median, min and max of the wall
time and of the CPU time (user + system of the child, ``resource.getrusage(RUSAGE_CHILDREN)``;
it counts every thread, so CPU can exceed wall). CPU time is the steadier figure on a shared
machine: wall time grows with the load average (printed), CPU time much less. The phase
breakdown comes from the process itself (``RISKMODEL_PROFILE``, :mod:`riskmodel._timing`):
``start`` is interpreter start to the command (CLI imports, argument parsing); ``imports and
glue`` is what no timed phase covers (mostly the libraries a command imports on first use);
nested phases are indented. ``--importtime`` adds one ``python -X importtime`` run per
command, summed by package (self time, wall).

Usage::

    python bench/bench_cli.py [--dir DIR] [--repeat 5] [--tree SRC] [--against OLD]
                              [--only help,score,daily]
                              [--importtime] [--json bench/results/cli.json]

``--tree`` runs another source tree (e.g. an unpacked older commit) on the same workspace:
that is how the before/after table of bench/README.md was made.

``--against OLD`` compares this tree with another one run by run, interleaved (old, new, old,
new, ...): on a shared VM whose speed drifts by 20-25 % over minutes, two back-to-back series
can differ more than the change measured, while neighbouring runs see the same machine. It
prints both series and the median of the paired differences (new - old) with its range.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
YEARS = 2
PERSONS_PER_YEAR = 60000


def _env(tree: Path, profile: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Bytecode as an installed package has it (pip compiles it; Python writes it for a source
    # tree on first import): some sandboxes set PYTHONDONTWRITEBYTECODE, which made every run
    # compile riskmodel's ~80 modules again (~0.3 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("RISKMODEL_WORKSPACE", None)
    env.pop("RISKMODEL_PROFILE", None)
    if profile is not None:
        env["RISKMODEL_PROFILE"] = str(profile)
    return env


def _rm(tree: Path, *args: str, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "riskmodel", *args]
    print("  $", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, cwd=cwd, env=_env(tree), check=True, stdout=subprocess.DEVNULL)


def build(base: Path, tree: Path) -> dict[str, Any]:
    """The cached workspace (see module docs); returns its description."""
    marker = base / "bench_cli.json"
    if marker.is_file():
        return json.loads(marker.read_text("utf-8"))
    print(f"building the benchmark workspace in {base} (~1 min) ...", flush=True)
    base.mkdir(parents=True, exist_ok=True)
    ws = base / "ws"
    if ws.exists():
        shutil.rmtree(ws)
    _rm(tree, "demo", "--out", str(ws), "--years", str(YEARS), "--backtest-days", "0", cwd=base)
    last = dt.date.today() - dt.timedelta(days=1)
    first = last.replace(year=last.year - YEARS) + dt.timedelta(days=1)
    sim = base / "sim"
    _rm(tree, "simulate", "--out", str(sim), "--from", first.isoformat(), "--to",
        last.isoformat(), "--persons-per-year", str(PERSONS_PER_YEAR), cwd=base)  # fmt: skip
    for name in ("events.csv", "effort.csv"):
        shutil.copyfile(sim / name, ws / "data" / name)
    with open(ws / "data" / "events.csv", encoding="utf-8") as f:
        n_events = sum(1 for _ in f) - 1
    info = {
        "workspace": str(ws),
        "first": first.isoformat(),
        "last": last.isoformat(),
        "day": (last + dt.timedelta(days=1)).isoformat(),
        "events": n_events,
        "segments": 640,
    }
    snap = base / "audit_snapshot"
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir()
    shutil.copytree(ws / "audit", snap / "audit")
    shutil.copyfile(ws / ".riskmodel" / "state.json", snap / "state.json")
    marker.write_text(json.dumps(info, indent=2), "utf-8")
    return info


def _restore(base: Path, ws: Path) -> None:
    snap = base / "audit_snapshot"
    shutil.rmtree(ws / "audit")
    shutil.copytree(snap / "audit", ws / "audit")
    shutil.copyfile(snap / "state.json", ws / ".riskmodel" / "state.json")


def commands(info: dict[str, Any], base: Path) -> dict[str, list[str]]:
    ws = info["workspace"]
    return {
        "help": ["--help"],
        "score": ["--workspace", ws, "score", "--events", f"{ws}/data/events.csv", "--effort",
                  f"{ws}/data/effort.csv", "--date", info["day"], "--out", str(base / "score_out")],
        "daily": ["--workspace", ws, "daily", "--date", info["day"], "--units", "12",
                  "--seed", "1"],
    }  # fmt: skip


def _prepare(name: str, info: dict[str, Any], base: Path) -> None:
    """Untimed: every run starts from the same files."""
    ws = Path(info["workspace"])
    if name == "score":
        shutil.rmtree(base / "score_out", ignore_errors=True)
    if name == "daily":
        _restore(base, ws)
        shutil.rmtree(ws / "out" / info["day"], ignore_errors=True)


def run_once(args: list[str], tree: Path, cwd: Path) -> dict[str, Any]:
    """One process: wall and CPU seconds and its phases."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        prof = Path(f.name)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "riskmodel", *args],
        cwd=cwd,
        env=_env(tree, prof),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"riskmodel {' '.join(args)} -> exit {res.returncode}\n{res.stderr}")
    lines = prof.read_text("utf-8").splitlines() if prof.exists() else []
    prof.unlink(missing_ok=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "profile": json.loads(lines[-1]) if lines else None}


def phases(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median wall/CPU per phase over the runs (same-name calls of one run summed)."""
    order: dict[tuple[int, str], float] = {}
    per: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    rest: list[tuple[float, float]] = []
    start: list[float] = []
    for r in runs:
        p = r["profile"]
        if p is None:
            continue
        sums: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for ph in p["phases"]:
            key = (ph["depth"], ph["name"])
            order.setdefault(key, ph["at_s"])
            sums[key][0] += ph["wall_s"]
            sums[key][1] += ph["cpu_s"]
        for k, (w, c) in sums.items():
            per[k].append((w, c))
        top_w = sum(w for (d, _), (w, _c) in sums.items() if d == 0)
        top_c = sum(c for (d, _), (_w, c) in sums.items() if d == 0)
        s = p["start_s"] or 0.0
        start.append(s)
        rest.append((r["wall_s"] - s - top_w, r["cpu_s"] - top_c))
    out = []
    if start:
        out.append({"name": "start (interpreter, CLI imports)", "depth": 0,
                    "wall_s": statistics.median(start), "cpu_s": None})  # fmt: skip
    for key in sorted(order, key=lambda k: (order[k], k[0])):
        ws, cs = zip(*per[key], strict=True)
        out.append({"name": key[1], "depth": key[0], "wall_s": statistics.median(ws),
                    "cpu_s": statistics.median(cs)})  # fmt: skip
    if rest:
        out.append({"name": "imports and glue (no phase; CPU includes start)", "depth": 0,
                    "wall_s": statistics.median(w for w, _ in rest),
                    "cpu_s": statistics.median(c for _, c in rest)})  # fmt: skip
    return out


def importtime(args: list[str], tree: Path, cwd: Path, top: int = 15) -> list[tuple[str, float]]:
    """Self import time (s, wall) per package of one ``-X importtime`` run."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "riskmodel", *args],
        cwd=cwd, env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    agg: Counter[str] = Counter()
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, _cum, name = line.split("|")
        mod = name.strip()
        parts = mod.split(".")
        pkg = ".".join(parts[:2]) if parts[0] in ("scipy", "riskmodel", "sklearn") else parts[0]
        agg[pkg] += int(head.split(":")[1])
    return [(k, v / 1e6) for k, v in agg.most_common(top)]


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.2f}  {min(xs):5.2f}-{max(xs):5.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "riskmodel-bench-cli")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tree", type=Path, default=REPO, help="Source tree to run (default: this).")
    ap.add_argument("--against", type=Path, default=None,
                    help="Other source tree: runs alternate old/new, paired differences.")  # fmt: skip
    ap.add_argument("--only", default="help,score,daily")
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    base = a.dir.resolve()
    tree = a.tree.resolve()
    info = build(base, REPO)
    cmds = commands(info, base)
    print(f"workspace {info['workspace']}: {info['events']} events {info['first']}.."
          f"{info['last']}, {info['segments']} segments; day {info['day']}; tree {tree}")  # fmt: skip
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "workspace": info, "tree": str(tree), "repeat": a.repeat, "commands": {},
    }  # fmt: skip
    if a.against is not None:
        result["against"] = str(a.against.resolve())
        for name in a.only.split(","):
            result["commands"][name] = compare(name, cmds[name], a.against.resolve(), tree,
                                               info, base, a.repeat)  # fmt: skip
        return _dump(result, a.json)
    for name in a.only.split(","):
        args = cmds[name]
        _prepare(name, info, base)
        run_once(args, tree, base)  # warm-up: page cache, .pyc files
        runs = []
        loads = []
        for _ in range(a.repeat):
            _prepare(name, info, base)
            l0 = os.getloadavg()[0]
            runs.append(run_once(args, tree, base))
            loads.append((l0, os.getloadavg()[0]))
        walls = [r["wall_s"] for r in runs]
        cpus = [r["cpu_s"] for r in runs]
        ph = phases(runs)
        print(f"\n{name}: wall {_fmt(walls)} s, CPU {_fmt(cpus)} s (median min-max of "
              f"{a.repeat}); load average {min(min(x) for x in loads):.1f}-"
              f"{max(max(x) for x in loads):.1f}")  # fmt: skip
        for p in ph:
            cpu = "" if p["cpu_s"] is None else f"{p['cpu_s']:6.2f}"
            print(f"  {'  ' * p['depth']}{p['name']:<{50 - 2 * p['depth']}} "
                  f"{p['wall_s']:6.2f} {cpu}")  # fmt: skip
        entry: dict[str, Any] = {"wall_s": walls, "cpu_s": cpus, "load": loads, "phases": ph}
        if a.importtime:
            _prepare(name, info, base)
            it = importtime(args, tree, base)
            entry["importtime_s"] = it
            print("  imports (self wall s): " + ", ".join(f"{k} {v:.2f}" for k, v in it))
        result["commands"][name] = entry
    return _dump(result, a.json)


def compare(
    name: str, args: list[str], old: Path, new: Path, info: dict[str, Any], base: Path, n: int
) -> dict[str, Any]:
    """``n`` pairs of runs, old then new, each pair on the same minute of the machine."""
    for tree in (old, new):  # warm-up of each tree
        _prepare(name, info, base)
        run_once(args, tree, base)
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for _ in range(n):
        for key, tree in (("old", old), ("new", new)):
            _prepare(name, info, base)
            runs[key].append(run_once(args, tree, base))
    out: dict[str, Any] = {}
    print(f"\n{name}: {n} interleaved pairs")
    for what in ("wall_s", "cpu_s"):
        o = [r[what] for r in runs["old"]]
        w = [r[what] for r in runs["new"]]
        d = [b - a for a, b in zip(o, w, strict=True)]
        out[what] = {"old": o, "new": w, "diff": d}
        print(f"  {what[:-2]:>4}: old {_fmt(o)}  new {_fmt(w)}  new-old {_fmt(d)} s")
    out["phases"] = {k: phases(v) for k, v in runs.items()}
    return out


def _dump(result: dict[str, Any], path: Path | None) -> int:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1), "utf-8")
        print(f"\n-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
