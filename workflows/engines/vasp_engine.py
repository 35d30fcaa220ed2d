"""VASP (production engine): PBE-D3 slab settings, atomate2 Makers, custodian handlers, input files.

The Makers are atomate2's own (:class:`~atomate2.vasp.jobs.core.StaticMaker`,
:class:`~atomate2.vasp.jobs.core.RelaxMaker`, :class:`~atomate2.vasp.jobs.neb.NebFromImagesMaker`)
with their input-set generators configured for the EPDI slabs (DESIGN.md, "Static"):

- PBE (``GGA = PE``; atomate2's base set is PBEsol) + D3 zero damping (``IVDW = 11``),
  ``ENCUT = 500`` eV, ``EDIFF = 1e-5`` eV, ``EDIFFG = -0.02`` eV/Angstrom;
- dipole correction along z (``LDIPOL``, ``IDIPOL = 3``);
- spin-polarised (``ISPIN = 2`` and a ``MAGMOM``) only when a magnetic element
  (:data:`workflows.engines.spin.MAGNETIC_ELEMENTS`) is in the cell, else ``ISPIN = 1``;
- an explicit Gamma-centred k x k x 1 mesh, ``k = max(1, ceil(6 / n))`` for an n x n x 1 supercell
  (2 x 2 x 1 for 3 x 3 x 1, Gamma only for 6 x 6 x 1): atomate2's automatic mesh puts kz = 2 on a slab;
- statics write the electrostatic potential (``LVHAR``: LOCPOT) and the density (``LCHARG``: CHGCAR),
  the two grids of an EPDI image.

Custodian runs every job: :func:`vasp_handlers` for statics and relaxations (custodian ``VaspJob``),
:func:`neb_handlers` for CINEB (atomate2's ``JobType.NEB`` runs custodian's ``VaspNEBJob``); they
reach atomate2's ``run_vasp`` through the Makers' ``run_vasp_kwargs``.

:func:`workflows.engines.vasp_inputs.write_vasp_inputs` writes INCAR, KPOINTS, POSCAR(s) and
``POTCAR.spec`` with no POTCAR files, so inputs can be prepared and checked anywhere;
:func:`require_vasp` is only for running.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from custodian.custodian import ErrorHandler
from custodian.vasp.handlers import (
    FrozenJobErrorHandler,
    NonConvergingErrorHandler,
    PositiveEnergyErrorHandler,
    PotimErrorHandler,
    StdErrHandler,
    UnconvergedErrorHandler,
    VaspErrorHandler,
)
from pymatgen.io.vasp import Kpoints

from workflows.engines import EngineUnavailable
from workflows.engines.spin import spin_settings

if TYPE_CHECKING:
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker

    from workflows.engines.vasp_neb import VaspNebFromImagesMaker

VaspKind = Literal["static", "relax", "neb"]
VASP_KINDS: tuple[str, ...] = ("static", "relax", "neb")

#: reciprocal-space sampling target: k * n = 6 for an n x n x 1 supercell of a ~3.2 Angstrom cell
KPOINT_PRODUCT = 6

#: INCAR settings shared by every EPDI VASP job (PBE + D3 zero damping, slab with dipole correction)
PBE_D3_SLAB_INCAR: dict[str, Any] = {
    "GGA": "PE",
    "IVDW": 11,
    "ENCUT": 500,
    "EDIFF": 1e-5,
    "EDIFFG": -0.02,
    "LDIPOL": True,
    "IDIPOL": 3,
    # Gaussian smearing: tetrahedron (ISMEAR = -5, atomate2's static default) fails on a Gamma-only
    # mesh and doped slabs are often metallic
    "ISMEAR": 0,
    "SIGMA": 0.05,
}

#: extra INCAR settings of statics: LOCPOT holds the electrostatic (Hartree + ionic) potential only,
#: not the exchange-correlation part (LVTOT off), and CHGCAR is written
STATIC_INCAR: dict[str, Any] = {"LVHAR": True, "LVTOT": False, "LCHARG": True}

#: relaxations of Li on a slab: fixed cell (ISIF = 2), conjugate gradient; no grids written
RELAX_INCAR: dict[str, Any] = {"ISIF": 2, "IBRION": 2, "NSW": 200, "LVTOT": False, "LAECHG": False}

#: CINEB: fixed cell, no grids written per image; LCLIMB/IOPT/IBRION/POTIM/SPRING/IMAGES come from
#: atomate2's NebSetGenerator(climbing_image=True)
NEB_INCAR: dict[str, Any] = {"ISIF": 2, "NSW": 200, "LVTOT": False, "LAECHG": False}

#: VASP stdout / stderr file names used by atomate2's run_vasp and read by the handlers
VASP_OUTPUT_FILE = "vasp.out"
VASP_STDERR_FILE = "std_err.txt"


# -- settings ----------------------------------------------------------------------------------
def kpoint_mesh(size: int, k: int | None = None) -> Kpoints:
    """Gamma-centred ``k x k x 1`` mesh for an ``size x size x 1`` supercell.

    Parameters
    ----------
    size
        n of the n x n x 1 supercell.
    k
        In-plane divisions; default ``max(1, ceil(6 / size))`` (2 for 3 x 3 x 1, 1 for 6 x 6 x 1).

    """
    if size < 1:
        raise ValueError(f"supercell size must be >= 1, got {size}")
    if k is None:
        k = max(1, math.ceil(KPOINT_PRODUCT / size))
    if k < 1:
        raise ValueError(f"k-point divisions must be >= 1, got {k}")
    return Kpoints.gamma_automatic((k, k, 1))


def incar_settings(
    kind: VaspKind, elements: Iterable[str], updates: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``user_incar_settings`` of a ``kind`` job on a cell holding ``elements``.

    Parameters
    ----------
    kind
        ``"static"``, ``"relax"`` or ``"neb"``.
    elements
        Element symbols in the cell (host metal, anion, dopant, Li); they decide the spin settings.
    updates
        Last-word INCAR overrides (``None`` as a value removes a key, as in atomate2).

    """
    if kind not in VASP_KINDS:
        raise ValueError(f"unknown VASP job kind {kind!r}; accepted: {', '.join(VASP_KINDS)}")
    settings = dict(PBE_D3_SLAB_INCAR)
    settings.update({"static": STATIC_INCAR, "relax": RELAX_INCAR, "neb": NEB_INCAR}[kind])
    settings.update(spin_settings(elements))
    settings.update(updates or {})
    return settings


