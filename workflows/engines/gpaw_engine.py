"""GPAW (PBE, LCAO or plane waves) + DFT-D3 (zero damping) statics with real potential grids.

The ``gpaw`` engine gives what the EPDI images are cut from: the electrostatic potential of the
bare slab and its all-electron density on one real-space grid. GPAW is built from source
(``deploy/install_gpaw.sh .venv/bin/pip`` or ``make install``); its PAW setups and dzp basis sets
come from the ``gpaw-data`` package, which GPAW finds on its own (``gpaw.setup_paths`` holds
``gpaw_data.datapath()``), so no ``GPAW_SETUP_PATH`` and no download at run time.

Slab conventions
----------------
- The cell is periodic in x and y and non-periodic along z (``pbc = (True, True, False)``), as
  GPAW's dipole layer requires; ``poissonsolver={'dipolelayer': 'xy'}`` removes the spurious field
  of an asymmetric slab. GPAW then holds the potential at zero on the two z faces of the cell, and
  the dipole correction adds opposite offsets to the two faces, so the vacuum levels above and
  below the slab can differ. The slab must sit inside the cell (the builders in
  :mod:`workflows.structures.supercells` centre it at ``z = c/2``).
- ``potential_ev`` is GPAW's electrostatic (Hartree + nuclear, via compensation charges)
  potential energy of an electron, in eV: negative at the nuclei, about zero in the vacuum. VASP's
  LOCPOT has the same sign but a cell-average-zero reference; subtract ``cell_average_potential_ev``
  to compare with it.
- Energies from GPAW are relative to its isolated-atom PAW references, so only differences of
  energies computed with the same settings are meaningful (binding energies, barriers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from stores.errors import RunError
from stores.grids import BOHR_ANG
from stores.vacuum import VACUUM_WINDOW_ANG, flattest_window, planar_average, window_planes
from workflows.engines import EngineUnavailable
from workflows.engines.gpaw_settings import GpawSettings, gpaw_kwargs, initial_magmoms

INSTALL_HINT = "run `deploy/install_gpaw.sh .venv/bin/pip` (or `make install`)"


class GpawScfNotConverged(RunError):
    """GPAW's SCF loop reached ``maxiter`` without meeting the convergence criteria."""


def _setup_paths() -> list[Path]:
    from gpaw import setup_paths

    return [Path(p) for p in setup_paths]


def _find_data_file(name: str) -> Path | None:
    for folder in _setup_paths():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def require_gpaw(elements: tuple[str, ...] = ("Mo", "S"), settings: GpawSettings | None = None) -> None:
    """Raise :class:`EngineUnavailable` unless GPAW, dftd3 and the needed PAW data are here.

    Parameters
    ----------
    elements
        Elements whose PAW setups (and LCAO basis sets) must be found.
    settings
        Settings that decide the functional, mode and basis; defaults when ``None``.

    """
    settings = settings or GpawSettings()
    try:
        import gpaw  # noqa: F401
        import gpaw.cgpaw  # noqa: F401  (the compiled extension)
    except ImportError as exc:
        raise EngineUnavailable(
            f"engine 'gpaw' needs GPAW built for this Python ({exc.name or exc} cannot be imported): "
            f"{INSTALL_HINT}"
        ) from None
    if settings.d3:
        try:
            import dftd3.ase  # noqa: F401
        except ImportError:
            raise EngineUnavailable(
                "engine 'gpaw' needs the dftd3 package for D3: `pip install dftd3` (or `make install`)"
            ) from None
    missing = []
    for element in sorted(set(elements)):
        if _find_data_file(f"{element}.{settings.xc}") is None:
            missing.append(f"{element}.{settings.xc} (PAW setup)")
        if settings.mode == "lcao" and _find_data_file(f"{element}.{settings.basis}.basis") is None:
            missing.append(f"{element}.{settings.basis}.basis (LCAO basis)")
    if missing:
        searched = ", ".join(str(p) for p in _setup_paths()) or "nothing (no gpaw-data, no GPAW_SETUP_PATH)"
        raise EngineUnavailable(
            f"engine 'gpaw' cannot find {', '.join(missing)}; searched {searched}: {INSTALL_HINT} "
            "(it installs gpaw-data) or point GPAW_SETUP_PATH at a folder with these files"
        )


