"""What every engine's hop jobs share: deterministic document ids, the store look-up, the starting points.

A rerun reuses a finished job because its document id is a hash of what makes the result (surface,
site or hop, engine, settings, the preconverged start) and the job looks that id up before it
computes anything. The ASE-engine Makers (:mod:`workflows.jobs.hops`: CHGNet, GPAW) and the VASP
Makers (:mod:`workflows.jobs.vasp_hops`) build their ids, their starting structures and their
preconverged paths here, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymatgen.core import Structure

from stores.facade import job_facade
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.structures.li_sites import add_li
from workflows.structures.path_transfer import moved_path

#: collection and id field of each document a hop job makes
_HOMES: dict[type, tuple[str, str]] = {
    CalculationDoc: ("calculations", "calc_id"),
    LiReferenceDoc: ("li_references", "reference_id"),
    ValleyDoc: ("valleys", "valley_id"),
    NebDoc: ("nebs", "neb_id"),
}


def stored(cls: type, doc_id: str) -> Any:
    """The stored document ``cls`` of id ``doc_id`` in the job's store, or ``None``."""
    collection, key = _HOMES[cls]
    docs = job_facade().query(collection, {key: doc_id})
    return cls(**docs[0]) if docs else None


def as_structure(value: Structure | dict) -> Structure:
    """A pymatgen Structure from itself or its ``as_dict()`` (job outputs arrive as either)."""
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def as_calculation(value: CalculationDoc | dict | None) -> CalculationDoc | None:
    """A :class:`CalculationDoc` from itself or its dict (``None`` stays ``None``)."""
    return value if value is None or isinstance(value, CalculationDoc) else CalculationDoc(**value)


def as_valley(value: ValleyDoc | dict | None) -> ValleyDoc | None:
    """A :class:`ValleyDoc` from itself or its dict (``None`` stays ``None``)."""
    return value if value is None or isinstance(value, ValleyDoc) else ValleyDoc(**value)


def as_neb(value: NebDoc | dict | None) -> NebDoc | None:
    """A :class:`NebDoc` from itself or its dict (``None`` stays ``None``)."""
    return value if value is None or isinstance(value, NebDoc) else NebDoc(**value)


def slab_calc_id(
    engine: str, surface_id: str, provenance: dict[str, Any], start: CalculationDoc | None = None
) -> str:
    """Id of a slab relaxation: surface, engine, settings and the cheaper engine's slab it started from.

    The surface id names the built slab (host, lattice, dopant and its site, supercell, vacuum), so
    the id does not hang on starting coordinates, which differ in their last digits from build to
    build and from machine to machine.
    """
    start_id = None if start is None else start.calc_id
    fields = {"kind": "relax", "surface_id": surface_id, "engine": engine, "settings": provenance}
    return _run_id("calc", start_id, **fields)


def slab_start(structure: Structure | dict, start: CalculationDoc | None) -> Structure:
    """Where a slab relaxation starts: the cheaper engine's relaxed slab, or the built one."""
    return as_structure(structure if start is None else start.structure)


def li_reference_id(engine: str, reference_settings: dict[str, Any]) -> str:
    """Id of the isolated-Li reference of an engine and the settings that change its energy."""
    return stable_id("liref", engine=engine, **reference_settings)


def _run_id(prefix: str, preconverged_from: str | None, **fields: Any) -> str:
    """Id of a run from what makes its result, and the id of the cheaper run it started from."""
    if preconverged_from is not None:
        fields["preconverged_from"] = preconverged_from
    return stable_id(prefix, **fields)


def valley_id(
    surface_id: str, site_id: str, engine: str, provenance: dict[str, Any], start: ValleyDoc | None
) -> str:
    """Id of a valley relaxation; ``start`` is the cheaper engine's valley it was preconverged from."""
    start_id = None if start is None else start.valley_id
    site = {"surface_id": surface_id, "site_id": site_id}
    return _run_id("valley", start_id, **site, engine=engine, settings=provenance)


def neb_id(
    hop_id: str, engine: str, provenance: dict[str, Any], n_images: int, initial: NebDoc | None
) -> str:
    """Id of a CINEB; ``initial`` is the cheaper engine's CINEB whose images it started from."""
    initial_id = None if initial is None else initial.neb_id
    return _run_id("neb", initial_id, hop_id=hop_id, engine=engine, settings=provenance, n_images=n_images)


def valley_start(slab: Structure | dict, site_cart_ang: list[float], start: ValleyDoc | None) -> Structure:
    """Where a valley relaxation starts: the preconverged valley, or Li placed on the relaxed slab."""
    return as_structure(start.structure) if start is not None else add_li(as_structure(slab), site_cart_ang)


def preconverged_images(
    initial: NebDoc,
    n_images: int,
    ends: tuple[Structure, Structure] | None = None,
    order: Callable[[Structure], Structure] | None = None,
) -> list[Structure]:
    """The intermediate images of a preconverged CINEB, to start a costlier engine's CINEB from.

    With ``ends`` (the costlier engine's relaxed start and end valleys), the path is moved onto
    them (:func:`workflows.structures.path_transfer.moved_path`): each image keeps its bend away
    from the straight line between ``initial``'s end points, laid on the straight line between
    ``ends``; without, the images come as they are. ``order`` puts ``initial``'s structures in the
    atom order of ``ends`` first (VASP groups the species:
    :func:`workflows.engines.vasp_inputs.vasp_ordered`).

    Raises
    ------
    ValueError
        ``initial`` kept no path of ``n_images`` intermediate images, or its end points do not
        match ``ends`` in atom order or direction.
    """
    if not initial.image_structures or len(initial.image_structures) != n_images + 2:
        raise ValueError(f"preconverged CINEB {initial.neb_id} has no {n_images}-image path to start from")
    path = [(order or as_structure)(as_structure(s)) for s in initial.image_structures]
    if ends is None:
        return path[1:-1]
    old_start, old_end = path[0], path[-1]
    li = max(i for i, site in enumerate(old_start) if site.specie.symbol == "Li")
    if _li_distance(old_start, ends[1], li) < _li_distance(old_start, ends[0], li):
        raise ValueError(
            f"preconverged CINEB {initial.neb_id} runs the other way from the new end points; "
            "give the valleys in the order of its path"
        )
    return moved_path(path[1:-1], old_start, old_end, *ends)


def _li_distance(a: Structure, b: Structure, index: int) -> float:
    """Distance (Angstrom, minimum image) between site ``index`` of two structures on one lattice."""
    return float(a.lattice.get_distance_and_image(a[index].frac_coords, b[index].frac_coords)[0])
