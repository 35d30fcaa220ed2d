"""atomate2's VASP CINEB job, able to read both NEB folder layouts that VASP writes.

atomate2's :class:`~atomate2.vasp.jobs.neb.NebFromImagesMaker` parses its folder with emmet's
``NebIntermediateImagesDoc.from_directory``, which reads a ``vasprun.xml`` in every image folder:
the VASP 6 layout. VASP 5 writes ``vasprun.xml`` only once, at the top, from all images at the same
time (often interleaved and unreadable), and leaves ``OUTCAR``, ``OSZICAR`` and ``CONTCAR`` in each
image folder. :class:`VaspNebFromImagesMaker` writes and runs the job exactly as atomate2 does
(inputs, ``00`` .. ``0N`` image folders, custodian's ``VaspNEBJob`` through ``run_vasp``) and
parses with :func:`neb_images_document`: emmet's parser when every image has a ``vasprun.xml``,
else pymatgen's ``Outcar`` (energy and tangent force, ``Outcar.read_neb``), ``Oszicar`` (ionic
steps) and ``Poscar`` (``CONTCAR``: final image).

The output is a :class:`VaspNebImagesDoc`: emmet's ``NebIntermediateImagesDoc`` of the
intermediate images (the end points are the relaxations the NEB started from) plus the ionic step
count and wall time of each image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from glob import glob
from pathlib import Path
from typing import TYPE_CHECKING

from atomate2 import SETTINGS
from atomate2.common.files import gzip_output_folder
from atomate2.vasp import run as vasp_run
from atomate2.vasp.files import copy_vasp_outputs, write_vasp_input_set
from atomate2.vasp.jobs.base import _FILES_TO_ZIP, get_vasp_task_document
from atomate2.vasp.jobs.neb import NebFromImagesMaker, vasp_neb_job
from emmet.core.neb import NebIntermediateImagesDoc, NebMethod
from emmet.core.vasp.calculation import RunStatistics
from emmet.core.vasp.task_valid import TaskState
from jobflow import Response
from monty.os.path import zpath
from monty.serialization import dumpfn
from pydantic import Field
from pymatgen.io.vasp import Incar, Kpoints, Oszicar, Outcar, Poscar

from stores.errors import RunError

if TYPE_CHECKING:
    from pymatgen.core import Structure


class VaspNebImagesDoc(NebIntermediateImagesDoc):
    """emmet's intermediate-image NEB document with the cost of each image.

    ``energies`` are the final energies (eV, ``energy(sigma->0)``) of the intermediate images,
    ``images`` their final structures (``CONTCAR``).
    """

    ionic_steps: list[int] | None = Field(None, description="Ionic steps (force calls) of each image")
    wall_times_s: list[float | None] | None = Field(None, description="Wall time of each image (s)")
    vasp_version: str | None = Field(None, description="VASP version (only in vasprun.xml)")


def _path(folder: Path, name: str) -> Path:
    """``folder/name`` or its compressed copy (as atomate2 leaves them)."""
    return Path(zpath(str(folder / name)))


def _geometry(structure: Structure) -> Structure:
    """The structure without site properties (selective-dynamics flags)."""
    for prop in list(structure.site_properties):
        structure.remove_site_property(prop)
    return structure


def image_folders(directory: Path) -> list[Path]:
    """The ``00`` .. ``0N`` folders of an NEB run, end points included, in order."""
    return sorted(p for p in directory.glob("[0-9][0-9]") if p.is_dir())


def _from_outcars(directory: Path, images: list[Path]) -> VaspNebImagesDoc:
    """Intermediate images of a VASP 5 layout: ``OUTCAR``, ``OSZICAR``, ``CONTCAR`` per image."""
    incar_path = _path(directory, "INCAR")
    if not incar_path.is_file():
        raise RunError(
            f"NEB folder {directory} has no INCAR: cannot tell NSW, so not whether images converged"
        )
    incar = Incar.from_file(incar_path)
    nsw = int(incar.get("NSW", 0))
    energies, finals, initials, steps, walls, states = [], [], [], [], [], []
    for image in images:
        outcar_path, oszicar_path = _path(image, "OUTCAR"), _path(image, "OSZICAR")
        contcar_path = _path(image, "CONTCAR")
        missing = [p.name for p in (outcar_path, oszicar_path, contcar_path) if not p.is_file()]
        if missing:
            raise RunError(f"NEB image {image} has no {', '.join(missing)}: the image did not run to the end")
        outcar = Outcar(str(outcar_path))
        outcar.read_neb()
        stats = RunStatistics.from_outcar(outcar)
        finished = "Elapsed time (sec)" in outcar.run_stats
        n_ionic = len(Oszicar(str(oszicar_path)).ionic_steps)
        # VASP stops the ionic loop before NSW only when EDIFFG is reached (pymatgen's converged_ionic)
        converged = finished and (nsw <= 1 or n_ionic < nsw)
        energies.append(float(outcar.data["energy"]))
        finals.append(_geometry(Poscar.from_file(str(contcar_path)).structure))
        initials.append(_geometry(Poscar.from_file(str(_path(image, "POSCAR"))).structure))
        steps.append(n_ionic)
        walls.append(stats.elapsed_time if finished else None)
        states.append(converged)
    return VaspNebImagesDoc(
        energies=energies,
        images=finals,
        initial_images=initials,
        dir_name=str(directory),
        directories=[str(p) for p in images],
        state=TaskState.SUCCESS if all(states) else TaskState.FAILED,
        neb_method=NebMethod.CLIMBING_IMAGE if incar.get("LCLIMB", False) else NebMethod.STANDARD,
        completed_at=str(datetime.fromtimestamp(max(_path(p, "OUTCAR").stat().st_mtime for p in images))),
        ionic_steps=steps,
        wall_times_s=walls,
    )


def neb_images_document(directory: str | Path, **kwargs) -> VaspNebImagesDoc:
    """Parse a finished VASP NEB folder (either layout) into a :class:`VaspNebImagesDoc`.

    Parameters
    ----------
    directory
        The top NEB folder, holding ``INCAR`` and the image folders ``00`` .. ``0N``.
    **kwargs
        Passed to emmet's parser (``get_vasp_task_document``) for the VASP 6 layout.

    Raises
    ------
    RunError
        An intermediate image lacks the outputs of a finished run.

    """
    directory = Path(directory)
    images = image_folders(directory)[1:-1]
    if not images:
        raise RunError(f"NEB folder {directory} holds no intermediate image folders (01 .. 0N-1)")
    if not all(_path(image, "vasprun.xml").is_file() for image in images):
        return _from_outcars(directory, images)
    doc = get_vasp_task_document(directory, is_neb=True, **kwargs)
    calcs = doc.calculations or []
    return VaspNebImagesDoc(
        **dict(doc),
        ionic_steps=[len(c.output.ionic_steps or []) for c in calcs],
        wall_times_s=[c.output.run_stats.elapsed_time if c.output.run_stats else None for c in calcs],
        vasp_version=calcs[0].vasp_version if calcs else None,
    )


@dataclass
class VaspNebFromImagesMaker(NebFromImagesMaker):
    """atomate2's ``NebFromImagesMaker`` whose output parser reads VASP 5 and VASP 6 folders.

    Inputs, image folders, the KPOINTS copy in each image folder and the custodian run are those of
    the parent class; only the parsing differs (:func:`neb_images_document`).
    """

    name: str = "NEB"

    @vasp_neb_job
    def make(self, images: list[Structure], prev_dir: str | Path | None = None) -> Response:
        """Write the NEB inputs for ``images`` (end points included), run VASP, parse the images.

        Parameters
        ----------
        images
            The path, end points first and last; each image's ``selective_dynamics`` site property
            goes into its ``POSCAR``.
        prev_dir
            A previous folder to copy outputs (e.g. WAVECAR) from.

        """
        self.input_set_generator.num_images = len(images) - 2
        if prev_dir is not None:
            copy_vasp_outputs(prev_dir, **self.copy_vasp_kwargs)
        self.write_input_set_kwargs.setdefault("from_prev", prev_dir is not None)
        write_vasp_input_set(images[0], self.input_set_generator, **self.write_input_set_kwargs)
        kpoints = self.kpoints_kludge
        if kpoints is True and Path("KPOINTS").exists():
            kpoints = Kpoints.from_file("KPOINTS")
        for index, image in enumerate(images):
            folder = Path(f"{index:02d}")
            folder.mkdir()
            image.to(filename=str(folder / "POSCAR"), fmt="poscar")
            if isinstance(kpoints, Kpoints):
                kpoints.write_file(str(folder / "KPOINTS"))
        for filename, data in self.write_additional_data.items():
            dumpfn(data, filename.replace(":", "."))
        vasp_run.run_vasp(**self.run_vasp_kwargs)
        doc = neb_images_document(Path.cwd(), **self.task_document_kwargs)
        doc.task_label = self.name
        stop_children = vasp_run.should_stop_children(doc, **self.stop_children_kwargs)
        for folder in [Path.cwd(), *map(Path, glob(str(Path.cwd() / "[0-9][0-9]")))]:
            gzip_output_folder(directory=folder, setting=SETTINGS.VASP_ZIP_FILES, files_list=_FILES_TO_ZIP)
        return Response(stop_children=stop_children, stored_data={"custodian": doc.custodian}, output=doc)
