"""Relaxations and climbing-image NEB through ASE, for any engine that gives an ASE calculator.

The physics steps of the ``chgnet`` and ``gpaw`` engines are the same ASE runs with different
calculators: BFGS relaxations with the cell fixed and the bottom anion layer held, and CINEB with
the improved tangent, a climbing image and one calculator per image (ASE's shared-calculator mode
recomputes every image at every step). An engine supplies a :class:`DynamicsEngine`: its name, the
force threshold and step limit, and a factory of counting calculators.

Progress (only with ``show_progress``): a step counter per optimisation that names the step limit
but counts to convergence (a bar on a terminal; plain lines in a log file or batch job, see
:mod:`stores.progress`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.mixing import SumCalculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.mep import NEB
from ase.optimize import BFGS, FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from stores.progress import progress
from workflows.engines.neb_checkpoint import NebCheckpoint, NebProgress

#: ASE optimisers a CINEB can run with (``optimizer`` of :func:`cineb`). FIRE (Bitzek et al., Phys.
#: Rev. Lett. 97, 170201 (2006)) is the default; BFGS uses only the NEB forces, as ASE's BFGS does,
#: so the NEB's non-conservative forces do not spoil its Hessian update.
CINEB_OPTIMIZERS: dict[str, type] = {"fire": FIRE, "bfgs": BFGS}

#: height above the lowest slab atom within which atoms count as the bottom layer (Angstrom)
BOTTOM_LAYER_TOL_ANG = 0.3


class CountingSum(SumCalculator):
    """A sum of ASE calculators that counts how many times energies and forces were computed."""

    def __init__(self, calcs: Sequence[Calculator]):
        super().__init__(list(calcs))
        self.force_calls = 0

    def calculate(self, atoms=None, properties=("energy", "forces"), system_changes=all_changes):
        """Compute and count."""
        self.force_calls += 1
        super().calculate(atoms, properties, system_changes)


class DynamicsEngine(Protocol):
    """What an engine gives the ASE runs: limits, constraints and a calculator factory."""

    fmax_ev_ang: float
    max_steps: int
    fix_bottom_layer: bool
    show_progress: bool

    def prepare(self, atoms: Atoms) -> None:
        """Set per-atom starting values (e.g. magnetic moments) before the first step."""
        ...

    def calculator(self, atoms: Atoms, label: str) -> CountingSum:
        """A new counting calculator for ``atoms``; ``label`` names its log (e.g. ``image-02``)."""
        ...


@dataclass
class RelaxResult:
    """Outcome of a relaxation (energies in eV, forces in eV/Angstrom)."""

    structure: Structure
    energy_ev: float
    force_calls: int
    converged: bool
    wall_time_s: float
    fmax_ev_ang: float
    steps: int = 0


@dataclass
class NebResult:
    """Outcome of a CINEB run (image 0 and -1 are the fixed end points)."""

    images: list[Structure]
    energies_ev: list[float]
    climbing_image: int
    force_calls: int
    converged: bool
    fmax_ev_ang: float
    wall_time_s: float
    steps: int = 0
    history: list[float] = field(default_factory=list)


def bottom_layer_indices(symbols: Sequence[str], z_ang: Sequence[float]) -> list[int]:
    """Indices of the bottom slab layer: within :data:`BOTTOM_LAYER_TOL_ANG` of the lowest slab atom.

    Li is never counted as slab. Every engine holds these atoms fixed in relaxations and CINEB
    (ASE ``FixAtoms`` here, VASP selective dynamics in :mod:`workflows.engines.vasp_dynamics`).
    """
    z = np.asarray(z_ang, dtype=float)
    slab = [i for i, s in enumerate(symbols) if s != "Li"]
    bottom = min(z[slab])
    return [i for i in slab if z[i] < bottom + BOTTOM_LAYER_TOL_ANG]


def to_atoms(structure: Structure, fix_bottom_layer: bool) -> Atoms:
    """ASE atoms of ``structure``, the bottom slab layer fixed when asked (Li is never fixed)."""
    atoms = AseAtomsAdaptor.get_atoms(structure)
    if fix_bottom_layer:
        fixed = bottom_layer_indices(atoms.get_chemical_symbols(), atoms.positions[:, 2])
        atoms.set_constraint(FixAtoms(indices=fixed))
    return atoms


def to_structure(atoms: Atoms) -> Structure:
    """Pymatgen Structure of ``atoms`` without the constraint site properties."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    for prop in list(structure.site_properties):
        structure.remove_site_property(prop)
    return structure


