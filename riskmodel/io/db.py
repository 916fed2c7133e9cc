"""The one connection module for PostgreSQL/PostGIS (layer 2).

psycopg is imported lazily, only when a database is actually used: importing riskmodel (or
its CLI) never loads the database stack. A connection is given as a libpq URI
(``postgresql://user@host:port/db``), a key/value conninfo (``host=... dbname=...``) or
``service=NAME`` (``pg_service.conf``). Credentials come from the URI, the environment
(``PGPASSWORD``...) or ``.pgpass``; they are never printed: :func:`describe` gives host, port,
database and user only, and every psycopg error is translated into a riskmodel error with any
password scrubbed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from riskmodel.config.dsn import is_database, mask_password, password_in
from riskmodel.errors import ConfigError, InputError, OutputError, RiskModelError

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

log = logging.getLogger(__name__)

__all__ = [
    "INSTALL_HINT",
    "connect",
    "describe",
    "is_database",
    "label",
    "require_psycopg",
    "scrub",
    "translate",
]

INSTALL_HINT = "pip install 'riskmodel[postgis]'"


def scrub(text: str, uri: str | None = None) -> str:
    """Return ``text`` with passwords (and the password of ``uri``, if given) removed.

    Parameters
    ----------
    text : str
        A message that may echo a connection string.
    uri : str, optional
        The connection string used; its password, if any, is removed wherever it appears.

    Returns
    -------
    str
    """
    out = mask_password(str(text))
    secret = password_in(uri) if uri else None
    if secret:
        out = out.replace(secret, "***")
    return out


def require_psycopg() -> Any:
    """Import and return psycopg, or raise a ConfigError saying how to install it.

    Returns
    -------
    module
        The ``psycopg`` module.

    Raises
    ------
    ConfigError
        When psycopg 3 is not installed.
    """
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError(
            f"a database was given but psycopg 3 is not installed ({exc.name or exc})",
            fix=INSTALL_HINT,
        ) from None
    return psycopg


def describe(uri: str) -> dict[str, Any]:
    """Host, port, database, user (and service) of a connection string; never the password.

    Parameters
    ----------
    uri : str
        libpq URI, key/value conninfo or ``service=NAME``.

    Returns
    -------
    dict
        Keys ``host``, ``port``, ``dbname``, ``user`` (and ``service`` when given); values are
        what the string says (``None`` when left to libpq defaults).

    Raises
    ------
    ConfigError
        When the string is not a valid connection string.
    """
    psycopg = require_psycopg()
    try:
        d = psycopg.conninfo.conninfo_to_dict(uri)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"not a valid database connection string ({scrub(_first_line(exc), uri)})",
            where="database",
            fix="give postgresql://user@host:port/dbname or service=NAME",
        ) from None
    out: dict[str, Any] = {k: d.get(k) for k in ("host", "port", "dbname", "user")}
    if d.get("service"):
        out["service"] = d["service"]
    return out


def label(uri: str) -> str:
    """Short printable name of a database: ``user@host:port/dbname`` (no password)."""
    d = describe(uri)
    if d.get("service") and not d.get("host"):
        return f"service={d['service']}"
    host = d.get("host") or "localhost"
    if "/" in str(host):  # a Unix socket folder: keep it short
        host = "socket"
    user = f"{d['user']}@" if d.get("user") else ""
    port = f":{d['port']}" if d.get("port") else ""
    return f"{user}{host}{port}/{d.get('dbname') or ''}"


def connect(
    uri: str,
    *,
    autocommit: bool = False,
    read_only: bool = False,
    application_name: str = "riskmodel",
    error: type[RiskModelError] = InputError,
) -> psycopg.Connection:
    """Open a connection; errors become one-line riskmodel errors with secrets scrubbed.

    Parameters
    ----------
    uri : str
        libpq URI, key/value conninfo or ``service=NAME``.
    autocommit : bool
        Autocommit mode (default: transactions, committed by the caller).
    read_only : bool
        Every transaction of this connection is READ ONLY (the server refuses any write).
    application_name : str
        Shown in ``pg_stat_activity``.
    error : type
        The error raised when the server cannot be reached: InputError (exit 3) for reading,
        OutputError (exit 5) for writing.

    Returns
    -------
    psycopg.Connection

    Raises
    ------
    ConfigError
        psycopg missing or the string is not a connection string.
    InputError
        The server cannot be reached or refuses the login (``error``).
    """
    psycopg = require_psycopg()
    describe(uri)  # validates the string before libpq sees it
    try:
        con = psycopg.connect(uri, autocommit=autocommit, application_name=application_name)
    except psycopg.Error as exc:
        raise translate(exc, uri, doing="connecting", error=error) from None
    if read_only:
        con.read_only = True
    return con


def translate(
    exc: BaseException, uri: str, *, doing: str, error: type[RiskModelError] = InputError
) -> RiskModelError:
    """A psycopg error as a one-line riskmodel error naming the database (no password).

    Parameters
    ----------
    exc : BaseException
        The error raised by psycopg.
    uri : str
        The connection string (used to scrub its secret and to name the database).
    doing : str
        What was being done (``"connecting"``, ``"reading events"``, ``"publishing"``).
    error : type
        The riskmodel error class (InputError for reading, OutputError for writing).

    Returns
    -------
    RiskModelError
    """
    first = _first_line(exc)
    try:
        where = f"database {label(uri)}"
    except RiskModelError:
        where = "database"
    fix = {
        "connecting": "check the host/port/dbname, that the server runs, and the password "
        "in PGPASSWORD or ~/.pgpass",
    }.get(doing, "check the database, the table names and your privileges")
    if error is OutputError and doing != "connecting":
        fix = "check that the server runs and that your role may create/write in the schema"
    return error(f"{doing} failed: {scrub(first, uri)}", where=where, fix=fix)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
