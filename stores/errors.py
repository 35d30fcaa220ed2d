"""The platform's own errors: one base, two kinds.

Every error the platform raises on purpose derives from :class:`EpdiError`. Its message names what
was wrong (the file, field or value) and what to do; the CLI prints it on one line and exits with
:attr:`EpdiError.exit_code`. Anything else that escapes is a bug and keeps its traceback.

- :class:`InputError` (exit 2): bad input, a missing file, a refused combination; raised before
  any work or write.
- :class:`RunError` (exit 1): a run that started and failed (SCF not converged, a failed job,
  corrupt stored data).
"""

from __future__ import annotations


class EpdiError(Exception):
    """Base of the platform's own errors; ``str(error)`` is the one line the user sees."""

    #: process exit code the CLI uses for this error
    exit_code: int = 2


class InputError(EpdiError, ValueError):
    """Bad user input: the message names the bad value and lists what is accepted."""

    exit_code = 2


class RunError(EpdiError, RuntimeError):
    """A run started and failed; the message says what failed and where to look."""

    exit_code = 1
