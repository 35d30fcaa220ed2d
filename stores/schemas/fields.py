"""Field types, array references and defaults shared by the documents of every collection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field


def utc_now() -> datetime:
    """The time now in UTC: the default of every document's ``created_at`` / ``updated_at``."""
    return datetime.now(UTC)


def _structure_as_dict(value: Any) -> Any:
    return value.as_dict() if hasattr(value, "as_dict") else value


#: a pymatgen Structure kept as its ``as_dict()``; a Structure object given is converted (jobflow
#: decodes MSONable dicts back into objects when it resolves references)
StructureDict = Annotated[dict, BeforeValidator(_structure_as_dict)]


class ArrayRef(BaseModel):
    """An n-dimensional array stored in the ``data`` store (see :mod:`stores.arrays`)."""

    key: str = Field(..., description="Id of the blob in the data store")
    shape: tuple[int, ...]
    dtype: str = Field(..., description="numpy dtype name, e.g. 'float32', 'uint8'")
    units: str = Field(..., description="e.g. 'eV', 'Angstrom', 'rgb'")
    sha256: str = Field(..., description="SHA-256 of the C-order array bytes in ``dtype``")


class GridRef(ArrayRef):
    """A volumetric grid (potential, density): a 3D float64 :class:`ArrayRef` (see :mod:`stores.grids`)."""

    shape: tuple[int, int, int]
    dtype: str = Field("float64", description="always float64 (documents made before it was kept lack it)")
    units: str = Field(..., description="e.g. 'eV' for potentials, 'e/bohr^3' for densities")
