"""Import of a finished VASP NEB folder: image folders ``00`` .. ``0N``, energies, the barrier.

The intermediate images must hold a finished ``vasprun.xml`` or ``OUTCAR`` (an unfinished image is a
:class:`~stores.vasp_runs.VaspImportError` naming its file). VASP does not compute the end points;
when ``00/`` and ``0N/`` hold no ``vasprun.xml``/``OUTCAR`` but an ``OSZICAR`` (VTST users copy the
end-point relaxations' outputs there), its last ``E0`` is the end point's energy, else the end point
is left out with a warning. ``barrier_ev`` is the highest image energy minus image ``00``'s.

A folder whose images are not ``00`` .. ``0N`` without a gap, or whose images hold different numbers
of atoms, is refused with :class:`NebFolderError` (bad input, exit 2) naming the folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stores.errors import InputError
from stores.vasp_runs import (
    find_file,
    folder_structure,
    functional_name,
    parse_incar,
    potcar_symbols,
    read_run,
    run_settings,
)

_IMAGE_DIR = re.compile(r"^\d{2}$")


class NebFolderError(InputError):
    """An NEB folder's images are not ``00`` .. ``0N`` in one piece (a gap, different atom counts)."""


def image_folders(directory: Path) -> list[Path]:
    """The image folders ``00`` .. ``0N`` of ``directory`` in order (empty when there are none).

    Raises
    ------
    NebFolderError
        The numbered folders do not run from ``00`` to ``0N`` without a gap.

    """
    images = sorted(
        (p for p in directory.iterdir() if p.is_dir() and _IMAGE_DIR.match(p.name)), key=lambda p: p.name
    )
    numbers = [int(p.name) for p in images]
    missing = [f"{n:02d}" for n in range(max(numbers, default=-1) + 1) if n not in numbers]
    if missing:
        raise NebFolderError(
            f"NEB folder {directory} lacks image folder {', '.join(missing)} (found "
            f"{', '.join(p.name for p in images)}): images must be 00 .. {images[-1].name} without a gap"
        )
    return images


def _check_atoms(runs: list) -> None:
    species = next((potcar_symbols(r.outcar_text) for r in runs if r.outcar_text), None)
    counts = []
    for run in runs:
        structure = run.structure if run.structure is not None else folder_structure(run.folder, species)
        counts.append(None if structure is None else len(structure))
    first = next((c for c in counts if c is not None), None)
    for run, count in zip(runs, counts, strict=True):
        if count is not None and count != first:
            reference = runs[counts.index(first)].folder.name
            raise NebFolderError(
                f"NEB image folder {run.folder} holds {count} atoms but {reference} holds {first}: "
                "every image of an NEB has the same atoms"
            )


def parse_neb(folder: Path, images: list[Path]) -> dict[str, Any]:
    """The :class:`CalculationDoc` fields of an NEB folder (nothing is written)."""
    last = len(images) - 1
    runs = [
        read_run(image, need_energy=index not in (0, last), oszicar=index in (0, last))
        for index, image in enumerate(images)
    ]
    _check_atoms(runs)
    warnings = [
        f"end point {run.folder.name} has no vasprun.xml/OUTCAR/OSZICAR: its energy is not in "
        "image_energies_ev"
        for run in runs
        if run.energy_ev is None
    ]
    computed = [(i, run) for i, run in enumerate(runs) if run.energy_ev is not None]
    energies = [float(run.energy_ev) for _, run in computed]  # type: ignore[arg-type]
    top_index, top = max(computed, key=lambda item: item[1].energy_ev)  # type: ignore[arg-type,return-value]
    barrier = None if runs[0].energy_ev is None else float(top.energy_ev) - float(runs[0].energy_ev)
    if barrier is None:
        warnings.append("image 00 has no energy: barrier_ev (highest image minus image 00) is not given")
    incar = dict(top.incar)
    if not incar:
        path = find_file(folder, "INCAR")
        incar = parse_incar(path) if path is not None else {}
    top.incar = incar
    settings = run_settings(top, warnings) | {
        "image_folders": [run.folder.name for run in runs],
        "image_indices": [i for i, _ in computed],
        "highest_image": top_index,
        "image_energy_files": [None if run.energy_file is None else run.energy_file.name for run in runs],
    }
    converged = [run.converged for i, run in computed if i not in (0, last)]
    return {
        "kind": "neb",
        "energy_ev": top.energy_ev,
        "structure": top.structure,
        "functional": functional_name(incar, top.outcar_text),
        "source_path": str(folder),
        "settings": settings,
        "image_energies_ev": energies,
        "barrier_ev": barrier,
        "converged": None if None in converged else all(converged),
        "wall_time_s": max((run.wall_time_s or 0.0 for _, run in computed), default=None) or None,
        "versions": {"vasp": top.vasp_version} if top.vasp_version else {},
    }