@dataclass
class GpawStaticResult:
    """Outcome of a GPAW(+D3) static on a slab.

    Grids are indexed ``[i, j, k]`` over the cell vectors ``a, b, c``; point ``(i, j, k)`` sits at
    fractional coordinates ``(i/N1, j/N2, k/N3)``.

    Attributes
    ----------
    formula
        Reduced formula of the structure.
    energy_ev
        Total energy, DFT + D3 (eV).
    dft_energy_ev
        GPAW's energy (eV, extrapolated to zero smearing, relative to GPAW's atomic references).
    d3_energy_ev
        D3 dispersion energy (eV); 0 when D3 is off.
    fermi_level_ev
        Fermi level (eV, same reference as ``potential_ev``).
    potential_ev
        Electrostatic potential energy of an electron on the fine grid (eV).
    density_e_per_bohr3
        All-electron density (core included) on the same grid (electrons/bohr^3).
    vacuum_level_ev
        Vacuum level above the slab (+z side, where Li sits), see :func:`vacuum_levels`.
    vacuum_level_bottom_ev
        Vacuum level below the slab (-z side).
    vacuum_flatness_ev
        Peak-to-peak spread of the planar-averaged potential in the window used for
        ``vacuum_level_ev`` (eV).
    cell_average_potential_ev
        Mean of ``potential_ev`` over the cell (eV); subtract it for VASP's LOCPOT reference.
    grid_spacing_ang
        Spacing of the returned grids along ``a, b, c`` (Angstrom).
    scf_iterations
        SCF iterations GPAW needed.
    magnetic_moment_mub
        Total magnetic moment (Bohr magnetons); 0 without spin polarisation.
    wall_time_s
        Wall time of the SCF and the D3 and grid evaluations (s).
    settings
        The settings used, as a dict.

    """

    formula: str
    energy_ev: float
    dft_energy_ev: float
    d3_energy_ev: float
    fermi_level_ev: float
    potential_ev: np.ndarray
    density_e_per_bohr3: np.ndarray
    vacuum_level_ev: float
    vacuum_level_bottom_ev: float
    vacuum_flatness_ev: float
    cell_average_potential_ev: float
    grid_spacing_ang: tuple[float, float, float]
    scf_iterations: int
    magnetic_moment_mub: float
    wall_time_s: float
    settings: dict = field(default_factory=dict)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Shape of the potential and density grids."""
        return tuple(int(n) for n in self.potential_ev.shape)

    @property
    def work_function_ev(self) -> float:
        """Vacuum level above the slab minus the Fermi level (eV)."""
        return self.vacuum_level_ev - self.fermi_level_ev


def vacuum_levels(
    potential_ev: np.ndarray, atom_z_frac: np.ndarray, window_ang: float, c_ang: float
) -> tuple[float, float, float, float]:
    """Vacuum levels above and below a slab from the planar-averaged potential.

    The rule is :mod:`stores.vacuum`'s. GPAW's cell is not periodic along z and its dipole layer
    sits at the faces, so the vacuum above the slab is the run of planes strictly between the
    highest atom and the top face, and the vacuum below the run between the bottom face and the
    lowest atom; each level is the mean of the flattest ``window_ang`` window of its run.

    Parameters
    ----------
    potential_ev
        3D potential grid (eV), point ``k`` at fractional ``z = k / N3``.
    atom_z_frac
        Fractional z of every atom, all inside ``[0, 1)``.
    window_ang
        Width of the averaging window (Angstrom).
    c_ang
        Length of the third cell vector (Angstrom).

    Returns
    -------
    tuple
        ``(top_ev, top_spread_ev, bottom_ev, bottom_spread_ev)``.

    """
    planar = planar_average(potential_ev)
    n3 = planar.shape[0]
    z = np.arange(n3) / n3
    z_lo, z_hi = float(np.min(atom_z_frac)), float(np.max(atom_z_frac))
    if z_lo < 0 or z_hi >= 1:
        raise ValueError("atoms must lie inside the cell along z (fractional z in [0, 1))")
    width = window_planes(n3, c_ang, window_ang)
    above = int(np.count_nonzero(z > z_hi))
    # Point k = 0 is the lower face itself; the top face (k = N3) is not stored separately.
    below = int(np.count_nonzero(z < z_lo))
    if above < 2 or below < 2:
        raise ValueError(
            "no vacuum on one side of the slab: centre the slab in z with several Angstrom of vacuum"
        )
    top_ev, top_spread = flattest_window(planar, n3 - above, above, width)
    bottom_ev, bottom_spread = flattest_window(planar, 0, below, width)
    return top_ev, top_spread, bottom_ev, bottom_spread


def run_gpaw_static(
    structure: Structure,
    settings: GpawSettings | None = None,
    workdir: str | Path = ".",
    vacuum_window_ang: float = VACUUM_WINDOW_ANG,
) -> GpawStaticResult:
    """Run a GPAW (+D3) static on a slab and return energies and the potential/density grids.

    Parameters
    ----------
    structure
        Slab with its normal along the third cell vector, which must be along z and orthogonal to
        the other two (the builders in :mod:`workflows.structures.supercells` make such cells).
    settings
        Engine settings; defaults when ``None``.
    workdir
        Folder for GPAW's text log.
    vacuum_window_ang
        Width of the window for the vacuum level (Angstrom), see :func:`vacuum_levels`.

    Returns
    -------
    GpawStaticResult
        Energies, Fermi and vacuum levels, and the potential (eV) and all-electron density
        (e/bohr^3) on the same fine grid.

    Raises
    ------
    EngineUnavailable
        GPAW, dftd3 or PAW data are missing.
    GpawScfNotConverged
        The SCF did not converge within ``settings.maxiter`` iterations.

    """
    settings = settings or GpawSettings()
    elements = tuple(sorted({site.specie.symbol for site in structure}))
    require_gpaw(elements, settings)

    from gpaw import GPAW, ConvergenceError
    from pymatgen.io.ase import AseAtomsAdaptor

    formula = structure.composition.reduced_formula
    lattice = structure.lattice.matrix
    if np.abs(lattice[2, :2]).max() > 1e-6 or np.abs(lattice[:2, 2]).max() > 1e-6:
        raise ValueError(
            f"{formula}: the dipole layer needs c along z and a, b in the xy plane; got lattice {lattice}"
        )

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.wrap()
    atoms.pbc = (True, True, False)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    txt = None if settings.txt is None else str(workdir / settings.txt)

    kwargs = gpaw_kwargs(settings, txt)
    if settings.spin_polarized:
        atoms.set_initial_magnetic_moments(initial_magmoms(atoms.get_chemical_symbols(), settings))

    start = time.perf_counter()
    calc = GPAW(**kwargs)
    atoms.calc = calc
    try:
        dft_energy = float(atoms.get_potential_energy())
    except ConvergenceError as exc:
        raise GpawScfNotConverged(
            f"GPAW SCF for {formula} did not converge in {settings.maxiter} iterations "
            f"({type(exc).__name__}); raise `maxiter`, loosen `convergence`, increase `smearing_ev`, "
            f"or check the structure and the initial magnetic moments (log: {txt})"
        ) from exc
    scf_iterations = int(calc.get_number_of_iterations())
    fermi = float(calc.get_fermi_level())
    magmom = float(calc.get_magnetic_moment()) if settings.spin_polarized else 0.0

    potential = np.asarray(calc.get_electrostatic_potential(), dtype=float)
    density_per_ang3 = np.asarray(calc.get_all_electron_density(gridrefinement=2), dtype=float)
    if potential.shape != density_per_ang3.shape:
        raise RuntimeError(
            f"{formula}: GPAW returned the electrostatic potential on a {potential.shape} grid but the "
            f"all-electron density (gridrefinement=2) on {density_per_ang3.shape}; they must match "
            "for potential-on-isosurface maps (check the GPAW version and the grid settings)"
        )
    # GPAW returns the density in electrons/Angstrom^3; 1 bohr^3 = BOHR_ANG^3 Angstrom^3.
    density = density_per_ang3 * BOHR_ANG**3

    d3_energy = 0.0
    if settings.d3:
        from dftd3.ase import DFTD3

        d3_atoms = atoms.copy()
        d3_atoms.calc = DFTD3(method="PBE", damping="d3zero")
        d3_energy = float(d3_atoms.get_potential_energy())

    cell_lengths = np.linalg.norm(atoms.cell.array, axis=1)
    spacing = tuple(float(length / n) for length, n in zip(cell_lengths, potential.shape, strict=True))
    top, spread, bottom, _ = vacuum_levels(
        potential, atoms.get_scaled_positions(wrap=True)[:, 2], vacuum_window_ang, float(cell_lengths[2])
    )
    wall = time.perf_counter() - start
    return GpawStaticResult(
        formula=formula,
        energy_ev=dft_energy + d3_energy,
        dft_energy_ev=dft_energy,
        d3_energy_ev=d3_energy,
        fermi_level_ev=fermi,
        potential_ev=potential,
        density_e_per_bohr3=density,
        vacuum_level_ev=top,
        vacuum_level_bottom_ev=bottom,
        vacuum_flatness_ev=spread,
        cell_average_potential_ev=float(potential.mean()),
        grid_spacing_ang=spacing,
        scf_iterations=scf_iterations,
        magnetic_moment_mub=magmom,
        wall_time_s=wall,
        settings=settings.model_dump(),
    )
