"""The outcome of reading one file: accepted rows, quarantined rows and a summary."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import InputError
from riskmodel.files import atomic_write_with
from riskmodel.io.read.flags import RowFlags, reason_text
from riskmodel.io.read.tables import RawTable
from riskmodel.io.read.values import STR, as_strings

log = logging.getLogger(__name__)

# More than this share of rows quarantined: the run goes on, but says so loudly.
MOSTLY_REJECTED = 0.5

# Which canonical columns explain each reason (for the --strict message).
_REASON_KEYS = {
    "timestamp": (
        "missing_timestamp",
        "bad_timestamp",
        "naive_timestamp",
        "dst_nonexistent",
        "dst_ambiguous",
        "future_timestamp",
        "too_old_timestamp",
    ),
    "coords": (
        "missing_coordinates",
        "bad_coordinates",
        "coords_out_of_range",
        "latlon_swapped",
        "xy_swapped",
        "projected_as_lonlat",
        "too_far_from_border",
        "duplicate_time_place",
    ),
    "persons": ("bad_persons",),
    "event_id": ("duplicate_event_id",),
    "officer_hours": ("missing_officer_hours", "bad_officer_hours"),
    "segment_id": ("unknown_segment", "missing_location"),
    "start+end": ("end_before_start", "zero_duration"),
}


@dataclass
class ReadResult:
    """Outcome of reading one file.

    Attributes
    ----------
    frame : DataFrame
        Accepted rows in canonical columns.
    rejected : DataFrame
        Quarantined rows: ``row``, ``reason`` and the original values as strings.
    summary : dict
        ``file``, ``sha256``, ``rows_read``, ``accepted``, ``quarantined``, ``by_reason``,
        ``time_span``, ``extent`` (lon/lat bbox), ``share_within_1km``, ``share_within_5km``,
        ``duplicates``, ``warnings`` and a few descriptive keys (``format``, ``encoding``,
        ``delimiter``, ``columns``, ``extra_columns``).
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.summary
        if len(self.frame) + len(self.rejected) != s.get("rows_read", -1):  # the core promise
            raise AssertionError(
                f"row accounting broken for {s.get('file')}: {len(self.frame)} accepted + "
                f"{len(self.rejected)} quarantined != {s.get('rows_read')} read"
            )

    @property
    def ok(self) -> bool:
        """True when no row was quarantined."""
        return len(self.rejected) == 0

    def write_quarantine(self, folder: str | os.PathLike[str]) -> Path | None:
        """Write ``rejected_<input-stem>.csv`` (UTF-8 with BOM for Excel) atomically.

        Returns
        -------
        Path or None
            The file written, or ``None`` when nothing was quarantined.
        """
        if self.ok:
            return None
        src = self.summary.get("source")  # a database source: key column, quarantine table
        rejected = self.rejected if src is None else src.keyed(self.rejected, self.summary["key"])
        if src is not None and src.quarantine_table:
            src.write_quarantine(rejected)
        stem = src.stem if src is not None else Path(self.summary["file"]).stem
        target = Path(folder) / f"rejected_{stem}.csv"
        return atomic_write_with(
            target, lambda p: rejected.to_csv(p, index=False, encoding="utf-8-sig")
        )

    def announce(self, written: Path | None = None) -> None:
        """Say on the log (stderr in the CLI, silenced by ``-q``) how many rows were quarantined
        per reason and where they went; loudly when most rows were.

        Every command that reads events or effort calls this, so no row is dropped silently.
        """
        if self.ok:
            return
        s = self.summary
        n, bad = int(s["rows_read"]), int(s["quarantined"])
        for code, k in s["by_reason"].items():
            what, fix = reason_text(code)
            log.warning(
                "%s: %d of %d rows quarantined [%s]: %s -- fix: %s",
                s["file"],
                k,
                n,
                code,
                what,
                fix,
            )
        if written is not None:
            log.warning("%s: quarantined rows written to %s", s["file"], written)
        if n and bad / n > MOSTLY_REJECTED and bad < n:
            log.warning(
                "%s: MOST ROWS WERE REJECTED (%d of %d, %.0f%%): results rest on the other %d "
                "rows only -- check the column mapping, --crs, --swap-latlon and --assume-tz",
                s["file"],
                bad,
                n,
                100 * bad / n,
                n - bad,
            )

    def all_rejected_error(self) -> InputError | None:
        """The error when rows were read and every one was quarantined (``None`` otherwise)."""
        s = self.summary
        n = int(s.get("rows_read", 0))
        if n == 0 or len(self.frame) > 0:
            return None
        top = max(s["by_reason"].items(), key=lambda kv: kv[1])[0] if s["by_reason"] else "?"
        what, fix = reason_text(top)
        return InputError(
            f"every one of the {n} rows was rejected (most often [{top}]: {what})",
            where=str(s["file"]),
            fix=fix,
        )

    def first_rejection_error(self) -> InputError | None:
        """The ``--strict`` error for the first quarantined row (``None`` if none)."""
        if self.ok:
            return None
        first = self.rejected.iloc[0]
        code = str(first["reason"])
        what, fix = reason_text(code)
        base, _, col = code.partition(":")
        cols = self.summary.get("columns", {})
        keys = [col] if col else []
        for key, codes in _REASON_KEYS.items():
            if base in codes and not col:
                keys = ["lon", "lat", "x", "y"] if key == "coords" else key.split("+")
        names = [cols[k] for k in keys if k in cols]
        if base.endswith("geometry") or base == "not_a_point":
            names = ["geometry_wkt"]
        hint = ", ".join(f"{c}={first[c]!r}" for c in names if c in self.rejected.columns)
        return InputError(
            f"{what} [{code}]" + (f" ({hint})" if hint else ""),
            where=f"{self.summary['file']}, row {int(first['row'])}",
            fix=fix,
        )

    def report_lines(self) -> list[str]:
        """Human-readable report (used by ``riskmodel validate``)."""
        s = self.summary
        out = [
            f"{s['kind']}: {s['file']}",
            f"  read {s['rows_read']} = accepted {s['accepted']} + quarantined {s['quarantined']}",
        ]
        fmt = s.get("format", "")
        if s.get("encoding"):
            fmt += f", {s['encoding']}, delimiter {s['delimiter']!r}"
        out.append(f"  format: {fmt}; sha256 {s['sha256'][:16]}...")
        if s.get("columns"):
            out.append("  columns: " + ", ".join(f"{k}<-{v}" for k, v in s["columns"].items()))
        if s.get("extra_columns"):
            out.append("  extra columns kept, not used: " + ", ".join(s["extra_columns"]))
        for code, n in s["by_reason"].items():
            what, fix = reason_text(code)
            out.append(f"  quarantined {n:>8} {code}: {what} -- fix: {fix}")
        if s.get("time_span"):
            out.append(f"  time span: {s['time_span']['start']} .. {s['time_span']['end']}")
        if s.get("extent"):
            e = s["extent"]
            out.append(
                f"  extent: lon {e['lon_min']:.4f} .. {e['lon_max']:.4f}, "
                f"lat {e['lat_min']:.4f} .. {e['lat_max']:.4f}"
            )
        if s.get("share_within_1km") is not None:
            out.append(
                f"  near the border: {s['share_within_1km']:.1%} within 1 km, "
                f"{s['share_within_5km']:.1%} within 5 km"
            )
        if s.get("duplicates"):
            out.append(f"  duplicates: {s['duplicates']}")
        out.extend(f"  warning: {w}" for w in s.get("warnings", []))
        n, bad = int(s["rows_read"]), int(s["quarantined"])
        if n and bad / n > MOSTLY_REJECTED:
            out.append(f"  WARNING: MOST ROWS WERE REJECTED ({bad} of {n})")
        return out


