"""Shift definitions: ``name=HH:MM-HH:MM,...`` parsed into named local wall-clock shifts.

The one parser of the ``shifts`` setting: the settings check (do the shifts tile the day?) and
the shift windows of :mod:`riskmodel.geo.shifts` both use it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from riskmodel.errors import ConfigError


@dataclass(frozen=True)
class Shift:
    """One shift of the day.

    Attributes
    ----------
    name : str
        Shift name (``morning``).
    start, end : datetime.time
        Local wall-clock start and end; ``end <= start`` means the shift ends the next day.
    """

    name: str
    start: dt.time
    end: dt.time

    @property
    def overnight(self) -> bool:
        """Whether the shift ends on the next day."""
        return self.end <= self.start


def parse_shifts(spec: str) -> tuple[Shift, ...]:
    """Parse ``name=HH:MM-HH:MM,...`` into shifts.

    Examples
    --------
    >>> [s.name for s in parse_shifts("day=06:00-18:00,night=18:00-06:00")]
    ['day', 'night']
    """
    shifts = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        try:
            name, times = part.split("=")
            a, b = times.split("-")
            start = dt.time.fromisoformat(a.strip())
            end = dt.time.fromisoformat(b.strip())
        except ValueError:
            raise ConfigError(
                f"invalid shift definition {part!r}",
                fix="write shifts as name=HH:MM-HH:MM separated by commas, e.g. night=22:00-06:00",
            ) from None
        shifts.append(Shift(name.strip(), start, end))
    if not shifts:
        raise ConfigError("no shifts defined", fix="define at least one shift")
    names = [s.name for s in shifts]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate shift names in {spec!r}", fix="give each shift its own name")
    return tuple(shifts)
