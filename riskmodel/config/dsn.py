"""Connection strings told apart from file paths, and their secrets masked (layer 1).

The one rule for both: :mod:`riskmodel.config.settings` must not resolve a connection string
as a path, ``riskmodel config`` must not print its password, and
:mod:`riskmodel.io.db` scrubs database errors with the same patterns.
"""

from __future__ import annotations

import re

# password in a URI (scheme://user:SECRET@host) and in key/value conninfo (password=SECRET).
_URI_SECRET = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)
_KV_SECRET = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"([?&]password=)([^&\s]*)", re.IGNORECASE)
_KV_START = re.compile(r"^(service|host|hostaddr|dbname|user|port)\s*=", re.IGNORECASE)


def is_database(value: object) -> bool:
    """True when ``value`` names a database (``postgresql://`` URI, key/value conninfo such as
    ``service=NAME`` or ``host=h dbname=d``) rather than a file path.

    Parameters
    ----------
    value : object
        A setting or flag value.

    Returns
    -------
    bool
    """
    if not value or not isinstance(value, str):
        return False
    v = value.strip()
    if v.lower().startswith(("postgresql://", "postgres://")):
        return True
    return _KV_START.match(v) is not None  # a path never starts with "service=" etc.


def mask_password(text: str) -> str:
    """``text`` with every password of a connection string in it replaced by ``***``.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    out = _URI_SECRET.sub(r"\1***\3", str(text))
    out = _KV_SECRET.sub(r"\1***", out)
    return _QUERY_SECRET.sub(r"\1***", out)


def password_in(uri: str) -> str | None:
    """The password written in a connection string, if any (to scrub it from messages)."""
    for pat in (_URI_SECRET, _QUERY_SECRET):
        m = pat.search(uri)
        if m and m.group(2):
            return m.group(2)
    m = _KV_SECRET.search(uri)
    return m.group(2).strip("'") if m else None
