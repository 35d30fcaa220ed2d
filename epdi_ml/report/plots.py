"""Figures of the campaign report: site maps, labelling rounds and per-round learning metrics (PNG).

Energy profiles and parity plots come from :mod:`epdi_ml.analysis.profiles`; this module draws what is
specific to a campaign. Coordinates are Cartesian Angstrom in the slab plane, potentials eV vs vacuum.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from epdi_ml.fragments.potential_map import PotentialMap

#: marker, face colour and legend name of each site label
SITE_STYLES = {
    "T_M": ("^", "white", "valley T_M"),
    "H": ("v", "black", "valley H"),
    "bridge": ("o", "red", "saddle"),
}

#: font size of every legend in these figures (pt)
LEGEND_PT = 9

#: colour of saddles without a CINEB label
UNLABELLED_COLOUR = "0.75"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _cell_outline(ax, lattice_ang: np.ndarray) -> None:
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float) @ lattice_ang
    ax.plot(corners[:, 0], corners[:, 1], color="0.3", lw=0.8, zorder=2)


def _hop_segments(ax, sites: list[dict], hops: list[dict], lattice_ang: np.ndarray) -> None:
    """Grey T_M -> saddle -> H segments (minimum image from the saddle)."""
    by_id = {s["site_id"]: s for s in sites}
    inverse = np.linalg.inv(lattice_ang)
    for hop in hops:
        saddle = np.array(by_id[hop["saddle_id"]]["cart_coords_ang"][:2])
        for valley_id in hop["valley_ids"]:
            delta = np.array(by_id[valley_id]["cart_coords_ang"][:2]) - saddle
            frac = delta @ inverse
            delta = (frac - np.round(frac)) @ lattice_ang
            ax.plot(*np.stack([saddle, saddle + delta]).T, color="0.85", lw=0.6, zorder=2)


def _valleys(ax, sites: list[dict], size: float = 24.0) -> None:
    for label in ("T_M", "H"):
        marker, colour, name = SITE_STYLES[label]
        pts = np.array([s["cart_coords_ang"][:2] for s in sites if s["label"] == label]).reshape(-1, 2)
        if len(pts):
            ax.scatter(
                *pts.T, marker=marker, s=size, c=colour, edgecolors="k", linewidths=0.4, label=name, zorder=3
            )


def _dopant(ax, dopant_xy: Sequence[float] | None, dopant: str | None) -> None:
    if dopant_xy is not None:
        ax.scatter(
            [dopant_xy[0]],
            [dopant_xy[1]],
            marker="*",
            s=160,
            c="magenta",
            edgecolors="k",
            linewidths=0.6,
            label=f"dopant {dopant}",
            zorder=4,
        )


def _finish(fig, ax, path: Path | str, title: str) -> Path:
    """Equal axes, labels, title, and the legend below the axes in the figure's own margin."""
    ax.set_aspect("equal")
    ax.set_xlabel("x (Angstrom)")
    ax.set_ylabel("y (Angstrom)")
    ax.set_title(title, fontsize=11)
    handles, names = ax.get_legend_handles_labels()
    rows = -(-len(handles) // 3)
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=LEGEND_PT, frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.05 * rows, 1, 1))
    out = Path(path)
    fig.savefig(out, dpi=150)
    _pyplot().close(fig)
    return out


def site_map_plot(
    path: Path | str,
    pmap: PotentialMap,
    sites: list[dict],
    hops: list[dict],
    *,
    colour_scale: tuple[float, float, str] | None = None,
    dopant_xy: Sequence[float] | None = None,
    dopant: str | None = None,
    title: str = "",
    tile: int = 1,
) -> Path:
    """Potential map with valleys (T_M, H), saddles, hop segments and the dopant (PNG).

    Parameters
    ----------
    path
        PNG file to write.
    pmap
        The surface's isosurface potential map (eV vs vacuum).
    sites, hops
        Site and hop documents of the surface.
    colour_scale
        ``(vmin_ev, vmax_ev, cmap)``: the dataset scale; ``None``: the map's own range, viridis.
    dopant_xy, dopant
        Cartesian in-plane position (Angstrom) and element of the dopant; ``None`` when pristine.
    title
        Figure title.
    tile
        Cells drawn along a and b (periodic images of the map, sites and hops; the dopant once).
    """
    if int(tile) != tile or tile < 1:
        raise ValueError(f"tile must be an integer >= 1, got {tile}")
    plt = _pyplot()
    lattice = np.asarray(pmap.lattice_ang, dtype=float)
    na, nb = pmap.shape
    frac = np.stack(
        np.meshgrid(
            (np.arange(na * tile + 1) - 0.5) / na, (np.arange(nb * tile + 1) - 0.5) / nb, indexing="ij"
        ),
        axis=-1,
    )
    corners = frac @ lattice
    vmin, vmax, cmap = colour_scale or (float(pmap.values_ev.min()), float(pmap.values_ev.max()), "viridis")
    fig, ax = plt.subplots(figsize=(6, 5.2))
    mesh = ax.pcolormesh(
        corners[..., 0],
        corners[..., 1],
        np.tile(pmap.values_ev, (tile, tile)),
        shading="flat",
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
    )
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    colour_axes = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.1)
    fig.colorbar(mesh, cax=colour_axes, label="potential on isosurface (eV vs vacuum)")
    images = []
    for shift in (np.array([i, j], dtype=float) @ lattice for i in range(tile) for j in range(tile)):
        image = [s | {"cart_coords_ang": list(np.asarray(s["cart_coords_ang"][:2]) + shift)} for s in sites]
        _hop_segments(ax, image, hops, lattice)
        images += image
    sites = images
    _valleys(ax, sites)
    marker, colour, name = SITE_STYLES["bridge"]
    saddles = np.array([s["cart_coords_ang"][:2] for s in sites if s["kind"] == "saddle"]).reshape(-1, 2)
    ax.scatter(
        *saddles.T, marker=marker, s=18, c=colour, edgecolors="k", linewidths=0.4, label=name, zorder=3
    )
    _dopant(ax, dopant_xy, dopant)
    return _finish(fig, ax, path, title)


