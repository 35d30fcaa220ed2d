"""Import finished VASP folders (static, relaxation or NEB) into the ``calculations`` collection.

A static/relax folder holds ``vasprun.xml`` or ``OUTCAR`` (final energy), ``CONTCAR`` or
``POSCAR`` (final structure) and optionally ``LOCPOT`` (electrostatic potential, eV) and
``CHGCAR`` (electron density). An NEB folder holds image folders ``00`` .. ``0N``
(:mod:`stores.vasp_neb_import`: end-point energies from OSZICAR when VASP left none, ``barrier_ev``,
gaps and mismatched images refused). Gzipped files (``OUTCAR.gz``, as atomate2 leaves them) are
read too (:mod:`stores.vasp_runs`).

Everything is parsed before anything is written: an unreadable or truncated file raises
:class:`VaspImportError` naming the file, and then neither grids nor the document are stored.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from stores.facade import StoreFacade
from stores.grids import BOHR3_ANG3, DENSITY_UNITS, POTENTIAL_UNITS, put_grid
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc
from stores.vacuum import MIN_VACUUM_ANG, VACUUM_FLATNESS_EV, flattest_window, planar_average, window_planes
from stores.vasp_neb_import import NebFolderError, image_folders, parse_neb
from stores.vasp_runs import VaspImportError, find_file, functional_name, read_run, run_settings

__all__ = ["NebFolderError", "VaspImportError", "functional_name", "import_vasp", "parse_vasp_folder"]


# -- grids -------------------------------------------------------------------------------------
def _check_cell(path: Path, grid_structure: Structure, structure: Structure) -> None:
    if len(grid_structure) != len(structure) or not np.allclose(
        grid_structure.lattice.matrix, structure.lattice.matrix, atol=1e-3
    ):
        raise VaspImportError(
            f"{path} belongs to another cell ({grid_structure.composition.formula}, "
            f"{grid_structure.lattice.abc}) than the final structure ({structure.composition.formula}, "
            f"{structure.lattice.abc})"
        )


def _read_volumetric(path: Path, reader) -> tuple[np.ndarray, Structure]:
    """Total grid and structure of a LOCPOT/CHGCAR (``reader``: pymatgen's Locpot or Chgcar)."""
    try:
        volumetric = reader.from_file(str(path))
        data = np.asarray(volumetric.data["total"], dtype=np.float64)
    except Exception as exc:
        raise VaspImportError(f"cannot parse {path}: {type(exc).__name__}: {exc}") from exc
    if data.ndim != 3 or data.size == 0 or not np.all(np.isfinite(data)):
        raise VaspImportError(f"{path} holds no complete 3D grid (shape {data.shape})")
    return data, volumetric.structure


def read_potential_grid(path: Path) -> tuple[np.ndarray, Structure]:
    """Electrostatic potential (eV) and structure from a LOCPOT (written with ``LVHAR``)."""
    from pymatgen.io.vasp import Locpot

    return _read_volumetric(path, Locpot)


def read_density_grid(path: Path) -> tuple[np.ndarray, Structure]:
    """Electron density (e/bohr^3) and structure from a CHGCAR.

    CHGCAR stores ``rho * V_cell``; dividing by the cell volume (Angstrom^3) gives e/Angstrom^3,
    multiplying by :data:`BOHR3_ANG3` gives e/bohr^3. Only the total (spin-summed) density is kept.
    """
    from pymatgen.io.vasp import Chgcar

    data, structure = _read_volumetric(path, Chgcar)
    return data / structure.volume * BOHR3_ANG3, structure


def vacuum_level(potential_ev: np.ndarray, structure: Structure) -> float | None:
    """Vacuum level (eV) above the top surface of a periodic slab cell (rule: :mod:`stores.vacuum`).

    The largest atom-free gap along c is the vacuum (thinner than :data:`~stores.vacuum.MIN_VACUUM_ANG`:
    a bulk cell, ``None``); its first half, from the top atom up to the mid-gap dipole-correction step,
    holds the level, and only when its flattest window varies by less than
    :data:`~stores.vacuum.VACUUM_FLATNESS_EV` (else ``None``).

    Parameters
    ----------
    potential_ev
        Grid ``(na, nb, nc)`` of the electrostatic potential (eV).
    structure
        The structure of the grid's cell.

    """
    lattice = structure.lattice
    height_ang = lattice.volume / float(np.linalg.norm(np.cross(lattice.matrix[0], lattice.matrix[1])))
    heights = np.sort(np.mod(structure.frac_coords[:, 2], 1.0))
    gaps = np.diff(np.append(heights, heights[0] + 1.0))
    top = int(np.argmax(gaps))
    gap_frac = float(gaps[top])
    if gap_frac * height_ang < MIN_VACUUM_ANG:
        return None
    planar = planar_average(potential_ev)
    nc = planar.size
    first = int(np.floor(heights[top] * nc)) + 1  # first plane above the top atom
    last = int(np.ceil((heights[top] + 0.5 * gap_frac) * nc)) - 1  # last plane below the mid-gap step
    level, spread = flattest_window(planar, first, last - first + 1, window_planes(nc, height_ang))
    return None if spread > VACUUM_FLATNESS_EV else level


def _structure_hash(structure: Structure) -> str:
    payload = {
        "lattice": np.round(structure.lattice.matrix, 5).tolist(),
        "species": [site.species_string for site in structure],
        "frac": np.round(np.mod(structure.frac_coords, 1.0), 5).tolist(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def parse_vasp_folder(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse a VASP folder without writing anything.

    Returns
    -------
    tuple
        The :class:`~stores.schemas.calculations.CalculationDoc` fields (without grid references) and
        the grids to store: ``{"potential": eV array, "density": e/bohr^3 array}`` (those present).

    Raises
    ------
    VaspImportError
        A file is missing, unreadable, truncated or belongs to another cell.
    NebFolderError
        The image folders have a gap (00, 01, 03) or images with different atom counts.

    """
    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        raise VaspImportError(f"{folder} is not a folder")
    images = image_folders(folder)
    if len(images) >= 3:
        return parse_neb(folder, images), {}
    run = read_run(folder)
    assert run.structure is not None and run.energy_ev is not None
    warnings: list[str] = []
    grids: dict[str, np.ndarray] = {}
    locpot, chgcar = find_file(folder, "LOCPOT"), find_file(folder, "CHGCAR")
    vacuum = None
    if locpot is not None:
        potential, cell = read_potential_grid(locpot)
        _check_cell(locpot, cell, run.structure)
        grids["potential"] = potential
        vacuum = vacuum_level(potential, cell)
        if vacuum is None:
            warnings.append("no flat vacuum region in LOCPOT (bulk cell or thin vacuum): no vacuum level")
    if chgcar is not None:
        density, cell = read_density_grid(chgcar)
        _check_cell(chgcar, cell, run.structure)
        grids["density"] = density
    nsw, ibrion = run.incar.get("NSW"), run.incar.get("IBRION")
    if nsw is None and run.outcar_text:
        found = re.search(r"^\s*NSW\s*=\s*(-?\d+)", run.outcar_text, re.MULTILINE)
        nsw = int(found.group(1)) if found else None
    if ibrion is None and run.outcar_text:
        found = re.search(r"^\s*IBRION\s*=\s*(-?\d+)", run.outcar_text, re.MULTILINE)
        ibrion = int(found.group(1)) if found else None
    is_relax = int(nsw or 0) > 0 and int(-1 if ibrion is None else ibrion) >= 0
    kind = "relax" if is_relax else "static"
    fields = {
        "kind": kind,
        "energy_ev": run.energy_ev,
        "structure": run.structure,
        "functional": functional_name(run.incar, run.outcar_text),
        "source_path": str(folder),
        "settings": run_settings(run, warnings),
        "vacuum_level_ev": vacuum,
        "converged": run.converged,
        "wall_time_s": run.wall_time_s,
        "versions": {"vasp": run.vasp_version} if run.vasp_version else {},
    }
    return fields, grids


def import_vasp(directory: str | Path, facade: StoreFacade) -> CalculationDoc:
    """Parse a VASP folder, store its grids and upsert its document into ``calculations``.

    The id is deterministic (hash of the final structure, the final energy, the kind, and for an
    NEB the image energies), so importing the same folder twice updates one document.

    Parameters
    ----------
    directory
        A static/relax folder, or an NEB folder with image folders ``00`` .. ``0N``.
    facade
        Where to store the document (``calculations``) and the grids (``data`` store).

    Raises
    ------
    VaspImportError
        A file is missing, unreadable or truncated; nothing is written then.

    """
    fields, grids = parse_vasp_folder(directory)
    structure: Structure = fields.pop("structure")
    energy = float(fields.pop("energy_ev"))
    calc_id = stable_id(
        "calc",
        engine="vasp",
        kind=fields["kind"],
        structure=_structure_hash(structure),
        energy_ev=energy,
        image_energies_ev=fields.get("image_energies_ev"),
    )
    # all parsing done: only now write, grids and document as one unit
    with facade.unit():
        refs = {
            name: put_grid(facade, array, POTENTIAL_UNITS if name == "potential" else DENSITY_UNITS)
            for name, array in grids.items()
        }
        doc = CalculationDoc(
            calc_id=calc_id,
            engine="vasp",
            source="imported",
            formula=structure.composition.formula,
            natoms=len(structure),
            final_energy_ev=energy,
            structure=structure.as_dict(),
            potential=refs.get("potential"),
            density=refs.get("density"),
            **fields,
        )
        facade.upsert("calculations", [doc])
    return doc
