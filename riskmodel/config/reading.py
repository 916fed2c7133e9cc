"""Names of the reader options that settings and readers share, free of pandas: the
daylight-saving policies for naive local times (described in
:mod:`riskmodel.io.read.events`) and the CSV delimiters. The settings check them when loaded,
the CLI offers them as choices, the readers apply them."""

from __future__ import annotations

from riskmodel.errors import ConfigError

DST_POLICIES = ("raise", "shift", "earliest", "latest", "drop")
DELIMITER_NAMES = {
    "tab": "\t",
    "\\t": "\t",
    "comma": ",",
    "semicolon": ";",
    "pipe": "|",
    "space": " ",
}


def normalise_delimiter(delimiter: str | None, *, where: str = "--delimiter") -> str | None:
    """Accept ``","``, ``";"``, ``"tab"``, ``"\\t"`` ... and return the single character
    (``None`` for none: sniffed)."""
    if delimiter is None or delimiter == "":
        return None
    d = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
    if len(d) != 1:
        raise ConfigError(
            f"delimiter must be one character, got {delimiter!r}",
            where=where,
            fix="use ',', ';', tab or '|'",
        )
    return d
