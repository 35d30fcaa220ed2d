"""Physical sanity flags of labels and predictions: shown, counted, never hidden.

Hop flags (:data:`HOP_FLAGS`):

``saddle_below_valley``
    A predicted saddle binds Li more strongly than one of its valleys (``E_b(sp) > E_b(vp)``): a
    negative forward or reverse barrier, impossible for a saddle.
``out_of_domain``
    An unlabelled hop whose saddle prediction has no labelled neighbour in the model's embeddings:
    it lies farther from the labelled saddles than any calibration site did
    (:class:`epdi_ml.training.calibration.Calibration`); its interval is an extrapolation.
``endpoint_not_minimum``
    A CINEB with an interior image, between the saddle (highest image) and an end point, below that
    end point (by more than :data:`ENDPOINT_TOLERANCE_EV`): that relaxed valley is not the minimum
    next to the saddle, so the barrier measured from it is not the hop's barrier. The hop is
    marked; it is not re-relaxed.
``cineb_unconverged``
    A CINEB that stopped with its largest image force above the threshold.

Valley flag: ``left_valley`` (Li relaxed into another valley).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: an interior CINEB image this far (eV) below its end point marks the end point as not a minimum
ENDPOINT_TOLERANCE_EV = 1e-3

HOP_FLAGS = {
    "saddle_below_valley": "predicted saddle E_b above one of its valleys' E_b (a negative barrier)",
    "out_of_domain": "unlabelled hop farther from the labelled saddles than any calibration site",
    "endpoint_not_minimum": "CINEB interior image below an end point: that end point is not a minimum",
    "cineb_unconverged": "CINEB stopped above its force threshold",
}
VALLEY_FLAGS = {"left_valley": "Li left its valley during the relaxation"}


def endpoint_dips_ev(image_energies_ev: Sequence[float]) -> tuple[float, float]:
    """How far (eV) the lowest image between the saddle and each end point lies below that end point.

    The saddle is the highest image. Returns ``(T_M side, H side)``; a value > 0 means an image on
    that side is lower than its end point, so the end point is not the minimum next to the saddle.
    """
    energies = np.asarray(image_energies_ev, dtype=float)
    top = int(np.argmax(energies))
    first, last = energies[1:top], energies[top + 1 : -1]
    tm = float(energies[0] - first.min()) if first.size else 0.0
    h = float(energies[-1] - last.min()) if last.size else 0.0
    return max(tm, 0.0), max(h, 0.0)


def neb_flags(neb: Mapping) -> list[str]:
    """Flags of a CINEB document (a :class:`stores.schemas.calculations.NebDoc` as a dict)."""
    flags = []
    if max(endpoint_dips_ev(neb["image_energies_ev"])) > ENDPOINT_TOLERANCE_EV:
        flags.append("endpoint_not_minimum")
    if not neb["converged"]:
        flags.append("cineb_unconverged")
    return flags


def neb_issue(neb: Mapping) -> list[str]:
    """One human-readable line per flag of a CINEB (for outlier lists)."""
    lines = []
    flags = neb_flags(neb)
    if "endpoint_not_minimum" in flags:
        energies = np.asarray(neb["image_energies_ev"], dtype=float)
        rel = ", ".join(f"{e:.3f}" for e in energies - energies[0])
        tm, h = endpoint_dips_ev(energies)
        end, dip = ("T_M", tm) if tm >= h else ("H", h)
        lines.append(
            f"CINEB image {dip:.3f} eV below the {end} end point between it and the saddle "
            f"(images relative to T_M: [{rel}] eV): that end point is not a minimum"
        )
    if "cineb_unconverged" in flags:
        lines.append(f"CINEB not converged (fmax {neb['fmax_ev_ang']:.3f} eV/Angstrom)")
    return lines


def count_flags(rows: Iterable[Mapping], flags: Iterable[str] = HOP_FLAGS) -> dict[str, int]:
    """How many rows carry each flag (rows have a ``flags`` list)."""
    rows = list(rows)
    return {flag: sum(flag in r["flags"] for r in rows) for flag in flags}


def flag_text(flags: Sequence[str]) -> str:
    """Flags of one row as one cell (``-`` when none)."""
    return ",".join(flags) if flags else "-"
