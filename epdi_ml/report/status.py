"""The closing sections of the campaign report: status (counts and timings) and the spec.

They come last in the page (:mod:`epdi_ml.report.build`): what the campaign found leads, how it ran follows.
"""

from __future__ import annotations

from datetime import datetime

from epdi_ml.report.data import Energies, labelled_hop_counts
from epdi_ml.report.page import Page, flatten
from stores.facade import StoreFacade
from stores.schemas.campaigns import CampaignDoc, RoundDoc


def campaign_counts(
    facade: StoreFacade, campaign: CampaignDoc, rounds: list[RoundDoc], energies: Energies
) -> dict:
    """Status, current model, label source and the counts of surfaces, hops, calculations, predictions."""
    ids = campaign.surface_ids
    counts = labelled_hop_counts(facade, ids).values()
    n_labelled, n_distinct = sum(n for n, _ in counts), sum(n for _, n in counts)
    criteria = {"surface_id": {"$in": ids}}
    return {
        "campaign id": campaign.campaign_id,
        "status": campaign.status,
        "stop reason": campaign.stop_reason,
        "current model": energies.model.model_id if energies.model else None,
        "labels": energies.label_name,
        "surfaces": len(ids),
        "distinct hops": campaign.n_hop_classes,
        "labelled distinct hops": f"{n_labelled} ({n_labelled / n_distinct if n_distinct else 0.0:.1%})",
        "rounds": len(rounds),
        "valley relaxations": facade.count("valleys", criteria),
        "CINEB calculations": facade.count("nebs", criteria),
        "fragments": len(energies.fragments),
        "predictions of the current model": len(energies.predicted),
    }


def campaign_timings(facade: StoreFacade, campaign: CampaignDoc, rounds: list[RoundDoc]) -> dict:
    """Start, last activity, elapsed and summed wall times (s) of rounds and calculations."""
    last = max([campaign.updated_at, *(r.created_at for r in rounds)])
    out = {
        "started": campaign.created_at.isoformat(timespec="seconds"),
        "last activity": last.isoformat(timespec="seconds"),
        "elapsed (s)": round((last - campaign.created_at).total_seconds(), 1),
        "round wall time (s)": round(sum(r.wall_time_s or 0.0 for r in rounds), 1),
    }
    criteria = {"surface_id": {"$in": campaign.surface_ids}}
    sums: dict[str, float] = {}
    for doc in facade.query("calculations", criteria, properties=["kind", "wall_time_s"]):
        sums[doc["kind"]] = sums.get(doc["kind"], 0.0) + (doc.get("wall_time_s") or 0.0)
    sums["CINEB"] = sum(d.get("wall_time_s") or 0.0 for d in facade.query("nebs", criteria))
    out |= {f"{kind} wall time (s)": round(total, 1) for kind, total in sums.items()}
    out["report written"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return out


def status_sections(
    page: Page, facade: StoreFacade, campaign: CampaignDoc, rounds: list[RoundDoc], energies: Energies
) -> None:
    """The status table (counts and timings) and the campaign's spec as dotted settings."""
    status = campaign_counts(facade, campaign, rounds, energies) | campaign_timings(facade, campaign, rounds)
    rows = [  # one alignment for the mixed column: every value as text
        {"item": k, "value": None if v is None else f"{v:g}" if isinstance(v, float) else str(v)}
        for k, v in status.items()
    ]
    page.heading("Status")
    page.table(rows, ["item", "value"])
    page.heading("Spec")
    page.table(flatten(campaign.spec), ["setting", "value"])
