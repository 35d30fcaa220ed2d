"""The table of host monolayers and the accepted dopants.

The built-in table lives in ``workflows/data/hosts.yaml`` (one row per host, with its literature
source). A user table with the same columns, given by the ``hosts_file`` setting, adds rows or
replaces rows of the same name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from pymatgen.core.periodic_table import Element

from stores.errors import InputError  # noqa: F401  (re-exported: workflows.structures.hosts.InputError)
from stores.validation import read_text_file, validation_message

#: The dopants of the EPDI paper (Chen et al. 2025). Any other metal element is accepted as well.
PAPER_DOPANTS: tuple[str, ...] = ("Al", "Co", "Cr", "Cu", "Fe", "Mn", "Ni", "V", "Zn")


class HostSpec(BaseModel):
    """One host monolayer: phase, elements and starting geometry."""

    name: str
    phase: Literal["2H", "1T"]
    metal: str
    anion: str
    a_ang: float = Field(..., gt=0, description="Primitive in-plane lattice constant (Angstrom)")
    anion_height_ang: float = Field(
        ..., gt=0, description="Metal-plane to anion-plane vertical distance (Angstrom)"
    )
    group: str = Field(..., description="Periodic-table group of the metal: VIB, VB or IVB")
    source: str = Field(..., description="Literature source of the geometry")


def _parse_table(raw: object, origin: str) -> dict[str, HostSpec]:
    if not isinstance(raw, dict):
        raise InputError(f"host table {origin} must map host names to rows")
    table = {}
    for name, row in raw.items():
        if not isinstance(row, dict):
            raise InputError(
                f"host table {origin}, row {name}: give a mapping of columns (phase, metal, ...)"
            )
        try:
            table[str(name)] = HostSpec(**(row | {"name": str(name)}))
        except ValidationError as exc:
            raise InputError(f"host table {origin}, row {name}: {validation_message(exc)}") from None
    return table


def load_hosts(extra_file: Path | None = None) -> dict[str, HostSpec]:
    """Return the host table: the built-in rows, updated with ``extra_file`` when given."""
    text = resources.files("workflows.data").joinpath("hosts.yaml").read_text()
    table = _parse_table(yaml.safe_load(text), "hosts.yaml (built-in)")
    if extra_file is not None:
        path = Path(extra_file)
        text = read_text_file(path, "hosts file")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"hosts file {path} is not valid YAML: {exc}") from None
        table.update(_parse_table(raw, str(path)))
    return table


def get_host(name: str, table: dict[str, HostSpec] | None = None) -> HostSpec:
    """Look a host up by name (case-sensitive formula, e.g. ``MoS2``)."""
    table = table if table is not None else load_hosts()
    if name not in table:
        raise InputError(f"unknown host {name!r}; accepted: {', '.join(table)}")
    return table[name]


def check_dopant(symbol: str | None) -> str | None:
    """Return the dopant symbol when it is a metal element, else raise :class:`InputError`.

    ``None``, ``""`` and ``"none"``/``"pristine"`` (any case) mean no dopant.
    """
    if symbol is None or symbol.strip().lower() in {"", "none", "pristine"}:
        return None
    accepted = f"any metal element, e.g. {', '.join(PAPER_DOPANTS)} (paper set), or none"
    try:
        element = Element(symbol.strip())
    except ValueError:
        raise InputError(f"unknown dopant element {symbol!r}; accepted: {accepted}") from None
    if not element.is_metal:
        raise InputError(f"dopant {symbol!r} is not a metal; accepted: {accepted}")
    return element.symbol
