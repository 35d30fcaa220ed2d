"""Campaign specifications: which surfaces, which engines per step, and how hops are chosen.

A spec is a YAML file (or the name of a packaged one in ``workflows/data/campaigns/``, e.g.
``reference`` or ``quickstart``) validated by :class:`CampaignSpec`. Bad values give an
:class:`~workflows.structures.hosts.InputError` naming the file, the field and what is accepted.

Example::

    name: my-campaign
    hosts: [MoS2, WS2]
    dopants: [pristine, Co, Zn]
    supercell: 4
    static: {engine: gpaw, h_ang: 0.25, kpts: [1, 1, 1]}
    neb: {images: 3, fmax_ev_ang: 0.05}
    selection: {strategy: design, batch_size: 4, budget_fraction: 0.3, rounds: 3}
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from epdi_ml.fragments.crops import DEFAULT_PIXELS
from epdi_ml.models.architectures import MODEL_NAMES, check_architecture
from stores.validation import read_text_file, validation_message
from workflows.engines import MAX_CINEB_IMAGES, MIN_CINEB_IMAGES
from workflows.engines.gpaw_settings import GpawSettings
from workflows.structures.hosts import InputError, check_dopant, get_host, load_hosts
from workflows.structures.supercells import MIN_SUPERCELL

#: k divisions of one direction of the Gamma-centred mesh
KDivisions = Annotated[int, Field(ge=1, le=24)]


#: engines that run outside Python on the workers (not needed where a campaign is planned or submitted)
EXTERNAL_ENGINES = ("vasp",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GpawOptions(_Strict):
    """GPAW electronic settings a spec may override (the rest follow the surface, see below)."""

    h_ang: float = Field(0.25, gt=0.05, le=0.4, description="GPAW grid spacing (Angstrom)")
    basis: str = Field("dzp", description="GPAW LCAO basis")
    kpts: tuple[KDivisions, KDivisions, KDivisions] | None = Field(
        None,
        description="Gamma-centred k-mesh, three positive integers; None: k = ceil(6/n) from the supercell",
    )
    density_convergence: float | None = Field(
        None, gt=0, description="GPAW SCF density criterion (electrons per valence electron); None: 1e-5"
    )

    @field_validator("kpts")
    @classmethod
    def _positive_mesh(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and (min(value) < 1 or value[2] != 1):
            raise ValueError(f"k-mesh {list(value)} must be [k1, k2, 1] with k1, k2 >= 1 (a slab has kz = 1)")
        return value

    def gpaw_overrides(self) -> dict:
        """The fields that override :func:`workflows.flows.engine_settings.gpaw_settings_for` defaults."""
        out: dict = {"h_ang": self.h_ang, "basis": self.basis}
        if self.kpts is not None:
            out["kpts"] = tuple(self.kpts)
        if self.density_convergence is not None:
            default = GpawSettings.model_fields["convergence"].default_factory()
            out["convergence"] = default | {"density": self.density_convergence}
        return out


class StaticStep(GpawOptions):
    """The bare-slab static that gives the potential and density grids (GPAW options flat here)."""

    engine: Literal["gpaw", "vasp"] = "gpaw"


class VaspOptions(_Strict):
    """VASP settings of the neb step (atomate2 RelaxMaker / NebFromImagesMaker, custodian)."""

    kpoints: int | None = Field(None, ge=1, description="In-plane k divisions; None: ceil(6/n)")
    incar: dict[str, Any] = Field(default_factory=dict, description="Extra INCAR overrides")


class NebStep(_Strict):
    """Valley relaxations and climbing-image NEB of the hops.

    ``engine``: ``chgnet`` (CHGNet + D3, the embedded default), ``gpaw`` (PBE + D3 through ASE; its
    electronic settings are the static's unless ``gpaw`` overrides them) or ``vasp`` (atomate2 +
    custodian). ``preconverge: chgnet`` runs CHGNet first and starts the DFT engine from its slab,
    valleys and converged CINEB images.
    """

    engine: Literal["chgnet", "gpaw", "vasp"] = "chgnet"
    preconverge: Literal["chgnet"] | None = None
    images: int = Field(3, ge=MIN_CINEB_IMAGES, le=MAX_CINEB_IMAGES, description="Intermediate CINEB images")
    fmax_ev_ang: float = Field(0.05, gt=0, le=0.5, description="Force threshold (eV/Angstrom)")
    max_steps: int | None = Field(
        None, ge=1, le=5000, description="Optimiser step limit; None: the engine's default"
    )
    optimizer: Literal["fire", "bfgs"] = Field(
        "fire",
        description="ASE optimiser of the CINEBs (engines chgnet and gpaw; VASP's is set in its INCAR)",
    )
    hops: Literal["all", "nearest_dopant"] = Field(
        "all",
        description="Hops a dataset's labels step computes: every distinct hop, or the one nearest the "
        "dopant (every valley class is relaxed either way)",
    )
    gpaw: GpawOptions | None = Field(None, description="GPAW overrides (engine gpaw only)")
    vasp: VaspOptions | None = Field(None, description="VASP options (engine vasp only)")

    @model_validator(mode="after")
    def _combination(self) -> NebStep:
        if self.preconverge is not None and self.preconverge == self.engine:
            raise ValueError(
                f"preconverge: {self.preconverge} starts a DFT engine (gpaw, vasp) from CHGNet; "
                f"with engine {self.engine} leave preconverge out"
            )
        if self.engine == "vasp" and self.optimizer != "fire":
            raise ValueError(
                f"neb.optimizer {self.optimizer} applies to the ASE engines (chgnet, gpaw); a VASP NEB "
                "takes its optimiser from the INCAR (neb.vasp.incar: IBRION, IOPT)"
            )
        for name in ("gpaw", "vasp"):
            if getattr(self, name) is not None and self.engine != name:
                raise ValueError(f"neb.{name} options are set but neb.engine is {self.engine}; remove them")
        return self


class FragmentStep(_Strict):
    """Potential maps and fragments (see :mod:`epdi_ml.fragments.build`)."""

    pixels: int = Field(DEFAULT_PIXELS, ge=8, le=256, description="Pixels along each crop side")
    symmetry_tol_ev: float = Field(
        0.05, gt=0, description="Largest pixel difference (eV) allowed between symmetry duplicates"
    )


class ModelStep(_Strict):
    """The CNN trained on the fragments (see :mod:`epdi_ml.models.networks`)."""

    arch: str = Field("small_cnn", description=f"One of {', '.join(MODEL_NAMES)}")
    pretrained: bool = False
    pixels: int = Field(DEFAULT_PIXELS, ge=16, le=256)
    epochs: int = Field(30, ge=1)
    folds: int = Field(5, ge=2, le=10)
    seed: int = 0
    anchor: Literal["none", "valley-midpoint"] = Field(
        "valley-midpoint",
        description="valley-midpoint (default): saddles learnt relative to the mean E_b of their two "
        "relaxed valleys, which every campaign computes first; none: E_b as it is (the method paper's way)",
    )

    @model_validator(mode="after")
    def _buildable(self) -> ModelStep:
        check_architecture(self.arch, self.pretrained, self.pixels, ("arch", "pretrained", "pixels"))
        return self


class SelectionStep(_Strict):
    """How saddles are chosen for CINEB (``all``: every distinct hop, as for a reference set)."""

    strategy: Literal["all", "random", "uncertainty", "diversity", "hybrid", "committee", "design"] = "design"
    initial_fraction: float = Field(0.1, ge=0.0, le=1.0, description="Hops labelled before the first model")
    batch_size: int = Field(4, ge=1, description="Hops labelled per round")
    budget_fraction: float = Field(0.5, gt=0.0, le=1.0, description="Stop when this fraction is labelled")
    spread_target_ev: float | None = Field(
        None,
        gt=0.0,
        description="Stop when the largest calibrated 68 % half-width on open saddles is below this (eV)",
    )
    rounds: int = Field(3, ge=0, description="Most select -> CINEB -> retrain rounds")
    seed: int = 0


class CampaignSpec(_Strict):
    """A whole campaign: surfaces x engines x model x selection."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    hosts: list[str] = Field(..., min_length=1)
    dopants: list[str | None] = Field(default_factory=lambda: [None], min_length=1)
    supercell: int = Field(4, ge=MIN_SUPERCELL, le=8)
    vacuum_ang: float = Field(15.0, ge=8.0)
    static: StaticStep = Field(default_factory=StaticStep)
    neb: NebStep = Field(default_factory=NebStep)
    fragments: FragmentStep = Field(default_factory=FragmentStep)
    model: ModelStep = Field(default_factory=ModelStep)
    selection: SelectionStep = Field(default_factory=SelectionStep)
    only: list[str] | None = Field(
        None,
        description="Keep only these surfaces of hosts x dopants, named HOST-DOPANT (MoS2-pristine, MoS2-Zn)",
    )

    @model_validator(mode="after")
    def _only_names_surfaces(self) -> CampaignSpec:
        if self.only is not None:
            names = {surface_name(h, d) for h, d in self._product()}
            if unknown := [n for n in self.only if n not in names]:
                raise ValueError(
                    f"unknown surfaces {unknown}; hosts x dopants give {', '.join(sorted(names))}"
                )
        return self

    @field_validator("dopants", mode="before")
    @classmethod
    def _dopants(cls, value: object) -> object:
        if isinstance(value, list):
            return [check_dopant(None if v is None else str(v)) for v in value]
        return value

    def check_hosts(self, hosts_file: Path | None = None) -> None:
        """Raise :class:`InputError` when a host is not in the host table."""
        table = load_hosts(hosts_file)
        for host in self.hosts:
            get_host(host, table)

    def check_runnable(
        self, hosts_file: Path | None = None, elsewhere: bool = False, surfaces: list | None = None
    ) -> None:
        """Raise unless every engine of the spec can run here, before anything is stored or queued.

        The static, neb and preconverge engines must be installed
        (:func:`workflows.engines.require_engine`); for ``gpaw`` the PAW setups and LCAO basis
        files of every element of every surface must be found with the spec's basis.

        ``elsewhere`` (planning, submitting to a LaunchPad): engines that run outside Python on the
        workers (VASP) are not required here; a ``dft`` launcher without them leaves their
        Fireworks READY (:class:`workflows.fireworks.launcher.EnginesMissing`). ``surfaces``: the
        spec's surfaces when the caller has built them (else they are built here).
        """
        from workflows.engines import require_engine
        from workflows.engines.gpaw_engine import require_gpaw
        from workflows.flows.neb_step import require_neb_engines
        from workflows.structures.surfaces import surface_from_request

        if not (elsewhere and self.static.engine in EXTERNAL_ENGINES):
            require_engine(self.static.engine)
        if self.static.engine == "gpaw":
            table = load_hosts(hosts_file)
            elements = {el for host in self.hosts for el in (table[host].metal, table[host].anion)}
            elements |= {d for d in self.dopants if d is not None}
            overrides = {k: v for k, v in self.static.gpaw_overrides().items() if k != "convergence"}
            require_gpaw(tuple(sorted(elements)), GpawSettings(**overrides))
        bundles = surfaces or [
            surface_from_request(host, dopant, self.supercell, self.vacuum_ang, hosts_file=hosts_file)
            for host, dopant in self.surfaces()
        ]
        require_neb_engines(self, bundles, skip=EXTERNAL_ENGINES if elsewhere else ())

    def _product(self) -> list[tuple[str, str | None]]:
        table = load_hosts()
        pairs = []
        dopants = self.dopants if None in self.dopants else [None, *self.dopants]
        for dopant in dopants:
            for host in self.hosts:
                metal = table[host].metal if host in table else None
                if dopant is None or dopant != metal:
                    pairs.append((host, dopant))
        return pairs

    def surfaces(self) -> list[tuple[str, str | None]]:
        """``(host, dopant)`` pairs, dopant-major so a partial run covers every host.

        The pristine surface of every host is always included (first when ``dopants`` does not list
        it): its hop is the reference of the host's doped hops and is labelled in round 0. A dopant
        equal to the host metal (V in VS2) is skipped; with ``only``, just those surfaces.
        """
        pairs = self._product()
        if self.only is not None:
            pairs = [p for p in pairs if surface_name(*p) in self.only]
        return pairs


