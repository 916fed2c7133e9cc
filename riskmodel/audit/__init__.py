"""Audit: the append-only plan log and its compliance report."""
