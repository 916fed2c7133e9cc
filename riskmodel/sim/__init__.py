"""Simulation: truth-known worlds and the in-silico field trial."""
