"""The one rule for calendar dates given on the command line or in settings.

Accepted forms: ``YYYY-MM-DD`` (ISO 8601, zero-padded), ``today``, ``tomorrow``, ``yesterday``
and ``+N`` / ``-N`` (days from today). "Today" is the local date in the workspace's time zone,
not the machine's. Anything else is an error that names the accepted forms: a date such as
``01.12.2026`` or ``2026-12-1`` is ambiguous across locales and spreadsheet exports, so it is
refused rather than guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from riskmodel.errors import ConfigError

ACCEPTED = "YYYY-MM-DD, today, tomorrow, yesterday or +N/-N days"
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_REL = re.compile(r"^([+-])(\d{1,5})$")
_WORDS = {"today": 0, "tomorrow": 1, "yesterday": -1}
# pandas' nanosecond timestamps end in 2262; beyond that no window can be built.
MIN_DAY, MAX_DAY = dt.date(1900, 1, 1), dt.date(2200, 12, 31)


def local_today(tz: str = "Europe/Ljubljana", now: dt.datetime | None = None) -> dt.date:
    """Today's date in zone ``tz`` (``now`` for tests, aware)."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(tz)).date()


def parse_day(
    text: str | dt.date,
    *,
    what: str = "date",
    tz: str = "Europe/Ljubljana",
    today: dt.date | None = None,
) -> dt.date:
    """Parse one calendar day by the strict rule of this module.

    Parameters
    ----------
    text : str or date
        The value as given.
    what : str
        Name of the option or field, for the message (e.g. ``"--date"``).
    tz : str
        Zone that defines "today".
    today : date, optional
        Override of today's date (tests, replays).

    Returns
    -------
    datetime.date

    Raises
    ------
    ConfigError
        Any other form, an impossible day (``2026-02-30``), or a day outside 1900-2200.
    """
    if isinstance(text, dt.datetime):
        text = text.date()
    if isinstance(text, dt.date):
        day = text
    else:
        s = str(text).strip().lower()
        base = today or local_today(tz)
        if s in _WORDS:
            day = base + dt.timedelta(days=_WORDS[s])
        elif m := _REL.match(s):
            n = int(m.group(2))
            day = base + dt.timedelta(days=n if m.group(1) == "+" else -n)
        elif m := _ISO.match(s):
            try:
                day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                raise ConfigError(
                    f"{what} {text!r} is not a day of the calendar", fix=f"use {ACCEPTED}"
                ) from None
        else:
            raise ConfigError(f"{what} {text!r} is not a date", fix=f"use {ACCEPTED}")
    if not MIN_DAY <= day <= MAX_DAY:
        raise ConfigError(
            f"{what} {day.isoformat()} is out of range",
            fix=f"use a date between {MIN_DAY} and {MAX_DAY}",
        )
    return day


def parse_range(
    start: str | dt.date | None,
    end: str | dt.date | None,
    *,
    tz: str = "Europe/Ljubljana",
    today: dt.date | None = None,
    names: tuple[str, str] = ("--from", "--to"),
) -> tuple[dt.date | None, dt.date | None]:
    """Parse ``--from``/``--to`` and check their order (either may be missing)."""
    a = None if start is None else parse_day(start, what=names[0], tz=tz, today=today)
    b = None if end is None else parse_day(end, what=names[1], tz=tz, today=today)
    if a is not None and b is not None and b < a:
        raise ConfigError(
            f"{names[1]} {b} is before {names[0]} {a}", fix="swap them or correct one of them"
        )
    return a, b
