"""One lock per embedded store folder: shared reads, exclusive units of writes, disk-full handling.

The embedded store (montydb, one sqlite file per collection) has no transaction across
collections, and montydb's own "is the collection file there? is the config written?" checks race
between processes. Every access to a store folder therefore goes through its :class:`StoreLock`:

- a read holds a shared ``fcntl.flock`` on ``<store>/.epdi-lock``, a write an exclusive one, so a
  reader never sees half of a unit and two writers never interleave;
- a *unit* (:meth:`StoreLock.unit`, :meth:`stores.facade.StoreFacade.unit`) holds the exclusive lock
  for all its writes and keeps an undo journal ``<store>/.epdi-unit-journal``
  (:mod:`stores.unit_journal`), emptied when the unit ends: its commit. A unit that raises is
  rolled back from the journal; one whose process died (SIGKILL, power loss) is rolled back by the
  next process that takes the lock, before it reads or writes anything;
- a write that fills the disk frees a small reserve file (``<store>/.epdi-reserve``, re-made when
  the next unit starts) so that the roll-back has room, then raises :class:`DiskFullError`; a unit
  does not start while the reserve cannot be made, so a full disk is refused before any write.

The lock is re-entrant within a process (a read inside a unit, a unit inside a unit: the inner one
joins the outer one) and serialises the threads of a process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from stores.errors import RunError
from stores.unit_journal import UnitJournal, clear, pending, read_records, undo_records
from stores.validation import make_dir

LOCK_FILE = ".epdi-lock"
JOURNAL_FILE = ".epdi-unit-journal"
RESERVE_FILE = ".epdi-reserve"

#: how long a process waits for another one's lock before giving up (s)
DEFAULT_LOCK_TIMEOUT_S = 600.0
#: size of the reserve file freed for a roll-back on a full disk (KiB)
DEFAULT_RESERVE_KB = 4096
#: below this much free space an sqlite "disk I/O error" is taken for a full disk (bytes)
_NEARLY_FULL_BYTES = 1 << 20

Mode = Literal["shared", "exclusive"]


class StoreBusyError(RunError):
    """Another process held the store's lock for longer than ``store.lock_timeout_s``."""


class DiskFullError(RunError):
    """The disk holding the data folder is full; the message says what was kept."""


