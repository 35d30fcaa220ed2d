"""From a stored static calculation to stored potential maps, fragments and the dataset colour scale.

Reads only the store: the surface, its sites and hops (``epdi surfaces build``) and a static
:class:`stores.schemas.calculations.CalculationDoc` with potential and density grids (``epdi static``).
Writes :class:`stores.schemas.fragments.PotentialMapDoc`, one
:class:`stores.schemas.fragments.FragmentDoc` per valley and saddle (fragment stacks and RGB
images in the ``data`` store) and the :class:`stores.schemas.fragments.ColourScaleDoc`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from epdi_ml.fragments.colour_scales import DEFAULT_DATASET, choose_colour_scale
from epdi_ml.fragments.crops import (
    DEFAULT_PIXELS,
    DEFAULT_SIZE_IN_ANION_SPACINGS,
    ColourScale,
    FragmentCutter,
    frames_from_directions,
    mep_ev,
    minimum_image,
    orientation_deg,
    saddle_direction,
    transported_fragment,
    valley_direction,
)
from epdi_ml.fragments.errors import MissingInputError, RebuildMismatchError, SymmetryCheckError
from epdi_ml.fragments.potential_map import DEFAULT_ISOVALUE, PotentialMap, isosurface_potential_map
from stores.arrays import get_array, put_arrays
from stores.facade import StoreFacade
from stores.grids import get_grid, grids_stored
from stores.ids import stable_id
from stores.schemas.fields import GridRef
from stores.schemas.fragments import ColourScaleDoc, FragmentDoc, PotentialMapDoc

#: duplicates must match their representative within this (eV, largest pixel difference) after the
#: symmetry operation. Real DFT grids are not symmetric to the last pixel: GPAW LCAO maps of 3x3x1
#: MoS2 (h = 0.25 Angstrom) gave 0.026 eV pristine and 0.048 eV Co-doped (spin-polarised), for map
#: ranges of about 1 eV; a map that breaks the slab's symmetry differs by far more.
SYMMETRY_TOLERANCE_EV = 0.05


@dataclass
class SurfaceFragments:
    """Map, crops and documents of one surface (before or after storing)."""

    surface: dict
    map: PotentialMap
    map_doc: PotentialMapDoc
    sites: list[dict]
    directions: np.ndarray
    centres: np.ndarray
    arrays: np.ndarray
    meps: np.ndarray
    size_ang: float = 0.0
    symmetry_diff_ev: dict[str, float] = field(default_factory=dict)
    docs: list[FragmentDoc] = field(default_factory=list)
    clipped_pixels: int = 0


def find_static(facade: StoreFacade, surface_id: str) -> dict | None:
    """The newest static calculation of a surface whose potential and density grids are stored, or ``None``.

    A static loaded from a compact archive (references without grids) does not count.
    """
    docs = facade.query("calculations", {"kind": "static", "surface_id": surface_id})
    docs = [d for d in docs if grids_stored(facade, d)]
    return max(docs, key=lambda d: str(d.get("updated_at", ""))) if docs else None


def load_surface(facade: StoreFacade, surface_id: str) -> tuple[dict, list[dict], list[dict]]:
    """Surface document, its sites (valleys then saddles, by index) and hops."""
    surfaces = facade.query("surfaces", {"surface_id": surface_id})
    if not surfaces:
        raise MissingInputError(
            f"surface {surface_id} is not in the store; build it with `epdi surfaces build`"
        )
    sites = facade.query("sites", {"surface_id": surface_id})
    sites.sort(key=lambda s: (s["kind"] != "valley", s["index"]))
    hops = facade.query("hops", {"surface_id": surface_id})
    return surfaces[0], sites, hops


def map_from_calculation(
    facade: StoreFacade, calc: dict, isovalue: float = DEFAULT_ISOVALUE
) -> tuple[PotentialMap, PotentialMapDoc]:
    """Compute the isosurface potential map of a stored static and its document (values stored)."""
    potential = get_grid(facade, GridRef(**calc["potential"]))
    density = get_grid(facade, GridRef(**calc["density"]))
    lattice = np.array(Structure.from_dict(calc["structure"]).lattice.matrix)
    pmap = isosurface_potential_map(potential, density, lattice, isovalue, calc.get("vacuum_level_ev"))
    values_ref, z_ref = put_arrays(
        facade,
        [(pmap.values_ev.astype(np.float64), "eV"), (pmap.z_iso_ang.astype(np.float64), "Angstrom")],
    )
    doc = PotentialMapDoc(
        map_id=stable_id(
            "pmap", calc_id=calc["calc_id"], isovalue=isovalue, potential=calc["potential"]["sha256"]
        ),
        surface_id=calc.get("surface_id"),
        calc_id=calc["calc_id"],
        shape=pmap.shape,
        lattice_ang=pmap.lattice_ang.tolist(),
        spacing_ang=pmap.spacing_ang,
        isovalue_e_per_bohr3=isovalue,
        vacuum_level_ev=pmap.vacuum_level_ev,
        vacuum_level_source=pmap.vacuum_level_source,
        values=values_ref,
        z_iso=z_ref,
        min_ev=float(pmap.values_ev.min()),
        max_ev=float(pmap.values_ev.max()),
        mean_ev=float(pmap.values_ev.mean()),
        z_iso_mean_ang=float(pmap.z_iso_ang.mean()),
        provenance={
            "engine": calc.get("engine"),
            "functional": calc.get("functional"),
            "source": calc.get("source"),
            "grid_shape": list(calc["potential"]["shape"]),
            "potential_sha256": calc["potential"]["sha256"],
            "density_sha256": calc["density"]["sha256"],
            "potential_units": calc["potential"]["units"],
            "density_units": calc["density"]["units"],
            "interpolation": "log-density crossing, linear potential; sampling: periodic cubic spline",
        },
    )
    return pmap, doc


def load_map(facade: StoreFacade, doc: dict) -> PotentialMap:
    """Rebuild a :class:`PotentialMap` from a stored map document."""
    mdoc = PotentialMapDoc(**doc)
    return PotentialMap(
        values_ev=np.array(get_array(facade, mdoc.values)),
        z_iso_ang=np.array(get_array(facade, mdoc.z_iso)),
        lattice_ang=np.array(mdoc.lattice_ang),
        isovalue=mdoc.isovalue_e_per_bohr3,
        vacuum_level_ev=mdoc.vacuum_level_ev,
        vacuum_level_source=mdoc.vacuum_level_source,
    )


def site_geometry(structure: Structure, sites: list[dict], hops: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Crop centres ``(N, 2)`` and +x directions ``(N, 2)`` by the orientation rule."""
    lattice = np.array(structure.lattice.matrix[:2, :2])
    by_id = {s["site_id"]: s for s in sites}
    hop_of_saddle = {h["saddle_id"]: h for h in hops}
    centres = np.array([s["cart_coords_ang"][:2] for s in sites], dtype=float)
    directions = np.zeros_like(centres)
    cart = structure.cart_coords[:, :2]
    for n, site in enumerate(sites):
        if site["kind"] == "saddle":
            tm_id, h_id = hop_of_saddle[site["site_id"]]["valley_ids"]
            directions[n] = saddle_direction(
                np.array(by_id[tm_id]["cart_coords_ang"][:2]),
                np.array(by_id[h_id]["cart_coords_ang"][:2]),
                lattice,
            )
        else:
            directions[n] = valley_direction(centres[n], cart[site["anion_indices"]], lattice)
    return centres, directions


