"""Input and output: the one door for reading and writing files."""
