"""A throw-away PostgreSQL 15 + PostGIS 3 cluster for the database tests.

Used two ways, one code path:

- ``.ci/run`` starts one for the whole run (``python tests/pgserver.py start DIR`` prints the
  libpq URI to export as ``RISKMODEL_TEST_DB``) and stops it at the end
  (``python tests/pgserver.py stop DIR``);
- the ``pg_uri`` fixture in ``conftest.py`` uses ``RISKMODEL_TEST_DB`` when set, else starts its
  own cluster in a temp folder for the session, else skips saying what was missing.

The cluster listens only on a Unix socket inside ``DIR`` (no TCP port to collide with), trusts
local connections, and is owned by the ``postgres`` user when run as root (``initdb`` refuses
root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def _port(root: Path) -> int:
    """A port number per cluster folder: two clusters at once (a developer's run beside CI's)
    never share shared-memory keys, which PostgreSQL derives from the port."""
    import zlib

    return 54000 + zlib.crc32(str(Path(root).resolve()).encode()) % 1000


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started here (the message says what was missing)."""


def _bin(name: str) -> str:
    for d in PG_BIN_CANDIDATES:
        p = Path(d) / name
        if p.exists():
            return str(p)
    found = shutil.which(name)
    if found:
        return found
    raise ServerUnavailable(
        f"PostgreSQL's {name} not found (install postgresql-15 and postgresql-15-postgis-3)"
    )


def _postgis_available() -> bool:
    try:
        out = subprocess.run(
            [_bin("pg_config"), "--sharedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, ServerUnavailable):
        return False
    return (Path(out) / "extension" / "postgis.control").exists()


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(c) for c in cmd)]
    return cmd


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def uri_for(root: Path) -> str:
    """The libpq URI of the cluster in ``root`` (socket directory inside it)."""
    return f"postgresql://postgres@/postgres?host={root / 'sock'}&port={_port(root)}"


def start(root: Path, timeout: float = 30.0) -> str:
    """Create and start a cluster in ``root``; return its libpq URI.

    Raises
    ------
    ServerUnavailable
        When binaries, PostGIS or the server itself are missing or do not come up.
    """
    if not _postgis_available():
        raise ServerUnavailable(
            "PostGIS extension files not found (apt-get install postgresql-15-postgis-3)"
        )
    root = Path(root).resolve()
    data, sock = root / "data", root / "sock"
    sock.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres", str(root)], check=True)
        # su needs to traverse every parent of the socket folder.
        for p in [root, *root.parents]:
            if p == Path("/"):
                break
            os.chmod(p, os.stat(p).st_mode | 0o011)
    if not (data / "PG_VERSION").exists():
        r = subprocess.run(
            _as_owner([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {r.stderr.strip()[-300:]}")
    opts = f"-k {sock} -p {_port(root)} -c listen_addresses= -c fsync=off"
    r = subprocess.run(
        _as_owner(
            [
                _bin("pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(sock / "pg.log"),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        log = (sock / "pg.log").read_text() if (sock / "pg.log").exists() else ""
        raise ServerUnavailable(f"pg_ctl start failed: {r.stderr.strip()} {log[-300:]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = subprocess.run(
            [_bin("pg_isready"), "-h", str(sock), "-p", str(_port(root))], capture_output=True
        )
        if ok.returncode == 0:
            return uri_for(root)
        time.sleep(0.2)
    raise ServerUnavailable("PostgreSQL did not accept connections in time")


def stop(root: Path) -> None:
    """Stop the cluster in ``root`` (fast shutdown); silent if it is not running."""
    data = Path(root).resolve() / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in {"start", "stop"}:
        sys.exit("usage: python tests/pgserver.py start|stop DIR")
    if sys.argv[1] == "start":
        try:
            print(start(Path(sys.argv[2])))
        except ServerUnavailable as exc:
            sys.exit(f"pgserver: {exc}")
    else:
        stop(Path(sys.argv[2]))
