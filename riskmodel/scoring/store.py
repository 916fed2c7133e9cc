"""The forecast store: the engine's own forecasts, kept in the workspace, append-only.

Every ``riskmodel score`` and ``riskmodel daily`` run in a workspace appends what it forecast
for each scored shift, so a later run can compare those forecasts with what was then recorded
(the recent-residual correction, :mod:`riskmodel.scoring.adapt`). Layout::

    <workspace>/forecasts/date=YYYY-MM-DD/part-<seq>-<model_id>-<hash>.parquet

one file per scored date and run, ``seq`` numbering the parts of a date in the order they were
written, ``hash`` the first 12 hex digits of the sha256 of the rows (:data:`STORE_COLUMNS`
without ``written_utc``). Each file is written atomically (temporary file, then rename) under a
lock on the store.

Append-only: history is never rewritten. Scoring a date again with the same forecasts writes
nothing (the part with that hash exists); different forecasts (other events, another model)
become a new part with the next ``seq``. Readers take, per date, shift and segment, the
*earliest* part: the forecast made before the fact, not a later re-run.

Every row carries its ``model_id``, the model's ``trained_until`` date and the
``segment_set_sha256`` of the segments it was made on; a reader skips (and reports) parts of
another segment set, so a store copied from another workspace or border is never read silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel.errors import OutputError
from riskmodel.files import LOCK_NAME, atomic_write_with, folder_lock
from riskmodel.io.write.csv import format_floats

log = logging.getLogger(__name__)

STORE_DIR = "forecasts"
STORE_COLUMNS = (
    "date",  # local date of the shift, YYYY-MM-DD
    "shift",
    "shift_start",  # ISO local start with offset
    "segment_id",
    "model_id",
    "trained_until",  # last date of the model's training window (later dates: out of sample)
    "segment_set_sha256",
    "expected",  # the model's expected recorded events with `exposure` (before adaptation)
    "threat",  # the model's effort-neutral expected events (before adaptation)
    "exposure",  # officer-hours in the window the forecast assumed (NaN: model without effort)
    "adapt_factor",  # the residual factor the run applied to its outputs (1 = none)
    "written_utc",
)
_PART = re.compile(r"^part-(\d{5})-(.+)-([0-9a-f]{12})\.parquet$")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", name)


def rows_hash(rows: pd.DataFrame) -> str:
    """sha256 of a part's rows (every column but ``written_utc``; CSV text, fixed float format)."""
    cols = [c for c in STORE_COLUMNS if c != "written_utc"]
    text = format_floats(rows[cols], "%.9g").to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StoreRead:
    """Rows read from the store and where they came from.

    Attributes
    ----------
    rows : DataFrame
        :data:`STORE_COLUMNS` plus ``part`` (relative path); one row per date, shift and
        segment (the earliest part wins).
    files : list of str
        Parts read (relative to the store root).
    skipped : list of dict
        Parts not read: ``{"file": ..., "why": ...}``.
    """

    rows: pd.DataFrame
    files: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


@contextlib.contextmanager
def _store_lock(root: Path, wait_s: float = 10.0) -> Iterator[Path]:
    """The store's lock, waiting up to ``wait_s`` for another run's short append to finish."""
    deadline = time.monotonic() + wait_s
    while True:
        lock = folder_lock(root)
        try:
            held = lock.__enter__()
        except OutputError:
            if time.monotonic() >= deadline or not (root / LOCK_NAME).exists():
                raise
            time.sleep(0.2)
            continue
        break
    with contextlib.ExitStack() as stack:
        stack.push(lock)  # releases the lock on the way out, error or not
        yield held


