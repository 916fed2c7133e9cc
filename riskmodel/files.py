"""Atomic, reproducible file output and hashing helpers."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from riskmodel.errors import OutputError


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not all filesystems allow it
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Write a file atomically: ``writer(tmp_path)`` fills a temp file in the same folder,
    which is fsynced and renamed over ``path``. After any interruption the target is either the
    old complete file or the new complete file.

    Parameters
    ----------
    path : path-like
        Final destination.
    writer : callable
        Called with the temporary path (same folder, same suffix); must create that file.

    Returns
    -------
    Path
        The final path.
    """
    target = Path(path)
    folder = target.parent
    _make_folder(folder)
    if not os.access(folder, os.W_OK):
        raise OutputError(
            f"output folder is not writable: {folder}",
            fix="choose another --out folder or fix its permissions",
        )
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=folder
        )
    except OSError as exc:
        raise output_error(exc, target) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers (GDAL) want to create the file themselves
    try:
        writer(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise output_error(exc, target) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes atomically (temp file + fsync + rename)."""
    return atomic_write_with(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically with ``\\n`` line endings."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON atomically with sorted keys."""
    return atomic_write_text(path, canonical_json(obj))


def output_error(exc: OSError, target: str | os.PathLike[str]) -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` met while writing ``target``
    (disk full, permission denied, read-only filesystem, ...)."""
    if exc.errno == errno.ENOSPC:
        return OutputError(f"disk full while writing {target}", fix="free disk space and run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "read-only filesystem" if exc.errno == errno.EROFS else "permission denied"
        return OutputError(
            f"cannot write {target}: {why}",
            fix="choose another --out folder or fix its permissions",
        )
    return OutputError(f"cannot write {target}: {exc.strerror or exc}")


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, folder) from exc


LOCK_NAME = ".riskmodel.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for the duration of a run.

    The lock is ``fcntl.flock`` on ``.riskmodel.lock`` in the folder: the kernel grants it to one
    process at a time and drops it when that process dies (no stale locks, no PID race). The
    file holds the owner's PID for the message only. The holder removes the file before
    releasing; a process that locked a removed file notices (its inode is no longer the one at
    the path) and tries again, so two holders never coexist.

    Raises
    ------
    OutputError
        The folder is locked by another run, or cannot be created or written.
    """
    import fcntl

    folder = Path(folder)
    _make_folder(folder)
    lock = folder / LOCK_NAME
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise output_error(exc, lock) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise OutputError(
                f"output folder {folder} is in use by another riskmodel run (pid {pid})",
                fix="wait for it to finish or choose another --out folder",
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # locked a file its holder had just removed: start again
            os.close(fd)
            continue
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield folder
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()
            os.close(fd)  # releases the lock
        return
    raise OutputError(f"could not lock output folder {folder}", fix=f"remove {lock}")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Block SIGINT/SIGTERM for a few renames; a signal that came meanwhile is delivered after."""
    import signal

    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def staged_outputs(out: str | os.PathLike[str], replaces: tuple[str, ...] = ()) -> Iterator[Path]:
    """All-or-nothing output of one run: yield an empty staging folder beside ``out`` (in its
    parent, so on the same filesystem); when the block ends normally every file in it is
    renamed into ``out`` (with signals deferred for those few renames), else the staging
    folder is removed and ``out`` keeps the previous complete set.

    Parameters
    ----------
    out : path-like
        The output folder (created if missing).
    replaces : tuple of str
        Globs of files in ``out`` that belong to the set being replaced (e.g.
        ``risk_2026-12-01*``): those the new set does not contain are removed in the same
        step, so no file of an older run is left mixed with the new one.
    """
    import shutil

    out = Path(out)
    _make_folder(out)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise output_error(exc, out) from exc
    try:
        yield stage
        new = sorted(p.name for p in stage.iterdir())
        old = sorted({p.name for pattern in replaces for p in out.glob(pattern)})
        with _signals_deferred():
            try:
                for name in new:
                    os.replace(stage / name, out / name)
                for name in old:
                    if name not in new:
                        (out / name).unlink(missing_ok=True)
            except OSError as exc:
                raise output_error(exc, out) from exc
            _fsync_dir(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
