"""Exception hierarchy and exit codes.

Library code raises these; the CLI translates them into one-line messages and exit codes
(no traceback). Every message names *what* went wrong, *where* (file, row) and *how to fix it*.
"""

from __future__ import annotations

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1  # generic / unexpected error
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_DATA = 3  # bad input data (file unreadable, wrong columns, rejected rows with --strict)
EXIT_MODEL = 4  # model bundle refused (tampered, untrusted, mismatched)
EXIT_OUTPUT = 5  # output cannot be written (not writable, disk full, locked)
EXIT_VIOLATION = 6  # audit found cap violations or a broken hash chain (--fail-on-violation)
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM


class RiskModelError(Exception):
    """Base class of all errors the engine raises on purpose.

    Parameters
    ----------
    what : str
        What went wrong.
    where : str, optional
        File (and row) concerned.
    fix : str, optional
        How the user can fix it.
    """

    exit_code = EXIT_ERROR

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return the one-line message shown to users."""
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(self.what)
        if self.fix:
            parts.append(f" -- fix: {self.fix}")
        return "".join(parts)


class InputError(RiskModelError):
    """An input file is missing, unreadable or has invalid content."""

    exit_code = EXIT_DATA


class ConfigError(RiskModelError):
    """The configuration (TOML, environment, flags) is invalid."""

    exit_code = EXIT_USAGE


class BundleError(RiskModelError):
    """A model bundle is refused: tampered, untrusted, or inconsistent with the data."""

    exit_code = EXIT_MODEL


class OutputError(RiskModelError):
    """An output cannot be written (permissions, disk full, folder locked)."""

    exit_code = EXIT_OUTPUT
