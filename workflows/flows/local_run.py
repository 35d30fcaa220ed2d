"""Run a jobflow flow on this machine and say which job failed and why.

jobflow's ``run_locally`` goes on with every job that does not need a failed one, then (with
``ensure_success``) raises only ``RuntimeError("Flow did not finish running successfully")``; the
failed job's own exception is logged at INFO level and lost when logging is off. :func:`run_flow`
records those log lines while the flow runs and raises :class:`JobsFailed`, whose one-line message
names the first failed job and its error, and which lists every failure in
:attr:`JobsFailed.failures`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, Job, JobStore, Response

from stores.errors import RunError
from stores.validation import one_line
from workflows.flows.stable_jobs import run_locally

#: the logger ``run_locally`` reports failed jobs on, and the text it puts after the job name
_JOBFLOW_LOGGER = "jobflow.managers.local"
_FAILED = " failed with exception:\n"


@dataclass(frozen=True)
class JobFailure:
    """One job that raised: its name and its exception's last traceback line."""

    job: str
    error: str
    traceback: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, str]:
        """``{"job": ..., "error": ...}`` for documents and JSON."""
        return {"job": self.job, "error": self.error}


class JobsFailed(RunError):
    """One or more jobs of a flow raised; the jobs that did not need them ran to the end.

    Attributes
    ----------
    failures
        Every job that raised, in the order they ran.
    """

    def __init__(self, failures: list[JobFailure], what: str = "the flow"):
        self.failures = failures
        first = failures[0]
        more = f" (and {len(failures) - 1} more failed job(s))" if len(failures) > 1 else ""
        super().__init__(
            f"{what}: job '{first.job}' failed: {first.error}{more}; jobs that need its output did not "
            "run, the others finished and are kept; a rerun redoes only what failed"
        )


class _FailureRecorder(logging.Handler):
    """Collects the ``<job> failed with exception:`` records of ``run_locally``."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.failures: list[JobFailure] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _FAILED not in message:
            return
        name, trace = message.split(_FAILED, 1)
        lines = [line for line in trace.strip().splitlines() if line.strip()]
        self.failures.append(
            JobFailure(job=name, error=one_line(lines[-1] if lines else "unknown error"), traceback=trace)
        )


@contextmanager
def _recording() -> Iterator[_FailureRecorder]:
    logger = logging.getLogger(_JOBFLOW_LOGGER)
    recorder = _FailureRecorder()
    saved = logger.level, logger.propagate
    logger.addHandler(recorder)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # jobflow's own INFO lines stay quiet, as with log=False
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def run_flow(
    flow: Flow | Job,
    store: JobStore,
    root_dir: Path | str | None = None,
    what: str = "the flow",
    namespace: str = "epdi",
    create_folders: bool = False,
) -> dict[str, dict[int, Response]]:
    """Run ``flow`` with deterministic job uuids and logging off; raise :class:`JobsFailed` when a job raised.

    The uuids come from :func:`workflows.flows.stable_jobs.stable_uuids`, so a rerun replaces the stored
    outputs instead of adding to them.

    Parameters
    ----------
    flow
        The flow or job to run; independent jobs go on when one fails (jobflow's behaviour).
    store
        The job store.
    root_dir
        Folder the jobs run in (default: the current one).
    what
        How the message names what ran (``"campaign tiny"``).
    namespace
        Distinguishes otherwise identical flows (see :func:`workflows.flows.stable_jobs.stable_uuids`).
    create_folders
        One folder per job under ``root_dir`` (jobs that write files, e.g. VASP's).

    Returns
    -------
    dict
        ``run_locally``'s responses, ``{uuid: {index: Response}}``.
    """
    with _recording() as recorder:
        responses = run_locally(
            flow,
            store=store,
            log=False,
            ensure_success=False,
            root_dir=root_dir,
            namespace=namespace,
            create_folders=create_folders,
        )
    if recorder.failures:
        raise JobsFailed(recorder.failures, what)
    return responses
