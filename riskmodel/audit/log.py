"""Append-only plan audit log and the compliance statistics computed from it.

Every plan made by :mod:`riskmodel.planning.plan` appends one JSON line to the audit log. Lines are
never rewritten: each entry carries ``prev_sha256``, the sha256 of the previous raw line, so any
later edit, deletion or reordering breaks the chain and shows up in :func:`compliance_report`.

The log is the single source of truth for frequency caps (checks per segment over rolling
windows of days) and for the numbers a court or the Commission asks for under Schengen Borders
Code art. 23 and CJEU C-9/16 (intensity, frequency, selectivity of checks).

Re-planning a shift (same ``date`` and ``shift``) supersedes the earlier plan: only the latest
entry of a shift counts as executed, the earlier ones stay in the log and are counted as
re-plans.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import InputError, OutputError
from riskmodel.io.atomic import atomic_write_json, atomic_write_text

try:  # POSIX advisory locks; on other systems the log is used unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("riskmodel.audit.log")

SCHEMA = 1
ENTRY_TYPE = "plan"
_LOCK_TIMEOUT_S = 60.0

#: Window caps: setting name -> window length in days.
WINDOW_CAPS: dict[str, int] = {"max_per_segment_per_7d": 7, "max_per_segment_per_30d": 30}


# ---------------------------------------------------------------------------------------------
# Log reading / appending
# ---------------------------------------------------------------------------------------------


def _line_sha(raw: bytes) -> str:
    return hashlib.sha256(raw.rstrip(b"\r\n")).hexdigest()


def encode_entry(entry: dict[str, Any]) -> bytes:
    """Serialise one entry as a single deterministic JSON line (no trailing newline)."""
    return json.dumps(
        entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


@dataclass
class LogIntegrity:
    """What :func:`read_log` found besides the entries.

    Attributes
    ----------
    lines : int
        Non-empty lines in the file.
    corrupt_lines : list of int
        1-based numbers of lines that are not valid JSON objects (e.g. a write cut by a crash).
    chain_breaks : list of int
        1-based numbers of lines whose ``prev_sha256`` does not match the previous line: the
        log was edited, truncated or reordered.
    last_sha256 : str or None
        sha256 of the last line (what the next entry chains to).
    """

    lines: int = 0
    corrupt_lines: list[int] = field(default_factory=list)
    chain_breaks: list[int] = field(default_factory=list)
    last_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """True when no line is corrupt and the hash chain is intact."""
        return not self.corrupt_lines and not self.chain_breaks


def read_log(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], LogIntegrity]:
    """Read every entry of an audit log and verify its hash chain.

    Parameters
    ----------
    path : path-like
        JSON-lines audit log. A missing file is an empty log.

    Returns
    -------
    entries : list of dict
        Valid entries in file order; each gets ``_line`` (1-based line number).
    integrity : LogIntegrity
        Corrupt lines and hash-chain breaks.
    """
    p = Path(path)
    integ = LogIntegrity()
    if not p.exists():
        return [], integ
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read audit log: {exc.strerror or exc}", where=str(p)) from None
    entries: list[dict[str, Any]] = []
    prev_sha: str | None = None
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        integ.lines += 1
        sha = _line_sha(raw)
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError
        except ValueError:
            integ.corrupt_lines.append(lineno)
            prev_sha = sha
            continue
        if obj.get("prev_sha256") != prev_sha:
            integ.chain_breaks.append(lineno)
        obj["_line"] = lineno
        entries.append(obj)
        prev_sha = sha
    integ.last_sha256 = prev_sha
    if integ.corrupt_lines:
        log.warning(
            "audit log %s has %d corrupt line(s): %s",
            p,
            len(integ.corrupt_lines),
            integ.corrupt_lines[:5],
        )
    if integ.chain_breaks:
        log.warning("audit log %s hash chain broken at line(s) %s", p, integ.chain_breaks[:5])
    return entries, integ


def _tail_state(fd: int) -> tuple[str | None, bool]:
    """sha256 of the last non-empty line and whether the file ends with a newline."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    chunk = 1 << 16
    buf = b""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        stripped = buf.rstrip(b"\n")
        if b"\n" in stripped or pos == 0:
            break
    ends_nl = buf.endswith(b"\n")
    stripped = buf.rstrip(b"\n")
    if not stripped.strip():
        return None, ends_nl
    return _line_sha(stripped.rsplit(b"\n", 1)[-1]), ends_nl


