"""Engine settings for one surface, from the steps of a campaign or dataset spec.

One home for the rules that turn a spec step into engine settings: the GPAW k-mesh follows the
supercell, spin polarisation is on when the host metal or the dopant is magnetic (the VASP
rule of :mod:`workflows.engines.spin`, shared with VASP), and the neb step's GPAW
settings are the static's unless the step overrides them, so maps and labels share one level of
theory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stores.schemas.surfaces import SurfaceDoc
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.engines.gpaw_dynamics import GpawDynamicsSettings
from workflows.engines.gpaw_settings import GpawSettings, kpts_for_supercell
from workflows.engines.spin import magnetic_species

if TYPE_CHECKING:
    from workflows.engines.vasp_dynamics import VaspDynamicsSettings
    from workflows.flows.campaign_spec import CampaignSpec


def gpaw_settings_for(surface: SurfaceDoc, **overrides) -> GpawSettings:
    """GPAW settings for a surface; any field can be overridden.

    The k-mesh follows the supercell; spin polarisation is on when the host metal or the dopant is
    magnetic.
    """
    magnetic = bool(magnetic_species([surface.metal, surface.dopant or surface.metal]))
    defaults = {"kpts": kpts_for_supercell(surface.supercell), "spin_polarized": magnetic}
    return GpawSettings(**(defaults | overrides))


def chgnet_settings(spec: CampaignSpec, progress: bool = False, device: str | None = "cpu") -> ChgnetSettings:
    """CHGNet + D3 settings of a spec's neb step (also its preconverging stage)."""
    extra = {} if spec.neb.max_steps is None else {"max_steps": spec.neb.max_steps}
    return ChgnetSettings(fmax_ev_ang=spec.neb.fmax_ev_ang, show_progress=progress, device=device, **extra)


def neb_settings_for(spec: CampaignSpec, surface: SurfaceDoc, progress: bool = False) -> Any:
    """The engine settings of the neb step of ``spec`` on ``surface`` (CHGNet or GPAW).

    VASP relaxations and CINEB run through atomate2's Makers (:mod:`workflows.jobs.vasp_hops`) with
    :func:`vasp_settings_for`.
    """
    step = spec.neb
    if step.engine == "chgnet":
        return chgnet_settings(spec, progress)
    if step.engine == "gpaw":
        overrides = spec.static.gpaw_overrides() | (step.gpaw.gpaw_overrides() if step.gpaw else {})
        extra = {} if step.max_steps is None else {"max_steps": step.max_steps}
        return GpawDynamicsSettings(
            gpaw=gpaw_settings_for(surface, **overrides),
            fmax_ev_ang=step.fmax_ev_ang,
            show_progress=progress,
            **extra,
        )
    raise ValueError(f"neb engine {step.engine!r} has no ASE settings; it runs through atomate2")


def preconverge_settings_for(spec: CampaignSpec, progress: bool = False) -> ChgnetSettings | None:
    """The settings of the preconverging stage of the neb step, or ``None`` without one."""
    return chgnet_settings(spec, progress) if spec.neb.preconverge == "chgnet" else None


def vasp_settings_for(spec: CampaignSpec, surface: SurfaceDoc) -> VaspDynamicsSettings:
    """VASP settings of the neb step of ``spec`` on ``surface``.

    The k-mesh follows the supercell unless ``neb.vasp.kpoints`` is set; spin polarisation follows
    the surface's elements (host metal, anion, dopant); ``neb.vasp.incar`` overrides any INCAR tag.
    """
    from workflows.engines.vasp_dynamics import VaspDynamicsSettings  # atomate2 and custodian: lazily

    options = spec.neb.vasp
    return VaspDynamicsSettings(
        size=surface.supercell,
        elements=tuple(e for e in (surface.metal, surface.anion, surface.dopant) if e),
        kpoints=None if options is None else options.kpoints,
        incar_updates={} if options is None else dict(options.incar),
    )
