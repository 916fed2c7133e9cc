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
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise OutputError(
            f"output folder is not writable: {folder}",
            fix="choose another --out folder or fix its permissions",
        )
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=folder
    )
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
        if exc.errno == errno.ENOSPC:
            raise OutputError(
                f"disk full while writing {target}", fix="free disk space and run again"
            ) from exc
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputError(
                f"cannot write {target}: permission denied",
                fix="choose another --out folder or fix its permissions",
            ) from exc
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
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


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for the duration of a run.

    Uses ``O_CREAT | O_EXCL`` on ``.riskmodel.lock`` holding the owner's PID; a lock whose PID
    no longer runs is stale and taken over.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".riskmodel.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid):
                raise OutputError(
                    f"output folder {folder} is in use by another riskmodel run (pid {pid})",
                    fix="wait for it to finish or choose another --out folder",
                ) from None
            with contextlib.suppress(OSError):
                lock.unlink()  # stale lock from a killed run
            continue
        except PermissionError as exc:
            raise OutputError(
                f"output folder is not writable: {folder}",
                fix="choose another --out folder or fix its permissions",
            ) from exc
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        try:
            yield folder
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()
        return
    raise OutputError(f"could not lock output folder {folder}", fix="remove .riskmodel.lock")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
