"""Which hops a campaign is about: its surfaces, the CINEB candidates, those labelled, round 0's picks.

Plain functions of the spec and the store (no jobs): the campaign flow (:mod:`workflows.flows.campaign`),
its plan (:mod:`workflows.flows.campaign_plan`) and ``epdi status`` read the same answers from here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from epdi_ml.analysis.labels import label_source
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.schemas.surfaces import HopDoc, SurfaceDoc
from stores.settings import get_settings
from workflows.flows.campaign_spec import CampaignSpec
from workflows.flows.neb_step import label_source_for
from workflows.structures.surfaces import StoredSurface, SurfaceBundle, surface_from_request


def campaign_id(spec: CampaignSpec) -> str:
    """Deterministic id of a campaign: its name and the content of its spec."""
    return stable_id("campaign", name=spec.name, spec=spec.model_dump(mode="json"))


def campaign_bundles(
    spec: CampaignSpec, facade: StoreFacade | None = None, hosts_file: Path | None = None
) -> list[SurfaceBundle]:
    """The surfaces of a campaign (built, not stored), from ``hosts_file`` or the store's hosts file."""
    hosts_file = hosts_file or (facade.settings if facade else get_settings()).hosts_file
    return [
        surface_from_request(host, dopant, spec.supercell, spec.vacuum_ang, hosts_file=hosts_file)
        for host, dopant in spec.surfaces()
    ]


def candidate_hops(bundles: list[StoredSurface]) -> list[tuple[StoredSurface, HopDoc]]:
    """One hop per symmetry class of every surface (the class representative): the CINEB candidates."""
    return [
        (bundle, hop)
        for bundle in bundles
        for hop in bundle.hops
        if hop.symmetry.representative_index == hop.index
    ]


def labelled_hop_ids(
    facade: StoreFacade, hop_ids: list[str], spec: CampaignSpec, source: str | None = None
) -> set[str]:
    """Those of ``hop_ids`` that have a CINEB of the campaign's label source and image count.

    ``source``: the campaign's label source (:func:`campaign_label_source`) when the caller has it.

    CINEBs of other engines or settings (another campaign's, a preconverging stage's) do not count;
    an unconverged CINEB counts as done (it is not selected again) but is no label.
    """
    source = source or campaign_label_source(spec)
    docs = facade.query("nebs", {"hop_id": {"$in": hop_ids}, "n_images": spec.neb.images})
    return {d["hop_id"] for d in docs if label_source(d) == source or source == d["engine"] == "vasp"}


def campaign_label_source(spec: CampaignSpec, first: SurfaceDoc | None = None) -> str:
    """The label source of a campaign's valleys and CINEBs (see :mod:`epdi_ml.analysis.labels`).

    ``first``: the document of the campaign's first surface (jobs read it from the store); without
    it that surface is built.
    """
    if first is None:
        host, dopant = spec.surfaces()[0]
        built = surface_from_request(
            host, dopant, spec.supercell, spec.vacuum_ang, hosts_file=get_settings().hosts_file
        )
        first = built.surface
    return label_source_for(spec, first)


def initial_hops(
    campaign: CampaignSpec, candidates: list[tuple[StoredSurface, HopDoc]], labelled: set[str]
) -> list[str]:
    """Round 0's CINEBs: the pristine hop classes of every host, then random ones up to the initial fraction.

    The pristine hop of a host is the reference every doped hop is compared with, so it is always
    labelled first (one CINEB per host). The random fill draws, with ``selection.seed``, from the
    other unlabelled hops until ``ceil(initial_fraction * n)`` distinct hops are labelled (at
    least one). The ``all`` strategy takes every unlabelled hop.
    """
    sel = campaign.selection
    open_ids = [hop.hop_id for _, hop in candidates if hop.hop_id not in labelled]
    if sel.strategy == "all":
        return open_ids
    pristine = [h.hop_id for b, h in candidates if b.surface.dopant is None and h.hop_id not in labelled]
    others = [i for i in open_ids if i not in set(pristine)]
    wanted = max(1, math.ceil(sel.initial_fraction * len(candidates))) - len(labelled) - len(pristine)
    n = min(len(others), max(0, wanted))
    rng = np.random.default_rng(sel.seed)
    drawn = rng.choice(others, size=n, replace=False).tolist() if n else []
    return sorted(pristine) + sorted(drawn)