def symmetry_rotations(
    structure: Structure, sites: list[dict], tol_ang: float = 0.05
) -> dict[str, np.ndarray]:
    """Cartesian 2 x 2 rotation of an operation taking each duplicate's representative onto it.

    Uses the slab's space-group operations that keep z (those that swap the two faces do not
    act on the top-side sites). Representatives map onto themselves with the identity.
    """
    ops = SpacegroupAnalyzer(structure, symprec=0.01).get_symmetry_operations(cartesian=True)
    ops = [op for op in ops if op.rotation_matrix[2, 2] > 0.5]
    lattice = np.array(structure.lattice.matrix[:2, :2])
    reps = _representatives(sites)
    out: dict[str, np.ndarray] = {}
    for site in sites:
        rep = reps[site["site_id"]]
        if rep["site_id"] == site["site_id"]:
            out[site["site_id"]] = np.eye(2)
            continue
        p = np.array(rep["cart_coords_ang"][:2])
        q = np.array(site["cart_coords_ang"][:2])
        for op in ops:
            rot = op.rotation_matrix[:2, :2]
            image = rot @ p + op.translation_vector[:2]
            if np.linalg.norm(minimum_image(image - q, lattice)) < tol_ang:
                out[site["site_id"]] = rot
                break
    return out


def _representatives(sites: list[dict]) -> dict[str, dict]:
    """Site id -> its class representative's site document (same kind)."""
    by_kind_index = {(s["kind"], s["index"]): s for s in sites}
    return {s["site_id"]: by_kind_index[(s["kind"], s["symmetry"]["representative_index"])] for s in sites}


