"""Place Li on a surface at a valley or saddle of its site graph.

The initial height above the top anion plane is a starting guess for relaxations, not a result:
Li-S bonds of about 2.4 Angstrom at a hollow of MoS2 (a/sqrt(3) = 1.84 Angstrom in plane) put Li
about 1.55 Angstrom above the S plane.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

from workflows.structures.surfaces import SurfaceBundle

#: initial Li height above the top anion plane (Angstrom); relaxations move it
LI_HEIGHT_ANG = 1.6


def add_li(
    structure: Structure, site_cart_ang: tuple[float, ...] | np.ndarray, height_ang: float = LI_HEIGHT_ANG
) -> Structure:
    """Return a copy of ``structure`` with Li ``height_ang`` above the in-plane point ``site_cart_ang``.

    ``site_cart_ang`` is a site's Cartesian position from the site graph (its z is the top anion
    plane). Li is appended as the last site.
    """
    position = np.array(site_cart_ang, dtype=float)
    position[2] += height_ang
    with_li = structure.copy()
    with_li.append("Li", position, coords_are_cartesian=True)
    return with_li


def hop_nearest_dopant(bundle: SurfaceBundle) -> int:
    """Index of the hop whose saddle is nearest the dopant (any hop, index 0, when pristine)."""
    distances = [h.dopant_distance_ang for h in bundle.hops]
    if any(d is None for d in distances):
        return 0
    return int(np.argmin(distances))
