"""Volumetric grids (potential, density) in the ``data`` store.

A grid is stored as zlib-compressed float64 bytes under a key derived from its SHA-256, so storing
the same grid twice writes one blob. Documents keep a :class:`stores.calc_documents.GridRef`.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from stores.calc_documents import GridRef
from stores.facade import StoreFacade


class GridIntegrityError(RuntimeError):
    """A stored grid is missing or its bytes do not match the recorded hash."""


def grid_hash(array: np.ndarray) -> str:
    """SHA-256 of the float64 C-order bytes of ``array``."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


def put_grid(facade: StoreFacade, array: np.ndarray, units: str) -> GridRef:
    """Store a 3D grid in the data store and return its reference."""
    data = np.ascontiguousarray(array, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"a grid must be 3D, got shape {data.shape}")
    digest = grid_hash(data)
    ref = GridRef(key=f"grid-{digest[:24]}", shape=tuple(data.shape), units=units, sha256=digest)
    store = facade.data_store()
    store.connect()
    try:
        store.update(
            [
                {
                    "blob_uuid": ref.key,
                    "shape": list(ref.shape),
                    "units": units,
                    "sha256": digest,
                    "data": zlib.compress(data.tobytes(), level=1),
                }
            ],
            key="blob_uuid",
        )
    finally:
        store.close()
    return ref


def get_grid(facade: StoreFacade, ref: GridRef) -> np.ndarray:
    """Load a grid by reference, checking its hash."""
    store = facade.data_store()
    store.connect()
    try:
        doc = store.query_one({"blob_uuid": ref.key})
    finally:
        store.close()
    if doc is None:
        raise GridIntegrityError(f"grid {ref.key} is not in the data store")
    array = np.frombuffer(zlib.decompress(doc["data"]), dtype=np.float64).reshape(ref.shape)
    if grid_hash(array) != ref.sha256:
        raise GridIntegrityError(f"grid {ref.key} does not match its SHA-256; re-run the calculation")
    return array