def _free_bytes(folder: Path) -> int:
    path = folder
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def _human(n_bytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes} bytes"  # pragma: no cover


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` (an ``OSError`` or an sqlite error) means the disk under ``folder`` is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name == "SQLITE_FULL" or "disk is full" in str(exc):
            return True
        if name.startswith("SQLITE_IOERR") or "disk I/O error" in str(exc):
            return _free_bytes(folder) < _NEARLY_FULL_BYTES
    return False


class StoreLock:
    """The lock, unit journal and reserve of one store folder (one instance per folder and process).

    Use :func:`store_lock` to get it.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.timeout_s = DEFAULT_LOCK_TIMEOUT_S
        self.reserve_bytes = DEFAULT_RESERVE_KB * 1024
        self._thread = threading.RLock()
        self._fd: int | None = None
        self._modes: list[str] = []
        self._journal: UnitJournal | None = None
        self._unit_depth = 0

    # -- errors ------------------------------------------------------------------------------------
    def disk_full(self, outcome: str) -> DiskFullError:
        """The one-line error for a full disk; ``outcome`` says what became of the write."""
        free = _human(_free_bytes(self.folder))
        return DiskFullError(
            f"the disk holding the data folder {self.folder.parent} is full ({free} free): {outcome}; "
            "free some space and rerun"
        )

    @contextmanager
    def disk_full_as_error(self, outcome: str = "nothing was written") -> Iterator[None]:
        """Turn a full-disk ``OSError``/sqlite error raised inside into :class:`DiskFullError`."""
        try:
            yield
        except (OSError, sqlite3.OperationalError) as exc:
            if is_disk_full(exc, self.folder):
                raise self.disk_full(outcome) from None
            raise

    # -- the lock ------------------------------------------------------------------------------------
    @property
    def mode(self) -> Mode | None:
        """What this process holds now: ``"exclusive"``, ``"shared"`` or ``None``."""
        if not self._modes:
            return None
        return "exclusive" if "exclusive" in self._modes else "shared"

    @contextmanager
    def hold(self, mode: Mode) -> Iterator[None]:
        """Hold the lock in ``mode`` (re-entrant; shared inside exclusive is a no-op)."""
        with self._thread:
            self._acquire(mode)
            try:
                yield
            finally:
                self._release()

    def _flock(self, operation: int) -> None:
        deadline = None
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, operation | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.timeout_s
            elif now > deadline:
                raise StoreBusyError(
                    f"the embedded store in {self.folder} was locked by another process for more than "
                    f"{self.timeout_s:.0f} s; wait for it to finish or raise store.lock_timeout_s"
                )
            time.sleep(delay)
            delay = min(2 * delay, 0.02)

    def _acquire(self, mode: Mode) -> None:
        before = self.mode
        if before is None:
            with self.disk_full_as_error("nothing was read or written"):
                make_dir(self.folder, "store folder")
                self._fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._flock(fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH)
            except BaseException:
                self._close()
                raise
        elif mode == "exclusive" and before == "shared":
            self._flock(fcntl.LOCK_EX)  # an upgrade is not atomic: another writer may go first
        self._modes.append(mode)
        if before != self.mode and not self._unit_depth:
            try:
                self._recover_if_needed()
            except BaseException:
                self._release()
                raise

    def _release(self) -> None:
        popped = self._modes.pop()
        if not self._modes:
            self._close()  # closing the descriptor releases the lock
        elif popped == "exclusive" and self.mode == "shared":
            self._flock(fcntl.LOCK_SH)  # back down from exclusive

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- units ---------------------------------------------------------------------------------------
    @contextmanager
    def unit(self) -> Iterator[None]:
        """Make every write inside one all-or-nothing unit (a unit inside a unit joins it).

        Raises
        ------
        DiskFullError
            The disk is full: before the unit starts, or during it (it is rolled back).
        """
        with self.hold("exclusive"):
            if self._unit_depth:
                self._unit_depth += 1
                try:
                    yield
                finally:
                    self._unit_depth -= 1
                return
            self._ensure_reserve()
            self._unit_depth = 1
            self._journal = UnitJournal(self.folder / JOURNAL_FILE)
            try:
                yield
            except BaseException as exc:
                self._roll_back(exc)
                raise
            else:
                self._journal.discard()
            finally:
                self._unit_depth = 0
                self._journal = None

    @property
    def in_unit(self) -> bool:
        """True inside :meth:`unit` in this process."""
        return self._unit_depth > 0

    def record(self, database: str, collection: str, delete_ids: list, restore: list[dict]) -> None:
        """Journal how to undo the write about to start (see :meth:`UnitJournal.append`)."""
        if self._journal is None:
            raise RuntimeError("embedded-store writes must run inside StoreLock.unit()")
        self._journal.append(database, collection, delete_ids, restore)

    def _roll_back(self, exc: BaseException) -> None:
        full = is_disk_full(exc, self.folder)
        if full:
            (self.folder / RESERVE_FILE).unlink(missing_ok=True)  # room for the roll-back
        journal = self._journal
        try:
            if not journal.empty:
                journal.close()
                undo_records(self.folder, read_records(journal.path))
                clear(journal.path)
        except Exception as undo_exc:
            if full or is_disk_full(undo_exc, self.folder):
                raise self.disk_full(
                    "the unfinished write is undone at the next store access once there is room"
                ) from exc
            exc.add_note(f"rolling the unit back failed ({undo_exc}); the next store access retries it")
            return
        if full:
            raise self.disk_full("nothing was written") from exc

    def _recover_if_needed(self) -> None:
        """Roll back the unit of a process that died in it (its journal is still there)."""
        path = self.folder / JOURNAL_FILE
        if not pending(path):
            return
        shared = self.mode == "shared"
        if shared:
            self._flock(fcntl.LOCK_EX)
        try:
            if pending(path):
                try:
                    undo_records(self.folder, read_records(path))
                except (OSError, sqlite3.OperationalError) as exc:
                    if not is_disk_full(exc, self.folder):
                        raise
                    (self.folder / RESERVE_FILE).unlink(missing_ok=True)
                    try:
                        undo_records(self.folder, read_records(path))
                    except (OSError, sqlite3.OperationalError):
                        raise self.disk_full(
                            "a write interrupted earlier cannot be undone until there is room"
                        ) from None
                clear(path)
        finally:
            if shared:
                self._flock(fcntl.LOCK_SH)

    def _ensure_reserve(self) -> None:
        if self.reserve_bytes <= 0:
            return
        path = self.folder / RESERVE_FILE
        try:
            if path.stat().st_size >= self.reserve_bytes:
                return
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    os.posix_fallocate(fd, 0, self.reserve_bytes)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    os.pwrite(fd, bytes(self.reserve_bytes), 0)
            finally:
                os.close(fd)
        except OSError as exc:
            if is_disk_full(exc, self.folder):
                path.unlink(missing_ok=True)
                raise self.disk_full("nothing was written") from None
            raise


_LOCKS: dict[str, StoreLock] = {}
_GUARD = threading.Lock()


def store_lock(
    folder: Path | str, timeout_s: float | None = None, reserve_kb: int | None = None
) -> StoreLock:
    """The process's :class:`StoreLock` of ``folder``, with the given timeout and reserve size."""
    key = os.path.realpath(folder)
    with _GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = StoreLock(Path(key))
    if timeout_s is not None:
        lock.timeout_s = timeout_s
    if reserve_kb is not None:
        lock.reserve_bytes = reserve_kb * 1024
    return lock


def _after_fork_in_child() -> None:
    """A forked child starts with no lock held (its copy of the parent's descriptor is closed)."""
    for lock in _LOCKS.values():
        lock._close()
        lock.__init__(lock.folder)


os.register_at_fork(after_in_child=_after_fork_in_child)
