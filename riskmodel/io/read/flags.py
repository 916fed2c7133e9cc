"""Row verdicts: the reason catalogue and the first failing reason of every row.

Reasons are small integer codes per row so 5 M-row files stay cheap. Effort start/end
reasons carry a ``:start``/``:end`` suffix (e.g. ``bad_timestamp:end``); the base code is
looked up in :data:`REASONS`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

REASONS: dict[str, tuple[str, str]] = {
    "empty_row": ("the row is empty", "delete empty lines; they carry no data"),
    "truncated_last_line": (
        "the last line has no line end and fewer fields than the header: the file was cut "
        "off (still being written or copied?)",
        "wait until the export has finished and read the complete file",
    ),
    "malformed_row": (
        "the row has more fields than the header",
        'quote values that contain the delimiter, e.g. "PU Novo mesto; PP Metlika"',
    ),
    "missing_timestamp": ("the date/time is empty", "fill in the date and time"),
    "bad_timestamp": (
        "the date/time cannot be read",
        "write ISO 8601 (2024-05-01T14:30:00+02:00) or DD.MM.YYYY HH:MM",
    ),
    "naive_timestamp": (
        "the time has no UTC offset while other rows have one",
        "give --assume-tz Europe/Ljubljana or add the offset (+01:00 / +02:00)",
    ),
    "dst_nonexistent": (
        "the local time does not exist: clocks jumped forward at the DST change",
        "give --dst shift (read with the offset before the change) or --dst drop",
    ),
    "dst_ambiguous": (
        "the local time occurs twice: clocks went back at the DST change",
        "give --dst earliest or --dst latest, or add the UTC offset",
    ),
    "future_timestamp": ("the date/time lies in the future", "check the year and day/month order"),
    "too_old_timestamp": ("the date/time is implausibly old", "check the year (or lower min_date)"),
    "missing_coordinates": ("a coordinate is empty", "fill in both coordinates"),
    "bad_coordinates": (
        "a coordinate is not a finite number",
        "write decimal numbers such as 45.8123 (no degree signs)",
    ),
    "coords_out_of_range": (
        "the coordinates are out of range (latitude within +-90, longitude within +-180)",
        "check the coordinates",
    ),
    "latlon_swapped": (
        "latitude and longitude look swapped: swapped, the point lies in Slovenia",
        "give --swap-latlon to swap them (or map the columns the other way)",
    ),
    "xy_swapped": (
        "easting and northing are swapped relative to the other rows",
        "swap the two values in this row",
    ),
    "projected_as_lonlat": (
        "lon/lat hold projected metres, not degrees",
        "map them as x/y (--column x=... --column y=...) and give --crs EPSG:3794",
    ),
    "empty_geometry": ("the geometry is missing or empty", "draw or fill in the point"),
    "invalid_geometry": ("the geometry is invalid", "repair it (QGIS: Fix geometries)"),
    "not_a_point": ("the geometry is not a point", "convert to points (QGIS: Centroids)"),
    "too_far_from_border": (
        "the point is farther from the border than max_distance_m",
        "check the coordinates, or raise --max-distance-m",
    ),
    "bad_persons": ("persons must be a whole number >= 1", "write the group size as 1, 2, 3 ..."),
    "duplicate_event_id": (
        "the event_id repeats an earlier row (the first one is kept)",
        "remove the copy or give each event a unique id",
    ),
    "duplicate_time_place": (
        "same time, place and event_id (or none) as an earlier row (the first one is kept)",
        "remove the copy, or merge the groups into one row with their persons",
    ),
    "end_before_start": ("end is before start", "swap start and end or fix the dates"),
    "zero_duration": ("end equals start", "fix the end time or delete the row"),
    "missing_officer_hours": ("officer_hours is empty", "fill in the officer hours"),
    "bad_officer_hours": (
        "officer_hours must be a finite number >= 0",
        "write officer hours as a number such as 16 or 7.5",
    ),
    "unknown_segment": (
        "the segment_id is not a known border segment",
        "use ids from the segments layer (riskmodel segments)",
    ),
    "missing_location": (
        "neither segment_id nor coordinates are given",
        "fill in segment_id or the location",
    ),
}


def reason_text(code: str) -> tuple[str, str]:
    """Return ``(what, fix)`` for a reason code (``code`` or ``code:column``)."""
    base, _, col = code.partition(":")
    what, fix = REASONS.get(base, (base.replace("_", " "), "check the row"))
    if col:
        what = f"{col}: {what}"
    return what, fix


class RowFlags:
    """First failing reason per row, as int16 codes (0 = row still good).

    Parameters
    ----------
    n : int
        Number of rows read.
    """

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int16)
        self.names: list[str] = [""]

    def mark(self, mask: np.ndarray | pd.Series | None, reason: str) -> int:
        """Flag rows of ``mask`` that are still good with ``reason``; return how many."""
        if mask is None:
            return 0
        m = np.asarray(mask, dtype=bool) & (self.code == 0)
        k = int(m.sum())
        if k:
            if reason not in self.names:
                self.names.append(reason)
            self.code[m] = self.names.index(reason)
        return k

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of rows that passed every check so far."""
        return self.code == 0

    def reasons(self, mask: np.ndarray) -> np.ndarray:
        """Reason strings for the rows of ``mask``."""
        return np.asarray(self.names, dtype=object)[self.code[mask]]

    def counts(self) -> dict[str, int]:
        """``{reason: n}``, most frequent first (ties by name)."""
        c = np.bincount(self.code, minlength=len(self.names))
        out = {self.names[i]: int(c[i]) for i in range(1, len(self.names)) if c[i]}
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
