"""Calculation engines: ``vasp`` (production), ``gpaw`` (open DFT grids), ``chgnet`` (MLIP).

An engine is configuration, chosen per step (static, relax, neb). :func:`require_engine` checks
that an engine can run here before any job starts and names how to install or configure it.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from stores.errors import EpdiError, InputError

EngineName = Literal["vasp", "gpaw", "chgnet"]
ENGINES: tuple[str, ...] = ("vasp", "gpaw", "chgnet")
#: engines that give the potential and density grids of a static
STATIC_ENGINES: tuple[str, ...] = ("gpaw", "vasp")
#: fewest intermediate images of a CINEB the commands and specs accept (DESIGN.md: >= 3)
MIN_CINEB_IMAGES = 3
#: intermediate images of a CINEB when a command or spec gives none (every engine, every command)
DEFAULT_CINEB_IMAGES = 3
#: most intermediate images (each one is a force call per optimiser step)
MAX_CINEB_IMAGES = 15


def check_cineb_images(n_images: int, name: str = "--images") -> int:
    """Return ``n_images`` when it is from :data:`MIN_CINEB_IMAGES` to :data:`MAX_CINEB_IMAGES`."""
    if not MIN_CINEB_IMAGES <= n_images <= MAX_CINEB_IMAGES:
        raise InputError(
            f"{name} {n_images}: a climbing-image NEB needs {MIN_CINEB_IMAGES} to {MAX_CINEB_IMAGES} "
            "intermediate images"
        )
    return n_images


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
