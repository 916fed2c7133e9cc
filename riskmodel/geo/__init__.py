"""Geography: border, segments, reference layers, shifts."""
