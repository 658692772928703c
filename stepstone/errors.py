"""The exceptions stepstone raises on bad input.

Each message names the problem and the fix; the CLI prints it as one line on stderr and exits
with code 2. Anything else escaping is a bug in stepstone, not a user error.
"""

import traceback


class StepstoneError(Exception):
    """Base class: a problem the user can fix, described in the message."""


class ConfigError(StepstoneError):
    """An option or configuration value is invalid."""


class UnknownParameter(ConfigError):
    """A NAME=VALUE whose name the target does not take; ``close`` is the name it takes that
    is nearest (a typo), or None (a name meant for something else)."""

    def __init__(self, message: str, close: str | None = None):
        super().__init__(message)
        self.close = close


class EnvironmentNotFound(StepstoneError):
    """An environment id is unknown or cannot be made explorable."""


class RunDirError(StepstoneError):
    """A run directory is missing, not ours, corrupt, or holds a different configuration."""


class CommitFailed(RunDirError):
    """A run could not write its directory (disk full, I/O error); its last commit is intact.

    Not a usage error: the CLI exits with 1, and ``stepstone resume`` continues the run.
    """

    exit_code = 1


def said(e: BaseException) -> str:
    """An error of the user's code or of a package, in one line: ``Type: message``; for one
    without words (a bare ``assert``) the line that raised it, so that the line still says
    where (FetchReach-v4's "AssertionError: " said nothing)."""
    if str(e) or e.__traceback__ is None:
        return f"{type(e).__name__}: {e}"
    last = traceback.extract_tb(e.__traceback__)[-1]
    path = last.filename.split("site-packages/")[-1]
    return f"{type(e).__name__} at {path}:{last.lineno}" + (f" ({last.line})" if last.line else "")