def cut_surface(
    facade: StoreFacade,
    surface_id: str,
    size_ang: float | None = None,
    pixels: int = DEFAULT_PIXELS,
    isovalue: float = DEFAULT_ISOVALUE,
    tolerance_ev: float = SYMMETRY_TOLERANCE_EV,
) -> SurfaceFragments:
    """Map and fragments of one surface from its static (map stored; fragments not yet stored).

    Raises
    ------
    MissingInputError
        The surface or its static calculation is missing.
    SymmetryCheckError
        A duplicate's transported crop differs from its representative's by more than
        ``tolerance_ev``.

    """
    surface, sites, hops = load_surface(facade, surface_id)
    calc = find_static(facade, surface_id)
    if calc is None:
        raise MissingInputError(
            f"surface {surface_id} has no static calculation with potential and density grids; "
            f"run `epdi static {surface_id}` first"
        )
    with facade.unit():  # the map's arrays and its document, or nothing
        pmap, map_doc = map_from_calculation(facade, calc, isovalue)
        facade.upsert("potential_maps", [map_doc])
    return cut_from_map(surface, sites, hops, pmap, map_doc, size_ang, pixels, tolerance_ev)


def cut_from_map(
    surface: dict,
    sites: list[dict],
    hops: list[dict],
    pmap: PotentialMap,
    map_doc: PotentialMapDoc,
    size_ang: float | None = None,
    pixels: int = DEFAULT_PIXELS,
    tolerance_ev: float = SYMMETRY_TOLERANCE_EV,
) -> SurfaceFragments:
    """Crop every valley and saddle of a surface from its map and check the symmetry duplicates."""
    surface_id = surface["surface_id"]
    structure = Structure.from_dict(surface["structure"])
    size = float(size_ang) if size_ang else DEFAULT_SIZE_IN_ANION_SPACINGS * float(surface["a_ang"])
    cutter = FragmentCutter(size, pixels)
    centres, directions = site_geometry(structure, sites, hops)
    frames = frames_from_directions(directions)
    arrays = cutter.cut(pmap, centres, frames)

    reps = _representatives(sites)
    index_of = {s["site_id"]: n for n, s in enumerate(sites)}
    rotations = symmetry_rotations(structure, sites)
    diffs: dict[str, float] = {}
    for n, site in enumerate(sites):
        rep_n = index_of[reps[site["site_id"]]["site_id"]]
        if rep_n == n:
            continue
        rot = rotations.get(site["site_id"])
        if rot is None:
            raise SymmetryCheckError(f"no symmetry operation maps {site['site_id']} onto its representative")
        moved = transported_fragment(pmap, cutter, centres[n], frames[rep_n], rot)
        diffs[site["site_id"]] = float(np.abs(moved - arrays[rep_n]).max())
    worst = max(diffs.values(), default=0.0)
    if worst > tolerance_ev:
        bad = max(diffs, key=diffs.get)
        raise SymmetryCheckError(
            f"surface {surface_id}: duplicate {bad} differs from its representative by {worst:.4f} eV "
            f"(> {tolerance_ev} eV) after the symmetry operation; the map does not have the slab's symmetry"
        )
    return SurfaceFragments(
        surface=surface,
        map=pmap,
        map_doc=map_doc,
        sites=sites,
        directions=directions,
        centres=centres,
        arrays=arrays,
        meps=mep_ev(arrays),
        size_ang=size,
        symmetry_diff_ev=diffs,
    )


