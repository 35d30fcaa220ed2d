"""The embedded LaunchPad's database: one JSON file that every process on the machine shares safely.

The file is FireWorks' mongomock-persistence format (``{database: {collection: documents}}``) and the
database behind it is mongomock, so :class:`fireworks.LaunchPad` runs on it unchanged. Unlike
FireWorks' own mongomock mode, which reads the file once when a process starts and writes its whole
copy back when it exits (so a long-running ``qlaunch`` never sees new states, and its exit undoes
what the launchers wrote meanwhile), every process here:

- reads: reloads the file before an operation when it changed since the last load (inode, time and
  size; the file is only ever replaced atomically, so a reader sees one whole version, and needs no
  lock);
- writes: holds :class:`~workflows.fireworks.launcher_lock.LauncherLock` on ``<file>.lock``, reloads (always),
  applies the operation and replaces the file (temporary file, fsync, rename) before it lets go.

A process that holds the lock for longer (``epdi launch`` for its whole run, ``epdi campaign
submit`` while it adds a workflow) is the only writer meanwhile; other writers wait for it (up to
``EPDI_LAUNCHPAD_WAIT_S`` seconds, default 600) or stop with a message naming it. Several
operations inside :meth:`EmbeddedFile.writing` are written once, at its end.

FireWorks' own tools (``lpad``, ``qlaunch``, ``rlaunch``) get this client from the ``FW_config.yaml``
beside the file (``MongoClient`` set to :func:`mongo_client`, the LaunchPad file's ``host`` set to
``embedded://<file>``), so they share the file with ``epdi`` under the same rules.

This module imports no FireWorks code: FireWorks imports it while it reads its configuration.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bson.json_util
import mongomock
import mongomock_persistence  # noqa: F401  (adds to_dict/from_dict to mongomock's stores)
from mongomock.store import CollectionStore, DatabaseStore, ServerStore

from stores.errors import RunError
from stores.validation import one_line
from workflows.fireworks.launcher_lock import LauncherLock

#: ``host`` of a FireWorks LaunchPad file that names an embedded LaunchPad: ``embedded:///abs/path.json``
EMBEDDED_SCHEME = "embedded://"
#: seconds a writer waits for the lock held by another process before it gives up
WAIT_ENV = "EPDI_LAUNCHPAD_WAIT_S"
DEFAULT_WAIT_S = 600.0

#: mongomock ``Collection`` methods that change the database (everything else only reads)
WRITE_METHODS = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "bulk_write",
        "create_index",
        "create_indexes",
        "drop_index",
        "drop_indexes",
        "drop",
        "rename",
    }
)
READ_METHODS = frozenset(
    {"find", "find_one", "count_documents", "estimated_document_count", "distinct", "aggregate"}
)


class EmbeddedReadOnly(RunError):
    """A write on an embedded LaunchPad that was opened to read only."""


def embedded_host(path: Path) -> str:
    """The ``host`` of a LaunchPad file for the embedded LaunchPad in ``path``."""
    return EMBEDDED_SCHEME + str(Path(path).resolve())


def embedded_path(host: object) -> Path | None:
    """The JSON file named by an ``embedded://`` host, else ``None``."""
    if isinstance(host, str) and host.startswith(EMBEDDED_SCHEME):
        return Path(host[len(EMBEDDED_SCHEME) :])
    return None


def _wait_s() -> float:
    try:
        return float(os.environ.get(WAIT_ENV, DEFAULT_WAIT_S))
    except ValueError:
        return DEFAULT_WAIT_S


