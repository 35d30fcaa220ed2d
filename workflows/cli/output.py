"""What the CLI lets through from the libraries: jobflow's and FireWorks' log lines, warnings."""

from __future__ import annotations

import logging
import warnings

#: loggers of jobflow that print a line per job (``jobflow.managers.local`` is left to
#: :func:`workflows.flows.local_run.run_flow`, which records job failures from its INFO lines)
JOBFLOW_LOGGERS = ("jobflow", "jobflow.core.job", "jobflow.core.flow")
#: FireWorks' loggers; FireWorks sets their level to DEBUG whenever it fetches them, so
#: ``--quiet`` drops their records below WARNING with a filter instead
FIREWORKS_LOGGERS = ("launchpad", "rocket.launcher", "queue.launcher", "rlaunch", "filepad")

#: (message regex, category) of third-party warnings that say nothing to an ``epdi`` user
THIRD_PARTY_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # monty's deprecation of ``monty.os.cd``, which jobflow's run_locally calls
    (r"cd is deprecated", FutureWarning),
    # torch, when CHGNet turns a tensor that carries gradients into a float
    (r"Converting a tensor with requires_grad=True", UserWarning),
    # jobflow, for a Flow whose jobs do not depend on each other (the campaign's parallel jobs)
    (r"Some jobs are not connected", UserWarning),
)


class _BelowWarning(logging.Filter):
    """Drop log records below WARNING (``epdi --quiet``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_QUIET = _BelowWarning()


def set_verbosity(verbose: bool, quiet: bool) -> None:
    """Set what jobflow and FireWorks log: WARNING and above (quiet), INFO (verbose), or their own.

    The setting is applied afresh on every call, so one process that runs several commands (a
    test session) does not keep the previous command's level.
    """
    level = logging.INFO if verbose else logging.WARNING if quiet else logging.NOTSET
    for name in JOBFLOW_LOGGERS + FIREWORKS_LOGGERS:
        logger = logging.getLogger(name)
        logger.removeFilter(_QUIET)
        if quiet:
            logger.addFilter(_QUIET)
    for name in JOBFLOW_LOGGERS:
        logging.getLogger(name).setLevel(level)


def filter_third_party_warnings() -> None:
    """Hide the :data:`THIRD_PARTY_WARNINGS` (by message and category) for this process.

    Called by the console-script entry point only; the test suite sees every warning.
    """
    for message, category in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
