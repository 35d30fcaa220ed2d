"""Campaign specifications: which surfaces, which engines per step, and how hops are chosen.

A spec is a YAML file (or the name of a packaged one in ``workflows/data/campaigns/``, e.g.
``reference`` or ``quickstart``) validated by :class:`CampaignSpec`. Bad values give an
:class:`~workflows.hosts.InputError` naming the file, the field and what is accepted.

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
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflows.engines.gpaw_engine import GpawSettings
from workflows.hosts import InputError, check_dopant, get_host, load_hosts


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaticStep(_Strict):
    """The bare-slab static that gives the potential and density grids."""

    engine: Literal["gpaw", "vasp"] = "gpaw"
    h_ang: float = Field(0.25, gt=0.05, le=0.4, description="GPAW grid spacing (Angstrom)")
    basis: str = Field("dzp", description="GPAW LCAO basis")
    kpts: tuple[int, int, int] | None = Field(
        None, description="Gamma-centred k-mesh; None follows the supercell (k = ceil(6/n))"
    )
    density_convergence: float | None = Field(
        None, gt=0, description="GPAW SCF density criterion (electrons per valence electron); None: 1e-5"
    )

    def gpaw_overrides(self) -> dict:
        """The fields that override :func:`workflows.static_maker.gpaw_settings_for` defaults."""
        out: dict = {"h_ang": self.h_ang, "basis": self.basis}
        if self.kpts is not None:
            out["kpts"] = tuple(self.kpts)
        if self.density_convergence is not None:
            default = GpawSettings.model_fields["convergence"].default_factory()
            out["convergence"] = default | {"density": self.density_convergence}
        return out


class NebStep(_Strict):
    """Valley relaxations and climbing-image NEB of the hops (embedded engine: CHGNet + D3)."""

    engine: Literal["chgnet"] = "chgnet"
    images: int = Field(3, ge=3, le=15, description="Intermediate CINEB images")
    fmax_ev_ang: float = Field(0.05, gt=0, le=0.5, description="Force threshold (eV/Angstrom)")


class FragmentStep(_Strict):
    """Potential maps and fragments (see :mod:`epdi_ml.fragment_build`)."""

    pixels: int = Field(64, ge=8, le=256, description="Pixels along each crop side")
    symmetry_tol_ev: float = Field(
        0.05, gt=0, description="Largest pixel difference (eV) allowed between symmetry duplicates"
    )


class ModelStep(_Strict):
    """The CNN trained on the fragments (see :mod:`epdi_ml.models`)."""

    arch: str = "small_cnn"
    pretrained: bool = False
    pixels: int = Field(64, ge=16, le=256)
    epochs: int = Field(30, ge=1)
    folds: int = Field(5, ge=2, le=10)
    seed: int = 0


class SelectionStep(_Strict):
    """How saddles are chosen for CINEB (``all``: every distinct hop, as for a reference set)."""

    strategy: Literal["all", "random", "uncertainty", "diversity", "hybrid", "design"] = "design"
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
    supercell: int = Field(4, ge=2, le=8)
    vacuum_ang: float = Field(15.0, ge=8.0)
    static: StaticStep = Field(default_factory=StaticStep)
    neb: NebStep = Field(default_factory=NebStep)
    fragments: FragmentStep = Field(default_factory=FragmentStep)
    model: ModelStep = Field(default_factory=ModelStep)
    selection: SelectionStep = Field(default_factory=SelectionStep)

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

    def surfaces(self) -> list[tuple[str, str | None]]:
        """``(host, dopant)`` pairs, dopant-major so a partial run covers every host.

        The pristine surface of every host is always included (first when ``dopants`` does not list
        it): its hop is the reference of the host's doped hops and is labelled in round 0. A dopant
        equal to the host metal (V in VS2) is skipped.
        """
        table = load_hosts()
        pairs = []
        dopants = self.dopants if None in self.dopants else [None, *self.dopants]
        for dopant in dopants:
            for host in self.hosts:
                metal = table[host].metal if host in table else None
                if dopant is None or dopant != metal:
                    pairs.append((host, dopant))
        return pairs


def packaged_specs() -> list[str]:
    """Names of the campaign specs shipped in ``workflows/data/campaigns``."""
    folder = resources.files("workflows.data").joinpath("campaigns")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_spec(source: str | Path, hosts_file: Path | None = None) -> CampaignSpec:
    """Read and validate a campaign spec from a YAML path or a packaged spec name."""
    path = Path(source)
    if path.is_file():
        text, origin = path.read_text(), str(path)
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors()
        )
        raise InputError(f"campaign spec {origin}: {problems}") from None
    spec.check_hosts(hosts_file)
    return spec
