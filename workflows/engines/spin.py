"""Which cells are spin-polarised, and their starting moments: one rule for GPAW and VASP.

A cell is spin-polarised when its host metal or dopant is one of :data:`MAGNETIC_ELEMENTS` (the 3d
metals whose substitution in a TMD carries a local moment). GPAW statics and relaxations switch
``spinpol`` on for those cells (:func:`workflows.flows.engine_settings.gpaw_settings_for`), and
VASP gets ``ISPIN = 2`` with a ``MAGMOM`` per element (:func:`spin_settings`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: elements that make a cell spin-polarised (ISPIN = 2) when present as dopant or host metal
MAGNETIC_ELEMENTS: frozenset[str] = frozenset({"Cr", "Mn", "Fe", "Co", "Ni", "V"})

#: initial moment on each magnetic atom (Bohr magneton); VASP relaxes it during the SCF
MAGNETIC_MAGMOM_MUB = 3.0

#: initial moment on every other atom (Bohr magneton); small, so that spin can still develop
NONMAGNETIC_MAGMOM_MUB = 0.1


def magnetic_species(elements: Iterable[str]) -> list[str]:
    """The elements of ``elements`` that are in :data:`MAGNETIC_ELEMENTS` (sorted)."""
    return sorted({str(e) for e in elements if e is not None} & MAGNETIC_ELEMENTS)


def spin_settings(elements: Iterable[str]) -> dict[str, Any]:
    """``ISPIN`` (and ``MAGMOM`` per element, Bohr magneton) for a cell holding ``elements``.

    ``ISPIN = 2`` when any element is magnetic (:data:`MAGNETIC_ELEMENTS`), with
    :data:`MAGNETIC_MAGMOM_MUB` on those and :data:`NONMAGNETIC_MAGMOM_MUB` on the others;
    else ``ISPIN = 1`` and no ``MAGMOM``.
    """
    elements = sorted({str(e) for e in elements if e is not None})
    magnetic = magnetic_species(elements)
    if not magnetic:
        return {"ISPIN": 1}
    magmom = {e: (MAGNETIC_MAGMOM_MUB if e in magnetic else NONMAGNETIC_MAGMOM_MUB) for e in elements}
    return {"ISPIN": 2, "MAGMOM": magmom}
