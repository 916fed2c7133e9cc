"""Audit: the append-only plan log (:mod:`.log`) and its compliance report (:mod:`.report`)."""

from riskmodel.audit.log import AuditLog, LogIntegrity, PlanEntry, append_entry, read_log
from riskmodel.audit.report import AuditReport, compliance_report, summary_lines, write_report

__all__ = [
    "AuditLog",
    "AuditReport",
    "LogIntegrity",
    "PlanEntry",
    "append_entry",
    "compliance_report",
    "read_log",
    "summary_lines",
    "write_report",
]
