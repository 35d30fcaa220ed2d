"""Run a jobflow flow on this machine and say which job failed and why.

jobflow's ``run_locally`` goes on with every job that does not need a failed one, then (with
``ensure_success``) raises only ``RuntimeError("Flow did not finish running successfully")``; the
failed job's own exception is logged at INFO level and lost when logging is off. :func:`run_flow`
records those log lines while the flow runs and raises :class:`JobsFailed`, whose one-line message
names the first failed job and its error, and which lists every failure in
:attr:`JobsFailed.failures`.

With ``progress`` (a function taking one line) it also says, as each job finishes, which job it
was, how long it took and how many jobs of each kind (:func:`job_kind`: statics, slab and valley
relaxations, CINEBs, trainings, rounds) are done so far: one plain line per job, fit for a terminal
and a log file alike. A job that runs longer than :data:`HEARTBEAT_S` gets a ``running:`` line each
time that long passes without another line, so a long static or CINEB never leaves the log silent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, Job, JobStore, Response

from stores.errors import RunError
from stores.validation import one_line
from workflows.flows.stable_jobs import run_locally

#: the logger ``run_locally`` reports failed jobs on, and the text it puts after the job name
_JOBFLOW_LOGGER = "jobflow.managers.local"
_FAILED = " failed with exception:\n"

#: the logger a jobflow Job reports its start and end on, and the words it starts them with
_JOB_LOGGER = "jobflow.core.job"
_STARTING, _FINISHED = "Starting job - ", "Finished job - "

#: seconds without a progress line after which the running job is named again (``running:`` lines)
HEARTBEAT_S = 25.0


def job_kind(name: str) -> str:
    """The kind of a job (or Firework) from its name: ``valley relax H 3`` -> ``valley relax``."""
    return " ".join(name.split()[:2])


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


class _JobProgress(logging.Handler):
    """Says one line per finished job (its name, wall time and the counts of each kind so far).

    While a job runs, a daemon thread says ``running: <job> (<s> s)`` whenever ``heartbeat_s`` pass
    without a line; :meth:`close` stops it.
    """

    def __init__(self, say: Callable[[str], None], heartbeat_s: float = HEARTBEAT_S) -> None:
        super().__init__(level=logging.INFO)
        self.say = say
        self.started: dict[str, float] = {}
        self.done: Counter[str] = Counter()
        self.t0 = self.last = time.monotonic()
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="epdi-progress", daemon=True)
        self._beat.start()

    def _line(self, text: str) -> None:
        with self._lock:
            self.last = time.monotonic()
            self.say(f"{_clock(self.last - self.t0)} {text}")

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(self.heartbeat_s, 1.0)):
            now = time.monotonic()
            with self._lock:
                running = dict(self.started)
                quiet = now - self.last >= self.heartbeat_s
            if running and quiet:
                job, since = max(running.items(), key=lambda item: item[1])  # the latest started
                self._line(f"running: {job.rsplit(' (', 1)[0]} ({now - since:.0f} s)")

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(_STARTING):
            with self._lock:
                self.started[message[len(_STARTING) :]] = time.monotonic()
        elif message.startswith(_FINISHED):
            job = message[len(_FINISHED) :]
            name = job.rsplit(" (", 1)[0]
            with self._lock:
                took = time.monotonic() - self.started.pop(job, time.monotonic())
                self.done[job_kind(name)] += 1
                counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.done.items()))
            self._line(f"done: {name} ({took:.1f} s); so far {counts}")

    def close(self) -> None:
        """Stop the heartbeat thread, then close the handler."""
        self._stop.set()
        self._beat.join(timeout=5)
        super().close()


def _clock(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"


@contextmanager
def _listening(name: str, handler: logging.Handler) -> Iterator[logging.Handler]:
    """``handler`` on logger ``name`` at INFO, which does not pass its records on (as with log=False)."""
    logger = logging.getLogger(name)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # jobflow's own INFO lines stay quiet
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        handler.close()


@contextmanager
def _recording(
    progress: Callable[[str], None] | None = None, heartbeat_s: float = HEARTBEAT_S
) -> Iterator[_FailureRecorder]:
    with ExitStack() as stack:
        recorder = stack.enter_context(_listening(_JOBFLOW_LOGGER, _FailureRecorder()))
        if progress is not None:
            stack.enter_context(_listening(_JOB_LOGGER, _JobProgress(progress, heartbeat_s)))
        yield recorder


def run_flow(
    flow: Flow | Job,
    store: JobStore,
    root_dir: Path | str | None = None,
    what: str = "the flow",
    namespace: str = "epdi",
    create_folders: bool = False,
    progress: Callable[[str], None] | None = None,
    heartbeat_s: float = HEARTBEAT_S,
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
    progress
        Called with one line per finished job (name, wall time, counts per kind so far), and with a
        ``running:`` line when ``heartbeat_s`` pass without one.
    heartbeat_s
        Seconds of silence after which the running job is named again.

    Returns
    -------
    dict
        ``run_locally``'s responses, ``{uuid: {index: Response}}``.
    """
    with _recording(progress, heartbeat_s) as recorder:
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
