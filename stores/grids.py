"""Volumetric grids (potential, density) in the ``data`` store.

A grid is a float64 3D array stored through :mod:`stores.arrays` (zlib-compressed bytes under a key
derived from their SHA-256, so storing the same grid twice writes one blob). Calculation documents
keep a :class:`stores.schemas.fields.GridRef` (a 3D float64 :class:`~stores.schemas.fields.ArrayRef`).
"""

from __future__ import annotations

import numpy as np
from ase.units import Bohr

from stores.arrays import GridIntegrityError, get_array, put_array, stored_keys
from stores.facade import StoreFacade
from stores.schemas.fields import ArrayRef, GridRef

__all__ = [
    "BOHR3_ANG3",
    "BOHR_ANG",
    "DENSITY_UNITS",
    "POTENTIAL_UNITS",
    "GridIntegrityError",
    "get_grid",
    "grids_stored",
    "put_grid",
]

#: Bohr radius in Angstrom, one value for every grid of every engine: ``ase.units.Bohr`` (CODATA
#: 2014, 0.52917721067), the constant GPAW uses to turn its atomic-unit density into 1/Angstrom^3
#: (``gpaw/densities.py``), so a GPAW density converts back exactly; CODATA 2018's 0.529177210903
#: (https://physics.nist.gov/cgi-bin/cuu/Value?bohrrada0) differs by 4e-10 relative.
BOHR_ANG: float = float(Bohr)

#: one cubic bohr in cubic Angstrom
BOHR3_ANG3 = BOHR_ANG**3

#: units of the stored grids: potential (eV) and electron density
POTENTIAL_UNITS = "eV"
DENSITY_UNITS = "e/bohr^3"


def put_grid(facade: StoreFacade, array: np.ndarray, units: str) -> GridRef:
    """Store a 3D grid (as float64) in the data store and return its reference."""
    data = np.ascontiguousarray(array, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"a grid must be 3D, got shape {data.shape}")
    ref = put_array(facade, data, units)
    return GridRef(**ref.model_dump())


def get_grid(facade: StoreFacade, ref: GridRef) -> np.ndarray:
    """Load a grid by reference, checking its hash (raises :class:`GridIntegrityError`)."""
    return get_array(facade, ArrayRef(**ref.model_dump()))


def grids_stored(facade: StoreFacade, doc: dict, fields: tuple[str, ...] = ("potential", "density")) -> bool:
    """Whether a calculation document references every grid of ``fields`` and the data store holds them.

    A compact archive keeps a static's grid references (shape, SHA-256) but not the grids, so a
    document loaded from one has references without data.
    """
    refs = [doc.get(name) for name in fields]
    if not all(refs):
        return False
    keys = [ref["key"] if isinstance(ref, dict) else ref.key for ref in refs]
    return stored_keys(facade, keys) == set(keys)
