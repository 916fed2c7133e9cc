"""What every audit store does the same way: chain an entry and append it under the store's
lock, record a new segment, move the workspace anchor.

A store is used as a context manager that holds its lock (a ``flock`` on the JSON-lines file,
:class:`riskmodel.audit.log.AuditLog`; a transaction-level advisory lock in PostgreSQL,
:class:`riskmodel.audit.dbstore.DbAuditLog`) so that reading the history, drawing a plan and
appending it happen atomically with respect to other planners. Entries appended inside the
``with`` block are durable after :meth:`AuditStore.commit` (the file: at once; the table: when
the transaction commits, which also releases the lock).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from riskmodel.audit.chain import SEGMENT_TYPE, LogIntegrity, chain_entry, encode_entry
from riskmodel.audit.entry import PlanEntry
from riskmodel.config.workspace import Workspace

log = logging.getLogger(__name__)


class AuditStore:
    """Base class of the audit stores (see the module docs).

    Parameters
    ----------
    key : bytes, optional
        Signing key of the chain (``settings.key()``); ``None``: unkeyed sha256 chain.
    workspace : Workspace, optional
        Holds the anchor; without one the store has no anchor.
    """

    #: What a record is called in messages.
    label = "line"
    #: Workspace state key of this kind of store's anchor.
    state_key = "audit"
    #: Appended entries are durable at once (no :meth:`commit` needed to keep them).
    writes_through = True

    def __init__(self, *, key: bytes | None = None, workspace: Workspace | None = None) -> None:
        self.key = key
        self.workspace = workspace
        self.integrity: LogIntegrity | None = None

    # -- what a store provides ------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The store in words for messages (file path, database and schema)."""
        raise NotImplementedError

    @property
    def anchor(self) -> dict[str, Any] | None:
        """The workspace anchor of this store, if any."""
        raise NotImplementedError

    def anchor_value(self, seq: int, head: str) -> dict[str, Any]:
        """The anchor to record for a chain ending at ``seq``/``head``."""
        raise NotImplementedError

    def read(self) -> tuple[list[dict[str, Any]], LogIntegrity]:
        """Entries and integrity of the store (verified under the lock)."""
        raise NotImplementedError

    def _write(self, entry: dict[str, Any], text: bytes) -> None:
        """Append one chained entry's exact text (raise OutputError when it cannot)."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make the entries appended so far durable (the file store writes through)."""

    def _check_open(self, what: str) -> None:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------

    def append(self, entry: Mapping[str, Any] | PlanEntry) -> dict[str, Any]:
        """Chain (``seq``, ``prev``, ``mac``), append, move the anchor; return the entry.

        A ``segment`` entry starts a new chain (``seq`` 1, ``prev`` null).

        Raises
        ------
        InputError
            A plan entry breaks the schema (nothing is written).
        OutputError
            The entry cannot be written (the plan was not recorded).
        """
        self._check_open("append")
        integ = self.integrity if self.integrity is not None else self.read()[1]
        chained = chain_entry(entry, integ, self.key)
        self._write(chained, encode_entry(chained))
        integ.lines += 1
        integ.last_seq, integ.last_mac, integ.ends_newline = chained["seq"], chained["mac"], True
        self._move_anchor(chained)
        return chained

    def new_segment(
        self, reason: str, by: str | None = None, previous_log: str | None = None
    ) -> dict[str, Any]:
        """Append a ``segment`` entry: a new chain that records (and so acknowledges) the
        problems found before it."""
        integ = self.integrity if self.integrity is not None else self.read()[1]
        return self.append(
            {
                "type": SEGMENT_TYPE,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "reason": reason,
                "by": by,
                "problems": list(integ.problems),
                "after_seq": integ.last_seq if integ.lines else None,
                "after_head": integ.last_mac if integ.lines else None,
                "previous_log": previous_log,
            }
        )

    def _move_anchor(self, entry: Mapping[str, Any]) -> None:
        """Record the new chain end in the workspace state."""
        if self.workspace is not None:
            self.workspace.update_state(
                **{self.state_key: self.anchor_value(entry["seq"], entry["mac"])}
            )
