"""Checkpoint files of fold training, one folder per fold (``<checkpoint_dir>/fold<k>/``).

* ``last.pt`` (:data:`LAST_FILE`), the resumable state, written every epoch: model, optimiser and
  grad scaler states, epoch, best validation MAE and best-epoch weights, curves, timings, RNG states.
  It holds four model-sized sets of tensors (weights, best weights, two AdamW moments), and is deleted
  when its fold finishes unless the run keeps it (``TrainConfig.keep_last``).
* ``best.pt`` (:data:`BEST_FILE`), written when the fold finishes: the fold's result (best-epoch
  weights, the ensemble member, with its curves and timings). A resumed run takes a finished fold
  from it instead of training it again.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FORMAT = 1
#: resumable state of a fold in training
LAST_FILE = "last.pt"
#: result of a finished fold
BEST_FILE = "best.pt"


def fold_folder(checkpoint_dir: Path | str | None, fold: int) -> Path | None:
    """The checkpoint folder of ``fold`` (``None`` when the run writes no checkpoints)."""
    return None if checkpoint_dir is None else Path(checkpoint_dir) / f"fold{fold}"


def write_checkpoint(payload: dict[str, Any], path: Path) -> Path:
    """``torch.save`` ``payload`` (tagged with :data:`CHECKPOINT_FORMAT`) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: Path, model_name: str) -> dict[str, Any]:
    """Load a checkpoint (``weights_only``) written by a run of ``model_name``.

    Raises
    ------
    ValueError
        The file has another format tag or comes from another architecture.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("model_name") != model_name:
        raise ValueError(f"{path} is not a checkpoint of this run (model {ckpt.get('model_name')})")
    return ckpt


def rng_state() -> dict[str, Any]:
    """The states of torch's, numpy's global and Python's generators (and CUDA's), as saved tensors."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
