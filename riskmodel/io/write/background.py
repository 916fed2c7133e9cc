"""One writer run in a forked child while the command goes on: the slowest output (the PNG map)
no longer adds to the wall time of ``riskmodel score``/``daily``.

:func:`background` forks when the command starts; the child warms up what its writer needs
(matplotlib's imports and fonts: ~1 s) while the parent reads and scores, then waits for its
one job. The
parent hands the job over (:meth:`Background.submit`, pickled through a pipe), writes its
other outputs, and collects the result (:meth:`Job.result`) before it publishes the folder:
the output set, its bytes and the errors are the same as written in line, only earlier.

Where fork is unavailable or unsafe (not Linux, other threads running) the job runs in line
when it is submitted. A child that is never given a job exits when the parent closes the
pipe (also when the command fails before writing); ``RISKMODEL_NO_FORK=1`` turns the
child off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from riskmodel.errors import OutputError, RiskModelError

log = logging.getLogger(__name__)


class Job:
    """A submitted call: :meth:`result` returns its value or raises its error."""

    def __init__(self, value: Any = None, error: BaseException | None = None, bg: Any = None):
        self._value, self._error, self._bg = value, error, bg

    def result(self) -> Any:
        """The call's return value (waits for the child); its error re-raised here."""
        if self._bg is not None:
            self._value, self._error = self._bg._collect()
            self._bg = None
        if self._error is not None:
            raise self._error
        return self._value


class Background:
    """A forked child that runs one call (see the module docs).

    Parameters
    ----------
    warm : callable, optional
        Called in the child while it waits (imports, caches: what the job's first call would
        otherwise pay).
    """

    def __init__(self, warm: Callable[[], None] | None = None) -> None:
        self.pid: int | None = None
        self._to_child: int | None = None
        self._from_child: int | None = None
        if not _can_fork():
            return
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(job_w)
            os.close(res_r)
            _child(job_r, res_w, warm)
        os.close(job_r)
        os.close(res_w)
        self.pid, self._to_child, self._from_child = pid, job_w, res_r

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """Hand ``fn(*args, **kwargs)`` to the child (or run it now without one)."""
        if self.pid is None or self._to_child is None:
            return Job(fn(*args, **kwargs))
        try:
            payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(self._to_child, "wb") as f:
                self._to_child = None
                f.write(payload)
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            log.debug("background writer unavailable (%s): writing in line", exc)
            self.close()
            return Job(fn(*args, **kwargs))
        return Job(bg=self)

    def _collect(self) -> tuple[Any, BaseException | None]:
        assert self._from_child is not None and self.pid is not None
        with os.fdopen(self._from_child, "rb") as f:
            self._from_child = None
            data = f.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        try:
            kind, value = pickle.loads(data)
        except Exception:  # noqa: BLE001 - the child died without a word (killed, crashed)
            return None, OutputError(
                f"background writer ended without a result (wait status {status})",
                fix="rerun; set RISKMODEL_NO_FORK=1 to write in line",
            )
        if kind == "ok":
            return value, None
        if kind == "riskmodel":
            cls, what, where, fix = value
            return None, cls(what, where=where, fix=fix)
        return None, OutputError(f"background writer failed: {value}")

    def close(self) -> None:
        """End a child that has no job (or whose result nobody wants) and reap it."""
        for fd in (self._to_child, self._from_child):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_child = self._from_child = None
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None


@contextlib.contextmanager
def background(
    enabled: bool = True, warm: Callable[[], None] | None = None
) -> Iterator[Background | None]:
    """A :class:`Background` child for the block (``None`` when not ``enabled``); ended on exit."""
    if not enabled:
        yield None
        return
    bg = Background(warm)
    try:
        yield bg
    finally:
        bg.close()


def submit(bg: Background | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
    """``bg.submit(fn, ...)``, or run ``fn`` in line (its errors raised here) without one."""
    return Job(fn(*args, **kwargs)) if bg is None else bg.submit(fn, *args, **kwargs)


def _can_fork() -> bool:
    # Linux only: on macOS system frameworks (Accelerate, libdispatch) are not fork-safe, and
    # Windows has no fork.
    if os.environ.get("RISKMODEL_NO_FORK") or not sys.platform.startswith("linux"):
        return False
    # fork() copies only the calling thread: with others running (a test runner, a Dask
    # client) a lock held elsewhere could stay locked in the child forever.
    return threading.active_count() == 1


def _child(job_r: int, res_w: int, warm: Callable[[], None] | None) -> None:
    """The child's whole life; leaves through ``os._exit`` (no atexit, no flushed buffers of
    the parent)."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        if warm is not None:
            try:
                warm()
            except Exception:  # noqa: BLE001 - warming is an optimisation; the job reports
                pass
        with os.fdopen(job_r, "rb") as f:
            data = f.read()
        if not data:  # the parent closed the pipe: no job
            os._exit(0)
        fn, args, kwargs = pickle.loads(data)
        try:
            out: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except RiskModelError as exc:
            out = ("riskmodel", (type(exc), exc.what, exc.where, exc.fix))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            out = ("error", f"{type(exc).__name__}: {exc}")
        with os.fdopen(res_w, "wb") as f:
            f.write(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException:  # noqa: BLE001 - the parent reports a child without a result
        code = 1
    os._exit(code)
