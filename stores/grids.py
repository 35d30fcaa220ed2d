"""Volumetric grids (potential, density) in the ``data`` store.

A grid is a float64 3D array stored through :mod:`stores.arrays` (zlib-compressed bytes under a key
derived from their SHA-256, so storing the same grid twice writes one blob). Calculation documents
keep a :class:`stores.schemas.calculations.GridRef`.
"""

from __future__ import annotations

import numpy as np

from stores.arrays import GridIntegrityError, get_array, put_array
from stores.facade import StoreFacade
from stores.schemas.calculations import GridRef
from stores.schemas.fragments import ArrayRef

__all__ = ["GridIntegrityError", "get_grid", "put_grid"]


def put_grid(facade: StoreFacade, array: np.ndarray, units: str) -> GridRef:
    """Store a 3D grid (as float64) in the data store and return its reference."""
    data = np.ascontiguousarray(array, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"a grid must be 3D, got shape {data.shape}")
    ref = put_array(facade, data, units)
    return GridRef(key=ref.key, shape=tuple(data.shape), units=units, sha256=ref.sha256)


def get_grid(facade: StoreFacade, ref: GridRef) -> np.ndarray:
    """Load a grid by reference, checking its hash (raises :class:`GridIntegrityError`)."""
    return get_array(
        facade, ArrayRef(key=ref.key, shape=ref.shape, dtype="float64", units=ref.units, sha256=ref.sha256)
    )