def rebuild_fragments(
    facade: StoreFacade, surface_ids: list[str], dataset: str = DEFAULT_DATASET, mep_tol_ev: float = 1e-4
) -> dict[str, float]:
    """Cut the fragments of surfaces again from their stored maps (after loading a compact archive).

    The crop size and pixels come from the surface's stored fragment documents, the colour scale
    covers every map of these surfaces (kept if the dataset already has one). The recut set, on
    the colour scale of ``dataset``, replaces every fragment document of the surface (the archived
    ones carry neither stacks nor their colour scale). Each recut MEP is
    compared with the stored one; returns the largest MEP difference (eV) per surface.

    Raises
    ------
    MissingInputError
        A surface has no stored map or no fragment documents.
    RebuildMismatchError
        A recut fragment's MEP differs from the stored one by more than ``mep_tol_ev``.

    """
    results = []
    for sid in surface_ids:
        surface, sites, hops = load_surface(facade, sid)
        frags = facade.query("fragments", {"surface_id": sid})
        if not frags:
            raise MissingInputError(f"surface {sid} has no fragment documents to rebuild")
        maps = facade.query("potential_maps", {"map_id": frags[0]["map_id"]})
        if not maps:
            raise MissingInputError(f"surface {sid}: potential map {frags[0]['map_id']} is not in the store")
        result = cut_from_map(
            surface,
            sites,
            hops,
            load_map(facade, maps[0]),
            PotentialMapDoc(**maps[0]),
            frags[0]["size_ang"],
            frags[0]["pixels"],
            tolerance_ev=np.inf,
        )
        result.symmetry_diff_ev = {
            f["site_id"]: f["symmetry_max_diff_ev"]
            for f in frags
            if f.get("symmetry_max_diff_ev") is not None
        }
        results.append((result, {f["site_id"]: f["mep_ev"] for f in frags}))
    scale, _ = choose_colour_scale(facade, [r.map_doc for r, _ in results], dataset)
    worst = {}
    for result, stored_mep in results:
        diff = max(
            abs(float(m) - stored_mep[s["site_id"]]) for s, m in zip(result.sites, result.meps, strict=True)
        )
        if diff > mep_tol_ev:
            raise RebuildMismatchError(
                f"surface {result.surface['surface_id']}: fragments cut from the loaded map differ from "
                f"the archived ones (MEP by {diff:.2e} eV > {mep_tol_ev} eV); archive and code differ"
            )
        # the archived documents lost their stacks (and their colour scale): the recut set replaces them
        facade.replace_groups("fragments", "surface_id", [], [result.surface["surface_id"]])
        store_fragments(facade, result, scale)
        worst[result.surface["surface_id"]] = diff
    return worst


def store_fragments(
    facade: StoreFacade, result: SurfaceFragments, scale_doc: ColourScaleDoc
) -> list[FragmentDoc]:
    """Colour the crops on the dataset scale, store stacks and documents; return the documents.

    Fragments are kept per colour scale: the same surface cut for two datasets (two campaigns)
    holds one set of fragments for each, and recutting replaces only that scale's set.
    """
    scale = ColourScale(scale_doc.vmin_ev, scale_doc.vmax_ev, scale_doc.cmap)
    raw = result.arrays.astype(np.float32)
    rgb, clipped = scale.to_rgb(raw)
    with facade.unit():  # the stacks and every fragment document of the surface, or nothing
        raw_ref, rgb_ref = put_arrays(facade, [(raw, "eV"), (rgb, "rgb")])
        surface = result.surface
        reps = _representatives(result.sites)
        cutter_size = result.size_ang
        docs = []
        for n, site in enumerate(result.sites):
            rep = reps[site["site_id"]]
            docs.append(
                FragmentDoc(
                    fragment_id=stable_id(
                        "frag",
                        site_id=site["site_id"],
                        map_id=result.map_doc.map_id,
                        size=cutter_size,
                        pixels=raw.shape[1],
                        scale=scale_doc.scale_id,
                    ),
                    surface_id=surface["surface_id"],
                    map_id=result.map_doc.map_id,
                    site_id=site["site_id"],
                    site_index=site["index"],
                    kind=site["kind"],
                    label=site["label"],
                    host=surface["host"],
                    dopant=surface.get("dopant"),
                    group=surface["group"],
                    class_index=site["symmetry"]["class_index"],
                    representative_site_id=rep["site_id"],
                    is_representative=rep["site_id"] == site["site_id"],
                    mep_ev=float(result.meps[n]),
                    size_ang=cutter_size,
                    pixels=raw.shape[1],
                    orientation_deg=orientation_deg(result.directions[n]),
                    centre_cart_ang=tuple(float(x) for x in result.centres[n]),
                    array=raw_ref,
                    rgb=rgb_ref,
                    stack_index=n,
                    sha256=_sha(raw[n]),
                    colour_scale_id=scale_doc.scale_id,
                    colour_scale=(scale_doc.vmin_ev, scale_doc.vmax_ev, scale_doc.cmap),
                    clipped_pixels=int(clipped[n]),
                    symmetry_max_diff_ev=result.symmetry_diff_ev.get(site["site_id"]),
                )
            )
        within = {"colour_scale_id": scale_doc.scale_id}
        facade.replace_groups("fragments", "surface_id", docs, [surface["surface_id"]], within=within)
        result.docs = docs
        result.clipped_pixels = int(clipped.sum())
        return docs


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
