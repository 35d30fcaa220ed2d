"""Errors of the fragment pipeline: missing inputs, broken symmetry, archives that do not rebuild."""

from __future__ import annotations

from stores.errors import InputError, RunError


class MissingInputError(InputError, LookupError):
    """A surface or the static calculation a step needs is not in the store."""


class SymmetryCheckError(RunError):
    """A duplicate fragment differs from its representative beyond the tolerance."""


class RebuildMismatchError(RunError):
    """Fragments cut again from a loaded map do not match the archived fragment documents."""