def rounds_plot(
    path: Path | str,
    lattice_ang: np.ndarray,
    sites: list[dict],
    hops: list[dict],
    labelled_round: dict[str, int],
    *,
    dopant_xy: Sequence[float] | None = None,
    dopant: str | None = None,
    title: str = "",
) -> Path:
    """Saddles coloured by the campaign round in which they were labelled (PNG).

    Parameters
    ----------
    path
        PNG file to write.
    lattice_ang
        In-plane lattice rows a, b (2 x 2, Angstrom).
    sites, hops
        Site and hop documents of the surface.
    labelled_round
        Saddle site id -> round whose selection labelled it by CINEB (``-1``: labelled before
        round 0). Saddles absent from it have no label and are drawn grey.
    dopant_xy, dopant
        Cartesian in-plane position (Angstrom) and element of the dopant; ``None`` when pristine.
    title
        Figure title.
    """
    plt = _pyplot()
    lattice = np.asarray(lattice_ang, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    _cell_outline(ax, lattice)
    _hop_segments(ax, sites, hops, lattice)
    _valleys(ax, sites, size=14.0)
    saddles = [s for s in sites if s["kind"] == "saddle"]
    open_pts = np.array([s["cart_coords_ang"][:2] for s in saddles if s["site_id"] not in labelled_round])
    if len(open_pts):
        ax.scatter(
            *open_pts.reshape(-1, 2).T,
            s=30,
            c=UNLABELLED_COLOUR,
            edgecolors="k",
            linewidths=0.3,
            label="unlabelled",
            zorder=3,
        )
    for n, r in enumerate(sorted(set(labelled_round.values()))):
        pts = np.array([s["cart_coords_ang"][:2] for s in saddles if labelled_round.get(s["site_id"]) == r])
        if len(pts):
            name = "before round 0" if r < 0 else f"selected in round {r}"
            ax.scatter(
                *pts.reshape(-1, 2).T,
                s=42,
                color=f"C{n % 10}",
                edgecolors="k",
                linewidths=0.4,
                label=name,
                zorder=4,
            )
    _dopant(ax, dopant_xy, dopant)
    return _finish(fig, ax, path, title)


def round_metrics_plot(path: Path | str, rounds: Sequence[dict]) -> Path:
    """CV MAE, largest and mean ensemble spread (eV) and the labelled fraction against round (PNG).

    Parameters
    ----------
    path
        PNG file to write.
    rounds
        Round documents (``round``, ``cv_mae_ev``, ``max_spread_ev``, ``mean_spread_ev``,
        ``fraction_labelled``); missing values are skipped.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=150)
    series = (
        ("cv_mae_ev", "-o", "CV MAE"),
        ("max_spread_ev", "-s", "max spread (unlabelled saddles)"),
        ("mean_spread_ev", ":^", "mean spread"),
    )
    for key, style, name in series:
        pts = [(r["round"], r[key]) for r in rounds if r.get(key) is not None]
        if pts:
            ax.plot(*np.array(pts).T, style, label=name)
    ax.set_xlabel("round")
    ax.set_ylabel("eV")
    ax.set_xticks([r["round"] for r in rounds])
    ax.set_ylim(bottom=0.0)
    twin = ax.twinx()
    twin.plot(
        [r["round"] for r in rounds],
        [r["fraction_labelled"] for r in rounds],
        "--",
        color="0.5",
        label="fraction labelled (right)",
    )
    twin.set_ylabel("fraction of distinct hops labelled", color="0.4")
    twin.set_ylim(0, 1.05)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(
        handles=handles,
        fontsize=LEGEND_PT,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=2,
        frameon=False,
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
