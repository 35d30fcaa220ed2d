"""The vacuum level of a slab's electrostatic potential: one rule for every engine and every map.

Potential maps are referenced to the vacuum level, so that maps of different surfaces and engines
compare. The rule is the same wherever the level is taken (GPAW statics, imported VASP LOCPOTs, and
maps whose calculation recorded none):

1. average the potential over each (a, b) plane of the grid: the planar average along c;
2. take the vacuum on the top side of the slab (where Li sits): the planes from the top of the slab
   up to the dipole step, i.e. the first half of the vacuum gap in a periodic cell (VASP's dipole
   correction puts the step in the middle of the vacuum) or up to the top face of GPAW's
   non-periodic cell (where its dipole layer sits);
3. in that run, the window of :data:`VACUUM_WINDOW_ANG` with the least peak-to-peak spread lands far
   from the surface, where the potential is flattest: its mean is the vacuum level and its spread
   says how flat the vacuum is (:data:`VACUUM_FLATNESS_EV`).
"""

from __future__ import annotations

import numpy as np

#: a slab is built with, and an imported cell must show, at least this much vacuum along c (Angstrom):
#: thinner puts the periodic images within bonding distance, and an imported cell is taken as bulk
MIN_VACUUM_ANG = 5.0

#: width of the window the vacuum level is averaged over (Angstrom)
VACUUM_WINDOW_ANG = 1.0

#: a vacuum whose flattest window still varies by more than this (eV) has no reliable level
VACUUM_FLATNESS_EV = 0.05


def planar_average(potential_ev: np.ndarray) -> np.ndarray:
    """The potential averaged over each (a, b) plane of a ``(na, nb, nc)`` grid: ``(nc,)`` in eV."""
    return np.asarray(potential_ev, dtype=float).mean(axis=(0, 1))


def window_planes(n_planes: int, c_height_ang: float, window_ang: float = VACUUM_WINDOW_ANG) -> int:
    """Number of grid planes along c in a window of ``window_ang`` (at least one)."""
    return max(1, round(window_ang / c_height_ang * n_planes))


def flattest_window(
    planar_ev: np.ndarray, first_plane: int, n_planes: int, width: int
) -> tuple[float, float]:
    """Vacuum level and flatness (eV) from ``n_planes`` planes upward from ``first_plane``.

    Parameters
    ----------
    planar_ev
        Planar-averaged potential along c (:func:`planar_average`), eV.
    first_plane, n_planes
        The run of planes between the top of the slab and the dipole step; indices wrap around the
        periodic cell.
    width
        Planes per averaging window (:func:`window_planes`); the whole run when it is shorter.

    Returns
    -------
    tuple
        ``(level_ev, spread_ev)``: mean and peak-to-peak spread of the flattest window.
    """
    planar = np.asarray(planar_ev, dtype=float)
    if n_planes < 1:
        raise ValueError("no vacuum planes on the top side of the slab")
    values = planar[(first_plane + np.arange(n_planes)) % planar.size]
    width = max(1, min(width, values.size))
    windows = np.lib.stride_tricks.sliding_window_view(values, width)
    spread = windows.max(axis=1) - windows.min(axis=1)
    best = int(np.argmin(spread))
    return float(windows[best].mean()), float(spread[best])
