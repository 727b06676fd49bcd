"""The error boundary: every failure kreplay reports to a user is a KreplayError.

Exit codes follow diff(1): 0 success / no differences, 1 differences found,
2 trouble. Only this module knows the mapping; the CLI asks it.
"""

EXIT_OK = 0
EXIT_DIFFERENCES = 1
EXIT_TROUBLE = 2


class KreplayError(Exception):
    """A problem to report in one line, optionally naming a file and a line."""

    exit_code = EXIT_TROUBLE

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return where + self.message


class TraceFormatError(KreplayError):
    """The input is not a trace kreplay can read (or nothing in it was usable)."""


class StoreError(KreplayError):
    """The DuckDB store is missing, broken, or refused a statement."""


class StoreLocked(StoreError):
    """Another process holds the store (DuckDB allows one writer, or many readers)."""


class TraceNotFound(StoreError):
    """A trace name that the store does not hold."""


class DuplicateTrace(StoreError):
    """The same trace name already holds different content."""


class UnknownRevision(KreplayError):
    """A revision name that no built-in, plugin or revisions file defines."""


class SnapshotFormatError(KreplayError):
    """A captured counter file (vmstat -z, sysctl) with a line that is not that command's
    output; the error names the file and the line."""


class TruncatedCapture(SnapshotFormatError):
    """A captured file whose last line was cut short (no newline after it): a copy that
    stopped mid-line, reported as such rather than parsed or dropped."""


class UsageError(KreplayError):
    """Options that do not fit together (beyond what click checks)."""


def exit_code_for(error: BaseException) -> int:
    """The process exit code for an error that reached the CLI boundary."""
    if isinstance(error, KreplayError):
        return error.exit_code
    return EXIT_TROUBLE
