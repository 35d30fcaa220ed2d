"""An exclusive lock file for the embedded (single-file) FireWorks LaunchPad.

The embedded LaunchPad keeps the whole FireWorks database in one file that a process reads at the
start and writes back as it goes. Two launchers on the same file each check out the same READY
Fireworks and run them twice (measured: 3 of 4 Fireworks ran twice; the last writer wins). This
lock lets exactly one process write the file: ``epdi launch`` holds it for its whole run, ``epdi
campaign submit`` and ``epdi retrain --submit`` for the moment they add a workflow.

The lock is ``fcntl.flock`` on ``<launchpad>.lock``: the kernel drops it when the holder exits or
is killed, so a crashed launcher never leaves a stale lock behind. The file also records who holds
it (PID, host, start time, command) for the one-line message a refused process prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from stores.errors import RunError


class LauncherBusy(RunError):
    """Another process holds the lock; the message names its PID and host."""

    def __init__(self, message: str, holder: LockHolder | None):
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: process id, host name, since when (UTC, ISO 8601) and the command line."""

    pid: int
    host: str
    since: str
    command: str

    def describe(self) -> str:
        """``PID 1234 on host node01 since 2026-01-01T10:00:00+00:00 (epdi launch)``."""
        return f"PID {self.pid} on host {self.host} since {self.since} ({self.command})"


class LauncherLock:
    """Exclusive, non-blocking lock on ``path`` (created when missing).

    Parameters
    ----------
    path
        The lock file, e.g. ``<data_dir>/fireworks/launchpad.lock``.
    purpose
        What the locked resource is, for messages (``"the embedded LaunchPad ..."``).

    Examples
    --------
    >>> with LauncherLock(Path("lp.lock")):   # doctest: +SKIP
    ...     run_launcher()
    """

    def __init__(self, path: Path, purpose: str | None = None):
        self.path = Path(path)
        self.purpose = purpose or f"the lock {self.path}"
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._handle is not None

    def holder(self) -> LockHolder | None:
        """The process recorded in the lock file, or ``None`` when the file is empty or unreadable."""
        try:
            record = json.loads(self.path.read_text() or "null")
            return LockHolder(**record) if isinstance(record, dict) else None
        except (OSError, ValueError, TypeError):
            return None

    def acquire(self, wait_s: float = 0.0, poll_s: float = 0.5) -> LauncherLock:
        """Take the lock, waiting up to ``wait_s`` seconds; raise :class:`LauncherBusy` if it stays held."""
        if self.held:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 (kept open while the lock is held)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    holder = self.holder()
                    who = holder.describe() if holder else "another process (no record in the lock file)"
                    raise LauncherBusy(
                        f"{self.purpose} is in use by {who}; wait for it to finish or stop that process "
                        f"(lock file {self.path})",
                        holder,
                    ) from None
                time.sleep(poll_s)
        record = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            command=_command_line(),
        )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record.__dict__))
        handle.flush()
        os.fsync(handle.fileno())
        self._handle = handle
        return self

    def release(self) -> None:
        """Clear the record and drop the lock (no effect when not held)."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.seek(0)
            handle.truncate()
            handle.flush()
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> LauncherLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _command_line() -> str:
    """The command line of this process, short (``epdi launch ...``, ``python3 -m workflows.cli ...``)."""
    if Path(sys.argv[0]).name == "__main__.py":  # python -m package
        words = [Path(sys.orig_argv[0]).name, *sys.orig_argv[1:]]
    else:
        words = [Path(sys.argv[0]).name, *sys.argv[1:]]
    return " ".join(words)[:200]
