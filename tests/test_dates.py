"""The strict date rule shared by every command."""

from __future__ import annotations

import datetime as dt

import pytest

from riskmodel.config.dates import local_today, parse_day, parse_range
from riskmodel.errors import ConfigError

TODAY = dt.date(2026, 11, 30)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-12-01", dt.date(2026, 12, 1)),
        ("today", TODAY),
        ("Tomorrow", dt.date(2026, 12, 1)),
        ("yesterday", dt.date(2026, 11, 29)),
        ("+3", dt.date(2026, 12, 3)),
        ("-30", dt.date(2026, 10, 31)),
        (dt.date(2025, 1, 2), dt.date(2025, 1, 2)),
    ],
)
def test_accepted_forms(text, want):
    assert parse_day(text, today=TODAY) == want


@pytest.mark.parametrize(
    "text", ["01.12.2026", "2026-12-1", "12/01/2026", "5.12.2025", "next week", "", "2026-02-30"]
)
def test_everything_else_is_refused_naming_the_forms(text):
    with pytest.raises(ConfigError) as err:
        parse_day(text, what="--date", today=TODAY)
    assert "--date" in str(err.value) and "YYYY-MM-DD" in err.value.one_line()


def test_out_of_range_and_reversed_range():
    with pytest.raises(ConfigError, match="out of range"):
        parse_day("2262-01-01", today=TODAY)
    with pytest.raises(ConfigError, match="before"):
        parse_range("2026-12-02", "2026-12-01", today=TODAY)
    assert parse_range(None, "today", today=TODAY) == (None, TODAY)


def test_today_is_local_not_utc():
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 00:30 on 1 Dec in Ljubljana
    assert local_today("Europe/Ljubljana", now=late) == dt.date(2026, 12, 1)
    assert local_today("UTC", now=late) == dt.date(2026, 11, 30)
