"""Scores: risk per segment and shift with reasons and classes."""
