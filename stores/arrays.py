"""n-dimensional arrays (maps, fragment stacks, RGB images) in the ``data`` store.

Like :mod:`stores.grids` but for any shape and dtype: zlib-compressed C-order bytes under a key
derived from the SHA-256, so storing the same array twice writes one blob.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from stores.errors import RunError
from stores.facade import StoreFacade
from stores.schemas.fields import ArrayRef


class GridIntegrityError(RunError):
    """A stored array or grid is missing or its bytes do not match the recorded hash."""


def array_hash(array: np.ndarray) -> str:
    """SHA-256 of the C-order bytes of ``array`` in its own dtype."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _ref_and_blob(array: np.ndarray, units: str) -> tuple[ArrayRef, dict]:
    data = np.ascontiguousarray(array)
    digest = array_hash(data)
    ref = ArrayRef(
        key=f"array-{digest[:24]}", shape=tuple(data.shape), dtype=data.dtype.name, units=units, sha256=digest
    )
    blob = {
        "blob_uuid": ref.key,
        "shape": list(ref.shape),
        "dtype": ref.dtype,
        "units": units,
        "sha256": digest,
        "data": zlib.compress(data.tobytes(), level=1),
    }
    return ref, blob


def put_blobs(facade: StoreFacade, blobs: list[dict]) -> int:
    """Write data-store blobs (keyed by ``blob_uuid``) that are not stored yet, as one unit.

    Keys are content hashes, so a stored key already holds these bytes; returns how many were new.
    """
    if not blobs:
        return 0
    store = facade.data_store()
    store.connect()
    try:
        with facade.unit():
            keys = [blob["blob_uuid"] for blob in blobs]
            stored = {d["blob_uuid"] for d in store.query({"blob_uuid": {"$in": keys}}, ["blob_uuid"])}
            new = [blob for blob in blobs if blob["blob_uuid"] not in stored]
            if new:
                store.update(new, key="blob_uuid")
    finally:
        store.close()
    return len(new)


def put_arrays(facade: StoreFacade, arrays: list[tuple[np.ndarray, str]]) -> list[ArrayRef]:
    """Store several ``(array, units)`` pairs in one connection and unit; return their references."""
    pairs = [_ref_and_blob(array, units) for array, units in arrays]
    put_blobs(facade, [blob for _, blob in pairs])
    return [ref for ref, _ in pairs]


def put_array(facade: StoreFacade, array: np.ndarray, units: str) -> ArrayRef:
    """Store one array and return its reference."""
    return put_arrays(facade, [(array, units)])[0]


def stored_keys(facade: StoreFacade, keys: list[str]) -> set[str]:
    """Which of the blob ``keys`` the data store holds (a compact archive leaves some out)."""
    if not keys:
        return set()
    store = facade.data_store()
    store.connect()
    try:
        return {d["blob_uuid"] for d in store.query({"blob_uuid": {"$in": list(keys)}}, ["blob_uuid"])}
    finally:
        store.close()


def get_array(facade: StoreFacade, ref: ArrayRef) -> np.ndarray:
    """Load an array by reference, checking its hash (raises :class:`GridIntegrityError`)."""
    store = facade.data_store()
    store.connect()
    try:
        doc = store.query_one({"blob_uuid": ref.key})
    finally:
        store.close()
    if doc is None:
        raise GridIntegrityError(f"array {ref.key} is not in the data store")
    try:
        array = np.frombuffer(zlib.decompress(doc["data"]), dtype=np.dtype(ref.dtype)).reshape(ref.shape)
    except (zlib.error, ValueError, TypeError) as exc:  # truncated or damaged bytes
        raise GridIntegrityError(
            f"array {ref.key} is damaged in the data store ({exc}); rebuild it"
        ) from None
    if array_hash(array) != ref.sha256:
        raise GridIntegrityError(f"array {ref.key} does not match its SHA-256; rebuild it")
    return array
