"""Electrostatic potential on the top density isosurface of a slab, as a periodic 2D map.

Recipe (EPDI, Chen et al. 2025): for each (i, j) column of the calculation grid, walk down along
-z from the middle of the vacuum gap to the first point where the electron density reaches the
isovalue (default 0.01 e/bohr^3), interpolate the crossing height, and read the electrostatic
potential there. The map is referenced to the vacuum level, so maps of different surfaces compare.

Conventions
-----------
- Potentials are the potential energy of an electron in eV (VASP LOCPOT, GPAW
  ``get_electrostatic_potential``); the map holds ``V(iso) - V(vacuum)`` in eV.
- Density in e/bohr^3; lengths in Angstrom. The cell's a and b lie in the xy plane and c along z.
- The crossing is interpolated in ``log(density)`` between the last grid point below and the first
  at or above the isovalue (exact for exponentially decaying tails, the shape of a density in
  vacuum); the potential is interpolated linearly with the same fraction.
- The map keeps the grid's own (a, b) fractional mesh; :meth:`PotentialMap.sample` reads it at any
  Cartesian in-plane points with periodic spline interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from stores.errors import InputError
from stores.vacuum import flattest_window, planar_average, window_planes

#: the EPDI isovalue of the electron density (e/bohr^3)
DEFAULT_ISOVALUE = 0.01

#: a vacuum gap thinner than this along z is no vacuum (Angstrom)
MIN_GAP_ANG = 2.0


class NoVacuumError(InputError):
    """The cell has no low-density gap along z: it is bulk, or the isovalue is too low."""


@dataclass
class PotentialMap:
    """Potential on the top density isosurface, periodic in the (a, b) plane.

    Attributes
    ----------
    values_ev
        ``(n_a, n_b)`` potential (eV) minus ``vacuum_level_ev``; ``values_ev[i, j]`` belongs to the
        fractional point ``(i / n_a, j / n_b)``.
    z_iso_ang
        ``(n_a, n_b)`` Cartesian height of the isosurface (Angstrom).
    lattice_ang
        2 x 2 in-plane lattice, rows a and b (Angstrom).
    isovalue
        Density isovalue (e/bohr^3).
    vacuum_level_ev
        Vacuum level subtracted (eV, in the input potential's zero).
    vacuum_level_source
        ``"calculation"`` when given, ``"planar_average"`` when estimated here.
    order
        Spline order used by :meth:`sample` (1 bilinear, 3 bicubic).

    """

    values_ev: np.ndarray
    z_iso_ang: np.ndarray
    lattice_ang: np.ndarray
    isovalue: float
    vacuum_level_ev: float
    vacuum_level_source: str = "calculation"
    reference: str = "vacuum"
    order: int = 3
    _coeffs: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Mesh shape ``(n_a, n_b)``."""
        return tuple(self.values_ev.shape)  # type: ignore[return-value]

    @property
    def spacing_ang(self) -> tuple[float, float]:
        """Mesh step along a and b (Angstrom)."""
        lengths = np.linalg.norm(self.lattice_ang, axis=1)
        return float(lengths[0] / self.shape[0]), float(lengths[1] / self.shape[1])

    def fractional_index(self, cart_xy: np.ndarray) -> np.ndarray:
        """Mesh index coordinates ``(2, ...)`` of Cartesian in-plane points ``(..., 2)``."""
        frac = np.asarray(cart_xy, dtype=float) @ np.linalg.inv(self.lattice_ang)
        return np.moveaxis(frac * np.array(self.shape, dtype=float), -1, 0)

    def _spline_coefficients(self) -> np.ndarray:
        if self._coeffs is None:
            self._coeffs = (
                ndimage.spline_filter(self.values_ev, order=self.order, mode="grid-wrap")
                if self.order > 1
                else np.asarray(self.values_ev, dtype=float)
            )
        return self._coeffs

    def sample(self, cart_xy: np.ndarray) -> np.ndarray:
        """Potential (eV vs vacuum) at Cartesian in-plane points ``(..., 2)`` (Angstrom), periodic."""
        points = np.asarray(cart_xy, dtype=float)
        if points.ndim == 1:
            return self.sample_index(self.fractional_index(points[None, :]))[0]
        return self.sample_index(self.fractional_index(points))

    def sample_index(self, index: np.ndarray) -> np.ndarray:
        """Values at mesh index coordinates ``(2, ...)`` (periodic spline interpolation)."""
        return ndimage.map_coordinates(
            self._spline_coefficients(), index, order=self.order, mode="grid-wrap", prefilter=False
        )

    def shifted(self, shift: tuple[int, int]) -> PotentialMap:
        """The same map with its mesh rolled by ``shift`` grid points (for periodicity checks)."""
        return PotentialMap(
            np.roll(self.values_ev, shift, axis=(0, 1)),
            np.roll(self.z_iso_ang, shift, axis=(0, 1)),
            self.lattice_ang.copy(),
            self.isovalue,
            self.vacuum_level_ev,
            self.vacuum_level_source,
            self.reference,
            self.order,
        )

    def mesh_cart_ang(self) -> tuple[np.ndarray, np.ndarray]:
        """Cartesian x and y (Angstrom) of every mesh point, each ``(n_a, n_b)``."""
        fa = np.arange(self.shape[0]) / self.shape[0]
        fb = np.arange(self.shape[1]) / self.shape[1]
        frac = np.stack(np.meshgrid(fa, fb, indexing="ij"), axis=-1)
        cart = frac @ self.lattice_ang
        return cart[..., 0], cart[..., 1]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Circular runs of True in ``mask`` as ``(start, length)``."""
    n = len(mask)
    if mask.all():
        return [(0, n)]
    if not mask.any():
        return []
    first_false = int(np.argmin(mask))
    rolled = np.roll(mask, -first_false)
    runs, k = [], 0
    while k < n:
        if rolled[k]:
            start = k
            while k < n and rolled[k]:
                k += 1
            runs.append(((start + first_false) % n, k - start))
        else:
            k += 1
    return runs


def find_vacuum_gap(
    density: np.ndarray, isovalue: float, c_height_ang: float, min_gap_ang: float = MIN_GAP_ANG
) -> tuple[int, int]:
    """Start plane and length of the largest run of c-planes whose density is all below ``isovalue``.

    Raises
    ------
    NoVacuumError
        No run at least ``min_gap_ang`` thick (bulk cell, or isovalue below the vacuum density).

    """
    nc = density.shape[2]
    empty = density.max(axis=(0, 1)) < isovalue
    runs = _runs(empty)
    if len(runs) == nc or (runs and runs[0][1] == nc):
        raise NoVacuumError(f"the density is below {isovalue} e/bohr^3 everywhere: no slab in the cell")
    if not runs:
        raise NoVacuumError(
            f"no plane along c has density below {isovalue} e/bohr^3 everywhere: a bulk cell has no "
            "surface; give a slab with vacuum"
        )
    start, length = max(runs, key=lambda r: r[1])
    if length * c_height_ang / nc < min_gap_ang:
        raise NoVacuumError(
            f"the widest low-density gap is {length * c_height_ang / nc:.2f} Angstrom thick "
            f"(< {min_gap_ang}): a bulk cell, or a slab without vacuum"
        )
    return start, length


def _height_along_c(lattice: np.ndarray) -> float:
    """Distance between the (a, b) planes of the cell (Angstrom)."""
    return float(abs(np.linalg.det(lattice)) / np.linalg.norm(np.cross(lattice[0], lattice[1])))


def isosurface_potential_map(
    potential_ev: np.ndarray,
    density_e_per_bohr3: np.ndarray,
    lattice_matrix_ang: np.ndarray,
    isovalue: float = DEFAULT_ISOVALUE,
    vacuum_level_ev: float | None = None,
    pixel_ang: float | None = None,
    order: int = 3,
) -> PotentialMap:
    """Potential on the top ``isovalue`` density isosurface, seen along -z, vs the vacuum level.

    Parameters
    ----------
    potential_ev
        ``(n_a, n_b, n_c)`` electrostatic potential energy of an electron (eV).
    density_e_per_bohr3
        Electron density on the same grid (e/bohr^3).
    lattice_matrix_ang
        3 x 3 cell (rows a, b, c; Angstrom) with a, b in the xy plane and c along z.
    isovalue
        Density isovalue (e/bohr^3).
    vacuum_level_ev
        Vacuum level on the top side; ``None`` estimates it as the planar average of the
        potential over the upper half of the vacuum gap (the half next to the top surface is
        skipped where the density tail still changes the potential).
    pixel_ang
        Resample the map onto a mesh with about this step along a and b (Angstrom); ``None``
        keeps the calculation grid.
    order
        Spline order for :meth:`PotentialMap.sample` (1 or 3).

    Returns
    -------
    PotentialMap
        The map on the grid's (a, b) mesh.

    Raises
    ------
    NoVacuumError
        The cell has no vacuum gap (bulk).
    ValueError
        Shapes differ or the cell is not slab-shaped.

    """
    potential = np.asarray(potential_ev, dtype=float)
    density = np.asarray(density_e_per_bohr3, dtype=float)
    lattice = np.asarray(lattice_matrix_ang, dtype=float)
    if potential.ndim != 3 or potential.shape != density.shape:
        raise ValueError(
            f"potential {potential.shape} and density {density.shape} must be 3D grids of the same shape"
        )
    if np.abs(lattice[:2, 2]).max() > 1e-6 or np.linalg.norm(lattice[2, :2]) > 1e-6:
        find_vacuum_gap(density, isovalue, _height_along_c(lattice))  # a bulk cell fails here first
        raise ValueError("the cell must have a, b in the xy plane and c along z")
    na, nb, nc = density.shape
    c_height = float(lattice[2, 2])
    start, length = find_vacuum_gap(density, isovalue, c_height)
    top = (start + length // 2) % nc  # middle of the gap: the scan goes down from here

    # reorder planes so that index 0 is the gap middle and the index grows going down along -z
    order_k = (top - np.arange(nc)) % nc
    rho = density[:, :, order_k]
    pot = potential[:, :, order_k]
    above = rho >= isovalue
    hit = above.argmax(axis=2)  # first plane at/above the isovalue (>= 1: plane 0 is in vacuum)
    if not above.any(axis=2).all():
        raise NoVacuumError("some columns never reach the isovalue: the slab has holes at this isovalue")
    i, j = np.indices((na, nb))
    r_hi, r_lo = rho[i, j, hit], rho[i, j, hit - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_log = (np.log(isovalue) - np.log(r_lo)) / (np.log(r_hi) - np.log(r_lo))
        t_lin = (isovalue - r_lo) / (r_hi - r_lo)
    t = np.where((r_lo > 0) & np.isfinite(t_log), t_log, t_lin)
    t = np.clip(np.nan_to_num(t, nan=1.0), 0.0, 1.0)
    v_iso = pot[i, j, hit - 1] + t * (pot[i, j, hit] - pot[i, j, hit - 1])
    k_iso = top - (hit - 1 + t)  # fractional plane index in the original order
    z_iso = np.mod(k_iso, nc) / nc * c_height

    source = "calculation"
    if vacuum_level_ev is None:
        # the rule of stores.vacuum on the first half of the low-density gap, above the top surface
        width = window_planes(nc, c_height)
        vacuum_level_ev, _ = flattest_window(planar_average(potential), start, max(1, length // 2), width)
        source = "planar_average"

    result = PotentialMap(
        values_ev=v_iso - vacuum_level_ev,
        z_iso_ang=z_iso,
        lattice_ang=lattice[:2, :2].copy(),
        isovalue=float(isovalue),
        vacuum_level_ev=float(vacuum_level_ev),
        vacuum_level_source=source,
        order=order,
    )
    if pixel_ang is not None:
        result = resample(result, pixel_ang)
    return result


def resample(pmap: PotentialMap, pixel_ang: float) -> PotentialMap:
    """The map on a new (a, b) mesh with about ``pixel_ang`` step (periodic spline interpolation)."""
    lengths = np.linalg.norm(pmap.lattice_ang, axis=1)
    na, nb = (max(2, int(np.ceil(length / pixel_ang))) for length in lengths)
    frac = np.stack(np.meshgrid(np.arange(na) / na, np.arange(nb) / nb, indexing="ij"), axis=-1)
    index = np.moveaxis(frac * np.array(pmap.shape, dtype=float), -1, 0)
    z_coeffs = ndimage.spline_filter(pmap.z_iso_ang, order=3, mode="grid-wrap")
    z_new = ndimage.map_coordinates(z_coeffs, index, order=3, mode="grid-wrap", prefilter=False)
    return PotentialMap(
        pmap.sample(frac @ pmap.lattice_ang),
        z_new,
        pmap.lattice_ang.copy(),
        pmap.isovalue,
        pmap.vacuum_level_ev,
        pmap.vacuum_level_source,
        pmap.reference,
        pmap.order,
    )
