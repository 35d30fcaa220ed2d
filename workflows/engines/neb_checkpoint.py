"""The path of a running CINEB after each finished step, so that a stopped DFT CINEB resumes.

A GPAW CINEB of a 3x3x1 cell takes minutes per step and tens of steps; a run stopped by the end of
an allocation, a reboot or a kill would otherwise start again from its first image. After every
optimiser step :func:`workflows.engines.ase_dynamics.cineb` writes the intermediate images'
positions, the steps and force calls so far, the wall time and the energy history to one JSON file
(written to a temporary name, then renamed: a kill leaves the previous step's file whole). A new
run with the same ``key`` (the NEB document id, which names the engine, its settings and the
starting path) starts from there; a file of another key or another set of atoms is ignored.

The optimiser's own state (FIRE's velocities) is not kept: a resumed run restarts FIRE from rest at
the saved positions, which changes the path to convergence, not the converged result.

A relaxation (:func:`workflows.engines.ase_dynamics.relax`) keeps the same file with one image: a
GPAW valley relaxation of a 3x3x1 cell takes one to two hours, and a stopped one resumes from its
last step (BFGS restarts its Hessian there).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

logger = logging.getLogger(__name__)


@dataclass
class NebProgress:
    """What a resumed CINEB takes over: positions (Angstrom) of the intermediate images and counters."""

    positions_ang: list[np.ndarray]
    steps: int = 0
    force_calls: int = 0
    wall_time_s: float = 0.0
    history: list[float] = field(default_factory=list)


@dataclass
class NebCheckpoint:
    """A CINEB's progress file: ``path`` (JSON) for the run identified by ``key``."""

    path: Path
    key: str

    def load(self, images: Sequence[Atoms]) -> NebProgress | None:
        """The saved progress for these intermediate ``images``, or ``None`` (no file, another run).

        A file of another key, image count or atom list is ignored (and later overwritten), with a
        warning naming it.
        """
        if not self.path.is_file():
            return None
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            logger.warning("ignoring unreadable progress file %s (%s)", self.path, err)
            return None
        symbols = [image.get_chemical_symbols() for image in images]
        if saved.get("key") != self.key or saved.get("symbols") != symbols:
            logger.warning("ignoring progress file %s: it belongs to another run", self.path)
            return None
        return NebProgress(
            positions_ang=[np.asarray(p, dtype=float) for p in saved["positions_ang"]],
            steps=int(saved["steps"]),
            force_calls=int(saved["force_calls"]),
            wall_time_s=float(saved["wall_time_s"]),
            history=[float(e) for e in saved["history"]],
        )

    def save(self, images: Sequence[Atoms], progress: NebProgress) -> None:
        """Write the progress after a finished step (atomically: temporary file, then rename)."""
        content = {
            "key": self.key,
            "symbols": [image.get_chemical_symbols() for image in images],
            "positions_ang": [np.asarray(p).tolist() for p in progress.positions_ang],
            "steps": progress.steps,
            "force_calls": progress.force_calls,
            "wall_time_s": progress.wall_time_s,
            "history": progress.history,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(content))
        os.replace(partial, self.path)

    def remove(self) -> None:
        """Delete the file once the result is stored."""
        self.path.unlink(missing_ok=True)
