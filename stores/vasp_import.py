"""Import finished VASP folders (static, relaxation or NEB) into the ``calculations`` collection.

A static/relax folder holds ``vasprun.xml`` or ``OUTCAR`` (final energy), ``CONTCAR`` or
``POSCAR`` (final structure) and optionally ``LOCPOT`` (electrostatic potential, eV) and
``CHGCAR`` (electron density). An NEB folder holds image folders ``00`` .. ``0N`` with an
``OUTCAR``/``vasprun.xml`` each; the end points often have none (VASP does not compute them), so
the energies that exist are taken and the missing ones are listed in ``settings["warnings"]``.
Gzipped files (``OUTCAR.gz``, as atomate2 leaves them) are read too.

Everything is parsed before anything is written: an unreadable or truncated file raises
:class:`VaspImportError` naming the file, and then neither grids nor the document are stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monty.io import zopen
from pymatgen.core import Structure

from stores.calc_documents import CalculationDoc
from stores.errors import InputError
from stores.facade import StoreFacade
from stores.grids import put_grid
from stores.ids import stable_id

#: Bohr radius in Angstrom, CODATA 2018 (https://physics.nist.gov/cgi-bin/cuu/Value?bohrrada0)
BOHR_ANG = 0.529177210903

#: one cubic bohr in cubic Angstrom
BOHR3_ANG3 = BOHR_ANG**3

#: unit strings of the stored grids
POTENTIAL_UNITS = "eV"
DENSITY_UNITS = "e/bohr^3"

#: cells whose largest empty gap along c is thinner than this are treated as bulk (Angstrom)
MIN_VACUUM_ANG = 5.0

#: the vacuum plateau must vary by less than this to give a vacuum level (eV)
VACUUM_FLATNESS_EV = 0.05

#: footer VASP writes at the very end of a finished OUTCAR
OUTCAR_FOOTER = "General timing and accounting informations for this job"

_IMAGE_DIR = re.compile(r"^\d{2}$")
_GGA_NAMES = {"PE": "PBE", "PS": "PBEsol", "91": "PW91", "RP": "RPBE", "AM": "AM05", "CA": "LDA"}
_IVDW_NAMES = {1: "D2", 10: "D2", 11: "D3(zero)", 12: "D3(BJ)", 13: "D4", 2: "TS", 4: "dDsC"}


class VaspImportError(InputError):
    """A VASP folder cannot be imported; the message names the file that is missing or unreadable."""


@dataclass
class _RunData:
    """What one VASP run folder (a static, a relax, or one NEB image) holds."""

    folder: Path
    energy_ev: float | None
    energy_file: Path | None
    structure: Structure | None
    structure_file: Path | None
    incar: dict[str, Any] = field(default_factory=dict)
    converged: bool | None = None
    wall_time_s: float | None = None
    vasp_version: str | None = None
    outcar_text: str = ""


# -- file helpers ------------------------------------------------------------------------------
def _find(folder: Path, name: str) -> Path | None:
    """``folder/name`` or its gzipped copy, whichever exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_text(path: Path) -> str:
    try:
        with zopen(path, mode="rt", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise VaspImportError(f"cannot read {path}: {exc}") from exc


def _parse_outcar(path: Path) -> tuple[float, bool | None, float | None, str | None, str]:
    """Final energy (eV, sigma -> 0), SCF convergence, wall time (s), VASP version, text."""
    text = _read_text(path)
    if OUTCAR_FOOTER not in text:
        raise VaspImportError(
            f"{path} is incomplete (no '{OUTCAR_FOOTER}' footer): the run was cut short or the file "
            "is truncated"
        )
    energies = re.findall(r"energy\(sigma->0\)\s*=\s*(-?\d+\.\d+)", text)
    if not energies:
        raise VaspImportError(f"{path} holds no 'energy(sigma->0)' line: not a finished VASP OUTCAR")
    loops = re.findall(r"aborting loop (because EDIFF is reached|EDIFF was not reached)", text)
    converged = None if not loops else loops[-1].startswith("because")
    wall = re.search(r"Elapsed time \(sec\):\s*(\d+\.?\d*)", text)
    version = re.match(r"\s*vasp\.(\S+)", text)
    return (
        float(energies[-1]),
        converged,
        float(wall.group(1)) if wall else None,
        version.group(1) if version else None,
        text,
    )


def _parse_vasprun(path: Path) -> tuple[float, Structure, dict, bool, str | None]:
    """Final energy (eV), final structure, INCAR, convergence, VASP version."""
    from pymatgen.io.vasp import Vasprun

    try:
        run = Vasprun(
            str(path),
            parse_dos=False,
            parse_eigen=False,
            parse_projected_eigen=False,
            parse_potcar_file=False,
        )
        return (
            float(run.final_energy),
            run.final_structure,
            dict(run.incar),
            bool(run.converged),
            run.vasp_version,
        )
    except Exception as exc:  # pymatgen raises ParseError, ValueError, KeyError... on bad XML
        raise VaspImportError(f"cannot parse {path}: {type(exc).__name__}: {exc}") from exc


def _potcar_symbols(outcar_text: str) -> list[str] | None:
    """Element symbols in POTCAR order from the ``TITEL`` lines of an OUTCAR (``None`` if absent)."""
    titles = re.findall(r"^\s*TITEL\s*=\s*\S+\s+(\S+)", outcar_text, re.MULTILINE)
    return [t.split("_")[0] for t in titles] or None


def _parse_structure(path: Path, species: list[str] | None = None) -> Structure:
    """Structure from a POSCAR/CONTCAR; ``species`` names the elements of VASP 4 files without them."""
    from pymatgen.io.vasp import Poscar
    from pymatgen.io.vasp.inputs import BadPoscarWarning

    text = _read_text(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BadPoscarWarning)
            try:
                return Poscar.from_str(text).structure
            except BadPoscarWarning:
                if not species:
                    raise VaspImportError(
                        f"{path} names no elements (VASP 4 format) and there is no OUTCAR to take them from"
                    ) from None
            # VASP 4 file without element names: VASP itself takes them from the POTCAR order
            warnings.filterwarnings("ignore", message="Elements in POSCAR would be overwritten")
            return Poscar.from_str(text, default_names=species).structure
    except VaspImportError:
        raise
    except Exception as exc:
        raise VaspImportError(f"cannot parse {path}: {type(exc).__name__}: {exc}") from exc


def _parse_incar(path: Path) -> dict[str, Any]:
    from pymatgen.io.vasp import Incar

    try:
        return dict(Incar.from_str(_read_text(path)))
    except VaspImportError:
        raise
    except Exception as exc:
        raise VaspImportError(f"cannot parse {path}: {type(exc).__name__}: {exc}") from exc


def _read_run(folder: Path, need_energy: bool = True) -> _RunData:
    """Parse one run folder; with ``need_energy=False`` a folder without outputs is accepted."""
    run = _RunData(folder=folder, energy_ev=None, energy_file=None, structure=None, structure_file=None)
    vasprun, outcar = _find(folder, "vasprun.xml"), _find(folder, "OUTCAR")
    if vasprun is not None:
        run.energy_ev, run.structure, run.incar, run.converged, run.vasp_version = _parse_vasprun(vasprun)
        run.energy_file = run.structure_file = vasprun
    if outcar is not None:
        energy, converged, run.wall_time_s, version, run.outcar_text = _parse_outcar(outcar)
        if run.energy_ev is None:
            run.energy_ev, run.converged, run.energy_file = energy, converged, outcar
        run.vasp_version = run.vasp_version or version
    if run.energy_ev is None and need_energy:
        raise VaspImportError(f"{folder} has no vasprun.xml or OUTCAR: nothing to take the final energy from")
    if run.energy_ev is None:
        return run  # an NEB end point that VASP did not compute: nothing to read
    if run.structure is None:
        for name in ("CONTCAR", "POSCAR"):
            path = _find(folder, name)
            if path is not None and path.stat().st_size > 0:
                species = _potcar_symbols(run.outcar_text)
                run.structure, run.structure_file = _parse_structure(path, species), path
                break
    if run.structure is None:
        raise VaspImportError(f"{folder} has no CONTCAR or POSCAR: cannot tell the final structure")
    incar = _find(folder, "INCAR")
    if incar is not None and not run.incar:
        run.incar = _parse_incar(incar)
    return run


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
    """Vacuum level (eV) above the top surface from the planar average of the potential along c.

    The largest atom-free gap along c is the vacuum; thinner than :data:`MIN_VACUUM_ANG` means a
    bulk cell (``None``). The level is the mean planar-averaged potential 20-40 % of the way across
    the gap, counted from the top atom (below the mid-gap dipole-correction step), and only when it
    varies there by less than :data:`VACUUM_FLATNESS_EV` (else ``None``).

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
    profile = potential_ev.mean(axis=(0, 1))
    nc = profile.size
    grid_frac = np.arange(nc) / nc
    offset = np.mod(grid_frac - heights[top], 1.0)
    window = (offset >= 0.2 * gap_frac) & (offset <= 0.4 * gap_frac)
    if not window.any():
        return None
    plateau = profile[window]
    if float(plateau.max() - plateau.min()) > VACUUM_FLATNESS_EV:
        return None
    return float(plateau.mean())


# -- documents ---------------------------------------------------------------------------------
def functional_name(incar: dict[str, Any], outcar_text: str = "") -> str:
    """Level of theory from INCAR (or the OUTCAR parameter echo), e.g. ``'PBE+D3(zero)'``."""
    gga = incar.get("GGA")
    ivdw = incar.get("IVDW")
    if gga is None and outcar_text:
        found = re.search(r"^\s*GGA\s*=\s*(\S+)", outcar_text, re.MULTILINE)
        gga = found.group(1) if found else None
    if ivdw is None and outcar_text:
        found = re.search(r"^\s*IVDW\s*=\s*(\d+)", outcar_text, re.MULTILINE)
        ivdw = int(found.group(1)) if found else None
    metagga = incar.get("METAGGA")
    if metagga and str(metagga).upper() not in {"F", "FALSE", "NONE", "--"}:
        name = str(metagga)
    elif gga is None or str(gga) == "--":
        name = "PBE"  # VASP's default: GGA from the POTCARs (PAW_PBE)
    else:
        name = _GGA_NAMES.get(str(gga).upper(), str(gga))
    if ivdw:
        name += "+" + _IVDW_NAMES.get(int(ivdw), f"IVDW{int(ivdw)}")
    return name


def _structure_hash(structure: Structure) -> str:
    payload = {
        "lattice": np.round(structure.lattice.matrix, 5).tolist(),
        "species": [site.species_string for site in structure],
        "frac": np.round(np.mod(structure.frac_coords, 1.0), 5).tolist(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _image_folders(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and _IMAGE_DIR.match(p.name))


def _settings(run: _RunData, warnings: list[str]) -> dict[str, Any]:
    return {
        "incar": {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in run.incar.items()},
        "energy_file": run.energy_file.name if run.energy_file else None,
        "structure_file": run.structure_file.name if run.structure_file else None,
        "warnings": warnings,
    }


def parse_vasp_folder(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse a VASP folder without writing anything.

    Returns
    -------
    tuple
        The :class:`~stores.calc_documents.CalculationDoc` fields (without grid references) and
        the grids to store: ``{"potential": eV array, "density": e/bohr^3 array}`` (those present).

    Raises
    ------
    VaspImportError
        A file is missing, unreadable, truncated or belongs to another cell.

    """
    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        raise VaspImportError(f"{folder} is not a folder")
    images = _image_folders(folder)
    if len(images) >= 3:
        return _parse_neb(folder, images), {}
    run = _read_run(folder)
    assert run.structure is not None and run.energy_ev is not None
    warnings: list[str] = []
    grids: dict[str, np.ndarray] = {}
    locpot, chgcar = _find(folder, "LOCPOT"), _find(folder, "CHGCAR")
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
        "settings": _settings(run, warnings),
        "vacuum_level_ev": vacuum,
        "converged": run.converged,
        "wall_time_s": run.wall_time_s,
        "versions": {"vasp": run.vasp_version} if run.vasp_version else {},
    }
    return fields, grids


