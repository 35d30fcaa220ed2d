"""The embedded store: maggma's ``MontyStore`` made safe for several processes and for faults.

:class:`EmbeddedStore` is a ``MontyStore`` (montydb, sqlite engine) whose every read takes the
store folder's shared lock and whose every write is journaled and runs in a unit under the
exclusive lock (:mod:`stores.store_lock`). It also removes two races montydb has between processes:

- maggma's ``MontyStore.connect`` calls ``montydb.set_storage`` on every connection, which
  truncates and rewrites ``.monty.storage`` and ``monty.storage.cfg``; a second process reading them
  in between fails (``ValueError: Empty module name``, ``No module named 'montydb.storage.'``, "has
  been config to use BSON"). Here the configuration is written once, under the exclusive lock, to a
  temporary folder and renamed into place, and never again while it is valid.
- montydb creates a collection when its file is missing (``CREATE TABLE``), so a reader that saw the
  new, still empty file failed with ``no such table: documents``; a failed creation (a full disk)
  left that empty file behind for good. Here creations happen under the exclusive lock, and a
  collection file without its table (it holds nothing) is removed when found.

Writes replace documents by key with one scan (montydb has no indexes) instead of one per document.
"""

from __future__ import annotations

import configparser
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from bson import ObjectId
from jobflow import JobStore
from maggma.core import Store
from maggma.stores import MontyStore
from monty.json import jsanitize
from montydb import MontyClient, set_storage
from montydb.storage.sqlite import SQLITE_DB_EXT, SQLITE_RECORD_TABLE

from stores.errors import RunError
from stores.store_lock import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_RESERVE_KB, StoreLock, store_lock

_IDENT_FILE = ".monty.storage"
_CONFIG_FILE = "monty.storage.cfg"

#: montydb settings of a new store: pymongo's BSON (as maggma), and sqlite's rollback journal
#: rather than WAL: writes are serialised by the store lock anyway, commits are cheaper than WAL's
#: checkpoint at every close (montydb closes after each operation), and readers create no files,
#: so the store stays readable on a full disk
_STORAGE_DEFAULTS = {"use_bson": True, "mongo_version": "4.0", "journal_mode": "DELETE"}

#: folders (store, database, collection files) known to be ready in this process
_READY: set[str] = set()


def _config_ready(folder: Path) -> bool:
    try:
        engine = (folder / _IDENT_FILE).read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return False
    if engine and engine != "sqlite":
        raise RunError(f"{folder} is a montydb store of engine {engine!r}; the embedded store needs 'sqlite'")
    parser = configparser.ConfigParser()
    try:
        parser.read(folder / _CONFIG_FILE)
    except configparser.Error:
        return False
    return engine == "sqlite" and parser.has_option("sqlite", "use_bson")


def _write_config(folder: Path, storage_kwargs: dict[str, Any]) -> None:
    """Write montydb's two configuration files atomically (called under the exclusive lock)."""
    staging = Path(tempfile.mkdtemp(prefix=".epdi-config-", dir=folder))
    try:
        set_storage(str(staging), storage="sqlite", **storage_kwargs)
        os.replace(staging / _CONFIG_FILE, folder / _CONFIG_FILE)
        os.replace(staging / _IDENT_FILE, folder / _IDENT_FILE)  # last: it marks the config as written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _has_table(path: Path) -> bool:
    connection = sqlite3.connect(path)
    try:
        query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
        return connection.execute(query, (SQLITE_RECORD_TABLE,)).fetchone() is not None
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            raise
        raise RunError(
            f"{path} is not an sqlite file ({exc}); move it away to start that collection anew"
        ) from None
    finally:
        connection.close()


