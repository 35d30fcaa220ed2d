"""Build (doped) n x n x 1 TMD monolayer supercells as pymatgen Structures.

Geometry conventions
--------------------
- Hexagonal cell with ``a1 = (a, 0, 0)`` and ``a2`` at 120 degrees (pymatgen's hexagonal lattice),
  ``c`` along z, ``c = 2 * anion_height + vacuum`` so that ``vacuum`` is the empty gap between the
  top anion plane and the bottom anion plane of the next image.
- Metal at fractional (0, 0); top anions at (1/3, 2/3). Bottom anions sit under the top ones in 2H
  (trigonal prism) and at (2/3, 1/3) in 1T (octahedron).
- The slab is centred at z = c/2.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from workflows.hosts import HostSpec, InputError

DEFAULT_SIZE = 6
DEFAULT_VACUUM_ANG = 15.0


def unit_cell(host: HostSpec, vacuum_ang: float = DEFAULT_VACUUM_ANG) -> Structure:
    """Return the primitive monolayer cell (3 atoms) of ``host`` with ``vacuum_ang`` of vacuum."""
    if vacuum_ang < 0:
        raise InputError(f"vacuum {vacuum_ang} is negative; accepted: a thickness >= 0 Angstrom")
    c = 2 * host.anion_height_ang + vacuum_ang
    dz = host.anion_height_ang / c
    bottom_xy = (1 / 3, 2 / 3) if host.phase == "2H" else (2 / 3, 1 / 3)
    return Structure(
        Lattice.hexagonal(host.a_ang, c),
        [host.metal, host.anion, host.anion],
        [[0.0, 0.0, 0.5], [1 / 3, 2 / 3, 0.5 + dz], [*bottom_xy, 0.5 - dz]],
    )


def central_metal_index(structure: Structure, metal: str) -> int:
    """Index of the ``metal`` atom nearest (in plane) to the centre of the cell; lowest on ties."""
    centre = structure.lattice.get_cartesian_coords([0.5, 0.5, 0.5])[:2]
    best, best_dist = -1, np.inf
    for index, site in enumerate(structure):
        if site.specie.symbol != metal:
            continue
        dist = float(np.linalg.norm(site.coords[:2] - centre))
        if dist < best_dist - 1e-6:
            best, best_dist = index, dist
    if best < 0:
        raise InputError(f"structure has no {metal} atom to substitute")
    return best


def build_surface(
    host: HostSpec,
    dopant: str | None = None,
    size: int = DEFAULT_SIZE,
    vacuum_ang: float = DEFAULT_VACUUM_ANG,
    dopant_index: int | None = None,
) -> tuple[Structure, int | None]:
    """Build the ``size x size x 1`` supercell of ``host`` with one metal replaced by ``dopant``.

    Parameters
    ----------
    host
        Host row of the table (see :func:`workflows.hosts.get_host`).
    dopant
        Metal element symbol, already checked with :func:`workflows.hosts.check_dopant`;
        ``None`` for the pristine surface.
    size
        Supercell multiple n (n >= 2).
    vacuum_ang
        Vacuum thickness along z (Angstrom).
    dopant_index
        Index of the metal atom to substitute; default: the metal nearest the cell centre.

    Returns
    -------
    structure, dopant_index
        The supercell and the index of the substituted atom (``None`` when pristine).

    """
    if size < 2:
        raise InputError(f"supercell size {size} is too small; accepted: an integer >= 2")
    structure = unit_cell(host, vacuum_ang) * (size, size, 1)
    if dopant is None:
        return structure, None
    if dopant_index is None:
        dopant_index = central_metal_index(structure, host.metal)
    elif not 0 <= dopant_index < len(structure) or structure[dopant_index].specie.symbol != host.metal:
        raise InputError(f"dopant index {dopant_index} is not a {host.metal} atom of the supercell")
    structure.replace(dopant_index, dopant)
    return structure, dopant_index


def ordered_formula(structure: Structure, metal: str, anion: str, dopant: str | None) -> str:
    """Formula in the order host metal, dopant, anion (e.g. ``Mo35 Co1 S72``)."""
    counts = structure.composition.get_el_amt_dict()
    order = [metal] + ([dopant] if dopant else []) + [anion]
    order += sorted(el for el in counts if el not in order)
    return " ".join(f"{el}{int(counts[el])}" for el in order if counts.get(el))
