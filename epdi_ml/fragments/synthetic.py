"""Smooth synthetic potential and density grids with a slab's symmetry (tests and benchmarks).

Every atom adds an exponential density tail ``A * exp(-r / 0.6 Angstrom)`` and a potential-energy
well ``-Z / 10 * exp(-r / 0.8 Angstrom)`` (eV), with in-plane periodic images, so the fields have
exactly the symmetry of the atoms, vanish in the vacuum (vacuum level 0 eV) and have a 0.01
e/bohr^3 isosurface about 2 Angstrom above the top atoms. Not physics: a stand-in for a static
calculation where one is not available.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

from epdi_ml.fragments.potential_map import PotentialMap
from stores.facade import StoreFacade
from stores.grids import DENSITY_UNITS, POTENTIAL_UNITS, put_grid
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc

DENSITY_AMPLITUDE = 0.28
DENSITY_DECAY_ANG = 0.6
POTENTIAL_DECAY_ANG = 0.8


def _frac_mesh(shape: tuple[int, ...]) -> list[np.ndarray]:
    return np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")


def _periodic_offsets(structure: Structure, fa: np.ndarray, fb: np.ndarray):
    """Fractional in-plane offsets from every atom and its 3 x 3 images (symmetric to ~1e-5 eV)."""
    for site in structure:
        base_a = fa - site.frac_coords[0]
        base_b = fb - site.frac_coords[1]
        base_a = base_a - np.round(base_a)
        base_b = base_b - np.round(base_b)
        for i in (-1, 0, 1):
            for j in (-1, 0, 1):
                yield site, base_a + i, base_b + j


def synthetic_slab_grids(structure: Structure, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Potential (eV) and density (e/bohr^3) grids of ``shape`` for a slab (a, b in plane, c along z)."""
    lattice = structure.lattice.matrix
    fa, fb, fc = _frac_mesh(shape)
    z = fc * lattice[2, 2]
    density = np.zeros(shape)
    potential = np.zeros(shape)
    for site, da, db in _periodic_offsets(structure, fa, fb):
        dx = da * lattice[0, 0] + db * lattice[1, 0]
        dy = da * lattice[0, 1] + db * lattice[1, 1]
        r = np.sqrt(dx**2 + dy**2 + (z - site.coords[2]) ** 2)
        density += DENSITY_AMPLITUDE * np.exp(-r / DENSITY_DECAY_ANG)
        potential -= site.specie.Z / 10.0 * np.exp(-r / POTENTIAL_DECAY_ANG)
    return potential, density


def synthetic_map(structure: Structure, shape: tuple[int, int], height_ang: float = 2.0) -> PotentialMap:
    """A 2D map: the synthetic potential on the plane ``height_ang`` above the top atom (eV)."""
    lattice = structure.lattice.matrix
    fa, fb = _frac_mesh(shape)
    z0 = float(structure.cart_coords[:, 2].max()) + height_ang
    values = np.zeros(shape)
    for site, da, db in _periodic_offsets(structure, fa, fb):
        dx = da * lattice[0, 0] + db * lattice[1, 0]
        dy = da * lattice[0, 1] + db * lattice[1, 1]
        r = np.sqrt(dx**2 + dy**2 + (z0 - site.coords[2]) ** 2)
        values -= site.specie.Z / 10.0 * np.exp(-r / POTENTIAL_DECAY_ANG)
    return PotentialMap(
        values_ev=values,
        z_iso_ang=np.full(shape, z0),
        lattice_ang=np.array(lattice[:2, :2]),
        isovalue=0.01,
        vacuum_level_ev=0.0,
    )


def store_synthetic_static(
    facade: StoreFacade, structure: Structure, surface_id: str, spacing_ang: float = 0.2
) -> CalculationDoc:
    """Store a static CalculationDoc whose grids are :func:`synthetic_slab_grids` (engine "gpaw").

    The grid has about ``spacing_ang`` steps along a, b and c; ``functional`` says "synthetic", so
    such a document is never mistaken for a DFT result.
    """
    shape = tuple(int(np.ceil(length / spacing_ang)) for length in structure.lattice.abc)
    potential, density = synthetic_slab_grids(structure, shape)  # type: ignore[arg-type]
    with facade.unit():  # grids and document, or nothing
        return _store_static(facade, structure, surface_id, shape, potential, density)


def _store_static(
    facade: StoreFacade,
    structure: Structure,
    surface_id: str | None,
    shape: tuple[int, ...],
    potential: np.ndarray,
    density: np.ndarray,
) -> CalculationDoc:
    doc = CalculationDoc(
        calc_id=stable_id("calc", kind="static", surface_id=surface_id, functional="synthetic", shape=shape),
        kind="static",
        engine="gpaw",
        functional="synthetic (exponential atom tails, not DFT)",
        surface_id=surface_id,
        formula=structure.composition.formula,
        natoms=len(structure),
        final_energy_ev=0.0,
        structure=structure,
        potential=put_grid(facade, potential, POTENTIAL_UNITS),
        density=put_grid(facade, density, DENSITY_UNITS),
        vacuum_level_ev=0.0,
    )
    facade.upsert("calculations", [doc])
    return doc