class ForecastStore:
    """Append-only, date-partitioned store of forecasts (see the module docs).

    Parameters
    ----------
    root : path-like
        The store folder (``<workspace>/forecasts``).
    segment_set : str
        ``segment_set_sha256`` of the segments this run scores on.
    """

    def __init__(self, root: str | Path, segment_set: str) -> None:
        self.root = Path(root)
        self.segment_set = segment_set

    @classmethod
    def of_workspace(cls, workspace: Any, segment_set: str) -> ForecastStore | None:
        """The store of a workspace (``None`` without a workspace: nowhere to keep it)."""
        if workspace is None:
            return None
        return cls(Path(workspace.root) / STORE_DIR, segment_set)

    def parts(self, date: str) -> list[Path]:
        """Parts of one date, in the order they were written."""
        folder = self.root / f"date={date}"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if _PART.match(p.name))

    def append(self, rows: pd.DataFrame) -> list[Path]:
        """Append forecast rows (one part per date); return the parts written.

        A date whose rows equal an existing part (same hash) writes nothing. Missing
        ``written_utc`` is filled with the current time (it is not part of the hash).

        Raises
        ------
        OutputError
            Missing columns, another run holds the store, or the disk refuses the write.
        """
        missing = [c for c in STORE_COLUMNS if c not in rows.columns and c != "written_utc"]
        if missing:
            raise OutputError(
                f"forecast store rows lack {', '.join(missing)}", where=str(self.root)
            )
        rows = rows.copy()
        if "written_utc" not in rows.columns:
            now = pd.Timestamp.now(tz="UTC").floor("s").isoformat()
            rows["written_utc"] = now
        rows = rows[list(STORE_COLUMNS)]
        written: list[Path] = []
        with _store_lock(self.root):
            for date, part in rows.groupby("date", sort=True):
                part = part.sort_values(["shift_start", "segment_id"]).reset_index(drop=True)
                h = rows_hash(part)[:12]
                have = self.parts(str(date))
                if any(p.name.endswith(f"-{h}.parquet") for p in have):
                    continue  # the same forecasts are already stored
                seq = 1 + max((int(_PART.match(p.name).group(1)) for p in have), default=0)  # type: ignore[union-attr]
                models = "+".join(sorted({_safe(str(m)) for m in part["model_id"]}))
                path = self.root / f"date={date}" / f"part-{seq:05d}-{models}-{h}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_with(path, lambda tmp, df=part: df.to_parquet(tmp, index=False))
                written.append(path)
        if written:
            log.info("forecast store: %d part(s) written under %s", len(written), self.root)
        return written

    def read(self, first: str, last: str) -> StoreRead:
        """Rows of dates ``first .. last`` (inclusive, ``YYYY-MM-DD``), earliest part first."""
        frames: list[pd.DataFrame] = []
        res = StoreRead(pd.DataFrame(columns=[*STORE_COLUMNS, "part"]))
        if not self.root.is_dir():
            return res
        for d in pd.date_range(first, last, freq="D"):
            for p in self.parts(d.strftime("%Y-%m-%d")):
                rel = str(p.relative_to(self.root))
                try:
                    df = pd.read_parquet(p)
                except Exception as exc:  # noqa: BLE001 - a damaged part is reported, not fatal
                    res.skipped.append({"file": rel, "why": f"unreadable: {exc}"})
                    log.warning("forecast store: %s unreadable (%s); skipped", rel, exc)
                    continue
                if [c for c in STORE_COLUMNS if c not in df.columns]:
                    res.skipped.append({"file": rel, "why": "not a forecast part (columns)"})
                    continue
                sets = set(df["segment_set_sha256"].astype(str))
                if sets != {self.segment_set}:
                    res.skipped.append({"file": rel, "why": "made on another segment set"})
                    log.warning(
                        "forecast store: %s was made on another segment set (another border "
                        "or workspace); not used",
                        rel,
                    )
                    continue
                df["part"] = rel
                frames.append(df)
                res.files.append(rel)
        if frames:
            rows = pd.concat(frames, ignore_index=True)
            # Parts are read date by date in seq order: the first row of a key is the earliest.
            res.rows = rows.drop_duplicates(["date", "shift", "segment_id"], keep="first")
        return res
