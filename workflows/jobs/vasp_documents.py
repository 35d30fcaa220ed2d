"""Jobs that turn atomate2's VASP outputs into the platform's documents (engine ``vasp``).

atomate2's jobs return emmet documents: ``TaskDoc`` for a relaxation or static (energy from
``vasprun.xml``, final structure from ``CONTCAR``, state, largest force on a free atom), and
:class:`~workflows.engines.vasp_neb.VaspNebImagesDoc` for the intermediate NEB images. The jobs
here read those and write the platform's documents, exactly as the ASE engines' Makers do:

- :func:`slab_document` -> :class:`~stores.schemas.calculations.CalculationDoc` (``calculations``);
- :func:`li_reference_document` -> :class:`~stores.schemas.calculations.LiReferenceDoc`;
- :func:`valley_document` -> :class:`~stores.schemas.calculations.ValleyDoc` (E_b, final valley);
- :func:`neb_document` -> :class:`~stores.schemas.calculations.NebDoc`: the end points are the VASP valley
  relaxations the CINEB started from (VASP does not recompute ``00`` and ``0N``).

Every document records engine ``vasp``, the functional, the requested INCAR/KPOINTS
(:meth:`~workflows.engines.vasp_dynamics.VaspDynamicsSettings.provenance`) and the versions of
VASP and of the packages that wrote and read the files. An output whose atoms differ from the
job's input (a wrong or overwritten folder) is refused with :class:`~stores.errors.RunError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from emmet.core.tasks import TaskDoc
from emmet.core.vasp.task_valid import TaskState
from jobflow import job
from pymatgen.core import Structure

from stores.errors import RunError
from stores.facade import STORE_ACCESS, job_facade
from stores.schemas.calculations import CalculationDoc, LiReferenceDoc, NebDoc, ValleyDoc
from workflows.engines.vasp_dynamics import VaspDynamicsSettings
from workflows.engines.vasp_neb import VaspNebImagesDoc
from workflows.jobs.binding import neb_fields, run_stats, valley_fields


def _plain(structure: Structure | dict) -> Structure:
    """The structure without site properties (selective dynamics, magnetic moments)."""
    out = structure.copy() if isinstance(structure, Structure) else Structure.from_dict(structure)
    for prop in list(out.site_properties):
        out.remove_site_property(prop)
    return out


def _task(task: TaskDoc | dict) -> TaskDoc:
    return task if isinstance(task, TaskDoc) else TaskDoc.model_validate(task)


def _same_atoms(output: Structure, expected: Structure | dict, what: str, folder: str | None) -> None:
    expected = _plain(expected)
    if [s.species_string for s in output] != [s.species_string for s in expected]:
        raise RunError(
            f"VASP output of {what} in {folder} holds {output.composition.formula} but the job's input "
            f"held {expected.composition.formula}: the folder holds another calculation"
        )


def task_summary(task: TaskDoc | dict) -> dict[str, Any]:
    """What the platform reads from an atomate2 ``TaskDoc``.

    Energy (eV) and structure are those of the last calculation; ``force_calls`` counts the ionic
    steps (one energy and force evaluation each) of every calculation custodian ran.
    """
    task = _task(task)
    calcs = task.calcs_reversed or []
    return {
        "energy_ev": float(task.output.energy),
        "structure": _plain(task.output.structure),
        "converged": task.state == TaskState.SUCCESS,
        "fmax_ev_ang": None if task.analysis is None else task.analysis.max_force,
        "force_calls": sum(len(c.output.ionic_steps or []) for c in calcs),
        "wall_time_s": sum(c.output.run_stats.elapsed_time for c in calcs if c.output.run_stats) or None,
        "vasp_version": calcs[0].vasp_version if calcs else None,
        "dir_name": task.dir_name,
    }


def _versions(settings: VaspDynamicsSettings, vasp_version: str | None) -> dict[str, str]:
    return settings.versions() | ({"vasp": vasp_version} if vasp_version else {})


@job(config=STORE_ACCESS)
def slab_document(
    task: TaskDoc | dict,
    initial: Structure | dict,
    calc_id: str,
    surface_id: str,
    settings: VaspDynamicsSettings,
    preconverged_from: str | None = None,
) -> CalculationDoc:
    """The relaxed slab of a VASP ``RelaxMaker`` run as a ``calculations`` document.

    ``preconverged_from`` is the calc_id of the CHGNet relaxed slab it started from, if any.
    """
    out = task_summary(task)
    _same_atoms(out["structure"], initial, "the slab relaxation", out["dir_name"])
    structure = out["structure"]
    doc = CalculationDoc(
        calc_id=calc_id,
        kind="relax",
        engine="vasp",
        functional=settings.functional,
        source_path=out["dir_name"],
        surface_id=surface_id,
        formula=structure.composition.formula,
        natoms=len(structure),
        final_energy_ev=out["energy_ev"],
        structure=structure.as_dict(),
        settings=settings.provenance(),
        converged=out["converged"],
        force_calls=out["force_calls"],
        wall_time_s=out["wall_time_s"],
        versions=_versions(settings, out["vasp_version"]),
        preconverged_from=preconverged_from,
    )
    job_facade().upsert("calculations", [doc])
    return doc


@job(config=STORE_ACCESS)
def li_reference_document(
    task: TaskDoc | dict, reference_id: str, settings: VaspDynamicsSettings
) -> LiReferenceDoc:
    """E(Li) of the isolated atom from a VASP ``StaticMaker`` run."""
    out = task_summary(task)
    _same_atoms(out["structure"], settings.li_atom(), "the isolated Li atom", out["dir_name"])
    doc = LiReferenceDoc(
        reference_id=reference_id,
        engine="vasp",
        settings=settings.reference_settings() | {"vasp": out["vasp_version"], "converged": out["converged"]},
        energy_ev=out["energy_ev"],
    )
    job_facade().upsert("li_references", [doc])
    return doc


@job(config=STORE_ACCESS)
def valley_document(
    task: TaskDoc | dict,
    initial: Structure | dict,
    valley_id: str,
    site: dict[str, Any],
    valley_frac_xy: list[list[float]],
    reference_ev: tuple[float, float],
    settings: VaspDynamicsSettings,
    preconverged_from: str | None = None,
) -> ValleyDoc:
    """The :class:`ValleyDoc` of Li relaxed by VASP from a valley.

    ``site`` holds ``surface_id``, ``site_id``, ``site_index`` and ``label`` of the starting valley;
    ``valley_frac_xy`` the fractional in-plane coordinates of every valley of the surface;
    ``reference_ev`` is ``(E(slab), E(Li atom))`` in eV of the same settings.
    """
    out = task_summary(task)
    structure: Structure = out["structure"]
    _same_atoms(structure, initial, f"valley {site['label']} {site['site_index']}", out["dir_name"])
    what = f"VASP valley relaxation in {out['dir_name']}"
    doc = ValleyDoc(
        valley_id=valley_id,
        **valley_fields(structure, out["energy_ev"], site, valley_frac_xy, reference_ev, what),
        **run_stats(out),
        engine="vasp",
        functional=settings.functional,
        settings=settings.provenance(),
        versions=_versions(settings, out["vasp_version"]),
        preconverged_from=preconverged_from,
    )
    job_facade().upsert("valleys", [doc])
    return doc


@job(config=STORE_ACCESS)
def neb_document(
    images: VaspNebImagesDoc | dict,
    path: list[Structure | dict],
    neb_id: str,
    start: ValleyDoc | dict,
    end: ValleyDoc | dict,
    reference_ev: tuple[float, float],
    hop_id: str,
    settings: VaspDynamicsSettings,
    preconverged_from: str | None = None,
) -> NebDoc:
    """The :class:`NebDoc` of a VASP CINEB between two VASP valley relaxations.

    ``path`` is the image list the NEB started from (end points included), to check that the
    outputs belong to it. Image energies are ``[E(start valley), intermediate images..., E(end
    valley)]``; the saddle is the highest of them, as for every engine
    (:func:`workflows.jobs.binding.neb_fields`), and its E_b uses ``reference_ev`` = (E(slab),
    E(Li atom)) of the same settings. VASP decides convergence (``EDIFFG`` on every image); no force
    is re-derived here, so ``fmax_ev_ang`` is left empty.
    """
    images = images if isinstance(images, VaspNebImagesDoc) else VaspNebImagesDoc.model_validate(images)
    start = start if isinstance(start, ValleyDoc) else ValleyDoc(**start)
    end = end if isinstance(end, ValleyDoc) else ValleyDoc(**end)
    n_images = len(path) - 2
    finals = [_plain(s) for s in images.images or []]
    if len(images.energies or []) != n_images or len(finals) != n_images:
        raise RunError(
            f"VASP NEB in {images.dir_name} holds {len(images.energies or [])} image energies; "
            f"the CINEB was started with {n_images} intermediate images"
        )
    for index, (final, initial) in enumerate(zip(finals, path[1:-1], strict=True), start=1):
        _same_atoms(final, initial, f"NEB image {index:02d}", images.dir_name)
    energies = [start.energy_ev, *map(float, images.energies or []), end.energy_ev]
    steps = images.ionic_steps or []
    walls = [w for w in images.wall_times_s or [] if w is not None]
    doc = NebDoc(
        neb_id=neb_id,
        surface_id=start.surface_id,
        hop_id=hop_id,
        valley_ids=(start.valley_id, end.valley_id),
        **neb_fields(energies, reference_ev),
        climbing_image=int(np.argmax(energies[1:-1]) + 1),
        converged=images.state == TaskState.SUCCESS,
        fmax_ev_ang=None,
        force_calls=sum(steps),
        steps=max(steps, default=None),
        n_images=n_images,
        wall_time_s=max(walls, default=None),
        image_structures=[start.structure, *(s.as_dict() for s in finals), end.structure],
        engine="vasp",
        functional=settings.functional,
        settings=settings.provenance(),
        versions=_versions(settings, images.vasp_version),
        preconverged_from=preconverged_from,
    )
    job_facade().upsert("nebs", [doc])
    return doc