def _parse_neb(folder: Path, images: list[Path]) -> dict[str, Any]:
    last = len(images) - 1
    runs = []
    for index, image in enumerate(images):
        endpoint = index in (0, last)
        runs.append(_read_run(image, need_energy=not endpoint))
    warnings = [
        f"end point {run.folder.name} has no vasprun.xml/OUTCAR: its energy is not in image_energies_ev"
        for run in runs
        if run.energy_ev is None
    ]
    computed = [(i, run) for i, run in enumerate(runs) if run.energy_ev is not None]
    energies = [float(run.energy_ev) for _, run in computed]  # type: ignore[arg-type]
    top_index, top = max(computed, key=lambda item: item[1].energy_ev)  # type: ignore[arg-type,return-value]
    incar = dict(top.incar)
    if not incar:
        path = _find(folder, "INCAR")
        incar = _parse_incar(path) if path is not None else {}
    top.incar = incar
    settings = _settings(top, warnings) | {
        "image_folders": [run.folder.name for run in runs],
        "image_indices": [i for i, _ in computed],
        "highest_image": top_index,
    }
    converged = [run.converged for _, run in computed]
    return {
        "kind": "neb",
        "energy_ev": top.energy_ev,
        "structure": top.structure,
        "functional": functional_name(incar, top.outcar_text),
        "source_path": str(folder),
        "settings": settings,
        "image_energies_ev": energies,
        "converged": None if None in converged else all(converged),
        "wall_time_s": max((run.wall_time_s or 0.0 for _, run in computed), default=None) or None,
        "versions": {"vasp": top.vasp_version} if top.vasp_version else {},
    }


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
