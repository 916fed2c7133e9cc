"""Planning and audit verbs: plan, record and write a run; report on the audit log."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel._timing import timed
from riskmodel.audit.log import AuditLog, anchor_of, anchored_log, read_log, workspace_anchor
from riskmodel.audit.report import AuditReport, compliance_report, summary_lines, write_report
from riskmodel.audit.store import AuditStore
from riskmodel.config.settings import Settings
from riskmodel.config.workspace import Workspace
from riskmodel.errors import InputError
from riskmodel.files import folder_lock, sha256_file
from riskmodel.io.write.briefing import write_plan_outputs
from riskmodel.planning.caps import PLAN_ENTRY_TYPE, PlanConfig, checks_history
from riskmodel.planning.plan import Plan, make_plans

log = logging.getLogger(__name__)


@timed("plans + audit")
def run_plan(
    risk: pd.DataFrame,
    out: str | os.PathLike[str],
    audit_log: str | os.PathLike[str],
    units: int | None = None,
    *,
    units_per_area: dict[str, int] | None = None,
    config: PlanConfig | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    shift: str | None = None,
    seed: int | None = None,
    segments: pd.DataFrame | None = None,
    tz: str = "Europe/Ljubljana",
    model_id: str | None = None,
    risk_file: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    workspace: Workspace | None = None,
    reason: str | None = None,
    by: str | None = None,
    force: bool = False,
    replan: bool = False,
    new_log_segment: bool = False,
    settings: Settings | None = None,
    db: str | None = None,
    db_schema: str | None = None,
) -> list[tuple[Plan, list[Path]]]:
    """Plan, record and write: the full ``riskmodel plan`` run.

    Under the output-folder lock and the audit store's lock (the log file's ``flock``, or the
    audit table's advisory lock inside one transaction):

    1. read and verify the log (MACs with ``key``, ``seq``, the workspace anchor); a damaged
       log is refused unless ``new_log_segment`` (with ``reason``) records a new chain; a
       missing log where the workspace anchor records history is refused;
    2. finish or discard plans a killed run left half-written (:func:`_finish_staged`);
    3. make the plans (:func:`riskmodel.planning.make_plans`); a plan with refusals
       (:func:`riskmodel.planning.caps.refusal_reasons`) is refused unless ``force`` with a
       ``reason`` (recorded);
    4. for each plan: write its files into ``out/.staging-<plan_id>/``, append its audit entry
       (recording each file's sha256, ``seq`` = the ``audit_seq`` printed in the files), move
       the anchor, then move the files into ``out``. A plan is never handed out unrecorded,
       and a recorded plan's files are completed by the next run if the process dies.

    Parameters
    ----------
    risk : DataFrame
        Risk table (e.g. :func:`riskmodel.io.read.risk.read_risk`, or fresh from scoring).
    out : path-like
        Output folder.
    audit_log : path-like or None
        Append-only JSON-lines audit log (not used with ``db``).
    units, units_per_area, config, include, exclude, shift, seed, segments, tz
        As in :func:`riskmodel.planning.make_plans`; ``config`` None: the built-in caps.
    model_id : str, optional
        Id of the model that scored the risk (recorded; else the risk's ``model_id`` column).
    risk_file : path-like, optional
        The risk file (its sha256 is recorded).
    key : bytes, optional
        Signing key of the audit chain (``settings.key()``).
    workspace : Workspace, optional
        Holds the audit anchor (``settings.workspace``).
    reason, by : str, optional
        Why, and who, for overrides, ``force`` and ``new_log_segment`` (recorded).
    force : bool
        Record and hand out plans that have refusals (needs ``reason``).
    replan : bool
        Draw a shift that already has a plan again (needs ``reason``; recorded as
        ``replanned``). Without it such a shift is refused.
    new_log_segment : bool
        Start a new chain after a damaged log (needs ``reason``).
    settings : Settings, optional
        Where ``key`` and ``workspace`` come from when not given (``settings.key()``,
        ``settings.workspace``). Callers inside a workspace must pass one of them, or the
        log is written unkeyed and unanchored. With ``audit_store = "database"`` the audit
        goes to the table in ``settings.database`` (schema ``settings.db_schema``).
    db, db_schema : str, optional
        Keep the audit in the table ``<db_schema>.audit_log`` of this database (libpq URI or
        ``service=NAME``) instead of ``audit_log``.

    Returns
    -------
    list of (Plan, list of Path)
        Each plan (``audit_seq``, ``audit_sha256`` set) and the files written for it.
    """
    config = config or PlanConfig.defaults()
    if settings is not None:
        key = key if key is not None else settings.key()
        workspace = workspace if workspace is not None else settings.workspace
        if db is None and settings.audit_store == "database":
            db, db_schema = settings.database, db_schema or settings.db_schema
    if (force or new_log_segment or replan) and not (reason or "").strip():
        raise InputError(
            "--force, --replan and --new-log-segment need --reason TEXT",
            fix="say why (it is recorded)",
        )
    by = by or _login()
    risk_sha = sha256_file(risk_file) if risk_file else None
    if model_id is None and "model_id" in risk.columns:
        ids = sorted(set(risk["model_id"].dropna().astype(str)))
        model_id = ",".join(ids) or None
    results: list[tuple[Plan, list[Path]]] = []
    store = open_store(audit_log, key=key, workspace=workspace, db=db, db_schema=db_schema)
    with folder_lock(out), store as alog:
        # History read, plans drawn and entries appended under the store's lock: two planners
        # at once never count the caps from the same history.
        entries = _open_log(alog, workspace, reason if new_log_segment else None, by)
        _finish_staged(Path(out), entries)
        plans = make_plans(
            risk,
            units,
            units_per_area=units_per_area,
            config=config,
            include=include,
            exclude=exclude,
            shift=shift,
            seed=seed,
            history=checks_history(entries),
            segments=segments,
            tz=tz,
        )
        _apply_refusals(plans, force, reason, by)
        _apply_replans(plans, replan, reason, by)
        _warn_late(plans)
        pending: list[Path] = []  # staged plans whose entries wait for the commit
        try:
            for p in plans:
                if p.overrides.get("include") or p.overrides.get("exclude"):
                    p.overrides.update(reason=reason, by=by)
                stage, staged = _record(
                    p, alog, Path(out), model_id, risk_file, risk_sha, audit_log
                )
                files = [Path(out) / f.name for f in staged]
                if alog.writes_through:
                    _swap_in(stage, Path(out))
                else:
                    pending.append(stage)
                results.append((p, files))
        except BaseException:
            for stage in pending:  # rolled back: these plans were never recorded
                shutil.rmtree(stage, ignore_errors=True)
            raise
        # A failed commit leaves the staged plans: the next run completes or discards them by
        # what the store holds.
        alog.commit()
        for stage in pending:
            _swap_in(stage, Path(out))
    return results


#: Prefix of the folder a plan's files are written to before its audit entry is appended.
STAGING_PREFIX = ".staging-"


def _record(
    p: Plan,
    alog: AuditStore,
    out: Path,
    model_id: str | None,
    risk_file: str | os.PathLike[str] | None,
    risk_sha: str | None,
    audit_log: str | os.PathLike[str] | None,
) -> tuple[Path, list[Path]]:
    """Write a plan's files into its staging folder and append its audit entry (recording each
    file's sha256); return the staging folder and the files staged."""
    integ = alog.integrity
    assert integ is not None
    p.audit_seq, p.audit_prev = integ.last_seq + 1, integ.last_mac
    where = str(audit_log) if alog.writes_through and audit_log is not None else alog.where
    prov = {"model_id": model_id, "risk_sha256": risk_sha, "audit_log": where}
    stage = out / f"{STAGING_PREFIX}{p.plan_id}"
    try:
        staged = write_plan_outputs(p, stage, provenance=prov)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # nothing recorded, nothing handed out
        raise
    entry = p.audit_entry(
        model_id=model_id,
        risk_file=str(risk_file) if risk_file else None,
        risk_sha256=risk_sha,
    )
    entry["files"] = {f.name: sha256_file(f) for f in sorted(stage.iterdir())}
    written = alog.append(entry)
    p.audit_sha256 = written["mac"]
    return stage, staged


def open_store(
    audit_log: str | os.PathLike[str] | None,
    *,
    key: bytes | None = None,
    workspace: Workspace | None = None,
    db: str | None = None,
    db_schema: str | None = None,
) -> AuditStore:
    """The audit store to use (not yet entered): the table in ``db`` when given, else the
    JSON-lines file ``audit_log``."""
    if db:
        from riskmodel.audit.dbstore import DbAuditLog

        return DbAuditLog(db, db_schema or "riskmodel", key=key, workspace=workspace)
    if audit_log is None:
        raise InputError("no audit log given", fix="give --audit-log FILE or set audit_log")
    return AuditLog(audit_log, key=key, workspace=workspace)


def _login() -> str | None:
    """The operating-system user (recorded as ``by`` when none is given)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in containers without /etc/passwd entries
        return None


def _open_log(
    alog: AuditStore, workspace: Workspace | None, segment_reason: str | None, by: str | None
) -> list[dict[str, Any]]:
    """Read and verify the store; refuse a damaged or wrongly-new one, or record a new
    segment."""
    entries, integ = alog.read()
    where = alog.where
    home = workspace_anchor(workspace)
    home_log = anchored_log(workspace, home) if home and workspace is not None else None
    is_file = isinstance(alog, AuditLog)
    if home and alog.anchor is None and segment_reason is None:
        if is_file and integ.lines == 0:
            raise InputError(
                f"audit log {where} is missing or empty, but this workspace's audit log is "
                f"{home_log} with {home['seq']} entries",
                where=where,
                fix=f"use --audit-log {home_log}; to start a new log on purpose add "
                "--new-log-segment --reason TEXT",
            )
        if not is_file and (home["seq"], home["head"]) not in {
            (e.get("seq"), e.get("mac")) for e in entries
        }:
            # First use of the table from a workspace whose history is in its file log: the
            # caps would not count that history.
            raise InputError(
                f"this workspace's audit history ({home_log}, {home['seq']} entries) is not "
                "in the audit table",
                where=where,
                fix=f"import it first: riskmodel audit import {home_log} --db URI; to start "
                "the table without it on purpose add --new-log-segment --reason TEXT",
            )
    if not integ.ok and segment_reason is None:
        fix = (
            "repair the torn line with 'riskmodel audit --repair --reason TEXT'"
            if integ.torn_tail and len(integ.problems) == 1
            else "restore the log from a backup, or record a new chain with "
            "--new-log-segment --reason TEXT"
        )
        raise InputError(f"audit log is damaged: {integ.why}", where=where, fix=fix)
    if segment_reason is not None:
        seg = alog.new_segment(
            segment_reason,
            by,
            previous_log=str(home_log) if home_log and integ.lines == 0 else None,
        )
        log.warning("%s: new log segment recorded (%s)", where, seg["reason"])
    elif integ.anchor == "ahead" and workspace is not None and integ.last_mac:
        if is_file:
            log.warning("audit log %s: anchor behind the log (crash after an append): moved", where)
        workspace.update_state(
            **{alog.state_key: alog.anchor_value(integ.last_seq, integ.last_mac)}
        )
    elif is_file and integ.lines and workspace is not None and alog.anchor is None and home:
        log.warning("audit log %s is not this workspace's anchored log %s", where, home_log)
    return entries


def _apply_refusals(plans: list[Plan], force: bool, reason: str | None, by: str | None) -> None:
    """Refuse plans that are not spot-check plans, or record that they were forced."""
    refused = [p for p in plans if p.refusals]
    if refused and not force:
        p = refused[0]
        raise InputError(
            f"plan {p.date} {p.shift} refused: {'; '.join(p.refusals)}",
            fix="request fewer --units (or lift the caps in the caps file); to hand it out "
            "anyway give --force --reason TEXT (recorded in the audit log)",
        )
    for p in refused:
        p.forced = {"reason": reason, "by": by, "refusals": list(p.refusals)}
        log.warning("%s %s: plan FORCED past its refusals (%s)", p.date, p.shift, reason)


def _apply_replans(plans: list[Plan], replan: bool, reason: str | None, by: str | None) -> None:
    """Refuse to draw a shift again that already has a plan, unless asked to with a reason.

    Redrawing until a plan suits someone would turn a random draw into a chosen one (the
    checks must be random or risk-based, never picked); the earlier plan may also be printed
    and handed out already."""
    again = [p for p in plans if p.supersedes]
    if again and not replan:
        p = again[0]
        raise InputError(
            f"{p.date} {p.shift} is already planned (plan {', '.join(p.supersedes)}): drawing "
            "again would replace a random draw",
            fix="hand out the plan already drawn (its files are in the plans folder), or "
            "redraw with --replan --reason TEXT (recorded in the audit log)",
        )
    for p in again:
        p.replanned = {"reason": reason, "by": by or _login()}
        log.warning("%s %s: re-planned, replaces %s (%s)", p.date, p.shift, p.supersedes, reason)


def _warn_late(plans: list[Plan], now: pd.Timestamp | None = None) -> None:
    """Say so when a shift has already started: a plan drawn after the fact is recorded (its
    ``created`` time is in the entry) and ``riskmodel audit`` lists it, but a planner should
    know before handing it out."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    for p in plans:
        start = pd.Timestamp(p.shift_start)
        if start <= now:
            log.warning(
                "%s %s: the shift started at %s, before this plan was drawn -- it is recorded "
                "as drawn late (riskmodel audit lists such plans)",
                p.date,
                p.shift,
                start.isoformat(),
            )


def _swap_in(stage: Path, out: Path) -> None:
    """Move the staged files into ``out`` and remove the staging folder."""
    for f in sorted(stage.iterdir()):
        os.replace(f, out / f.name)
    _fsync_dir(out)
    stage.rmdir()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _finish_staged(out: Path, entries: list[dict[str, Any]]) -> None:
    """Complete or discard the plans a killed run left in staging folders of ``out``.

    A staged plan whose audit entry exists (its ``plan_id`` and the sha256 of every staged
    file match) is moved into ``out``: it was recorded, its files are completed. A staged plan
    without an audit entry was never recorded and is deleted. Staged files that differ from
    their recorded sha256 are left in place and reported.
    """
    if not out.is_dir():
        return
    logged = {
        e.get("plan_id"): e.get("files") or {} for e in entries if e.get("type") == PLAN_ENTRY_TYPE
    }
    for stage in sorted(out.glob(f"{STAGING_PREFIX}*")):
        if not stage.is_dir():
            continue
        pid = stage.name[len(STAGING_PREFIX) :]
        if pid not in logged:
            shutil.rmtree(stage, ignore_errors=True)
            log.warning("discarded the unrecorded half-written plan %s in %s", pid, out)
            continue
        files = logged[pid]
        have = {f.name: sha256_file(f) for f in stage.iterdir()}
        if any(files.get(n) != h for n, h in have.items()):
            log.error("staged files of plan %s in %s differ from the audit log: kept", pid, stage)
            continue
        _swap_in(stage, out)
        log.warning("completed the half-finished plan %s: its files were moved into %s", pid, out)


def audit_report(
    audit_log: str | os.PathLike[str] | None,
    date_from: str,
    date_to: str,
    *,
    key: bytes | None = None,
    workspace: Workspace | None = None,
    caps: PlanConfig | None = None,
    settings: Settings | None = None,
    db: str | None = None,
    db_schema: str | None = None,
) -> AuditReport:
    """Compliance report of the plans dated in ``[date_from, date_to]`` of an audit log.

    Reads the whole log (windows reaching outside the period are checked too) and verifies its
    chain with ``key`` and the workspace anchor. A missing log is an empty log, unless the
    workspace anchor records history for it (then the integrity is broken).

    Parameters
    ----------
    audit_log : path-like or None
        The JSON-lines audit log (not used with ``db``).
    date_from, date_to : str
        Inclusive period of plan dates, ``YYYY-MM-DD``.
    key : bytes, optional
        Signing key (``settings.key()``).
    workspace : Workspace, optional
        Holds the anchor (``settings.workspace``).
    caps : PlanConfig, optional
        The caps in force (workspace caps, else built-in): every plan is judged by them as
        well as by the caps it recorded.
    settings : Settings, optional
        Source of ``key`` and ``workspace`` when they are not given.
    db, db_schema : str, optional
        Read the audit table ``<db_schema>.audit_log`` of this database instead of a file.

    Returns
    -------
    AuditReport
        ``report.passed`` is False when a cap was exceeded or the log is damaged.
    """
    if settings is not None:
        key = key if key is not None else settings.key()
        workspace = workspace if workspace is not None else settings.workspace
    home = workspace_anchor(workspace)
    home_log = anchored_log(workspace, home) if home and workspace is not None else None
    if db:
        from riskmodel.audit.dbstore import db_anchor, read_db_log

        schema = db_schema or "riskmodel"
        anchor = db_anchor(workspace, db, schema)
        entries, integrity = read_db_log(db, schema, key=key, anchor=anchor)
    elif audit_log is None:
        raise InputError("no audit log given", fix="give --audit-log FILE or --db URI")
    else:
        anchor = anchor_of(workspace, audit_log)
        entries, integrity = read_log(audit_log, key=key, anchor=anchor or None)
    if integrity.lines == 0 and home and anchor is None:
        integrity.problems.append(
            f"this log is empty or missing; the workspace's audit log is {home_log} "
            f"with {home['seq']} entries"
        )
    return compliance_report(
        entries, date_from, date_to, integrity, caps=caps.as_dict() if caps else None
    )


def repair_log(
    audit_log: str | os.PathLike[str],
    reason: str,
    *,
    by: str | None = None,
    key: bytes | None = None,
    workspace: Workspace | None = None,
) -> dict[str, Any]:
    """Move a torn last line of the log to a quarantine file beside it and record a ``repair``
    entry (its sha256, the reason). See :meth:`riskmodel.audit.log.AuditLog.repair_torn_tail`."""
    if not reason.strip():
        raise InputError("a repair needs --reason TEXT", fix="say why (it is recorded)")
    with AuditLog(audit_log, key=key, workspace=workspace) as alog:
        return alog.repair_torn_tail(reason, by or _login())


def write_audit_report(report: AuditReport, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``audit_<from>_<to>.json``, ``.csv`` and ``.md`` into ``out``.

    See :func:`riskmodel.audit.report.write_report`.
    """
    return write_report(report, out)


def audit_summary(report: AuditReport) -> list[str]:
    """The short human summary of a report (what ``riskmodel audit`` prints)."""
    return summary_lines(report)