class EmbeddedFile:
    """One embedded LaunchPad file as this process sees it: a mongomock server kept in step with it.

    Parameters
    ----------
    path
        The JSON file (created as ``{}`` by the first write when missing).
    read_only
        Refuse every write (:class:`EmbeddedReadOnly`), for readers such as ``epdi status``.
    """

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        purpose = f"the embedded LaunchPad {self.path}"
        self.lock = LauncherLock(self.path.with_suffix(".lock"), purpose=purpose)
        self.server = ServerStore.__new__(ServerStore)  # not its file-backed __init__ (see module doc)
        self.server._databases = {}
        self._stamp: tuple[int, int, int] | None = None
        self._mutex = threading.RLock()
        self._depth = 0
        self._dirty = False
        self._own_lock = False
        self.reload(force=True)

    # -- file ------------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def reload(self, force: bool = False) -> None:
        """Load the file into the server when it changed (in place: open collections see the new data)."""
        stamp = self._file_stamp()
        if not force and stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8") if stamp is not None else ""
            data = bson.json_util.loads(text or "{}")
        except ValueError as exc:  # not UTF-8, or not JSON
            raise RunError(
                f"embedded LaunchPad {self.path} is not readable JSON ({one_line(str(exc))[:120]}); "
                "restore it from a copy, or move it away to start an empty one (its Fireworks are then lost)"
            ) from None
        if not isinstance(data, dict):
            raise RunError(
                f"embedded LaunchPad {self.path} does not hold a mapping of databases; move it away"
            )
        for name, db in data.items():
            fresh = DatabaseStore.from_dict(db)
            target = self.server[name]
            old = target._collections
            target._collections = {
                col: _keep_indexes(store, old.get(col)) for col, store in fresh._collections.items()
            }
        for name in set(self.server._databases) - set(data):
            self.server._databases[name]._collections = {}
        self._stamp = stamp

    def flush(self) -> None:
        """Write the whole database to the file atomically (temporary file, fsync, rename)."""
        text = bson.json_util.dumps(self.server.to_dict())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._stamp = self._file_stamp()
        self._dirty = False

    # -- access ----------------------------------------------------------------------------------
    @property
    def holds_lock(self) -> bool:
        """Whether this process is the writer now."""
        return self.lock.held

    def hold(self, wait_s: float = 0.0) -> None:
        """Become the only writer until :meth:`release` (``epdi launch`` for its whole run)."""
        with self._mutex:
            if self.read_only:
                raise EmbeddedReadOnly(f"the embedded LaunchPad {self.path} was opened to read only")
            if not self.lock.held:
                self.lock.acquire(wait_s=wait_s)
                self._own_lock = True
                self.reload(force=True)

    def release(self) -> None:
        """Write what is pending and let other writers in."""
        with self._mutex:
            if self._dirty:
                self.flush()
            if self._own_lock:
                self.lock.release()
                self._own_lock = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around a read: the latest version of the file unless this process is the writer."""
        with self._mutex:
            if not self.lock.held:
                self.reload()
            yield

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around one or more writes: lock (waiting for another writer), reload, apply, write once."""
        with self._mutex:
            if self.read_only:
                raise EmbeddedReadOnly(
                    f"the embedded LaunchPad {self.path} was opened to read only; nothing was written"
                )
            acquired = False
            if not self.lock.held:
                wait_s = _wait_s()
                if self.lock.holder() is not None and wait_s > 0:
                    print(f"waiting up to {wait_s:.0f} s for {self.lock.purpose}", file=sys.stderr)
                self.lock.acquire(wait_s=wait_s)
                acquired = True
                self.reload(force=True)  # a writer never trusts the file's stamp alone
            self._depth += 1
            try:
                yield
                self._dirty = True
            finally:
                self._depth -= 1
                try:
                    if self._depth == 0 and self._dirty:
                        self.flush()
                finally:
                    if acquired:
                        self.lock.release()


def _keep_indexes(fresh: CollectionStore, old: CollectionStore | None) -> CollectionStore:
    """The reloaded collection with the indexes this process had made (the file holds none)."""
    if old is not None:
        fresh.indexes = old.indexes
    return fresh


_FILES: dict[tuple[Path, bool], EmbeddedFile] = {}
_FILES_LOCK = threading.Lock()


def embedded_file(path: Path, read_only: bool = False) -> EmbeddedFile:
    """The process-wide :class:`EmbeddedFile` of ``path`` (one per file, so the lock is shared)."""
    key = (Path(path).resolve(), read_only)
    with _FILES_LOCK:
        if key not in _FILES:
            _FILES[key] = EmbeddedFile(key[0], read_only=read_only)
        return _FILES[key]


class _Guarded:
    """A mongomock client, database or collection whose operations follow :class:`EmbeddedFile`."""

    def __init__(self, target: Any, file: EmbeddedFile):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_file", file)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in WRITE_METHODS:
            return self._wrap(value, self._file.writing)
        if name in READ_METHODS:
            return self._wrap(value, self._file.reading)
        if isinstance(value, mongomock.Database | mongomock.Collection):
            return _Guarded(value, self._file)
        return value

    def __getitem__(self, name: str) -> _Guarded:
        return _Guarded(self._target[name], self._file)

    @staticmethod
    def _wrap(method, context):
        def call(*args: Any, **kwargs: Any) -> Any:
            with context():
                return method(*args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"Embedded({self._target!r}, {self._file.path})"


def embedded_client(file: EmbeddedFile) -> _Guarded:
    """A pymongo-like client on ``file``."""
    return _Guarded(mongomock.MongoClient(_store=file.server), file)


def mongo_client(host: Any = None, port: Any = None, **kwargs: Any) -> Any:
    """FireWorks' ``MongoClient`` (``FW_config.yaml``): embedded for ``embedded://`` hosts, else pymongo."""
    path = embedded_path(host)
    if path is None:
        import pymongo

        return pymongo.MongoClient(host, port, **kwargs)
    return embedded_client(embedded_file(path))