def progress_bar(desc: str, max_steps: int, show: bool) -> Any:
    """A step counter for one optimisation (hidden unless ``show``; :func:`stores.progress.progress`).

    It has no total: an optimisation ends at convergence, so the step limit is only named.
    """
    return progress(desc=f"{desc} (limit {max_steps} steps)", unit="step", show=show, leave=False)


def max_force_ev_ang(forces: np.ndarray) -> float:
    """Largest per-atom force norm (eV/Angstrom) of an ``(n, 3)`` (or ``(..., n, 3)``) array."""
    return float(np.sqrt((np.asarray(forces) ** 2).sum(axis=-1)).max())


def relax(
    structure: Structure,
    engine: DynamicsEngine,
    desc: str = "relax",
    checkpoint: NebCheckpoint | None = None,
) -> RelaxResult:
    """Relax atomic positions (cell fixed) with BFGS to ``engine.fmax_ev_ang``.

    Parameters
    ----------
    structure
        Starting structure.
    engine
        Engine limits and calculator factory.
    desc
        Label of the progress bar and of the calculator's log.
    checkpoint
        Progress file (:mod:`workflows.engines.neb_checkpoint`, one image): written after every
        step, and a run with the same key starts from its positions and counters (BFGS restarts
        its Hessian there, which changes the path to convergence, not the result).

    """
    start = time.perf_counter()
    atoms = to_atoms(structure, engine.fix_bottom_layer)
    done = checkpoint.load([atoms]) if checkpoint is not None else None
    if done is not None:
        atoms.positions = done.positions_ang[0]
    done = done or NebProgress(positions_ang=[])
    engine.prepare(atoms)
    calc = engine.calculator(atoms, desc)
    atoms.calc = calc
    opt = BFGS(atoms, logfile=None)
    bar = progress_bar(desc, engine.max_steps, engine.show_progress)
    bar.update(done.steps)
    energies = list(done.history)

    def _observe() -> None:
        if opt.nsteps == 0 and done.steps:
            return  # the resumed start
        bar.update(1 if opt.nsteps else 0)  # ASE also observes the start (step 0)
        energies.append(float(atoms.get_potential_energy()))
        if checkpoint is not None:
            progress = NebProgress(
                positions_ang=[atoms.positions],
                steps=done.steps + opt.nsteps,
                force_calls=done.force_calls + calc.force_calls,
                wall_time_s=done.wall_time_s + time.perf_counter() - start,
                history=energies,
            )
            checkpoint.save([atoms], progress)

    opt.attach(_observe)
    converged = bool(opt.run(fmax=engine.fmax_ev_ang, steps=max(engine.max_steps - done.steps, 0)))
    bar.close()
    return RelaxResult(
        structure=to_structure(atoms),
        energy_ev=float(atoms.get_potential_energy()),
        force_calls=done.force_calls + calc.force_calls,
        converged=converged,
        wall_time_s=done.wall_time_s + time.perf_counter() - start,
        fmax_ev_ang=max_force_ev_ang(atoms.get_forces()),
        steps=done.steps + opt.nsteps,
    )


