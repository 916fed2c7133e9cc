"""What the commander asks for: segment ids forced into (``--include``) or out of (``--exclude``) a
plan (METHODOLOGY.md, section 4.6), and the units per shift or per area.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence

from riskmodel.errors import InputError


def parse_ids(text: str | Sequence[str] | None) -> list[str]:
    """Split ``"SIHR-0001, SIHR-0002"`` (or a sequence of such strings) into ids."""
    if not text:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for p in parts:
        out += [s.strip() for s in str(p).split(",") if s.strip()]
    return list(dict.fromkeys(out))


def close_ids(sid: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known ids closest to ``sid``: same number (``SIHR-1`` -> ``SIHR-0001``) first, then by
    string similarity."""
    known = list(known)
    digits = re.findall(r"\d+", sid)
    same_num = []
    if digits:
        num = int(digits[-1])
        prefix = sid[: sid.rfind(digits[-1])].lower()
        for k in known:
            kd = re.findall(r"\d+", k)
            if kd and int(kd[-1]) == num and k.lower().startswith(prefix[:3]):
                same_num.append(k)
    rest = difflib.get_close_matches(sid, known, n=n, cutoff=0.6)
    return list(dict.fromkeys(same_num + rest))[:n]


def check_ids(ids: Iterable[str], known: Sequence[str], flag: str) -> None:
    """Refuse ids not in ``known``, naming the closest known ones.

    Raises
    ------
    InputError
        An unknown id (message names ``flag`` and up to three close matches).
    """
    known_set = set(known)
    for sid in ids:
        if sid not in known_set:
            close = close_ids(sid, sorted(known_set))
            raise InputError(
                f"{flag}: unknown segment id {sid!r}"
                + (f" (did you mean {', '.join(close)}?)" if close else ""),
                fix="use segment ids from the risk table",
            )


def check_units(
    areas: Iterable[str], units: int | None, units_per_area: Mapping[str, int] | None
) -> None:
    """Check the units requested against the areas of the risk table.

    Parameters
    ----------
    areas : iterable of str
        Areas of the risk table.
    units : int or None
        ``--units``: checks per shift.
    units_per_area : mapping or None
        ``--units-per-area``: ``{area: units}``; must name known areas, agree with ``units``
        when both are given, and assign at least one unit.

    Raises
    ------
    InputError
        Unknown area (with close matches), disagreeing totals, or no units at all.
    """
    areas = set(areas)
    if units_per_area is not None:
        unknown = sorted(set(units_per_area) - set(areas))
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(areas), n=3)
            raise InputError(
                f"units-per-area: unknown area {unknown[0]!r}"
                + (f" (did you mean {', '.join(close)}?)" if close else ""),
                fix="use area names from the risk table",
            )
        total = sum(units_per_area.values())
        if units is not None and units != total:
            raise InputError(
                f"--units {units} differs from the {total} units of --units-per-area",
                fix="drop --units or make them agree",
            )
        if total < 1:
            raise InputError("units-per-area assigns no units", fix="give at least one unit")
    elif units is None or units < 1:
        raise InputError(f"--units must be >= 1 (got {units})", fix="give the number of checks")
