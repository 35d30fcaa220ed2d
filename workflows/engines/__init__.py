"""Calculation engines: ``vasp`` (production), ``gpaw`` (open DFT grids), ``chgnet`` (MLIP).

An engine is configuration, chosen per step (static, relax, neb). :func:`require_engine` checks
that an engine can run here before any job starts and names how to install or configure it.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from stores.errors import EpdiError

EngineName = Literal["vasp", "gpaw", "chgnet"]
ENGINES: tuple[str, ...] = ("vasp", "gpaw", "chgnet")


class EngineUnavailable(EpdiError, RuntimeError):
    """An engine cannot run on this machine; the message says how to install or configure it."""


def require_engine(name: str) -> None:
    """Raise :class:`EngineUnavailable` unless engine ``name`` can run here."""
    if name not in ENGINES:
        raise EngineUnavailable(f"unknown engine {name!r}; accepted: {', '.join(ENGINES)}")
    if name == "chgnet":
        from workflows.engines.chgnet_engine import require_chgnet

        require_chgnet()
    elif name == "gpaw":
        from workflows.engines.gpaw_engine import require_gpaw

        require_gpaw()
    else:
        from workflows.engines.vasp_engine import require_vasp

        require_vasp()


def package_versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (``"missing"`` when absent) and of Python."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found | {"python": platform.python_version()}