class AuditLog:
    """Exclusive, append-only handle on an audit log (use as a context manager).

    Holding the handle locks the log (POSIX ``flock``) so that reading the history, planning
    and appending happen atomically with respect to other planners: two runs cannot both see
    room under a cap and both use it.

    Parameters
    ----------
    path : path-like
        The JSON-lines log; created (with its folder) if missing.
    timeout : float
        Seconds to wait for another planner holding the lock.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = _LOCK_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> AuditLog:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: every write goes to the end, existing bytes are never touched.
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot open audit log for appending: {exc.strerror or exc}",
                where=str(self.path),
                fix="check the --audit-log path and its permissions",
            ) from None
        if fcntl is not None:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(self._fd)
                        self._fd = None
                        raise OutputError(
                            "audit log is locked by another riskmodel run",
                            where=str(self.path),
                            fix="wait for the other plan to finish and run again",
                        ) from None
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if fcntl is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None

    def read(self) -> tuple[list[dict[str, Any]], LogIntegrity]:
        """Entries and integrity of the log (see :func:`read_log`)."""
        return read_log(self.path)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one entry (adds ``prev_sha256``), fsync, and return the entry as written."""
        if self._fd is None:
            raise RuntimeError("AuditLog.append outside of 'with'")
        prev, ends_nl = _tail_state(self._fd)
        entry = {k: v for k, v in entry.items() if not k.startswith("_")}
        entry["prev_sha256"] = prev
        line = encode_entry(entry)
        # A line cut by a crash stays (flagged as corrupt); start ours on a fresh line.
        payload = (b"" if ends_nl else b"\n") + line + b"\n"
        try:
            written = os.write(self._fd, payload)
            if written != len(payload):
                raise OSError(28, "short write")
            os.fsync(self._fd)
        except OSError as exc:
            raise OutputError(
                f"cannot append to audit log: {exc.strerror or exc}",
                where=str(self.path),
                fix="free disk space / fix permissions; the plan was NOT recorded, do not use it",
            ) from None
        return entry


def append_entry(path: str | os.PathLike[str], entry: dict[str, Any]) -> dict[str, Any]:
    """Append one entry to the log at ``path`` (locks, chains, fsyncs). See :class:`AuditLog`."""
    with AuditLog(path) as alog:
        return alog.append(entry)


# ---------------------------------------------------------------------------------------------
# History of executed checks
# ---------------------------------------------------------------------------------------------


