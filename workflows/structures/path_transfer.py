"""Move a converged NEB path of one engine onto the end points of another (the preconverged start).

A cheaper engine's converged images (CHGNet + D3) start a costlier engine's CINEB (GPAW, VASP)
between that engine's own relaxed end points. Taken as they are, the images keep the cheaper
engine's slab geometry: every slab atom sits where CHGNet relaxed it, a few hundredths of an
Angstrom from where DFT puts it, and the first DFT steps spend themselves relaxing the whole slab in
every image. :func:`moved_path` keeps what the cheaper engine learnt about the *path* (how each atom
bends away from the straight line between the end points: the curved Li track and the slab's local
response) and lays it on the straight line between the new end points:

    image_i(new) = new_start + t_i (new_end - new_start)
                   + [image_i(old) - old_start - t_i (old_end - old_start)]

with t_i = i / (n + 1), every difference taken in fractional coordinates under the minimum-image
convention (an atom that crossed a cell face between structures is not moved across the cell). At
the end points the bend is zero, so the path is continuous with the new valleys; when the end points
are the same, the images come back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure


def _wrapped(delta_frac: np.ndarray) -> np.ndarray:
    """Fractional differences under the minimum-image convention (each component in [-0.5, 0.5))."""
    return delta_frac - np.round(delta_frac)


def moved_path(
    images: Sequence[Structure],
    old_start: Structure,
    old_end: Structure,
    new_start: Structure,
    new_end: Structure,
) -> list[Structure]:
    """The intermediate ``images`` of a path between ``old_start`` and ``old_end``, moved onto new end points.

    Parameters
    ----------
    images
        Intermediate images of the converged path (end points not included), same atom order as
        the end points.
    old_start, old_end
        The end points that path was converged between.
    new_start, new_end
        The end points of the new CINEB (the costlier engine's relaxed valleys); their lattice is
        the one of the returned images.

    Returns
    -------
    list[Structure]
        One structure per image, with ``new_start``'s lattice and species.

    Raises
    ------
    ValueError
        The structures do not have one atom count and species order.
    """
    structures = [*images, old_start, old_end, new_start, new_end]
    species = [str(site.specie) for site in new_start]
    for structure in structures:
        if [str(site.specie) for site in structure] != species:
            raise ValueError(
                "a moved path needs one atom order for the images and all four end points; got "
                f"{structure.composition.formula} against {new_start.composition.formula}"
            )
    old0, new0 = old_start.frac_coords, new_start.frac_coords
    old_span = _wrapped(old_end.frac_coords - old0)
    new_span = _wrapped(new_end.frac_coords - new0)
    moved = []
    for n, image in enumerate(images, start=1):
        t = n / (len(images) + 1)
        bend = _wrapped(image.frac_coords - old0) - t * old_span
        frac = new0 + t * new_span + bend
        properties = image.site_properties
        moved.append(Structure(new_start.lattice, new_start.species, frac, site_properties=properties))
    return moved
