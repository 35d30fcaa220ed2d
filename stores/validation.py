"""Checks of user input shared by every layer: numbers, names, files to read and paths to write.

Each check raises :class:`~stores.errors.InputError` with one line that names the option or field,
the bad value and what is accepted, so a command can run all of them before any work or write.
Checks of one concept live with it (supercell and vacuum in :mod:`workflows.structures.supercells`,
architectures in :mod:`epdi_ml.models.architectures`, the campaign spec in
:mod:`workflows.flows.campaign_spec`); this
module holds the ones with no better home.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stores.errors import InputError

M = TypeVar("M", bound=BaseModel)

#: compute devices a command accepts (``cuda:N`` names one GPU)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
_CUDA_INDEX = re.compile(r"^cuda:\d+$")


def one_line(text: str) -> str:
    """``text`` on one line: line breaks become ``; `` and runs of blanks one space."""
    parts = [" ".join(line.split()) for line in str(text).splitlines()]
    return "; ".join(p for p in parts if p)


def check_positive(value: float, name: str, unit: str = "", *, allow_zero: bool = False) -> float:
    """Return ``value`` when it is a finite number > 0 (>= 0 with ``allow_zero``)."""
    bound = ">= 0" if allow_zero else "> 0"
    if (
        not (isinstance(value, int | float) and math.isfinite(value))
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise InputError(f"{name} {value} is not allowed; accepted: a finite number {bound}{unit}")
    return value


def check_int_range(value: int, name: str, low: int, high: int | None = None, why: str = "") -> int:
    """Return ``value`` when ``low <= value <= high`` (no upper bound when ``high`` is ``None``)."""
    if value < low or (high is not None and value > high):
        accepted = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise InputError(f"{name} {value} is out of range{why}; accepted: {accepted}")
    return value


def check_choice(value: str, name: str, choices: Iterable[str]) -> str:
    """Return ``value`` when it is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise InputError(f"unknown {name} {value!r}; accepted: {', '.join(options)}")
    return value


def check_device(value: str | None, name: str = "--device") -> str | None:
    """Return a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``None``) or raise."""
    if value is None or value in DEVICES or _CUDA_INDEX.match(value):
        return value
    raise InputError(f"unknown {name} {value!r}; accepted: {', '.join(DEVICES)} or cuda:N")


def read_text_file(path: Path | str, what: str) -> str:
    """The text of ``path`` (UTF-8); a missing, unreadable or binary file is an :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{what} {path} is not a text file (it is binary or not UTF-8); give a YAML file"
        ) from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_dir(path: Path | str, name: str) -> Path:
    """Return ``path`` when it is a folder or can become one (nothing is created here)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{name} {path} is an existing file; give a folder (new or existing)")
    blocker = _blocking_file(path)
    if blocker is not None:
        raise InputError(f"{name} {path} cannot be created: {blocker} is a file, not a folder")
    return path


def check_output_file(path: Path | str, name: str) -> Path:
    """Return ``path`` when a file can be written there (nothing is created here)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{name} {path} is an existing folder; give a file name")
    blocker = _blocking_file(path)
    if blocker is not None:
        raise InputError(f"{name} {path} cannot be written: {blocker} is a file, not a folder")
    return path


def make_dir(path: Path, what: str) -> Path:
    """Create folder ``path`` (and its parents); an OS refusal is an :class:`InputError` naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the {what} {path}: {exc.strerror or exc}; give a folder you can write"
        ) from None
    return path


def validation_message(exc: ValidationError, prefix: str = "", names: dict[str, str] | None = None) -> str:
    """One line for a pydantic error: ``field value: reason`` per problem, named as the user knows them.

    Parameters
    ----------
    exc
        The pydantic error.
    prefix
        Put before each field name (``"--"`` for command-line options).
    names
        Field name -> the name the user typed (``{"model": "--model"}``); overrides ``prefix``.
    """
    names = names or {}
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        if not where:  # a check of the whole model: its message names the fields
            problems.append(reason)
            continue
        label = names.get(where) or f"{prefix}{where.replace('_', '-') if prefix == '--' else where}"
        given = err.get("input")
        shown = "" if isinstance(given, dict | list) or given is None else f" {given!r}"
        problems.append(f"{label}{shown}: {reason}")
    return "; ".join(problems)


def build_validated(model: type[M], values: dict[str, Any], what: str, **kwargs: Any) -> M:
    """``model(**values)``, with a pydantic error turned into one :class:`InputError` line.

    ``what`` opens the message (``"invalid option"``); ``kwargs`` go to :func:`validation_message`.
    """
    try:
        return model(**values)
    except ValidationError as exc:
        raise InputError(f"{what}: {validation_message(exc, **kwargs)}") from None