def _elements(dopant: str | None, host_elements: Sequence[str], with_li: bool) -> list[str]:
    elements = [*host_elements, *([dopant] if dopant else []), *(["Li"] if with_li else [])]
    return sorted(set(elements))


# -- custodian ---------------------------------------------------------------------------------
def vasp_handlers() -> list[ErrorHandler]:
    """Fresh custodian handlers for statics and relaxations (custodian ``VaspJob``).

    Handlers keep state between checks, so every Maker gets new instances.
    """
    return [
        VaspErrorHandler(output_filename=VASP_OUTPUT_FILE),
        UnconvergedErrorHandler(),
        NonConvergingErrorHandler(),
        PotimErrorHandler(),
        PositiveEnergyErrorHandler(),
        FrozenJobErrorHandler(output_filename=VASP_OUTPUT_FILE),
        StdErrHandler(output_filename=VASP_STDERR_FILE),
    ]


def neb_handlers() -> list[ErrorHandler]:
    """Fresh custodian handlers for CINEB (custodian ``VaspNEBJob``).

    Only handlers that read the top folder's stdout/stderr: the OSZICAR/vasprun handlers look in the
    top folder, where an NEB run writes neither, and ``PotimErrorHandler`` would change ``POTIM``,
    which must stay 0 for the VTST optimiser (``IOPT = 1``).
    """
    return [
        VaspErrorHandler(output_filename=VASP_OUTPUT_FILE),
        FrozenJobErrorHandler(output_filename=VASP_OUTPUT_FILE),
        StdErrHandler(output_filename=VASP_STDERR_FILE),
    ]


def _run_vasp_kwargs(job_type: str, handlers: list[ErrorHandler]) -> dict[str, Any]:
    from atomate2.vasp.run import JobType

    return {
        "job_type": JobType(job_type),
        "handlers": handlers,
        "vasp_job_kwargs": {"output_file": VASP_OUTPUT_FILE, "stderr_file": VASP_STDERR_FILE},
    }


# -- atomate2 Makers ---------------------------------------------------------------------------
def static_maker(
    size: int,
    host_elements: Sequence[str],
    dopant: str | None = None,
    kpoints: int | None = None,
    incar_updates: dict[str, Any] | None = None,
    name: str = "epdi static",
) -> StaticMaker:
    """atomate2 ``StaticMaker`` for the bare slab (writes LOCPOT and CHGCAR).

    Parameters
    ----------
    size
        n of the n x n x 1 supercell (sets the k-mesh).
    host_elements
        Host metal and anion, e.g. ``("Mo", "S")``.
    dopant
        Substituted metal, or ``None``.
    kpoints
        In-plane k divisions; default from :func:`kpoint_mesh`.
    incar_updates
        Extra INCAR overrides.
    name
        Job name.

    """
    from atomate2.vasp.jobs.core import StaticMaker
    from atomate2.vasp.sets.core import StaticSetGenerator

    generator = StaticSetGenerator(
        user_incar_settings=incar_settings("static", _elements(dopant, host_elements, False), incar_updates),
        user_kpoints_settings=kpoint_mesh(size, kpoints),
        auto_ismear=False,
    )
    return StaticMaker(
        name=name,
        input_set_generator=generator,
        run_vasp_kwargs=_run_vasp_kwargs("normal", vasp_handlers()),
    )


