"""Readers: the one door through which files come in (validated frames, with quarantine).

Modules
-------
tables
    Open a user's file unchanged (CSV sniffing and encodings, Parquet, OGR vector formats):
    ``load_table -> RawTable``.
layers
    Reference vector layers (border, settlements ...) as GeoDataFrames: ``read_layer``.
columns, times, coords, border, values, flags
    Column aliases, timestamp/DST parsing, coordinates and CRS, border distance, vectorised
    value helpers, per-row reason codes.
events, effort, result, steps
    ``read_events``, ``read_effort``, their ``ReadResult`` and the steps they share.
truth
    The simulator's truth table (validation only).
"""