def cineb(
    start: Structure,
    end: Structure,
    start_energy_ev: float,
    end_energy_ev: float,
    engine: DynamicsEngine,
    n_images: int = 3,
    desc: str = "cineb",
    initial_images: Sequence[Structure] | None = None,
    checkpoint: NebCheckpoint | None = None,
    optimizer: str = "fire",
) -> NebResult:
    """Climbing-image NEB between two relaxed end points (improved tangent, FIRE or BFGS).

    Parameters
    ----------
    start, end
        Relaxed end points with the same atom order.
    start_energy_ev, end_energy_ev
        Their energies (eV); the end points are not recomputed.
    engine
        Engine limits (force threshold, step limit) and calculator factory (one per image).
    n_images
        Number of intermediate images (>= 3 per DESIGN.md).
    desc
        Label of the progress bar; image logs are ``<desc>-image-NN``.
    initial_images
        Intermediate images to start from (a preconverged path of another engine, same atom order);
        ``None`` interpolates with IDPP between the end points.
    checkpoint
        Progress file of this run: written after every step; when it holds progress of the same run
        (same key and atoms), the run resumes from its images, and steps, force calls, wall time
        and history count from where it stopped (``engine.max_steps`` bounds the total).
    optimizer
        A key of :data:`CINEB_OPTIMIZERS`. A resumed run restarts it from rest (FIRE's velocities,
        BFGS's Hessian are not kept).

    """
    if optimizer not in CINEB_OPTIMIZERS:
        known = ", ".join(CINEB_OPTIMIZERS)
        raise ValueError(f"CINEB optimizer {optimizer!r} is not known; accepted: {known}")
    if n_images < 1:
        raise ValueError("CINEB needs at least one intermediate image")
    if initial_images is not None and len(initial_images) != n_images:
        raise ValueError(f"{len(initial_images)} initial images given for a CINEB of {n_images}")
    t0 = time.perf_counter()
    first, last = to_atoms(start, engine.fix_bottom_layer), to_atoms(end, engine.fix_bottom_layer)
    for atoms, energy in ((first, start_energy_ev), (last, end_energy_ev)):
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    images, calcs = [first], []
    for n in range(n_images):
        image = first.copy()
        if initial_images is not None:
            image.positions = to_atoms(initial_images[n], False).positions
        image.set_constraint(first.constraints)
        engine.prepare(image)
        image.calc = engine.calculator(image, f"{desc}-image-{n + 1:02d}")
        calcs.append(image.calc)
        images.append(image)
    images.append(last)
    neb = NEB(images, climb=True, method="improvedtangent", allow_shared_calculator=False)
    middle = images[1:-1]
    done = checkpoint.load(middle) if checkpoint is not None else None
    if done is not None:
        for image, positions in zip(middle, done.positions_ang, strict=True):
            image.positions = positions
    elif initial_images is None:
        neb.interpolate(method="idpp", mic=True)
    done = done or NebProgress(positions_ang=[])
    opt = CINEB_OPTIMIZERS[optimizer](neb, logfile=None)
    bar = progress_bar(desc, engine.max_steps, engine.show_progress)
    bar.update(done.steps)
    history = list(done.history)

    def _calls() -> int:
        return done.force_calls + sum(c.force_calls for c in calcs)

    def _observe() -> None:
        if opt.nsteps == 0 and done.steps:
            return  # the resumed start: its energies are the last ones saved
        bar.update(1 if opt.nsteps else 0)  # ASE also observes the start (step 0)
        history.append(max(float(i.get_potential_energy()) for i in middle))
        if checkpoint is not None:
            progress = NebProgress(
                positions_ang=[i.positions for i in middle],
                steps=done.steps + opt.nsteps,
                force_calls=_calls(),
                wall_time_s=done.wall_time_s + time.perf_counter() - t0,
                history=history,
            )
            checkpoint.save(middle, progress)

    opt.attach(_observe)
    converged = bool(opt.run(fmax=engine.fmax_ev_ang, steps=max(engine.max_steps - done.steps, 0)))
    bar.close()
    energies = [float(i.get_potential_energy()) for i in images]
    return NebResult(
        images=[to_structure(i) for i in images],
        energies_ev=energies,
        climbing_image=int(np.argmax(energies[1:-1]) + 1),
        force_calls=_calls(),
        converged=converged,
        fmax_ev_ang=max_force_ev_ang(neb.get_forces().reshape(n_images, -1, 3)),
        wall_time_s=done.wall_time_s + time.perf_counter() - t0,
        steps=done.steps + opt.nsteps,
        history=history,
    )
