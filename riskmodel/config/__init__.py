"""Settings: one typed source for every setting."""
