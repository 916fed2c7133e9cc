"""Phase timings of one process, for ``bench/bench_cli.py`` and ``-vv``.

Functions decorated with :func:`timed` record their wall and CPU seconds (CPU of the whole
process, so XGBoost's threads count). The records are logged at DEBUG; with the environment
variable ``RISKMODEL_PROFILE=FILE`` the process appends one JSON line to ``FILE`` at exit:
``{"argv": [...], "start_s": ..., "total_wall_s": ..., "total_cpu_s": ..., "phases": [...]}``,
where ``start_s`` is the time from process start to the command's start (interpreter,
imports of the CLI, settings) and each phase is ``{"name", "depth", "at_s", "wall_s",
"cpu_s"}``. Nothing here changes an output; the cost is two clock reads per call.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)

ENV = "RISKMODEL_PROFILE"
_phases: list[dict[str, Any]] = []
_marks: dict[str, float] = {}
_depth = 0
_registered = False


def _process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _cpu() -> float:
    return time.process_time()


def _origin() -> float:
    """perf_counter value of the process start (approximate: clock ticks of /proc)."""
    if "origin" not in _marks:
        age = _process_age()
        _marks["origin"] = time.perf_counter() - (age if age is not None else 0.0)
    return _marks["origin"]


def mark(name: str) -> None:
    """Remember when ``name`` happened (e.g. ``"command"``: the CLI is ready to run it)."""
    _origin()
    _marks[name] = time.perf_counter()
    _register()


def _register() -> None:
    global _registered
    if not _registered and os.environ.get(ENV):
        atexit.register(_dump)
        _registered = True


def timed(name: str) -> Callable[[F], F]:
    """Decorator: record the wall and CPU seconds of every call under ``name``."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            global _depth
            origin = _origin()
            _register()
            t0, c0 = time.perf_counter(), _cpu()
            _depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                _depth -= 1
                wall, cpu = time.perf_counter() - t0, _cpu() - c0
                _phases.append(
                    {"name": name, "depth": _depth, "at_s": round(t0 - origin, 4),
                     "wall_s": round(wall, 4), "cpu_s": round(cpu, 4)}
                )  # fmt: skip
                log.debug("phase %s: %.2f s wall, %.2f s CPU", name, wall, cpu)

        return inner  # type: ignore[return-value]

    return wrap


def report() -> dict[str, Any]:
    """The phases so far (see module docs)."""
    origin = _origin()
    command = _marks.get("command")
    return {
        "argv": sys.argv[1:],
        "start_s": None if command is None else round(command - origin, 4),
        "total_wall_s": round(time.perf_counter() - origin, 4),
        "total_cpu_s": round(_cpu(), 4),
        "phases": sorted(_phases, key=lambda p: p["at_s"]),
    }


def _dump() -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(report()) + "\n")
    except OSError as exc:  # a benchmark aid must never fail the command
        log.warning("could not write phase timings to %s: %s", path, exc)
