"""What a campaign would do, without running it or writing anything: ``epdi campaign plan``.

Surfaces are built in memory (not stored) to count their distinct valleys and hops; jobs are
counted per step from the same rules the campaign flow follows (:mod:`workflows.flows.campaign`): one
static per surface (atomate2 static + import for VASP), per surface a slab relaxation, the Li
reference and one relaxation per valley class, one CINEB per selected distinct hop, and per round a
training job (FireWorks category ``gpu``) and a round job. ``preconverge`` doubles the relaxation and
CINEB jobs (the CHGNet stage). CINEB and training counts are upper bounds: a campaign stops on its
budget, spread target or round limit.
"""

from __future__ import annotations

import math
from typing import Any

from workflows.engines import EngineUnavailable, require_engine
from workflows.fireworks.categories import DFT_CATEGORY, TRAINING_CATEGORY
from workflows.flows.campaign_hops import campaign_bundles
from workflows.flows.campaign_spec import CampaignSpec


def _engine_here(name: str) -> bool | str:
    try:
        require_engine(name)
    except EngineUnavailable as exc:
        return str(exc)
    return True


def max_cinebs(spec: CampaignSpec, n_hops: int) -> int:
    """Most CINEBs the selection can ask for: every distinct hop for ``all``, else the budget."""
    sel = spec.selection
    if sel.strategy == "all":
        return n_hops
    initial = max(1, math.ceil(sel.initial_fraction * n_hops))
    budget = math.floor(sel.budget_fraction * n_hops + 1e-9)
    return min(n_hops, max(initial, min(budget, initial + sel.batch_size * sel.rounds)))


def plan_campaign(spec: CampaignSpec, hosts_file=None) -> dict[str, Any]:
    """The plan of ``spec`` as a JSON-ready mapping (see the module docstring for the rules)."""
    bundles = campaign_bundles(spec, hosts_file=hosts_file)
    n_hops = sum(b.surface.n_distinct_hops for b in bundles)
    n_valleys = sum(b.surface.n_distinct_valleys for b in bundles)
    stages = 2 if spec.neb.preconverge else 1
    static_jobs = len(bundles) * (2 if spec.static.engine == "vasp" else 1)
    valley_jobs = stages * (n_valleys + 2 * len(bundles))  # + slab relaxation and Li reference
    cinebs = max_cinebs(spec, n_hops)
    # round 0 picks the first hops; rounds 1..R select after training; round R + 1 trains and stops
    rounds = 2 if spec.selection.strategy == "all" else spec.selection.rounds + 2
    training = rounds - 1
    jobs = {
        "campaign": 2,  # start + fragments
        "static": static_jobs,
        "valleys": valley_jobs,
        "cineb_max": stages * cinebs,
        "rounds_max": rounds,
        "training_max": training,
    }
    n_dft = sum(v for k, v in jobs.items() if k != "training_max")
    engines = {
        "static": spec.static.engine,
        "neb": spec.neb.engine,
        "preconverge": spec.neb.preconverge,
        "model": spec.model.arch,
    }
    return {
        "name": spec.name,
        "n_surfaces": len(bundles),
        "supercell": spec.supercell,
        "natoms_per_surface": sorted({b.surface.natoms for b in bundles}),
        "n_distinct_hops": n_hops,
        "n_distinct_valleys": n_valleys,
        "engines": engines,
        "neb_optimizer": None if spec.neb.engine == "vasp" else spec.neb.optimizer,
        "selection": {
            "strategy": spec.selection.strategy,
            "budget_fraction": spec.selection.budget_fraction,
            "max_cinebs": cinebs,
        },
        "jobs": jobs,
        "fireworks_by_category": {DFT_CATEGORY: n_dft, TRAINING_CATEGORY: training},
        "n_fireworks_max": n_dft + training,
        "engines_available_here": {
            name: _engine_here(name) for name in sorted({spec.static.engine, spec.neb.engine})
        },
    }
