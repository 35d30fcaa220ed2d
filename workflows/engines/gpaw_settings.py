"""Settings of the GPAW engine and the keyword arguments of ``gpaw.GPAW`` they map to.

One home for what defines a GPAW calculation here (mode, basis, grid spacing, k-mesh, smearing,
spin, D3), shared by the statics (:mod:`workflows.engines.gpaw_engine`) and the relaxations and
CINEB (:mod:`workflows.engines.gpaw_dynamics`). Nothing here imports GPAW.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

#: Starting magnetic moments (Bohr magnetons) for spin-polarised runs, by element: high-spin d
#: counts of the 3d metals that EPDI uses as dopants (or hosts, V in VS2/VSe2).
DEFAULT_INITIAL_MAGMOMS: dict[str, float] = {
    "V": 3.0,
    "Cr": 4.0,
    "Mn": 5.0,
    "Fe": 4.0,
    "Co": 3.0,
    "Ni": 2.0,
    "Cu": 1.0,
}


class GpawSettings(BaseModel):
    """Settings of a GPAW static.

    Attributes
    ----------
    mode
        ``"lcao"`` (localised basis, fast; the embedded default) or ``"pw"`` (plane waves).
    basis
        LCAO basis set name; ``gpaw-data`` ships ``"dzp"`` for every element.
    ecut_ev
        Plane-wave cutoff (eV) in ``"pw"`` mode; DESIGN.md's ENCUT is 500 eV.
    h_ang
        Target spacing of the coarse real-space grid (Angstrom). The potential and density are
        returned on the fine grid, twice as dense along each axis.
    kpts
        Gamma-centred ``(k1, k2, k3)`` mesh; the default is Gamma only. Like the VASP engine, a
        ``k x k x 1`` mesh follows the supercell: ``k = max(1, ceil(6 / n))`` for an ``n x n x 1``
        supercell (:func:`kpts_for_supercell`), i.e. 2x2x1 for 3x3x1 and Gamma for 6x6x1.
    spin_polarized
        Collinear spin polarisation, with starting moments from ``initial_magmoms`` on the atoms
        of those elements (magnetic dopants) and zero on all others.
    initial_magmoms
        Starting magnetic moment per element (Bohr magnetons).
    d3
        Add DFT-D3 (PBE parameters, zero damping: VASP ``IVDW = 11``) from the ``dftd3`` package.
    xc
        Exchange-correlation functional.
    smearing_ev
        Fermi-Dirac smearing width (eV).
    convergence
        GPAW SCF criteria: ``energy`` (eV per valence electron), ``density`` (electrons per
        valence electron), ``eigenstates`` (eV^2 per valence electron).
    maxiter
        SCF iteration limit; beyond it :class:`GpawScfNotConverged` is raised.
    txt
        GPAW text log; relative paths are taken inside the work directory, ``None`` for no log.

    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: str = Field("lcao", pattern="^(lcao|pw)$")
    basis: str = "dzp"
    ecut_ev: float = Field(500.0, gt=0)
    h_ang: float = Field(0.2, gt=0.05, le=0.4)
    kpts: tuple[int, int, int] = (1, 1, 1)
    spin_polarized: bool = False
    initial_magmoms: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_INITIAL_MAGMOMS))
    d3: bool = True
    xc: str = "PBE"
    smearing_ev: float = Field(0.05, ge=0)
    convergence: dict[str, float] = Field(
        default_factory=lambda: {"energy": 5.0e-5, "density": 1.0e-5, "eigenstates": 4.0e-8}
    )
    maxiter: int = Field(200, ge=1)
    txt: str | None = "gpaw.txt"

    @property
    def functional(self) -> str:
        """Name of the level of theory."""
        return f"{self.xc}+D3(zero)" if self.d3 else self.xc


def kpts_for_supercell(size: int) -> tuple[int, int, int]:
    """Gamma-centred ``k x k x 1`` mesh for an ``size x size x 1`` supercell: ``k = max(1, ceil(6/size))``."""
    if size < 1:
        raise ValueError(f"supercell size {size} must be >= 1")
    k = max(1, math.ceil(6 / size))
    return (k, k, 1)


def initial_magmoms(symbols: list[str], settings: GpawSettings) -> list[float]:
    """Starting moments (Bohr magnetons) per atom: ``settings.initial_magmoms`` by element, else 0."""
    return [float(settings.initial_magmoms.get(symbol, 0.0)) for symbol in symbols]


def gpaw_kwargs(settings: GpawSettings, txt: str | None, slab: bool = True) -> dict:
    """Keyword arguments of ``gpaw.GPAW`` for ``settings``; the one place they are spelled out.

    Parameters
    ----------
    settings
        Engine settings.
    txt
        GPAW text log path, or ``None`` for none.
    slab
        A slab (dipole layer along z, the settings' k-mesh); ``False`` for an isolated atom in a
        box (Gamma point, no dipole layer).

    """
    mode: str | dict = "lcao" if settings.mode == "lcao" else {"name": "pw", "ecut": settings.ecut_ev}
    kwargs: dict = {
        "mode": mode,
        "xc": settings.xc,
        "h": settings.h_ang,
        "kpts": {"size": tuple(settings.kpts) if slab else (1, 1, 1), "gamma": True},
        "occupations": {"name": "fermi-dirac", "width": settings.smearing_ev},
        "convergence": dict(settings.convergence),
        "maxiter": settings.maxiter,
        "txt": txt,
    }
    if slab:
        kwargs["poissonsolver"] = {"dipolelayer": "xy"}
    if settings.mode == "lcao":
        kwargs["basis"] = settings.basis
    if settings.spin_polarized:
        kwargs["spinpol"] = True
    return kwargs