def effective_entries(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plan entries that count: the last entry of every (date, shift), in log order."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        if e.get("type") != ENTRY_TYPE:
            continue
        last.pop((e["date"], e["shift"]), None)  # keep log order of the survivor
        last[(e["date"], e["shift"])] = e
    return list(last.values())


def checks_history(entries: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Executed checks from audit entries (superseded plans removed).

    Returns
    -------
    DataFrame
        Columns ``date`` (``datetime64[s]``, day), ``shift``, ``segment_id``, ``plan_id``,
        ``day`` (int, days since 1970-01-01; what the window counts use).
    """
    rows_d: list[str] = []
    rows_s: list[str] = []
    rows_g: list[str] = []
    rows_p: list[str] = []
    for e in effective_entries(entries):
        chosen = e.get("chosen") or []
        rows_d += [e["date"]] * len(chosen)
        rows_s += [e["shift"]] * len(chosen)
        rows_g += [str(c) for c in chosen]
        rows_p += [str(e.get("plan_id"))] * len(chosen)
    dates = pd.to_datetime(pd.Series(rows_d, dtype=object)).astype("datetime64[s]")
    return pd.DataFrame(
        {
            "date": dates,
            "shift": pd.Series(rows_s, dtype=object),
            "segment_id": pd.Series(rows_g, dtype=object),
            "plan_id": pd.Series(rows_p, dtype=object),
            "day": _day_number(dates),
        }
    )


def _day_number(values: Any) -> np.ndarray:
    return np.asarray(pd.to_datetime(values), dtype="datetime64[D]").astype(np.int64)


def window_max_counts(
    history: pd.DataFrame,
    segment_ids: Iterable[str],
    day: str | dt.date | pd.Timestamp,
    window_days: int,
) -> np.ndarray:
    """Largest number of checks of each segment in any ``window_days``-day window containing ``day``.

    Windows are runs of consecutive local dates; all windows that contain ``day`` are
    considered (also those reaching into the future, so planning out of order is safe).

    Parameters
    ----------
    history : DataFrame
        Executed checks (``date``, ``segment_id``), e.g. :func:`checks_history`.
    segment_ids : iterable of str
        Segments to report, in order.
    day : date-like
        The day of the shift being planned.
    window_days : int
        Window length in days (7, 30, ...).

    Returns
    -------
    ndarray of int
        One count per segment.
    """
    seg_index = pd.Index(list(segment_ids))
    out = np.zeros(len(seg_index), dtype=np.int64)
    if history.empty or window_days <= 0:
        return out
    d = int(_day_number([day])[0])
    w = int(window_days)
    days = history["day"].to_numpy() if "day" in history else _day_number(history["date"])
    near = (days > d - w) & (days < d + w)
    if not near.any():
        return out
    idx = seg_index.get_indexer(history["segment_id"].to_numpy()[near])
    off = days[near] - (d - w + 1)
    ok = idx >= 0
    mat = np.zeros((len(seg_index), 2 * w - 1), dtype=np.int64)
    np.add.at(mat, (idx[ok], off[ok]), 1)
    cs = np.concatenate([np.zeros((len(seg_index), 1), np.int64), np.cumsum(mat, axis=1)], axis=1)
    sums = cs[:, w:] - cs[:, :-w]  # windows starting at d-w+1 .. d, all contain d
    return sums.max(axis=1)


def share_cap_count(max_share: float, window_days: int, shifts_per_day: int) -> int:
    """Checks allowed per segment in a share window: ``floor(share * days * shifts_per_day)``.

    The share is taken over the calendar shifts of the window (not over the planned ones), so
    the cap is a fixed count and holds from the first plan on.
    """
    return int(math.floor(max_share * window_days * shifts_per_day + 1e-9))


def count_caps(caps: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Window caps of a caps dict as ``name -> (window_days, max_checks)`` (unset ones left out)."""
    out: dict[str, tuple[int, int]] = {}
    for name, days in WINDOW_CAPS.items():
        if caps.get(name) is not None:
            out[name] = (days, int(caps[name]))
    if caps.get("max_share_of_shifts") is not None:
        w = int(caps.get("share_window_days") or 30)
        out["max_share_of_shifts"] = (
            w,
            share_cap_count(
                float(caps["max_share_of_shifts"]), w, int(caps.get("shifts_per_day") or 3)
            ),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Compliance report
# ---------------------------------------------------------------------------------------------


@dataclass
class AuditReport:
    """Compliance statistics over a period.

    Attributes
    ----------
    summary : dict
        Headline numbers (JSON-ready).
    per_segment : DataFrame
        One row per segment: checks, share of shifts, mean coverage and risk, weekly counts.
    weekly : DataFrame
        Checks per segment (rows) per ISO week (columns ``YYYY-Www``).
    deciles : DataFrame
        Coverage and check rate by within-plan risk decile (10 = highest risk).
    violations : DataFrame
        Every cap violation found (must be empty).
    """

    summary: dict[str, Any]
    per_segment: pd.DataFrame
    weekly: pd.DataFrame
    deciles: pd.DataFrame
    violations: pd.DataFrame


def _parse_day(value: str | dt.date, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(
            f"{what} {value!r} is not a date", fix="write dates as YYYY-MM-DD"
        ) from None


def _long_table(eff: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (plan, segment): coverage, risk, whether checked, the plan's per-shift cap."""
    sizes = [len(e.get("coverage") or {}) for e in eff]
    segs = [s for e in eff for s in (e.get("coverage") or {})]
    cov = np.fromiter(
        (c for e in eff for c in (e.get("coverage") or {}).values()), float, sum(sizes)
    )
    exp = np.fromiter(
        ((e.get("expected") or {}).get(s, np.nan) for e in eff for s in (e.get("coverage") or {})),
        float,
        sum(sizes),
    )
    plan = np.repeat(np.arange(len(eff)), sizes)
    chosen = pd.MultiIndex.from_tuples(
        [(i, s) for i, e in enumerate(eff) for s in (e.get("chosen") or [])],
        names=["plan", "segment_id"],
    )
    key = pd.MultiIndex.from_arrays([plan, segs], names=["plan", "segment_id"])
    per_shift = np.array([float((e.get("caps") or {}).get("per_shift", 1.0)) for e in eff])
    return pd.DataFrame(
        {
            "plan": plan,
            "segment_id": pd.Series(segs, dtype=object),
            "coverage": cov,
            "expected": exp,
            "checked": key.isin(chosen) if len(chosen) else np.zeros(len(segs), bool),
            "per_shift": per_shift[plan] if len(eff) else np.zeros(0),
        }
    )


def _violations(
    all_eff: list[dict[str, Any]], in_period: list[dict[str, Any]], long: pd.DataFrame
) -> pd.DataFrame:
    """Cap violations of the plans ``in_period`` (whose rows ``long`` holds), counted over the
    full history ``all_eff`` so windows reaching outside the period are checked too."""
    cols = ["plan_id", "date", "shift", "segment_id", "cap", "limit", "count"]
    rows: list[dict[str, Any]] = []
    hist = checks_history(all_eff)
    meta = pd.DataFrame(
        {
            "plan_id": [e.get("plan_id") for e in in_period],
            "date": [e["date"] for e in in_period],
            "shift": [e["shift"] for e in in_period],
        }
    )
    # Per-shift intensity: coverage above the plan's cap ...
    over = long[long["coverage"] > long["per_shift"] + 1e-6]
    for rec in over.itertuples(index=False):
        m = meta.iloc[rec.plan]
        rows.append(dict(plan_id=m.plan_id, date=m.date, shift=m["shift"],
                         segment_id=rec.segment_id, cap="per_shift", limit=rec.per_shift,
                         count=float(rec.coverage)))  # fmt: skip
    # ... or a segment chosen twice in one shift.
    in_ids = set(meta["plan_id"])
    twice = hist[hist["plan_id"].isin(in_ids)].groupby(["plan_id", "date", "shift", "segment_id"])
    for (pid, date, shift, seg), n in twice.size()[lambda x: x > 1].items():
        rows.append(dict(plan_id=pid, date=str(pd.Timestamp(date).date()), shift=shift,
                         segment_id=seg, cap="one_check_per_shift", limit=1, count=int(n)))  # fmt: skip
    if not hist.empty and in_period:
        segs = pd.Index(sorted(hist["segment_id"].unique()))
        days = hist["day"].to_numpy()
        d0 = int(days.min())
        mat = np.zeros((len(segs), int(days.max()) - d0 + 1), dtype=np.int64)
        np.add.at(mat, (segs.get_indexer(hist["segment_id"]), days - d0), 1)
        cs = np.concatenate([np.zeros((len(segs), 1), np.int64), np.cumsum(mat, axis=1)], axis=1)
        # Plans sharing the same caps (the usual case) are checked in one vectorised pass.
        plan_caps = {e.get("plan_id"): count_caps(e.get("caps") or {}) for e in in_period}
        cap_key = {pid: json.dumps(c, sort_keys=True) for pid, c in plan_caps.items()}
        in_hist = hist[hist["plan_id"].isin(list(plan_caps))]
        for key, sub in in_hist.groupby(in_hist["plan_id"].map(cap_key), sort=False):
            for name, (w, limit) in json.loads(key).items():
                gi = segs.get_indexer(sub["segment_id"])
                d = sub["day"].to_numpy() - d0
                # All windows [s, s+w) containing day d: s in [d-w+1, d], clipped to the data.
                starts = d[:, None] + np.arange(-w + 1, 1)[None, :]
                a = np.clip(starts, 0, mat.shape[1])
                b = np.clip(starts + w, 0, mat.shape[1])
                worst = (cs[gi[:, None], b] - cs[gi[:, None], a]).max(axis=1)
                for k in np.flatnonzero(worst > limit):
                    rows.append(
                        dict(
                            plan_id=sub["plan_id"].iloc[k],
                            date=str(sub["date"].iloc[k].date()),
                            shift=sub["shift"].iloc[k],
                            segment_id=sub["segment_id"].iloc[k],
                            cap=name,
                            limit=limit,
                            count=int(worst[k]),
                        )
                    )
    return pd.DataFrame(rows, columns=cols)


def compliance_report(
    entries: list[dict[str, Any]],
    date_from: str | dt.date,
    date_to: str | dt.date,
    integrity: LogIntegrity | None = None,
) -> AuditReport:
    """Compliance statistics of the plans dated in ``[date_from, date_to]``.

    Parameters
    ----------
    entries : list of dict
        All audit-log entries (the whole log: caps are checked over windows reaching outside
        the period).
    date_from, date_to : str or date
        Inclusive period of plan dates (local).
    integrity : LogIntegrity, optional
        From :func:`read_log`; reported in the summary.

    Returns
    -------
    AuditReport
    """
    lo = _parse_day(date_from, "--from")
    hi = _parse_day(date_to, "--to")
    if hi < lo:
        raise InputError(f"--to {hi} is before --from {lo}", fix="swap the dates")
    plans_all = [e for e in entries if e.get("type") == ENTRY_TYPE]
    all_eff = effective_entries(plans_all)
    eff = [e for e in all_eff if lo.isoformat() <= e["date"] <= hi.isoformat()]
    n_logged = sum(lo.isoformat() <= e["date"] <= hi.isoformat() for e in plans_all)

    long = _long_table(eff)
    n_plans = len(eff)
    hist = checks_history(eff)
    n_checks = len(hist)

    # Weekly table (ISO weeks of the plan date).
    if n_checks:
        iso = hist["date"].dt.isocalendar()
        week = iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
        weekly = pd.crosstab(hist["segment_id"], week).sort_index()
    else:
        weekly = pd.DataFrame()
    weekly.index.name = "segment_id"
    weekly.columns.name = None

    areas: dict[str, str] = {}
    for e in eff:  # {area: [segment ids]} per entry; later plans win
        for a, ids in (e.get("areas") or {}).items():
            areas.update(dict.fromkeys(ids, a))
    if len(long):
        g = long.groupby("segment_id", sort=True)
        per = pd.DataFrame(
            {
                "plans": g.size(),
                "checks": g["checked"].sum().astype(int),
                "mean_coverage": g["coverage"].mean(),
                "min_coverage": g["coverage"].min(),
                "zero_coverage_plans": g["coverage"].apply(lambda s: int((s <= 0).sum())),
                "mean_expected": g["expected"].mean(),
            }
        )
    else:
        per = pd.DataFrame(
            columns=[
                "plans",
                "checks",
                "mean_coverage",
                "min_coverage",
                "zero_coverage_plans",
                "mean_expected",
            ]
        )
    per.index.name = "segment_id"
    per.insert(0, "area", [areas.get(s, "") for s in per.index])
    per["share_of_shifts"] = per["checks"] / n_plans if n_plans else 0.0
    if not weekly.empty:
        per = per.join(weekly, how="left")
        per[list(weekly.columns)] = per[list(weekly.columns)].fillna(0).astype(int)

    # Coverage vs risk.
    corr_p = corr_s = None
    deciles = pd.DataFrame(
        columns=["decile", "rows", "mean_expected", "mean_coverage", "check_rate"]
    )
    if len(long) > 2 and long["expected"].notna().any():
        ok = long.dropna(subset=["expected"])
        if ok["coverage"].std() > 0 and ok["expected"].std() > 0:
            corr_p = float(np.corrcoef(ok["coverage"], ok["expected"])[0, 1])
            corr_s = float(ok["coverage"].rank().corr(ok["expected"].rank()))
        # Within-plan deciles so busy and quiet shifts are compared like for like.
        pct = ok.groupby("plan")["expected"].rank(method="first", pct=True)
        dec = np.minimum(np.ceil(pct * 10), 10).astype(int)
        deciles = (
            ok.assign(decile=dec)
            .groupby("decile")
            .agg(
                rows=("coverage", "size"),
                mean_expected=("expected", "mean"),
                mean_coverage=("coverage", "mean"),
                check_rate=("checked", "mean"),
            )
            .reset_index()
        )

    viol = _violations(all_eff, eff, long)

    ov_plans = [
        e
        for e in eff
        if (e.get("overrides") or {}).get("include") or (e.get("overrides") or {}).get("exclude")
    ]
    ratios = [
        float(e["overrides"]["entropy_ratio"])
        for e in ov_plans
        if e["overrides"].get("entropy_ratio") is not None
    ]
    n_segments = int(long["segment_id"].nunique()) if len(long) else 0
    summary: dict[str, Any] = {
        "period": {"from": lo.isoformat(), "to": hi.isoformat()},
        "plans": n_plans,
        "plans_logged": n_logged,
        "replans": n_logged - n_plans,
        "checks": n_checks,
        "segments": n_segments,
        "segments_ever_checked": int((per["checks"] > 0).sum()) if len(per) else 0,
        "share_segments_ever_checked": (float((per["checks"] > 0).mean()) if n_segments else None),
        "max_share_of_shifts": float(per["share_of_shifts"].max()) if len(per) else None,
        "max_share_segment": (str(per["share_of_shifts"].idxmax()) if len(per) else None),
        "max_checks_per_segment_per_week": int(weekly.to_numpy().max()) if not weekly.empty else 0,
        "coverage_risk_pearson": corr_p,
        "coverage_risk_spearman": corr_s,
        "mean_normalised_entropy": (
            float(np.mean([e["entropy"] for e in eff if e.get("entropy") is not None]))
            if eff
            else None
        ),
        "max_inclusion_probability": (
            float(max(e.get("max_inclusion", 0.0) for e in eff)) if eff else None
        ),
        "plans_with_zero_coverage_segments": int(sum(bool(e.get("exploration_lost")) for e in eff)),
        "overrides": {
            "plans": len(ov_plans),
            "include": int(sum(len(e["overrides"].get("include") or []) for e in ov_plans)),
            "exclude": int(sum(len(e["overrides"].get("exclude") or []) for e in ov_plans)),
            "mean_entropy_ratio": float(np.mean(ratios)) if ratios else None,
            "min_entropy_ratio": float(np.min(ratios)) if ratios else None,
            "warnings": int(sum(len(e.get("warnings") or []) for e in eff)),
        },
        "cap_violations": len(viol),
        "expected_detections": float(sum(e.get("expected_detections", 0.0) for e in eff)),
        "topk_expected_detections": float(sum(e.get("topk_expected_detections", 0.0) for e in eff)),
        "log_integrity": {
            "lines": integrity.lines if integrity else None,
            "corrupt_lines": integrity.corrupt_lines if integrity else None,
            "chain_breaks": integrity.chain_breaks if integrity else None,
            "ok": integrity.ok if integrity else None,
        },
        "legal_basis": "Schengen Borders Code art. 23; CJEU C-9/16 (intensity, frequency, "
        "selectivity of checks); C-278/12 Adil",
    }
    return AuditReport(
        summary=summary, per_segment=per, weekly=weekly, deciles=deciles, violations=viol
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def summary_lines(report: AuditReport) -> list[str]:
    """A short human summary (what ``riskmodel audit`` prints)."""
    s = report.summary
    o = s["overrides"]
    li = s["log_integrity"]
    return [
        f"period {s['period']['from']} .. {s['period']['to']}: {s['plans']} plans "
        f"({s['replans']} re-planned), {s['checks']} checks",
        f"segments ever checked: {s['segments_ever_checked']}/{s['segments']} "
        f"({_fmt(s['share_segments_ever_checked'])})",
        f"largest share of shifts checked: {_fmt(s['max_share_of_shifts'])} "
        f"(segment {s['max_share_segment']}); max checks/segment/week: "
        f"{s['max_checks_per_segment_per_week']}",
        f"coverage vs risk: pearson {_fmt(s['coverage_risk_pearson'])}, "
        f"spearman {_fmt(s['coverage_risk_spearman'])}; mean entropy "
        f"{_fmt(s['mean_normalised_entropy'])}, max inclusion {_fmt(s['max_inclusion_probability'])}",
        f"overrides: {o['plans']} plans ({o['include']} include, {o['exclude']} exclude), "
        f"min entropy ratio {_fmt(o['min_entropy_ratio'])}, {o['warnings']} warnings",
        f"cap violations: {s['cap_violations']}; log integrity: "
        + (
            "ok"
            if li["ok"]
            else f"corrupt lines {li['corrupt_lines']}, chain breaks {li['chain_breaks']}"
        ),
    ]


def _md_table(df: pd.DataFrame, index: bool = True) -> str:
    d = df.reset_index() if index else df
    if d.empty:
        return "_none_\n"
    cols = [str(c) for c in d.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in d.itertuples(index=False):
        lines.append(
            "| " + " | ".join(_fmt(v) if isinstance(v, float) else str(v) for v in row) + " |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: AuditReport, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``audit_<from>_<to>.json``, ``.csv`` (per segment) and ``.md`` atomically.

    Returns
    -------
    list of Path
        The files written.
    """
    s = report.summary
    stem = Path(out) / f"audit_{s['period']['from']}_{s['period']['to']}"
    payload = {
        "summary": s,
        "deciles": report.deciles.to_dict(orient="records"),
        "weekly": {
            str(k): {str(w): int(n) for w, n in row.items() if n}
            for k, row in report.weekly.iterrows()
        },
        "violations": report.violations.to_dict(orient="records"),
    }
    p_json = atomic_write_json(stem.with_suffix(".json"), payload)
    per = report.per_segment.copy()
    for c in ("mean_coverage", "min_coverage", "mean_expected", "share_of_shifts"):
        if c in per:
            per[c] = per[c].astype(float).round(6)
    p_csv = atomic_write_text(stem.with_suffix(".csv"), per.to_csv(lineterminator="\n"))
    md = [
        f"# Spot-check compliance audit {s['period']['from']} .. {s['period']['to']}\n",
        "Legal basis: Schengen Borders Code art. 23 (checks in border areas must not have the "
        "effect of border control, must be spot checks distinct from systematic border checks); "
        "CJEU C-9/16 (limits on intensity, frequency and selectivity); C-278/12 Adil.\n",
        "## Summary\n",
        *[f"- {line}" for line in summary_lines(report)],
        "",
        "## Coverage and checks by risk decile (within plan; 10 = highest risk)\n",
        _md_table(report.deciles, index=False),
        "## Cap violations\n",
        _md_table(report.violations, index=False),
        "## Checks per segment per ISO week\n",
        _md_table(
            report.weekly[report.weekly.sum(axis=1) > 0]
            if not report.weekly.empty
            else report.weekly
        ),
    ]
    p_md = atomic_write_text(stem.with_suffix(".md"), "\n".join(md))
    return [p_json, p_csv, p_md]


def iter_plans(entries: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Plan entries in log order (superseded ones included)."""
    return (e for e in entries if e.get("type") == ENTRY_TYPE)
