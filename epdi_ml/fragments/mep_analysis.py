"""Correlation of the fragment MEP with the Li binding energy (paper Figs. 2-3).

Rows join one distinct fragment (a symmetry-class representative) with the binding energy of its
site: valleys from ``valleys`` (:class:`stores.schemas.calculations.ValleyDoc`, by site id), saddles from
``nebs`` (:class:`stores.schemas.calculations.NebDoc`, by hop id -> the hop's saddle site id). An E_b
computed for any member of a class counts for the class.

N_ve, the number of valence electrons of the dopant (of the host metal on a pristine surface), is
the number of electrons outside the last noble-gas core and the filled d shell of main-group
elements: (n-1)d + ns for transition metals, i.e. their IUPAC group number (V 5, Cr 6, Mn 7, Fe 8,
Co 9, Ni 10, Cu 11, Zn 12; hosts Ti/Zr/Hf 4, V/Nb/Ta 5, Mo/W 6), and ns + np for main-group
metals (Al 3s2 3p1 = 3, i.e. group - 10). Source: the IUPAC periodic table group numbers
(pymatgen ``Element.group``), which is how the EPDI paper (Chen et al. 2025) counts N_ve for its
dopants. Al and V are singled out because the paper reports R(N_ve * MEP, E_b) = 0.94 without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pymatgen.core.periodic_table import Element

from epdi_ml.analysis.labels import class_labels, computed_labels
from stores.errors import InputError
from stores.facade import StoreFacade

#: host groups of the paper
HOST_GROUPS = {"VIB": ("Mo", "W"), "IVB": ("Ti", "Zr", "Hf"), "VB": ("V", "Nb", "Ta")}

#: dopants left out of the second N_ve * MEP correlation (paper, Fig. 3)
EXCLUDED_FOR_NVE = ("Al", "V")

KINDS = ("valley", "saddle")


class NoBindingEnergies(InputError, LookupError):
    """No fragment has a binding energy yet."""


def n_valence(symbol: str) -> int:
    """Valence electrons: group number for transition metals (d + s), group - 10 for p-block metals."""
    group = Element(symbol).group
    return group - 10 if group > 12 else group


def pearson_r(x: Iterable[float], y: Iterable[float]) -> float | None:
    """Pearson correlation coefficient, ``None`` with fewer than 3 points or no spread."""
    xa, ya = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if len(xa) < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return None
    return float(np.corrcoef(xa, ya)[0, 1])


def _stat(rows: list[dict], key: str = "mep_ev") -> dict:
    r = pearson_r([row[key] for row in rows], [row["eb_ev"] for row in rows])
    return {"r": None if r is None else round(r, 4), "n": len(rows)}


def correlations(rows: list[dict]) -> dict:
    """Pearson R(MEP, E_b) per kind (all, per host group, per dopant) and R(N_ve * MEP, E_b).

    Parameters
    ----------
    rows
        Dicts with ``kind``, ``eb_ev``, ``mep_ev``, ``group``, ``dopant_label``, ``n_ve``.

    """
    out: dict = {"n_rows": len(rows), "mep": {}, "nve_mep": {}, "units": {"mep": "eV", "eb": "eV"}}
    for kind in KINDS:
        subset = [r for r in rows if r["kind"] == kind]
        groups = sorted({r["group"] for r in subset})
        dopants = sorted({r["dopant_label"] for r in subset})
        out["mep"][kind] = {
            "all": _stat(subset),
            "by_group": {g: _stat([r for r in subset if r["group"] == g]) for g in groups},
            "by_dopant": {d: _stat([r for r in subset if r["dopant_label"] == d]) for d in dopants},
        }
        kept = [r for r in subset if r["dopant_label"] not in EXCLUDED_FOR_NVE]
        out["nve_mep"][kind] = {
            "all": _stat(subset, "nve_mep"),
            "without_Al_V": _stat(kept, "nve_mep"),
        }
    both = [r for r in rows if r["dopant_label"] not in EXCLUDED_FOR_NVE]
    out["nve_mep"]["both"] = {"all": _stat(rows, "nve_mep"), "without_Al_V": _stat(both, "nve_mep")}
    return out


def collect_rows(facade: StoreFacade, engine: str | None = None) -> list[dict]:
    """One row per distinct fragment with a binding energy (eV) and its MEP (eV).

    Raises
    ------
    NoBindingEnergies
        There are fragments but none of them has an E_b (or there are no fragments).

    """
    fragments = facade.query("fragments")
    if not fragments:
        raise NoBindingEnergies("no fragments in the store: run `epdi fragments build --all` first")
    labels = class_labels(fragments, computed_labels(facade, engine))
    metals = {
        s["surface_id"]: s["metal"] for s in facade.query("surfaces", properties=["surface_id", "metal"])
    }
    rows = []
    for frag in fragments:
        if not frag["is_representative"]:
            continue
        eb = labels.get(frag["site_id"])
        if eb is None:
            continue
        element = frag["dopant"] or metals.get(frag["surface_id"])
        n_ve = n_valence(element) if element else None
        rows.append(
            {
                "surface_id": frag["surface_id"],
                "site_id": frag["site_id"],
                "kind": frag["kind"],
                "label": frag["label"],
                "host": frag["host"],
                "group": frag["group"],
                "dopant": frag["dopant"],
                "dopant_label": frag["dopant"] or "pristine",
                "n_ve": n_ve,
                "mep_ev": float(frag["mep_ev"]),
                "eb_ev": float(eb),
                "nve_mep": None if n_ve is None else n_ve * float(frag["mep_ev"]),
            }
        )
    if not rows:
        source = f" from engine {engine}" if engine else ""
        raise NoBindingEnergies(
            f"{len(fragments)} fragments but no binding energies{source} for their sites: run valley "
            "relaxations and CINEB hops first (`epdi barrier ...`), then `epdi analyze mep`"
        )
    return rows


def _colours(labels: list[str]) -> dict[str, tuple]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(sorted(labels))}


def plot_mep_vs_eb(rows: list[dict], path: Path) -> Path:
    """Fig. 2 style: E_b vs MEP, one panel per (kind, host group), coloured by dopant, R in legends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r["group"] for r in rows})
    colours = _colours(list({r["dopant_label"] for r in rows}))
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 7.5), squeeze=False)
    for i, kind in enumerate(KINDS):
        for j, group in enumerate(groups):
            ax = axes[i, j]
            subset = [r for r in rows if r["kind"] == kind and r["group"] == group]
            for dopant in sorted({r["dopant_label"] for r in subset}):
                pts = [r for r in subset if r["dopant_label"] == dopant]
                ax.scatter(
                    [r["mep_ev"] for r in pts],
                    [r["eb_ev"] for r in pts],
                    s=18,
                    color=colours[dopant],
                    label=dopant,
                )
            r_all = pearson_r([r["mep_ev"] for r in subset], [r["eb_ev"] for r in subset])
            title = f"{group} {'vp' if kind == 'valley' else 'sp'}"
            ax.set_title(title + ("" if r_all is None else f"  R = {r_all:.2f}"))
            ax.set_xlabel("MEP (eV vs vacuum)")
            ax.set_ylabel("E_b (eV)")
            if subset:
                ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_nve_mep_vs_eb(rows: list[dict], path: Path) -> Path:
    """Fig. 3 style: E_b vs N_ve * MEP for all dopants and without Al and V."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = _colours(list({r["dopant_label"] for r in rows}))
    usable = [r for r in rows if r["nve_mep"] is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, (name, subset) in zip(
        axes,
        (
            ("all dopants", usable),
            ("without Al and V", [r for r in usable if r["dopant_label"] not in EXCLUDED_FOR_NVE]),
        ),
        strict=True,
    ):
        for kind, marker in (("valley", "o"), ("saddle", "^")):
            for dopant in sorted({r["dopant_label"] for r in subset}):
                pts = [r for r in subset if r["kind"] == kind and r["dopant_label"] == dopant]
                if pts:
                    ax.scatter(
                        [r["nve_mep"] for r in pts],
                        [r["eb_ev"] for r in pts],
                        s=18,
                        marker=marker,
                        color=colours[dopant],
                        label=f"{dopant} {'vp' if kind == 'valley' else 'sp'}",
                    )
        r_all = pearson_r([r["nve_mep"] for r in subset], [r["eb_ev"] for r in subset])
        ax.set_title(name + ("" if r_all is None else f"  R = {r_all:.2f}"))
        ax.set_xlabel("N_ve x MEP (eV)")
        ax.set_ylabel("E_b (eV)")
        if subset:
            ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
