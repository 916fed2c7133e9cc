"""Writers: atomic, deterministic output files."""
