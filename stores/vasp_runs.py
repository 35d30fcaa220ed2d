"""Reading one VASP run folder (a static, a relaxation, or one NEB image) for the importers.

:func:`read_run` takes the final energy from ``vasprun.xml`` or ``OUTCAR`` (gzipped copies too), the
final structure from ``vasprun.xml``, ``CONTCAR`` or ``POSCAR`` and the INCAR; an NEB end point may
have only an ``OSZICAR`` (VTST users copy the end-point relaxations' files there), whose last ``E0``
then gives the energy (pymatgen's ``Oszicar``). A truncated or unreadable file raises
:class:`VaspImportError` naming it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monty.io import zopen
from pymatgen.core import Structure

from stores.errors import InputError

#: footer VASP writes at the very end of a finished OUTCAR
OUTCAR_FOOTER = "General timing and accounting informations for this job"

_GGA_NAMES = {"PE": "PBE", "PS": "PBEsol", "91": "PW91", "RP": "RPBE", "AM": "AM05", "CA": "LDA"}
_IVDW_NAMES = {1: "D2", 10: "D2", 11: "D3(zero)", 12: "D3(BJ)", 13: "D4", 2: "TS", 4: "dDsC"}


class VaspImportError(InputError):
    """A VASP folder cannot be imported; the message names the file that is missing or unreadable."""


@dataclass
class RunData:
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


def find_file(folder: Path, name: str) -> Path | None:
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


def potcar_symbols(outcar_text: str) -> list[str] | None:
    """Element symbols in POTCAR order from the ``TITEL`` lines of an OUTCAR (``None`` if absent)."""
    titles = re.findall(r"^\s*TITEL\s*=\s*\S+\s+(\S+)", outcar_text, re.MULTILINE)
    return [t.split("_")[0] for t in titles] or None


def _parse_structure(path: Path, species: list[str] | None = None) -> Structure:
    """Structure from a POSCAR/CONTCAR; ``species`` names the elements of VASP 4 files without them.

    Only the geometry is kept: selective-dynamics flags and velocities (VTST CONTCARs carry NaN
    velocities) are dropped.
    """
    structure = _read_poscar(path, species)
    for prop in list(structure.site_properties):
        structure.remove_site_property(prop)
    return structure


def _read_poscar(path: Path, species: list[str] | None) -> Structure:
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


def parse_incar(path: Path) -> dict[str, Any]:
    """The INCAR tags of ``path`` (pymatgen ``Incar``)."""
    from pymatgen.io.vasp import Incar

    try:
        return dict(Incar.from_str(_read_text(path)))
    except VaspImportError:
        raise
    except Exception as exc:
        raise VaspImportError(f"cannot parse {path}: {type(exc).__name__}: {exc}") from exc


def _parse_oszicar(path: Path) -> float:
    """Final energy (eV): ``E0`` (sigma -> 0) of the last ionic step of an OSZICAR (pymatgen)."""
    from pymatgen.io.vasp import Oszicar

    try:
        steps = Oszicar(str(path)).ionic_steps
    except Exception as exc:  # pymatgen raises ValueError, IndexError... on a damaged file
        raise VaspImportError(f"cannot parse {path}: {type(exc).__name__}: {exc}") from exc
    if not steps or "E0" not in steps[-1]:
        raise VaspImportError(f"{path} holds no finished ionic step (no 'F= ... E0=' line)")
    return float(steps[-1]["E0"])


def read_run(folder: Path, need_energy: bool = True, oszicar: bool = False) -> RunData:
    """Parse one run folder.

    Parameters
    ----------
    folder
        The run folder.
    need_energy
        ``False``: a folder without outputs is accepted (an NEB end point VASP did not compute).
    oszicar
        Without ``vasprun.xml``/``OUTCAR``, take the energy from an ``OSZICAR`` (an NEB end point
        holding its relaxation's OSZICAR); the structure then comes from ``CONTCAR``/``POSCAR``.

    """
    run = RunData(folder=folder, energy_ev=None, energy_file=None, structure=None, structure_file=None)
    vasprun, outcar = find_file(folder, "vasprun.xml"), find_file(folder, "OUTCAR")
    if vasprun is not None:
        run.energy_ev, run.structure, run.incar, run.converged, run.vasp_version = _parse_vasprun(vasprun)
        run.energy_file = run.structure_file = vasprun
    if outcar is not None:
        energy, converged, run.wall_time_s, version, run.outcar_text = _parse_outcar(outcar)
        if run.energy_ev is None:
            run.energy_ev, run.converged, run.energy_file = energy, converged, outcar
        run.vasp_version = run.vasp_version or version
    if run.energy_ev is None and oszicar and (path := find_file(folder, "OSZICAR")) is not None:
        run.energy_ev, run.energy_file = _parse_oszicar(path), path
    if run.energy_ev is None and need_energy:
        raise VaspImportError(f"{folder} has no vasprun.xml or OUTCAR: nothing to take the final energy from")
    if run.energy_ev is None:
        return run  # an NEB end point that VASP did not compute: nothing to read
    if run.structure is None:
        for name in ("CONTCAR", "POSCAR"):
            path = find_file(folder, name)
            if path is not None and path.stat().st_size > 0:
                species = potcar_symbols(run.outcar_text)
                run.structure, run.structure_file = _parse_structure(path, species), path
                break
    if run.structure is None:
        raise VaspImportError(f"{folder} has no CONTCAR or POSCAR: cannot tell the final structure")
    incar = find_file(folder, "INCAR")
    if incar is not None and not run.incar:
        run.incar = parse_incar(incar)
    return run


def folder_structure(folder: Path, species: list[str] | None = None) -> Structure | None:
    """The structure of ``folder``'s ``CONTCAR`` (else ``POSCAR``), or ``None`` when it has neither.

    ``species`` names the elements of a VASP 4 file without them (POTCAR order).
    """
    for name in ("CONTCAR", "POSCAR"):
        path = find_file(folder, name)
        if path is not None and path.stat().st_size > 0:
            return _parse_structure(path, species)
    return None


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


def run_settings(run: RunData, warnings: list[str]) -> dict[str, Any]:
    """The ``settings`` of an imported document: INCAR, the files read, warnings."""
    return {
        "incar": {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in run.incar.items()},
        "energy_file": run.energy_file.name if run.energy_file else None,
        "structure_file": run.structure_file.name if run.structure_file else None,
        "warnings": warnings,
    }
