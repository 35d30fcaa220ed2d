"""Li diffusion energy profiles along paths of sites, barriers with calibrated intervals, and plots.

A path is an ordered list of sites vp -> sp -> vp -> ... (valley, saddle, valley, ...) with a binding
energy E_b per site in eV (positive = bound): the label where there is one, an ensemble prediction
with its calibrated intervals elsewhere. The energy along the path is E = -E_b relative to the start,
so ``E_i = E_b,0 - E_b,i``. Barriers follow :mod:`epdi_ml.analysis.barriers`: per hop the forward (from T_M),
reverse (from H) and local (from the lower valley) barrier; per path the global barrier (highest
rise). A difference of two sites has the half-width ``sqrt(h_a^2 + h_b^2 - 2 rho h_a h_b)`` at each
level (:func:`epdi_ml.training.calibration.difference_half_width`), ``rho`` the correlation of the fold
members' predictions at both sites (0 when either is a label or the members are unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from epdi_ml.analysis import barriers
from epdi_ml.fragments.augment import SADDLE, VALLEY
from epdi_ml.training.calibration import difference_half_width, member_correlation


class SitePrediction(BaseModel):
    """A predicted E_b (eV) with its calibrated half-widths and fold members.

    ``calibrated`` is False for a prediction stored before calibration existed: its ``ci68_ev`` is
    then the raw ensemble spread and ``ci90_ev`` that spread times 1.645 (a Gaussian guess).
    """

    mean_ev: float
    ci68_ev: float = Field(0.0, ge=0)
    ci90_ev: float = Field(0.0, ge=0)
    members_ev: list[float] | None = None
    out_of_domain: bool = False
    calibrated: bool = True

    @classmethod
    def from_doc(cls, doc: Mapping) -> SitePrediction:
        """From a stored :class:`stores.schemas.models.PredictionDoc` (a dict)."""
        if doc.get("ci68_ev") is None or doc.get("ci90_ev") is None:
            spread = float(doc["std_ev"])
            return cls(mean_ev=doc["mean_ev"], ci68_ev=spread, ci90_ev=1.645 * spread, calibrated=False)
        return cls(
            mean_ev=doc["mean_ev"],
            ci68_ev=doc["ci68_ev"],
            ci90_ev=doc["ci90_ev"],
            members_ev=doc.get("members_ev"),
            out_of_domain=bool(doc.get("out_of_domain", False)),
        )


class PathSite(BaseModel):
    """One site on a diffusion path.

    Attributes
    ----------
    site_id : str
        Site (fragment) id.
    kind : {"valley", "saddle"}
        Site kind.
    label : {"T_M", "H"}, optional
        Valley label (``None`` for saddles or when unknown).
    binding_energy_ev : float
        E_b in eV (positive = bound).
    ci68_ev, ci90_ev : float
        Half-widths of the calibrated 68 % / 90 % intervals of E_b in eV (0 for labels).
    members_ev : list of float, optional
        The fold members' predictions (for correlations between sites).
    source : {"dft", "predicted"}
        Where E_b comes from: ``dft`` (the value's historical spelling) is a computed label of
        whichever engine the store's labels come from, CHGNet included; ``predicted`` a prediction.
    out_of_domain : bool
        A prediction farther from the labels than any calibration site.
    """

    site_id: str
    kind: Literal["valley", "saddle"]
    label: Literal["T_M", "H"] | None = None
    binding_energy_ev: float
    ci68_ev: float = Field(0.0, ge=0)
    ci90_ev: float = Field(0.0, ge=0)
    members_ev: list[float] | None = None
    source: Literal["dft", "predicted"] = "dft"
    out_of_domain: bool = False


class Barrier(BaseModel):
    """A barrier in eV with its calibrated half-widths and where it lies on the path."""

    barrier_ev: float
    ci68_ev: float
    ci90_ev: float
    start_index: int
    top_index: int


class PathHop(BaseModel):
    """One hop of a path: its saddle's index and its forward, reverse and local barriers.

    ``forward`` and ``reverse`` need the valley labels (T_M / H) of the path sites; the local barrier
    is measured from the lower of the two valleys beside the saddle.
    """

    saddle_index: int
    forward: Barrier | None
    reverse: Barrier | None
    local: Barrier
    saddle_below_valley: bool = Field(
        ..., description="E_b(saddle) > E_b of either valley: a barrier < 0, impossible for a true saddle"
    )


class EnergyProfile(BaseModel):
    """Energy profile of a path (see the module docstring for the conventions)."""

    sites: list[PathSite]
    energies_ev: list[float]
    energy_ci68_ev: list[float]
    energy_ci90_ev: list[float]
    hops: list[PathHop]
    global_barrier: Barrier

    @model_validator(mode="after")
    def _lengths(self) -> EnergyProfile:
        if not len(self.sites) == len(self.energies_ev) == len(self.energy_ci68_ev):
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


def _rho(a: PathSite, b: PathSite) -> float:
    if a.members_ev is None or b.members_ev is None or len(a.members_ev) != len(b.members_ev):
        return 0.0
    if a.ci68_ev == 0.0 or b.ci68_ev == 0.0:
        return 0.0  # a label: nothing to correlate with
    return float(member_correlation(np.array(a.members_ev)[:, None], np.array(b.members_ev)[:, None])[0])


def difference(sites: Sequence[PathSite], i: int, j: int) -> Barrier:
    """``E_b,i - E_b,j`` (the rise of E from site i to site j) with its half-widths (eV)."""
    a, b = sites[i], sites[j]
    if i == j:
        return Barrier(barrier_ev=0.0, ci68_ev=0.0, ci90_ev=0.0, start_index=i, top_index=j)
    rho = _rho(a, b)
    return Barrier(
        barrier_ev=float(a.binding_energy_ev - b.binding_energy_ev),
        ci68_ev=float(difference_half_width(a.ci68_ev, b.ci68_ev, rho)),
        ci90_ev=float(difference_half_width(a.ci90_ev, b.ci90_ev, rho)),
        start_index=i,
        top_index=j,
    )


def _path_hop(sites: Sequence[PathSite], j: int) -> PathHop:
    before, after = sites[j - 1], sites[j + 1]
    by_label = {s.label: k for s, k in ((before, j - 1), (after, j + 1)) if s.label}
    tm, h = by_label.get("T_M"), by_label.get("H")
    lower = j - 1 if before.binding_energy_ev >= after.binding_energy_ev else j + 1
    saddle = sites[j].binding_energy_ev
    # the one barrier function gives the value; the interval comes from the same pair of sites
    value = barriers.local_barrier_ev(before.binding_energy_ev, after.binding_energy_ev, saddle)
    return PathHop(
        saddle_index=j,
        forward=difference(sites, tm, j) if tm is not None and h is not None else None,
        reverse=difference(sites, h, j) if tm is not None and h is not None else None,
        local=difference(sites, lower, j).model_copy(update={"barrier_ev": value}),
        saddle_below_valley=saddle > min(before.binding_energy_ev, after.binding_energy_ev),
    )


def build_profile(sites: Sequence[PathSite]) -> EnergyProfile:
    """Energies, per-hop barriers and the global barrier of an alternating valley/saddle path.

    Parameters
    ----------
    sites : sequence of PathSite
        Ordered path vp, sp, vp, ..., vp.

    Returns
    -------
    EnergyProfile
        ``energies_ev[i] = E_b,0 - E_b,i`` with the half-widths of that difference (0 at the start);
        the barriers of every hop; the global barrier (:func:`epdi_ml.analysis.barriers.global_barrier`).
    """
    sites = list(sites)
    _check_path(sites)
    eb = np.array([s.binding_energy_ev for s in sites])
    energies = eb[0] - eb
    rises = [difference(sites, 0, j) for j in range(len(sites))]
    _, i, j = barriers.global_barrier(energies)
    return EnergyProfile(
        sites=sites,
        energies_ev=energies.tolist(),
        energy_ci68_ev=[r.ci68_ev for r in rises],
        energy_ci90_ev=[r.ci90_ev for r in rises],
        hops=[_path_hop(sites, j) for j in range(1, len(sites), 2)],
        global_barrier=difference(sites, i, j),
    )


def mix_labels_and_predictions(
    site_ids: Sequence[str],
    kinds: Sequence[str],
    dft_ev: Mapping[str, float],
    predicted: Mapping[str, SitePrediction | tuple[float, float]],
    labels: Sequence[str | None] | None = None,
) -> list[PathSite]:
    """Assemble a path: the label where present, else the prediction.

    A prediction given as ``(mean, spread)`` (eV) is taken as uncalibrated: its 68 % half-width
    is the spread, its 90 % half-width 1.645 times it.

    Raises
    ------
    KeyError
        A site has neither a label nor a prediction.
    """
    labels = list(labels) if labels is not None else [None] * len(site_ids)
    sites = []
    for site_id, kind, label in zip(site_ids, kinds, labels, strict=True):
        valley_label = label if kind == VALLEY and label in ("T_M", "H") else None
        if site_id in dft_ev:
            sites.append(
                PathSite(
                    site_id=site_id,
                    kind=kind,
                    label=valley_label,
                    binding_energy_ev=dft_ev[site_id],
                    source="dft",
                )
            )
        elif site_id in predicted:
            pred = predicted[site_id]
            if not isinstance(pred, SitePrediction):
                mean, spread = pred
                pred = SitePrediction(mean_ev=mean, ci68_ev=spread, ci90_ev=1.645 * spread, calibrated=False)
            sites.append(
                PathSite(
                    site_id=site_id,
                    kind=kind,
                    label=valley_label,
                    binding_energy_ev=pred.mean_ev,
                    ci68_ev=pred.ci68_ev,
                    ci90_ev=pred.ci90_ev,
                    members_ev=pred.members_ev,
                    source="predicted",
                    out_of_domain=pred.out_of_domain,
                )
            )
        else:
            raise KeyError(f"site {site_id} has neither a label nor a prediction")
    return sites


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_profiles(
    path: Path | str,
    predicted: EnergyProfile,
    labelled: EnergyProfile | None = None,
    title: str | None = None,
    label_name: str = "labels",
) -> Path:
    """Plot a profile with its 68 % intervals, optionally against the profile of labels only (PNG).

    The x axis is the site index along the path (valleys at even, saddles at odd positions); the y
    axis is E = −E_b relative to the start, in eV.

    Parameters
    ----------
    path
        PNG file to write.
    predicted
        The profile drawn with error bars (labels where computed, predictions elsewhere).
    labelled
        The same path from labels only (``None``: not every site is labelled).
    title
        Figure title; by default the global barrier with its 68 % half-width.
    label_name
        Who made the labels, for the legend (e.g. ``CHGNet + D3``, ``GPAW PBE+D3``; see
        :func:`epdi_ml.report.data.label_source_name`).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=150)
    x = np.arange(len(predicted.sites))
    if labelled is not None:
        ax.plot(x, labelled.energies_ev, "-o", color="black", label=f"{label_name} labels")
    ax.errorbar(
        x,
        predicted.energies_ev,
        yerr=predicted.energy_ci68_ev,
        fmt="--s",
        color="tab:red",
        capsize=3,
        label="labels + predictions (68 % interval)",
    )
    ax.set_xticks(x, [("vp" if s.kind == VALLEY else "sp") for s in predicted.sites])
    ax.set_xlabel("site along the path")
    ax.set_ylabel("E relative to start (eV)")
    gb = predicted.global_barrier
    text = f"global barrier {gb.barrier_ev:.3f} ± {gb.ci68_ev:.3f} eV (68 %)"
    if labelled is not None:
        text += f" ({label_name} {labelled.global_barrier.barrier_ev:.3f} eV)"
    ax.set_title(title or text, fontsize=10)
    rows = len(ax.get_legend_handles_labels()[0])
    fig.legend(loc="lower center", fontsize=9, frameon=False)  # below the axes: never over the data
    fig.tight_layout(rect=(0, 0.02 + 0.065 * rows, 1, 1))
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def parity_plot(
    path: Path | str,
    labels_ev: Sequence[float],
    predicted_ev: Sequence[float],
    std_ev: Sequence[float] | None = None,
    title: str = "test saddles",
    label_name: str = "label",
) -> Path:
    """Predicted against labelled E_b (eV) with the MAE in the title (PNG).

    ``std_ev`` gives error bars (eV); ``label_name`` says who made the labels on the x axis (e.g.
    ``CHGNet + D3``, ``GPAW PBE+D3``).
    """
    plt = _pyplot()
    y, p = np.asarray(labels_ev, float), np.asarray(predicted_ev, float)
    mae = float(np.mean(np.abs(p - y))) if len(y) else float("nan")
    fig, ax = plt.subplots(figsize=(4, 4), dpi=150)
    ax.errorbar(
        y, p, yerr=None if std_ev is None else np.asarray(std_ev), fmt="o", ms=3, alpha=0.7, capsize=2
    )
    if len(y):
        lo, hi = min(y.min(), p.min()), max(y.max(), p.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"{label_name} E_b (eV)")
    ax.set_ylabel("predicted E_b (eV)")
    ax.set_title(f"{title}: MAE {mae:.4f} eV (n={len(y)})", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def learning_curves_plot(
    path: Path | str, train_loss_ev: Sequence[Sequence[float]], val_mae_ev: Sequence[Sequence[float]]
) -> Path:
    """Per-fold training L1 loss and validation MAE (eV) against epoch, log y axis (PNG).

    Colour: the fold; solid: training L1 loss, dotted: validation MAE (one legend entry each).
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(6, 4), dpi=150)
    handles = [
        Line2D([], [], color="0.2", ls="-", lw=1, label="training L1"),
        Line2D([], [], color="0.2", ls=":", lw=1.5, label="validation MAE"),
    ]
    for fold, (train, val) in enumerate(zip(train_loss_ev, val_mae_ev, strict=True)):
        color = f"C{fold % 10}"
        dots = "o" if max(len(train), len(val)) < 3 else None  # a line of one epoch draws nothing
        ax.plot(np.arange(1, len(train) + 1), train, "-", color=color, lw=1, marker=dots)
        ax.plot(np.arange(1, len(val) + 1), val, ":", color=color, lw=1.5, marker=dots, mfc="none")
        handles.append(Line2D([], [], color=color, lw=3, label=f"fold {fold}"))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("L1 / MAE (eV)")
    ax.legend(
        handles=handles, fontsize=9, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
