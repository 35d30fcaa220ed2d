"""The barrier vocabulary: one function per barrier, used by every command, document and report.

Energies along a path are ``E = -E_b`` (E_b in eV, positive = bound), so a rise in E is a drop in
E_b. A hop joins its T_M valley and its H valley through one saddle (``HopDoc``).

forward barrier (``forward_barrier_ev``)
    From the hop's T_M valley to its saddle: ``E_b(T_M) - E_b(saddle)``.
reverse barrier (``reverse_barrier_ev``)
    From the hop's H valley to its saddle: ``E_b(H) - E_b(saddle)``.
local barrier (``local_barrier_ev``)
    From the hop's lower valley (the more bound one) to its saddle: the larger of forward and reverse.
global barrier (``global_barrier_ev``)
    Of a path vp -> sp -> vp -> ...: the highest rise of E along it, ``max_j (E_j - min_{i<=j} E_i)``.

For a CINEB the same definitions read on the image energies (eV): the first image is the T_M end
point, the last the H end point, the highest image the saddle (:func:`neb_barriers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

#: one line per barrier, for tables and report captions
DEFINITIONS = {
    "forward_barrier_ev": "forward barrier: saddle above the T_M valley (eV)",
    "reverse_barrier_ev": "reverse barrier: saddle above the H valley (eV)",
    "local_barrier_ev": "local barrier: saddle above the lower of the hop's two valleys (eV)",
    "global_barrier_ev": "global barrier: highest rise of E = -E_b along the path (eV)",
}


class HopBarriers(BaseModel):
    """Forward, reverse and local barrier of one hop (eV)."""

    forward_barrier_ev: float
    reverse_barrier_ev: float
    local_barrier_ev: float


def forward_barrier_ev(tm_eb_ev: float, saddle_eb_ev: float) -> float:
    """Saddle above the T_M valley: ``E_b(T_M) - E_b(saddle)`` (eV)."""
    return float(tm_eb_ev - saddle_eb_ev)


def reverse_barrier_ev(h_eb_ev: float, saddle_eb_ev: float) -> float:
    """Saddle above the H valley: ``E_b(H) - E_b(saddle)`` (eV)."""
    return float(h_eb_ev - saddle_eb_ev)


def local_barrier_ev(tm_eb_ev: float, h_eb_ev: float, saddle_eb_ev: float) -> float:
    """Saddle above the lower (more bound) valley: ``max(E_b(T_M), E_b(H)) - E_b(saddle)`` (eV)."""
    return float(max(tm_eb_ev, h_eb_ev) - saddle_eb_ev)


def hop_barriers(tm_eb_ev: float, h_eb_ev: float, saddle_eb_ev: float) -> HopBarriers:
    """The three barriers of a hop from the E_b (eV) of its T_M valley, H valley and saddle."""
    return HopBarriers(
        forward_barrier_ev=forward_barrier_ev(tm_eb_ev, saddle_eb_ev),
        reverse_barrier_ev=reverse_barrier_ev(h_eb_ev, saddle_eb_ev),
        local_barrier_ev=local_barrier_ev(tm_eb_ev, h_eb_ev, saddle_eb_ev),
    )


def neb_barriers(image_energies_ev: Sequence[float]) -> HopBarriers:
    """The three barriers of a CINEB from its image energies (eV; first = T_M end, last = H end).

    The saddle is the highest image, so every barrier is >= 0.
    """
    energies = np.asarray(image_energies_ev, dtype=float)
    if energies.size < 2:
        raise ValueError("a CINEB has at least its two end points")
    top = float(energies.max())
    return HopBarriers(
        forward_barrier_ev=top - float(energies[0]),
        reverse_barrier_ev=top - float(energies[-1]),
        local_barrier_ev=top - float(min(energies[0], energies[-1])),
    )


def global_barrier(energies_ev: Sequence[float]) -> tuple[float, int, int]:
    """Highest rise of ``energies_ev`` along a path: ``(rise_ev, start_index, top_index)``.

    ``rise = max_j (E_j - min_{i<=j} E_i)``; the start is the lowest point before the top (the
    earliest one on ties). A path that only descends has rise 0 at its first point.
    """
    energies = np.asarray(energies_ev, dtype=float)
    if energies.size == 0:
        raise ValueError("an empty path has no barrier")
    best = (-np.inf, 0, 0)
    low = 0
    for j in range(len(energies)):
        if energies[j] < energies[low]:
            low = j
        rise = energies[j] - energies[low]
        if rise > best[0]:
            best = (float(rise), low, j)
    return best