def surface_name(host: str, dopant: str | None) -> str:
    """``HOST-DOPANT`` name of a surface, e.g. ``MoS2-Co`` or ``MoS2-pristine``."""
    return f"{host}-{dopant or 'pristine'}"


def packaged_specs() -> list[str]:
    """Names of the campaign specs shipped in ``workflows/data/campaigns``."""
    folder = resources.files("workflows.data").joinpath("campaigns")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_spec(source: str | Path, hosts_file: Path | None = None) -> CampaignSpec:
    """Read and validate a campaign spec from a YAML path or a packaged spec name."""
    path = Path(source)
    if path.exists():
        text, origin = read_text_file(path, "campaign spec"), str(path)
    elif str(source) in packaged_specs():
        origin = f"packaged spec {source!r}"
        text = resources.files("workflows.data").joinpath("campaigns", f"{source}.yaml").read_text()
    else:
        raise InputError(
            f"campaign spec {source!r} is neither a file nor a packaged spec ({', '.join(packaged_specs())})"
        )
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"campaign spec {origin} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(f"campaign spec {origin} must be a mapping of fields (name, hosts, ...)")
    try:
        spec = CampaignSpec(**raw)
    except ValidationError as exc:
        raise InputError(f"campaign spec {origin}: {validation_message(exc)}") from None
    spec.check_hosts(hosts_file)
    return spec
