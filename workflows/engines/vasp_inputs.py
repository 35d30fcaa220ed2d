"""VASP input files without POTCARs (``POTCAR.spec``), IDPP paths and the fixed bottom layer.

What a user who runs VASP by hand needs (``epdi vasp inputs``), and the structure preparation the
atomate2 jobs of the neb step share (:mod:`workflows.engines.vasp_dynamics`):

- :func:`vasp_ordered`: species grouped in one stable order (pymatgen's ``get_sorted_structure``),
  so that every image of an NEB, its ``POTCAR`` and the end-point relaxations agree;
- :func:`fixed_bottom_layer`: the bottom anion layer held with selective dynamics, the atoms the
  ASE engines fix (:func:`workflows.engines.ase_dynamics.bottom_layer_indices`);
- :func:`idpp_images`: an IDPP path between two relaxed end points;
- :func:`write_vasp_inputs`: INCAR, KPOINTS, POSCAR(s) and ``POTCAR.spec`` of a static, relax or NEB.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymatgen.core import Structure

from workflows.engines import DEFAULT_CINEB_IMAGES
from workflows.engines.ase_dynamics import bottom_layer_indices
from workflows.engines.vasp_engine import (
    VASP_KINDS,
    VaspKind,
    incar_settings,
    kpoint_mesh,
)

if TYPE_CHECKING:
    from atomate2.vasp.sets.base import VaspInputGenerator


def vasp_ordered(structure: Structure) -> Structure:
    """A copy with species grouped (stable order) and no site properties, as the POSCAR will hold it."""
    out = structure.get_sorted_structure()
    for prop in list(out.site_properties):
        out.remove_site_property(prop)
    return out


def fixed_bottom_layer(structure: Structure) -> Structure:
    """A copy of ``structure`` whose bottom slab layer is fixed (``selective_dynamics`` F F F).

    Li is never fixed; every other atom moves freely (T T T).
    """
    out = structure.copy()
    if "selective_dynamics" in out.site_properties:
        out.remove_site_property("selective_dynamics")
    fixed = set(bottom_layer_indices([s.species_string for s in out], out.cart_coords[:, 2]))
    out.add_site_property("selective_dynamics", [[i not in fixed] * 3 for i in range(len(out))])
    return out


def idpp_images(start: Structure, end: Structure, n_images: int = DEFAULT_CINEB_IMAGES) -> list[Structure]:
    """IDPP path between two end points: ``n_images + 2`` structures, end points included.

    Uses ``pymatgen.analysis.diffusion`` (``IDPPSolver``). Atoms must be in the same order in both
    end points (no re-sorting is attempted).
    """
    from pymatgen.analysis.diffusion.neb.pathfinder import IDPPSolver

    if n_images < 1:
        raise ValueError(f"a CINEB needs at least 1 intermediate image, got {n_images}")
    if len(start) != len(end) or [s.species_string for s in start] != [s.species_string for s in end]:
        raise ValueError("NEB end points must hold the same atoms in the same order")
    solver = IDPPSolver.from_endpoints([start, end], nimages=n_images, sort_tol=0)
    return solver.run(maxiter=2000, tol=1e-5, gtol=1e-3)


def _generator(
    kind: VaspKind,
    structure: Structure,
    size: int,
    kpoints: int | None,
    updates: dict[str, Any] | None,
    n_images: int,
) -> VaspInputGenerator:
    from atomate2.vasp.sets.core import NebSetGenerator, RelaxSetGenerator, StaticSetGenerator

    elements = [el.symbol for el in structure.composition.elements]
    common = {
        "user_incar_settings": incar_settings(kind, elements, updates),
        "user_kpoints_settings": kpoint_mesh(size, kpoints),
    }
    if kind == "static":
        return StaticSetGenerator(auto_ismear=False, **common)
    if kind == "relax":
        return RelaxSetGenerator(auto_ismear=False, **common)
    return NebSetGenerator(climbing_image=True, num_images=n_images, **common)


def write_vasp_inputs(
    kind: VaspKind,
    structures: Structure | Sequence[Structure],
    out_dir: str | Path,
    size: int,
    kpoints: int | None = None,
    incar_updates: dict[str, Any] | None = None,
    fix_bottom_layer: bool = True,
) -> list[Path]:
    """Write VASP inputs with ``POTCAR.spec`` (POTCAR symbols) instead of POTCAR files.

    Parameters
    ----------
    kind
        ``"static"`` or ``"relax"`` (one structure) or ``"neb"`` (all images, end points included).
    structures
        One structure, or the NEB images.
    out_dir
        Folder to write into (created). For ``neb``: INCAR, KPOINTS, POTCAR.spec at the top and
        folders ``00`` .. ``0N`` (``N = IMAGES + 1``) with a POSCAR and a copy of KPOINTS each, as
        atomate2's ``NebFromImagesMaker`` writes them.
    size
        n of the n x n x 1 supercell (k-mesh).
    kpoints
        In-plane k divisions; default from :func:`kpoint_mesh`.
    incar_updates
        Extra INCAR overrides.
    fix_bottom_layer
        For ``relax`` and ``neb``: hold the bottom anion layer with selective dynamics, as the neb
        step does (a static moves no atom).

    Returns
    -------
    list[Path]
        The files written.

    """
    if kind not in VASP_KINDS:
        raise ValueError(f"unknown VASP job kind {kind!r}; accepted: {', '.join(VASP_KINDS)}")
    images = [structures] if isinstance(structures, Structure) else list(structures)
    if kind == "neb":
        if len(images) < 3:
            raise ValueError(f"a NEB needs both end points and >= 1 image, got {len(images)} structures")
    elif len(images) != 1:
        raise ValueError(f"a {kind} job takes one structure, got {len(images)}")
    # group species once (same stable order for every image) so POSCAR and POTCAR.spec agree
    images = [vasp_ordered(image) for image in images]
    if fix_bottom_layer and kind != "static":
        images = [fixed_bottom_layer(image) for image in images]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = _generator(kind, images[0], size, kpoints, incar_updates, len(images) - 2)
    vis = generator.get_input_set(images[0], potcar_spec=True)
    vis.write_input(str(out))
    written = [out / name for name in ("INCAR", "KPOINTS", "POSCAR", "POTCAR.spec")]
    if kind == "neb":
        (out / "POSCAR").unlink()
        written.remove(out / "POSCAR")
        for index, image in enumerate(images):
            folder = out / f"{index:02d}"
            folder.mkdir(exist_ok=True)
            image.to(filename=str(folder / "POSCAR"), fmt="poscar")
            shutil.copyfile(out / "KPOINTS", folder / "KPOINTS")
            written += [folder / "POSCAR", folder / "KPOINTS"]
    return written