class EmbeddedStore(MontyStore):
    """A montydb ``MontyStore`` with a cross-process lock, all-or-nothing writes and clean faults.

    Parameters
    ----------
    collection_name, database_path, database_name, storage_kwargs, client_kwargs, **kwargs
        As for :class:`maggma.stores.MontyStore` (the storage engine is always sqlite; a new store
        uses sqlite's rollback journal, ``journal_mode=DELETE``; an existing one keeps its
        configuration).
    lock_timeout_s
        How long to wait for another process's lock before raising
        :class:`stores.store_lock.StoreBusyError`.
    reserve_kb
        Size of the reserve file freed for a roll-back on a full disk (0: none).
    """

    def __init__(
        self,
        collection_name: str,
        database_path: str | None = None,
        database_name: str = "db",
        storage_kwargs: dict | None = None,
        client_kwargs: dict | None = None,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        reserve_kb: int = DEFAULT_RESERVE_KB,
        **kwargs,
    ):
        kwargs.pop("storage", None)
        storage_kwargs = storage_kwargs or {**_STORAGE_DEFAULTS}
        super().__init__(
            collection_name,
            database_path=database_path,
            database_name=database_name,
            storage="sqlite",
            storage_kwargs=storage_kwargs,
            client_kwargs=client_kwargs,
            **kwargs,
        )
        self.lock_timeout_s = lock_timeout_s
        self.reserve_kb = reserve_kb

    @property
    def lock(self) -> StoreLock:
        """The lock of this store's folder (shared with every store on the same folder)."""
        return store_lock(self.database_path, self.lock_timeout_s, self.reserve_kb)

    @property
    def _file(self) -> Path:
        return Path(self.database_path) / self.database_name / f"{self.collection_name}{SQLITE_DB_EXT}"

    # -- connection ----------------------------------------------------------------------------------
    def connect(self, force_reset: bool = False) -> None:
        """Connect; write montydb's configuration once and repair a collection file without table."""
        if self._coll is not None and not force_reset:
            return
        lock = self.lock
        folder, path = Path(self.database_path), self._file
        with lock.hold("shared"), lock.disk_full_as_error("nothing was read or written"):
            known = str(path) in _READY and (folder / _IDENT_FILE).exists()
            ready = known or (_config_ready(folder) and (not path.exists() or _has_table(path)))
            if ready:
                self._coll = MontyClient(self.database_path, **self.client_kwargs)[self.database_name][
                    self.collection_name
                ]
        if not ready:
            with lock.hold("exclusive"), lock.disk_full_as_error("nothing was read or written"):
                if not _config_ready(folder):
                    _write_config(folder, self.storage_kwargs)
                if path.exists() and not _has_table(path):
                    for suffix in ("", "-wal", "-shm", "-journal"):
                        Path(f"{path}{suffix}").unlink(missing_ok=True)
                self._coll = MontyClient(self.database_path, **self.client_kwargs)[self.database_name][
                    self.collection_name
                ]
        _READY.add(str(path))

    # -- reads: under the shared lock ---------------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self.lock.hold("shared"), self.lock.disk_full_as_error("the store could not be read"):
            yield

    def query(self, criteria=None, properties=None, sort=None, hint=None, skip=0, limit=0, **kwargs):
        """As ``MontyStore.query``; the matching documents are read in one go under the shared lock."""
        with self._reading():
            docs = list(super().query(criteria, properties, sort, hint, skip, limit, **kwargs))
        yield from docs

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        """As ``MontyStore.count``, under the shared lock."""
        with self._reading():
            return super().count(criteria, hint)

    def distinct(self, field: str, criteria: dict | None = None, all_exist: bool = False) -> list:
        """As ``MontyStore.distinct``, under the shared lock."""
        with self._reading():
            return super().distinct(field, criteria, all_exist)

    # -- writes: journaled, in a unit ------------------------------------------------------------------
    def _journal(self, delete_ids: list, restore: list[dict]) -> None:
        self.lock.record(self.database_name, self.collection_name, delete_ids, restore)

    def _exists(self) -> bool:
        return self._file.exists()

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        """Insert or replace documents by ``key`` (default: the store's key), all or nothing.

        A document that matches a stored one keeps its ``_id``; several documents with the same key
        leave the last one.
        """
        docs = docs if isinstance(docs, list) else [docs]
        fields = key or self.key
        fields = list(fields) if isinstance(fields, list | tuple) else [fields]
        latest: dict[tuple, dict] = {}
        for doc in docs:
            clean = jsanitize(doc, allow_bson=True)
            if self.validator and not self.validator.is_valid(clean):
                if self.validator.strict:
                    raise ValueError(self.validator.validation_errors(clean))
                self.logger.error(self.validator.validation_errors(clean))
                continue
            clean.pop("_id", None)
            latest[tuple(repr(clean[f]) for f in fields)] = clean
        if not latest:
            return
        values = {f: sorted({repr(d[f]): d[f] for d in latest.values()}.values(), key=repr) for f in fields}
        with self.lock.unit():
            prior: dict[tuple, list[dict]] = {}
            if self._exists():
                criteria = {f: {"$in": v} for f, v in values.items()}
                for old in self._collection.find(criteria):
                    match = tuple(repr(old.get(f)) for f in fields)
                    if match in latest:
                        prior.setdefault(match, []).append(old)
            for match, doc in latest.items():
                doc["_id"] = prior[match][0]["_id"] if match in prior else ObjectId()
            replaced = [old for group in prior.values() for old in group]
            self._journal([d["_id"] for d in latest.values()] + [d["_id"] for d in replaced], replaced)
            if replaced:
                self._collection.delete_many({"_id": {"$in": [d["_id"] for d in replaced]}})
            self._collection.insert_many(list(latest.values()))

    def remove_docs(self, criteria: dict) -> None:
        """Remove the documents matching ``criteria``, all or nothing."""
        self.replace(criteria, [])

    def replace(self, criteria: dict, docs: list[dict]) -> None:
        """Remove the documents matching ``criteria`` and insert ``docs``, all or nothing.

        One scan and one journal record; ``docs`` are not checked against stored keys (the caller
        removes what they replace).
        """
        new = [jsanitize(d, allow_bson=True) | {"_id": d.get("_id") or ObjectId()} for d in docs]
        with self.lock.unit():
            gone = list(self._collection.find(criteria)) if self._exists() else []
            if not gone and not new:
                return
            self._journal([d["_id"] for d in gone + new], gone)
            if gone:
                self._collection.delete_many({"_id": {"$in": [d["_id"] for d in gone]}})
            if new:
                self._collection.insert_many(new)


def unit_of(store: Store):
    """A context manager making the writes to ``store`` inside one unit (no-op for other stores)."""
    return store.lock.unit() if isinstance(store, EmbeddedStore) else nullcontext()


class UnitJobStore(JobStore):
    """jobflow's ``JobStore`` whose update (a job's output and its blobs) is one unit."""

    def update(self, docs, key=None, save=None):
        """As ``JobStore.update``, all or nothing on the embedded store."""
        with unit_of(self.docs_store):
            return super().update(docs, key=key, save=save)
