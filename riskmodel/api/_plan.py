"""Planning and audit verbs: plan, record and write a run; report on the audit log."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from riskmodel.audit.log import AuditLog, entry_sha256, read_log
from riskmodel.audit.report import AuditReport, compliance_report, summary_lines, write_report
from riskmodel.files import folder_lock, sha256_file
from riskmodel.io.write.briefing import write_plan_outputs
from riskmodel.planning.caps import PlanConfig, checks_history
from riskmodel.planning.plan import Plan, make_plans

log = logging.getLogger(__name__)


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
) -> list[tuple[Plan, list[Path]]]:
    """Plan, record and write: the full ``riskmodel plan`` run.

    Locks the output folder and the audit log, reads the executed checks from the log, makes
    the plans (:func:`riskmodel.planning.make_plans`), and for each plan first appends its audit
    entry (O_APPEND, fsync) and then writes its files. A plan is never handed out unrecorded.

    Parameters
    ----------
    risk : DataFrame
        Risk table (e.g. :func:`riskmodel.io.read.risk.read_risk`, or fresh from scoring).
    out : path-like
        Output folder.
    audit_log : path-like
        Append-only JSON-lines audit log.
    units, units_per_area, config, include, exclude, shift, seed, segments, tz
        As in :func:`riskmodel.planning.make_plans`.
    model_id : str, optional
        Id of the model that scored the risk (recorded; else the risk's ``model_id`` column).
    risk_file : path-like, optional
        The risk file (its sha256 is recorded).

    Returns
    -------
    list of (Plan, list of Path)
        Each plan (with ``audit_sha256`` set) and the files written for it.
    """
    config = config or PlanConfig()
    if not config.has_window_caps:
        log.warning(
            "no frequency caps configured (--caps): CJEU C-9/16 requires limits on the "
            "frequency of checks"
        )
    risk_sha = sha256_file(risk_file) if risk_file else None
    if model_id is None and "model_id" in risk.columns:
        ids = sorted(set(risk["model_id"].dropna().astype(str)))
        model_id = ",".join(ids) or None
    results: list[tuple[Plan, list[Path]]] = []
    with folder_lock(out), AuditLog(audit_log) as alog:
        entries, _ = alog.read()
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
        for p in plans:
            written = alog.append(
                p.audit_entry(
                    model_id=model_id,
                    risk_file=str(risk_file) if risk_file else None,
                    risk_sha256=risk_sha,
                )
            )
            p.audit_sha256 = entry_sha256(written)
            prov = {"model_id": model_id, "risk_sha256": risk_sha, "audit_log": str(audit_log)}
            files = write_plan_outputs(p, out, provenance=prov)
            results.append((p, files))
    return results


def audit_report(audit_log: str | os.PathLike[str], date_from: str, date_to: str) -> AuditReport:
    """Compliance report of the plans dated in ``[date_from, date_to]`` of an audit log.

    Reads the whole log (windows reaching outside the period are checked too) and verifies its
    hash chain. A missing log is an empty log (``summary["log_integrity"]["lines"] == 0``).

    Parameters
    ----------
    audit_log : path-like
        The JSON-lines audit log.
    date_from, date_to : str
        Inclusive period of plan dates, ``YYYY-MM-DD``.

    Returns
    -------
    AuditReport
        ``report.passed`` is False when a cap was exceeded or the log is damaged.
    """
    entries, integrity = read_log(audit_log)
    return compliance_report(entries, date_from, date_to, integrity)


def write_audit_report(report: AuditReport, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``audit_<from>_<to>.json``, ``.csv`` and ``.md`` into ``out``.

    See :func:`riskmodel.audit.report.write_report`.
    """
    return write_report(report, out)


def audit_summary(report: AuditReport) -> list[str]:
    """The short human summary of a report (what ``riskmodel audit`` prints)."""
    return summary_lines(report)
