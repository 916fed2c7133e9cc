"""Readers: files -> validated frames (with quarantine)."""
