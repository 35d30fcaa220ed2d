"""Li diffusion energy profiles along paths of sites, barriers with uncertainty, and plots.

A path is an ordered list of sites vp → sp → vp → … (valley, saddle, valley, …) with a binding
energy E_b per site in eV (positive = bound): the DFT label where there is one, an ensemble
prediction with its spread elsewhere. The energy along the path is E = −E_b relative to the start,
so ``E_i = E_b,0 − E_b,i``. The local barrier of a hop is ``E_b(vp, start) − E_b(sp)``; the global
barrier is the highest rise of E along the path (``max_j (E_j − min_{i≤j} E_i)``). Uncertainties
are propagated assuming independent site errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from epdi_ml.augment import SADDLE, VALLEY


class PathSite(BaseModel):
    """One site on a diffusion path.

    Attributes
    ----------
    site_id : str
        Site (fragment) id.
    kind : {"valley", "saddle"}
        Site kind.
    binding_energy_ev : float
        E_b in eV (positive = bound).
    std_ev : float
        One-sigma uncertainty of E_b in eV (0 for DFT labels).
    source : {"dft", "predicted"}
        Where E_b comes from.
    """

    site_id: str
    kind: Literal["valley", "saddle"]
    binding_energy_ev: float
    std_ev: float = Field(0.0, ge=0)
    source: Literal["dft", "predicted"] = "dft"


class Barrier(BaseModel):
    """A barrier in eV with its one-sigma uncertainty and where it lies on the path."""

    barrier_ev: float
    std_ev: float
    start_index: int
    top_index: int


class EnergyProfile(BaseModel):
    """Energy profile of a path (see the module docstring for the conventions)."""

    sites: list[PathSite]
    energies_ev: list[float]
    energy_std_ev: list[float]
    local_barriers: list[Barrier]
    global_barrier: Barrier

    @model_validator(mode="after")
    def _lengths(self) -> EnergyProfile:
        if not len(self.sites) == len(self.energies_ev) == len(self.energy_std_ev):
            raise ValueError("sites, energies and uncertainties differ in length")
        return self


def _check_path(sites: Sequence[PathSite]) -> None:
    if len(sites) < 3:
        raise ValueError("a path needs at least valley, saddle, valley")
    for i, site in enumerate(sites):
        expected = VALLEY if i % 2 == 0 else SADDLE
        if site.kind != expected:
            raise ValueError(
                f"site {i} ({site.site_id}) is a {site.kind}; paths alternate valley, saddle, ..."
            )
    if sites[-1].kind != VALLEY:
        raise ValueError("a path ends on a valley")


def build_profile(sites: Sequence[PathSite]) -> EnergyProfile:
    """Energies, local barriers and the global barrier of an alternating valley/saddle path.

    Parameters
    ----------
    sites : sequence of PathSite
        Ordered path vp, sp, vp, ..., vp.

    Returns
    -------
    EnergyProfile
        ``energies_ev[i] = E_b,0 − E_b,i`` with ``σ_i = sqrt(σ_0² + σ_i²)`` (0 at the start); local
        barriers for each hop; the global barrier.
    """
    sites = list(sites)
    _check_path(sites)
    eb = np.array([s.binding_energy_ev for s in sites])
    sd = np.array([s.std_ev for s in sites])
    energies = eb[0] - eb
    e_std = np.sqrt(sd[0] ** 2 + sd**2)
    e_std[0] = 0.0
    local = [
        Barrier(
            barrier_ev=float(eb[j - 1] - eb[j]),
            std_ev=float(np.hypot(sd[j - 1], sd[j])),
            start_index=j - 1,
            top_index=j,
        )
        for j in range(1, len(sites), 2)
    ]
    best = (-np.inf, 0, 0)
    low = 0
    for j in range(len(sites)):
        if energies[j] < energies[low]:
            low = j
        rise = energies[j] - energies[low]
        if rise > best[0]:
            best = (rise, low, j)
    rise, i, j = best
    global_barrier = Barrier(
        barrier_ev=float(rise),
        std_ev=float(np.hypot(sd[i], sd[j]) if i != j else 0.0),
        start_index=i,
        top_index=j,
    )
    return EnergyProfile(
        sites=sites,
        energies_ev=energies.tolist(),
        energy_std_ev=e_std.tolist(),
        local_barriers=local,
        global_barrier=global_barrier,
    )


def mix_labels_and_predictions(
    site_ids: Sequence[str],
    kinds: Sequence[str],
    dft_ev: dict[str, float],
    predicted_ev: dict[str, tuple[float, float]],
) -> list[PathSite]:
    """Assemble a path: the DFT label where present, else the prediction ``(mean, std)``.

    Raises
    ------
    KeyError
        A site has neither a label nor a prediction.
    """
    sites = []
    for site_id, kind in zip(site_ids, kinds, strict=True):
        if site_id in dft_ev:
            sites.append(
                PathSite(site_id=site_id, kind=kind, binding_energy_ev=dft_ev[site_id], source="dft")
            )
        elif site_id in predicted_ev:
            mean, std = predicted_ev[site_id]
            sites.append(
                PathSite(site_id=site_id, kind=kind, binding_energy_ev=mean, std_ev=std, source="predicted")
            )
        else:
            raise KeyError(f"site {site_id} has neither a DFT label nor a prediction")
    return sites


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_profiles(
    path: Path | str,
    predicted: EnergyProfile,
    dft: EnergyProfile | None = None,
    title: str | None = None,
) -> Path:
    """Plot a predicted profile with error bars, optionally against the DFT profile (PNG).

    The x axis is the site index along the path (valleys at even, saddles at odd positions); the y
    axis is E = −E_b relative to the start, in eV.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=150)
    x = np.arange(len(predicted.sites))
    if dft is not None:
        ax.plot(x, dft.energies_ev, "-o", color="black", label="DFT")
    ax.errorbar(
        x,
        predicted.energies_ev,
        yerr=predicted.energy_std_ev,
        fmt="--s",
        color="tab:red",
        capsize=3,
        label="predicted",
    )
    ax.set_xticks(x, [("vp" if s.kind == VALLEY else "sp") for s in predicted.sites])
    ax.set_xlabel("site along the path")
    ax.set_ylabel("E relative to start (eV)")
    gb = predicted.global_barrier
    text = f"global barrier {gb.barrier_ev:.3f} ± {gb.std_ev:.3f} eV"
    if dft is not None:
        text += f" (DFT {dft.global_barrier.barrier_ev:.3f} eV)"
    ax.set_title(title or text, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def parity_plot(
    path: Path | str,
    dft_ev: Sequence[float],
    predicted_ev: Sequence[float],
    std_ev: Sequence[float] | None = None,
    title: str = "test saddles",
) -> Path:
    """Predicted vs DFT E_b (eV) with the MAE in the title (PNG)."""
    plt = _pyplot()
    y, p = np.asarray(dft_ev, float), np.asarray(predicted_ev, float)
    mae = float(np.mean(np.abs(p - y))) if len(y) else float("nan")
    fig, ax = plt.subplots(figsize=(4, 4), dpi=150)
    ax.errorbar(
        y, p, yerr=None if std_ev is None else np.asarray(std_ev), fmt="o", ms=3, alpha=0.7, capsize=2
    )
    if len(y):
        lo, hi = min(y.min(), p.min()), max(y.max(), p.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("DFT E_b (eV)")
    ax.set_ylabel("predicted E_b (eV)")
    ax.set_title(f"{title}: MAE {mae:.4f} eV (n={len(y)})", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def learning_curves_plot(
    path: Path | str, train_loss_ev: Sequence[Sequence[float]], val_mae_ev: Sequence[Sequence[float]]
) -> Path:
    """Per-fold training L1 loss and validation MAE (eV) against epoch, log y axis (PNG)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=150)
    for fold, (train, val) in enumerate(zip(train_loss_ev, val_mae_ev, strict=True)):
        color = f"C{fold % 10}"
        ax.plot(np.arange(1, len(train) + 1), train, "-", color=color, lw=1, label=f"fold {fold} train")
        ax.plot(np.arange(1, len(val) + 1), val, ":", color=color, lw=1.5, label=f"fold {fold} val")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("L1 / MAE (eV)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
