"""Binding energies and the fields of valley and CINEB documents that every engine computes alike.

E_b = E(slab) + E(Li atom) - E(slab + Li) in eV, positive when bound (DESIGN.md); the slab, the Li
atom and slab + Li come from one engine with one set of settings. The ASE-engine Makers
(:mod:`workflows.jobs.hops`: CHGNet, GPAW) and the VASP document jobs
(:mod:`workflows.jobs.vasp_documents`) fill their :class:`~stores.schemas.calculations.ValleyDoc` and
:class:`~stores.schemas.calculations.NebDoc` from the functions here, so the final valley, the
displacement, the saddle and the barriers mean the same for every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from epdi_ml.analysis.barriers import neb_barriers
from stores.errors import RunError
from workflows.structures.site_graph import in_plane_distances


def binding_energy_ev(slab_energy_ev: float, li_energy_ev: float, total_energy_ev: float) -> float:
    """E_b = E(slab) + E(Li atom) - E(slab + Li) in eV; positive means bound (DESIGN.md)."""
    return slab_energy_ev + li_energy_ev - total_energy_ev


#: how a relaxation or CINEB ran, in every document: energy and force evaluations, convergence,
#: largest remaining force on a free atom (eV/Angstrom), wall time (s)
RUN_STATS = ("force_calls", "converged", "fmax_ev_ang", "wall_time_s")


def run_stats(result: Any) -> dict[str, Any]:
    """The :data:`RUN_STATS` of an engine's result (attributes) or of a VASP task summary (keys)."""
    if isinstance(result, dict):
        return {key: result[key] for key in RUN_STATS}
    return {key: getattr(result, key) for key in RUN_STATS}


def valley_fields(
    structure: Structure,
    energy_ev: float,
    site: dict[str, Any],
    valley_frac_xy: Sequence[Sequence[float]],
    reference_ev: tuple[float, float],
    what: str,
) -> dict[str, Any]:
    """The starting site, E_b, final Li position, nearest valley and displacement of a relaxed slab + Li.

    Parameters
    ----------
    structure, energy_ev
        The relaxed slab + Li (one Li atom) and its energy (eV).
    site
        ``surface_id``, ``site_id``, ``site_index`` and ``label`` of the valley Li was placed at.
    valley_frac_xy
        Fractional in-plane coordinates of every valley of the surface.
    reference_ev
        ``(E(slab), E(Li atom))`` in eV, of the same engine and settings.
    what
        The relaxation, for the error when the structure does not hold exactly one Li atom.
    """
    lithium = [atom for atom in structure if atom.species_string == "Li"]
    if len(lithium) != 1:
        raise RunError(f"{what} holds {len(lithium)} Li atoms, not one")
    li = lithium[0]
    dist = in_plane_distances(structure, li.frac_coords[None, :2], np.asarray(valley_frac_xy))[0]
    final = int(dist.argmin())
    return {key: site[key] for key in ("surface_id", "site_id", "site_index", "label")} | {
        "binding_energy_ev": binding_energy_ev(*reference_ev, energy_ev),
        "energy_ev": energy_ev,
        "final_li_cart_ang": [float(x) for x in li.coords],
        "final_site_index": final,
        "left_valley": final != site["site_index"],
        "displacement_ang": float(dist[site["site_index"]]),
        "structure": structure.as_dict(),
    }


def neb_fields(image_energies_ev: Sequence[float], reference_ev: tuple[float, float]) -> dict[str, Any]:
    """Image energies, saddle E_b and the two barriers of a CINEB (eV; end points included).

    The saddle is the highest image (:func:`epdi_ml.analysis.barriers.neb_barriers`);
    ``reference_ev`` is ``(E(slab), E(Li atom))`` of the engine and settings of the CINEB.
    """
    energies = [float(e) for e in image_energies_ev]
    barriers = neb_barriers(energies)
    return {
        "image_energies_ev": energies,
        "saddle_binding_energy_ev": binding_energy_ev(*reference_ev, max(energies)),
        "forward_barrier_ev": barriers.forward_barrier_ev,
        "reverse_barrier_ev": barriers.reverse_barrier_ev,
    }
