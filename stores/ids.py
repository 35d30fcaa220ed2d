"""Deterministic document ids: the same inputs always give the same id, so reruns update."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

ID_DIGITS = 16


def _canonical(value: Any) -> Any:
    """Round floats (to 1e-6) and sort mappings so that equal inputs serialise identically."""
    if isinstance(value, float):
        rounded = round(value, 6)
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_canonical(v) for v in value]
    return value


def stable_id(prefix: str, **fields: Any) -> str:
    """Return ``prefix-<hash>`` from a canonical JSON of ``fields``.

    Parameters
    ----------
    prefix
        Short kind tag, e.g. ``"surf"``, ``"site"``, ``"hop"``.
    **fields
        JSON-serialisable values (floats are rounded to 1e-6 before hashing).

    """
    payload = json.dumps(_canonical(fields), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:ID_DIGITS]
    return f"{prefix}-{digest}"
