"""Planning: coverage, sampling, caps, plans."""
