"""The undo journal of a unit of writes to the embedded store.

Before a write changes a collection, :meth:`UnitJournal.append` records how to undo it: the ids of
the documents the write is about to add or replace (to delete them again) and the full documents it
is about to replace or delete (to put them back). Each record is fsynced before the write starts,
so a journal always describes at least everything the unit changed. Undoing the records in reverse
order (:func:`undo_records`) gives back the store as it was before the unit; every undo step is
"delete these ids, insert these documents", so undoing twice (a crash during a roll-back) is safe.
Emptying the journal commits the unit.

File format: a sequence of ``<length: 8 bytes LE><crc32: 4 bytes LE><BSON document>``; a record
cut short by a crash fails its length or checksum, and it and anything after it are ignored (its
write had not started).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import bson

_HEADER = struct.Struct("<QI")


class UnitJournal:
    """The undo journal of the running unit; the file stays and is emptied when the unit ends.

    An empty (or missing) file means no unit is unfinished: emptying it is the unit's commit. The
    file is kept between units so that its directory entry is made durable once, not per unit.

    Parameters
    ----------
    path
        The journal file; empty while no unit is running.
    """

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def append(self, database: str, collection: str, delete_ids: list, restore: list[dict]) -> None:
        """Record one undo step and fsync it before the write it undoes starts.

        Parameters
        ----------
        database, collection
            The montydb database and collection the write changes.
        delete_ids
            ``_id`` of every document the write adds or replaces.
        restore
            The documents (with their ``_id``) the write replaces or deletes.
        """
        payload = bson.encode(
            {"database": database, "collection": collection, "delete_ids": delete_ids, "restore": restore}
        )
        if self._file is None:
            created = not self.path.exists()
            self._file = open(self.path, "ab")  # noqa: SIM115 -- held open for the whole unit
            if created:
                _fsync_dir(self.path.parent)
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()
        os.fsync(self._file.fileno())

    @property
    def empty(self) -> bool:
        """True while this unit wrote no record."""
        return self._file is None

    def close(self) -> None:
        """Close the file, keeping its records (to read them back for a roll-back)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Empty the journal: the unit committed, or was rolled back."""
        had_records = self._file is not None
        self.close()
        if had_records:
            clear(self.path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pending(path: Path) -> bool:
    """Whether the journal at ``path`` holds records of an unfinished unit."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def clear(path: Path) -> None:
    """Empty the journal at ``path`` (after its unit committed or was undone)."""
    os.truncate(path, 0)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The complete records of a journal file, in the order written (a torn tail is dropped)."""
    data = path.read_bytes()
    records = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        records.append(bson.decode(payload))
        offset += _HEADER.size + length
    return records


def undo_records(folder: Path, records: list[dict[str, Any]]) -> None:
    """Undo ``records`` (from :func:`read_records`) in reverse order on the montydb store in ``folder``.

    The caller holds the store's exclusive lock and the store's montydb configuration exists.
    """
    from montydb import MontyClient

    client = MontyClient(str(folder))
    try:
        for record in reversed(records):
            collection = client[record["database"]][record["collection"]]
            ids = record["delete_ids"]
            if ids and record["collection"] in client[record["database"]].list_collection_names():
                collection.delete_many({"_id": {"$in": ids}})
            if record["restore"]:
                collection.insert_many(record["restore"])
    finally:
        client.close()
