"""From a host name and a dopant to stored surface, site and hop documents.

:func:`describe_surface` does the work (structure, site graph, symmetry classes, documents);
:func:`write_surface_files` writes POSCAR and the sites JSON; :func:`store_surfaces` upserts the
documents, replacing the old sites and hops of the same surface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from stores.errors import RunError
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.schemas.surfaces import HopDoc, SiteDoc, SurfaceDoc, SymmetryClass
from stores.validation import make_dir
from workflows.structures.hosts import HostSpec, InputError, check_dopant, get_host, load_hosts
from workflows.structures.site_graph import SiteGraph, build_site_graph, in_plane_distances
from workflows.structures.supercells import DEFAULT_SIZE, DEFAULT_VACUUM_ANG, build_surface, ordered_formula
from workflows.structures.symmetry import Classes, GraphClasses, isometry_classes, symmetry_classes

#: size and site counts of a surface document: atoms, valleys, saddles, hops (all, and distinct by symmetry)
COUNT_KEYS = (
    "formula",
    "natoms",
    "n_valleys",
    "n_saddles",
    "n_hops",
    "n_distinct_valleys",
    "n_distinct_saddles",
    "n_distinct_hops",
)


@dataclass
class StoredSurface:
    """A surface as the store holds it: its structure and its surface, site and hop documents.

    What jobs need of a surface (the neb step's Makers, a campaign round's candidate hops); read back
    from the store with :func:`load_surfaces` instead of being built again.
    """

    structure: Structure
    surface: SurfaceDoc
    sites: list[SiteDoc]
    hops: list[HopDoc]


@dataclass
class SurfaceBundle(StoredSurface):
    """Everything known about one built surface: the stored part and its site graph and symmetry classes."""

    graph: SiteGraph
    classes: GraphClasses

    def summary(self) -> dict:
        """The one-line summary printed by ``epdi surfaces build --json``."""
        keys = ("surface_id", "host", "phase", "dopant", "supercell", "vacuum_ang", *COUNT_KEYS)
        keys += ("n_valleys_by_label",)
        data = self.surface.model_dump(mode="json")
        return {k: data[k] for k in keys}


class SymmetryMismatch(RunError):
    """The spglib classes and the isometry-search classes disagree."""


def _symmetry(classes: Classes, index: int) -> SymmetryClass:
    cls = classes.class_of[index]
    return SymmetryClass(
        class_index=cls,
        representative_index=classes.representatives[cls],
        multiplicity=classes.multiplicities[cls],
    )


def surface_id(
    host: HostSpec, dopant: str | None, size: int, vacuum_ang: float, dopant_index: int | None
) -> str:
    """Deterministic surface id from host, phase, dopant, supercell, lattice and dopant site."""
    return stable_id(
        "surf",
        host=host.name,
        phase=host.phase,
        dopant=dopant,
        supercell=size,
        a_ang=host.a_ang,
        anion_height_ang=host.anion_height_ang,
        vacuum_ang=vacuum_ang,
        dopant_site=dopant_index,
    )


def describe_surface(
    host: HostSpec,
    dopant: str | None = None,
    size: int = DEFAULT_SIZE,
    vacuum_ang: float = DEFAULT_VACUUM_ANG,
    check_symmetry: bool = False,
) -> SurfaceBundle:
    """Build a surface and its site graph, classes and documents (nothing is written).

    Parameters
    ----------
    host, dopant, size, vacuum_ang
        See :func:`workflows.structures.supercells.build_surface`; ``dopant`` already validated.
    check_symmetry
        Also compute the classes by the independent isometry search and raise
        :class:`SymmetryMismatch` if the two partitions differ (about 2 s for 6 x 6 x 1).

    """
    if dopant == host.metal:
        raise InputError(f"dopant {dopant!r} is the host metal of {host.name}; give another metal or none")
    structure, dopant_index = build_surface(host, dopant, size, vacuum_ang)
    graph = build_site_graph(structure, host.anion)
    classes = symmetry_classes(structure, graph)
    if check_symmetry:
        independent = isometry_classes(structure, graph)
        for kind in ("valleys", "saddles", "hops"):
            if getattr(classes, kind).as_sets() != getattr(independent, kind).as_sets():
                raise SymmetryMismatch(f"{kind} classes differ between spglib and the isometry search")

    sid = surface_id(host, dopant, size, vacuum_ang, dopant_index)
    dopant_xy = None if dopant_index is None else structure[dopant_index].frac_coords[None, :2]

    def dopant_distance(frac: tuple[float, ...]) -> float | None:
        if dopant_xy is None:
            return None
        return round(float(in_plane_distances(structure, np.array([frac[:2]]), dopant_xy)[0, 0]), 4)

    owner = {"surface_id": sid, "host": host.name, "dopant": dopant}  # of every site and hop document
    sites: list[SiteDoc] = []
    for kind, members, cls in (
        ("valley", graph.valleys, classes.valleys),
        ("saddle", graph.saddles, classes.saddles),
    ):
        for index, site in enumerate(members):
            sites.append(
                SiteDoc(
                    site_id=stable_id("site", surface_id=sid, kind=kind, frac=list(site.frac_coords[:2])),
                    kind=kind,
                    label=site.label,
                    index=index,
                    frac_coords=list(site.frac_coords),
                    cart_coords_ang=list(site.cart_coords),
                    anion_indices=list(site.anion_indices),
                    dopant_distance_ang=dopant_distance(site.frac_coords),
                    symmetry=_symmetry(cls, index),
                    **owner,
                )
            )
    valley_ids = [s.site_id for s in sites if s.kind == "valley"]
    saddle_ids = [s.site_id for s in sites if s.kind == "saddle"]
    hops = [
        HopDoc(
            hop_id=stable_id("hop", surface_id=sid, saddle=saddle_ids[hop.saddle]),
            index=index,
            saddle_index=hop.saddle,
            valley_indices=hop.valleys,
            saddle_id=saddle_ids[hop.saddle],
            valley_ids=(valley_ids[hop.valleys[0]], valley_ids[hop.valleys[1]]),
            length_ang=round(hop.length_ang, 4),
            dopant_distance_ang=dopant_distance(graph.saddles[hop.saddle].frac_coords),
            symmetry=_symmetry(classes.hops, index),
            **owner,
        )
        for index, hop in enumerate(graph.hops)
    ]
    surface = SurfaceDoc(
        surface_id=sid,
        host=host.name,
        phase=host.phase,
        metal=host.metal,
        anion=host.anion,
        group=host.group,
        dopant=dopant,
        dopant_site_index=dopant_index,
        supercell=size,
        a_ang=host.a_ang,
        anion_height_ang=host.anion_height_ang,
        vacuum_ang=vacuum_ang,
        host_source=host.source,
        formula=ordered_formula(structure, host.metal, host.anion, dopant),
        natoms=len(structure),
        structure=structure.as_dict(),
        n_valleys=len(graph.valleys),
        n_saddles=len(graph.saddles),
        n_hops=len(graph.hops),
        n_distinct_valleys=classes.valleys.n_classes,
        n_distinct_saddles=classes.saddles.n_classes,
        n_distinct_hops=classes.hops.n_classes,
        n_valleys_by_label=graph.count_labels(),
    )
    return SurfaceBundle(
        structure=structure, surface=surface, sites=sites, hops=hops, graph=graph, classes=classes
    )


def surface_from_request(
    host: str,
    dopant: str | None = None,
    size: int = DEFAULT_SIZE,
    vacuum_ang: float = DEFAULT_VACUUM_ANG,
    check_symmetry: bool = False,
    hosts_file: Path | None = None,
) -> SurfaceBundle:
    """Validate a user's host name and dopant, then :func:`describe_surface`.

    Raises :class:`workflows.structures.hosts.InputError` naming the bad value and what is accepted.
    """
    spec = get_host(host, load_hosts(hosts_file))
    return describe_surface(spec, check_dopant(dopant), size, vacuum_ang, check_symmetry=check_symmetry)


def write_surface_files(bundle: SurfaceBundle, out_dir: Path) -> list[Path]:
    """Write ``POSCAR`` and ``sites.json`` (valleys, saddles, hops with classes) into ``out_dir``."""
    from pymatgen.io.vasp import Poscar  # pymatgen's VASP outputs module takes ~2 s to import

    make_dir(out_dir, "surface folder")
    poscar = out_dir / "POSCAR"
    Poscar(bundle.structure, comment=f"{bundle.surface.formula} {bundle.surface.surface_id}").write_file(
        poscar
    )
    sites = out_dir / "sites.json"
    payload = {
        "surface": bundle.summary(),
        "valleys": [
            s.model_dump(mode="json", exclude={"updated_at"}) for s in bundle.sites if s.kind == "valley"
        ],
        "saddles": [
            s.model_dump(mode="json", exclude={"updated_at"}) for s in bundle.sites if s.kind == "saddle"
        ],
        "hops": [h.model_dump(mode="json", exclude={"updated_at"}) for h in bundle.hops],
    }
    sites.write_text(json.dumps(payload, indent=1))
    return [poscar, sites]


def load_surfaces(facade: StoreFacade, surface_ids: list[str]) -> list[StoredSurface]:
    """The stored surfaces ``surface_ids``, in that order, with their sites and hops sorted by index.

    Raises
    ------
    RunError
        A surface is not in the store (it is stored by :func:`store_surfaces` before any job of it).
    """
    found = {d["surface_id"]: d for d in facade.query("surfaces", {"surface_id": {"$in": surface_ids}})}
    missing = [sid for sid in surface_ids if sid not in found]
    if missing:
        raise RunError(
            f"surface(s) {', '.join(missing)} not in the store {facade.settings.data_dir}: build them first "
            "(`epdi surfaces build` or the campaign flow, which stores its surfaces before any job)"
        )
    criteria = {"surface_id": {"$in": surface_ids}}
    sites: dict[str, list[SiteDoc]] = {sid: [] for sid in surface_ids}
    hops: dict[str, list[HopDoc]] = {sid: [] for sid in surface_ids}
    for doc in facade.query("sites", criteria):
        sites[doc["surface_id"]].append(SiteDoc(**doc))
    for doc in facade.query("hops", criteria):
        hops[doc["surface_id"]].append(HopDoc(**doc))
    out = []
    for sid in surface_ids:
        surface = SurfaceDoc(**found[sid])
        out.append(
            StoredSurface(
                structure=Structure.from_dict(surface.structure),
                surface=surface,
                sites=sorted(sites[sid], key=lambda s: (s.kind != "valley", s.index)),  # as built
                hops=sorted(hops[sid], key=lambda h: h.index),
            )
        )
    return out


def store_surfaces(bundles: list[SurfaceBundle], facade: StoreFacade) -> None:
    """Store surfaces with their sites and hops; rebuilding a surface replaces, never duplicates.

    Surface documents are upserted by id; the sites and hops of these surfaces are replaced as a
    whole in one pass per collection (see :meth:`stores.facade.StoreFacade.replace_groups`). The
    whole write is one unit (:meth:`stores.facade.StoreFacade.unit`): all of it or none.
    """
    ids = [b.surface.surface_id for b in bundles]
    with facade.unit():  # a surface with its sites and hops, or nothing
        facade.upsert("surfaces", [b.surface for b in bundles])
        facade.replace_groups("sites", "surface_id", [s for b in bundles for s in b.sites], ids)
        facade.replace_groups("hops", "surface_id", [h for b in bundles for h in b.hops], ids)
