"""The neb step of a spec on one surface: the Maker that relaxes its valleys and runs its CINEBs.

One place turns a spec's ``neb:`` step into a :class:`~workflows.flows.surface_hops.SurfaceHopsMaker`
for a surface (engine settings from :mod:`workflows.flows.engine_settings`: CHGNet, GPAW or VASP; the
preconverging CHGNet stage; the number of images), so dataset generation, campaigns and the CLI run
the same step.
"""

from __future__ import annotations

from epdi_ml.analysis.labels import source_of_settings
from stores.schemas.surfaces import SurfaceDoc
from workflows.engines import require_engine
from workflows.flows.campaign_spec import CampaignSpec
from workflows.flows.engine_settings import neb_settings_for, preconverge_settings_for, vasp_settings_for
from workflows.flows.surface_hops import SurfaceHopsMaker
from workflows.structures.surfaces import StoredSurface


def require_neb_engines(spec: CampaignSpec, bundles: list[StoredSurface], skip: tuple[str, ...] = ()) -> None:
    """Raise :class:`~workflows.engines.EngineUnavailable` unless the neb step can run here.

    GPAW's PAW setups and basis sets are checked for every element of every surface (and Li);
    engines in ``skip`` are not checked.
    """
    if spec.neb.engine not in skip:
        require_engine(spec.neb.engine)
    if spec.neb.preconverge is not None:
        require_engine(spec.neb.preconverge)
    if spec.neb.engine == "gpaw":
        for bundle in bundles:
            neb_settings_for(spec, bundle.surface).require(tuple(bundle.structure.symbol_set))


def hops_maker(spec: CampaignSpec, bundle: StoredSurface, progress: bool = False) -> SurfaceHopsMaker:
    """The Maker of ``spec``'s neb step for ``bundle``'s surface.

    Engine ``vasp``: atomate2 + custodian jobs (:mod:`workflows.jobs.vasp_hops`), which need their
    own folders (:func:`runs_in_job_folders`).
    """
    settings = (
        vasp_settings_for(spec, bundle.surface)
        if spec.neb.engine == "vasp"
        else neb_settings_for(spec, bundle.surface, progress)
    )
    return SurfaceHopsMaker(
        settings=settings,
        n_images=spec.neb.images,
        preconverge=preconverge_settings_for(spec, progress),
        neb_optimizer=spec.neb.optimizer,
    )


def label_source_for(spec: CampaignSpec, surface: SurfaceDoc) -> str:
    """The label source (:func:`epdi_ml.analysis.labels.label_source`) of the neb step's valleys and CINEBs.

    VASP labels are matched by engine (``vasp``): their settings are atomate2's input sets.
    """
    if spec.neb.engine == "vasp":
        return "vasp"
    return source_of_settings(neb_settings_for(spec, surface))


def runs_in_job_folders(spec: CampaignSpec) -> bool:
    """Whether the spec's jobs write their files into the working folder (VASP's do).

    Run such flows with ``run_locally(..., create_folders=True)`` so every job gets its own folder.
    """
    return "vasp" in (spec.neb.engine, spec.static.engine)
