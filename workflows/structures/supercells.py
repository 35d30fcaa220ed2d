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

import math

import numpy as np
from pymatgen.core import Lattice, Structure

from stores.vacuum import MIN_VACUUM_ANG
from workflows.structures.hosts import HostSpec, InputError

DEFAULT_SIZE = 6
DEFAULT_VACUUM_ANG = 15.0
#: smallest supercell multiple n (n x n x 1): a 1x1 cell has no distinct Li hops
MIN_SUPERCELL = 2
#: largest supercell multiple: 12 x 12 x 1 is 432 atoms, beyond any DFT static here (6 x 6 x 1 in
#: the paper); the symmetry cross-check alone takes about 2 min at n = 12 and 8 min at n = 16
MAX_SUPERCELL = 12
#: isometry-search symmetry check measured on one 2-core machine: 3.7 s for 6x6x1, growing as n^5
_CHECK_S_AT_6 = 3.7


def check_supercell(size: int, name: str = "supercell size") -> int:
    """Return ``size`` when ``MIN_SUPERCELL <= size <= MAX_SUPERCELL``, else raise :class:`InputError`."""
    if size < MIN_SUPERCELL:
        raise InputError(
            f"{name} {size} is too small; accepted: an integer from {MIN_SUPERCELL} to {MAX_SUPERCELL}"
        )
    if size > MAX_SUPERCELL:
        raise InputError(
            f"{name} {size} is too large ({3 * size * size} atoms); accepted: an integer from "
            f"{MIN_SUPERCELL} to {MAX_SUPERCELL} ({3 * MAX_SUPERCELL**2} atoms)"
        )
    return size


def check_vacuum(vacuum_ang: float, name: str = "vacuum") -> float:
    """Return ``vacuum_ang`` when it is finite and >= :data:`MIN_VACUUM_ANG`, else raise."""
    if not math.isfinite(vacuum_ang) or vacuum_ang < MIN_VACUUM_ANG:
        raise InputError(
            f"{name} {vacuum_ang} Angstrom is not allowed; accepted: a finite thickness >= {MIN_VACUUM_ANG} "
            f"Angstrom (default {DEFAULT_VACUUM_ANG})"
        )
    return vacuum_ang


def symmetry_check_estimate_s(size: int) -> float:
    """Rough wall time (s) of the isometry-search symmetry check of an n x n x 1 surface."""
    return _CHECK_S_AT_6 * (size / 6) ** 5


def unit_cell(host: HostSpec, vacuum_ang: float = DEFAULT_VACUUM_ANG) -> Structure:
    """Return the primitive monolayer cell (3 atoms) of ``host`` with ``vacuum_ang`` of vacuum."""
    check_vacuum(vacuum_ang)
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
        Host row of the table (see :func:`workflows.structures.hosts.get_host`).
    dopant
        Metal element symbol, already checked with :func:`workflows.structures.hosts.check_dopant`;
        ``None`` for the pristine surface.
    size
        Supercell multiple n (:data:`MIN_SUPERCELL` to :data:`MAX_SUPERCELL`).
    vacuum_ang
        Vacuum thickness along z (Angstrom).
    dopant_index
        Index of the metal atom to substitute; default: the metal nearest the cell centre.

    Returns
    -------
    structure, dopant_index
        The supercell and the index of the substituted atom (``None`` when pristine).

    """
    check_supercell(size)
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