def time_span(start: pd.Series, end: pd.Series) -> dict[str, str]:
    """``{"start", "end"}`` as ISO 8601 UTC strings: earliest start, latest end."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"start": start.min().strftime(fmt), "end": end.max().strftime(fmt)}


def extent(lon: pd.Series, lat: pd.Series) -> dict[str, float]:
    """Lon/lat bounding box, rounded to 6 decimals (~0.1 m)."""
    return {
        "lon_min": round(float(lon.min()), 6),
        "lat_min": round(float(lat.min()), 6),
        "lon_max": round(float(lon.max()), 6),
        "lat_max": round(float(lat.max()), 6),
    }


def make_summary(
    p: Any,
    table: RawTable,
    flags: RowFlags,
    mapping: dict[str, str],
    extras: list[str],
    notes: list[str],
    kind: str,
) -> dict[str, Any]:
    """The summary of one read; callers fill in the span, extent and duplicates."""
    n = len(table.data)
    acc = int(flags.ok.sum())
    return {
        "file": str(p),
        "kind": kind,
        "format": table.meta.get("format"),
        "encoding": table.meta.get("encoding"),
        "delimiter": table.meta.get("delimiter"),
        "layer": table.meta.get("layer"),
        "sha256": table.meta["sha256"],
        "rows_read": n,
        "accepted": acc,
        "quarantined": n - acc,
        "by_reason": flags.counts(),
        "time_span": None,
        "extent": None,
        "share_within_1km": None,
        "share_within_5km": None,
        "duplicates": 0,
        "columns": dict(mapping),
        "extra_columns": extras,
        "warnings": notes,
        # A database source (never its password): its object for the quarantine, what it is.
        **(
            {"source": p, "database": table.meta["database"], "key": table.meta["key_columns"]}
            if "database" in table.meta
            else {}
        ),
    }


def quarantine_rows(table: RawTable, flags: RowFlags) -> pd.DataFrame:
    """Quarantined rows: ``row``, ``reason`` and the original values as strings."""
    bad = ~flags.ok
    n = len(bad)
    orig = as_strings(table.data, bad)
    orig.columns = [f"{c}_original" if c in ("row", "reason") else c for c in orig.columns]
    head = pd.DataFrame(
        {
            "row": np.arange(1, n + 1, dtype=np.int64)[bad],
            "reason": pd.Series(flags.reasons(bad), dtype=STR),
        }
    )
    rejected = pd.concat([head, orig], axis=1)
    if table.geometry is not None:
        import shapely

        wkt = shapely.to_wkt(table.geometry[bad], rounding_precision=-1)
        rejected["geometry_wkt"] = pd.Series(wkt, dtype=STR).fillna("")
    return rejected


def finish(
    frame: pd.DataFrame, rejected: pd.DataFrame, summary: dict[str, Any], strict: bool
) -> ReadResult:
    """Build the :class:`ReadResult`; with ``strict``, raise for the first quarantined row."""
    result = ReadResult(frame=frame, rejected=rejected, summary=summary)
    if strict and not result.ok:
        raise result.first_rejection_error()  # type: ignore[misc]
    return result