def relax_maker(
    size: int,
    host_elements: Sequence[str],
    dopant: str | None = None,
    kpoints: int | None = None,
    incar_updates: dict[str, Any] | None = None,
    with_li: bool = True,
    name: str = "epdi relax",
) -> RelaxMaker:
    """atomate2 ``RelaxMaker`` with the cell fixed (``ISIF = 2``) for Li on a slab.

    Parameters are those of :func:`static_maker`; ``with_li`` adds Li to the spin settings.
    """
    from atomate2.vasp.jobs.core import RelaxMaker
    from atomate2.vasp.sets.core import RelaxSetGenerator

    generator = RelaxSetGenerator(
        user_incar_settings=incar_settings("relax", _elements(dopant, host_elements, with_li), incar_updates),
        user_kpoints_settings=kpoint_mesh(size, kpoints),
        auto_ismear=False,
    )
    return RelaxMaker(
        name=name,
        input_set_generator=generator,
        run_vasp_kwargs=_run_vasp_kwargs("normal", vasp_handlers()),
    )


def neb_maker(
    size: int,
    host_elements: Sequence[str],
    dopant: str | None = None,
    kpoints: int | None = None,
    incar_updates: dict[str, Any] | None = None,
    name: str = "epdi cineb",
) -> VaspNebFromImagesMaker:
    """atomate2 ``NebFromImagesMaker`` (reading VASP 5 and 6 folders) for a climbing-image NEB of Li.

    ``make(images)`` takes the full image list, end points included (see
    :func:`~workflows.engines.vasp_inputs.idpp_images`); atomate2 sets ``IMAGES`` from it and runs
    custodian's ``VaspNEBJob``.
    """
    from atomate2.vasp.sets.core import NebSetGenerator

    from workflows.engines.vasp_neb import VaspNebFromImagesMaker

    generator = NebSetGenerator(
        climbing_image=True,
        user_incar_settings=incar_settings("neb", _elements(dopant, host_elements, True), incar_updates),
        user_kpoints_settings=kpoint_mesh(size, kpoints),
    )
    return VaspNebFromImagesMaker(
        name=name,
        input_set_generator=generator,
        run_vasp_kwargs=_run_vasp_kwargs("neb", neb_handlers()),
    )


# -- availability ------------------------------------------------------------------------------
def _vasp_command() -> str:
    from atomate2.settings import Atomate2Settings

    return os.path.expandvars(Atomate2Settings().VASP_CMD)


def require_vasp() -> None:
    """Raise :class:`EngineUnavailable` unless VASP can run here.

    Needs (1) atomate2's ``VASP_CMD`` (environment variable ``ATOMATE2_VASP_CMD`` or ``VASP_CMD`` in
    ``~/.atomate2.yaml``) naming a program found on ``PATH``, and (2) pymatgen's
    ``PMG_VASP_PSP_DIR`` (``~/.config/.pmgrc.yaml`` or the environment) pointing at an existing
    POTCAR folder. Writing inputs (:func:`~workflows.engines.vasp_inputs.write_vasp_inputs`) needs
    neither.
    """
    from pymatgen.core import SETTINGS as PMG_SETTINGS

    problems = []
    command = _vasp_command()
    words = shlex.split(command) if command.strip() else []
    programs = [w for w in words if "vasp" in Path(w).name.lower()] or words[:1]
    missing = [p for p in programs if shutil.which(p) is None]
    if not words or missing:
        problems.append(
            f"VASP command {command!r} not found on PATH "
            "(set ATOMATE2_VASP_CMD, or VASP_CMD in ~/.atomate2.yaml, e.g. 'mpirun -n 16 vasp_std')"
        )
    psp_dir = PMG_SETTINGS.get("PMG_VASP_PSP_DIR")
    if not psp_dir or not Path(str(psp_dir)).expanduser().is_dir():
        where = "is not set" if not psp_dir else f"= {psp_dir} does not exist"
        problems.append(
            f"POTCAR folder PMG_VASP_PSP_DIR {where} "
            "(set PMG_VASP_PSP_DIR in ~/.config/.pmgrc.yaml or the environment: `pmg config --add "
            "PMG_VASP_PSP_DIR /path/to/potcars`)"
        )
    if problems:
        raise EngineUnavailable("engine 'vasp' cannot run here: " + "; ".join(problems))
