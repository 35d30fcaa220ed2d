"""A CINEB that stops resumes from its progress file: same images, counters that go on."""

import json

import numpy as np
import pytest

from stores import progress
from workflows.engines import ase_dynamics
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.engines.neb_checkpoint import NebCheckpoint
from workflows.structures.hosts import get_host
from workflows.structures.li_sites import add_li
from workflows.structures.surfaces import describe_surface


@pytest.fixture(scope="module")
def ends():
    bundle = describe_surface(get_host("MoS2"), None, size=2)
    valleys = [s for s in bundle.sites if s.kind == "valley"]
    hop = bundle.hops[0]
    return [add_li(bundle.structure, valleys[v].cart_coords_ang) for v in hop.valley_indices]


@pytest.fixture(scope="module")
def stopped(ends, tmp_path_factory):
    """Three FIRE steps of a CINEB that cannot converge in three: the state of a run that was stopped."""
    checkpoint = NebCheckpoint(tmp_path_factory.mktemp("cineb") / "cineb-progress.json", "neb-a")
    stingy = ChgnetSettings(fmax_ev_ang=1e-4, max_steps=3)
    result = ase_dynamics.cineb(*ends, 0.0, 0.0, stingy, n_images=3, checkpoint=checkpoint)
    return checkpoint, result


def _positions(result):
    return [image.cart_coords for image in result.images[1:-1]]


def _same_path(a, b) -> bool:
    return all(np.allclose(p, q, atol=1e-8) for p, q in zip(_positions(a), _positions(b), strict=True))


def test_the_file_holds_the_last_step(stopped):
    checkpoint, result = stopped
    assert not result.converged and result.steps == 3
    saved = json.loads(checkpoint.path.read_text())
    assert saved["key"] == "neb-a" and saved["steps"] == 3 and saved["force_calls"] == result.force_calls
    assert saved["history"] == result.history and len(result.history) == 4  # the start and three steps
    assert all(np.allclose(p, q) for p, q in zip(saved["positions_ang"], _positions(result), strict=True))
    assert not list(checkpoint.path.parent.glob("*.partial"))


def test_a_resumed_run_starts_from_the_saved_images_and_counts_on(ends, stopped):
    checkpoint, result = stopped
    saved = checkpoint.path.read_text()
    frozen = ChgnetSettings(fmax_ev_ang=1e6, max_steps=10)  # converged at its start: the path stays
    again = ase_dynamics.cineb(*ends, 0.0, 0.0, frozen, n_images=3, checkpoint=checkpoint)
    assert _same_path(again, result)
    assert again.steps == 3 and again.force_calls == result.force_calls + 3  # one evaluation per image
    assert again.history == result.history and again.wall_time_s > result.wall_time_s
    checkpoint.path.write_text(saved)

    two_more = ChgnetSettings(fmax_ev_ang=1e-4, max_steps=5)  # the limit bounds the total: 3 + 2
    longer = ase_dynamics.cineb(*ends, 0.0, 0.0, two_more, n_images=3, checkpoint=checkpoint)
    assert longer.steps == 5 and len(longer.history) == len(result.history) + 2
    assert longer.force_calls == result.force_calls + 3 * 3
    assert json.loads(checkpoint.path.read_text())["steps"] == 5
    checkpoint.path.write_text(saved)


def test_a_file_of_another_run_is_ignored(ends, stopped):
    checkpoint, result = stopped
    frozen = ChgnetSettings(fmax_ev_ang=1e6, max_steps=10)
    other = NebCheckpoint(checkpoint.path, "neb-b")
    fresh = ase_dynamics.cineb(*ends, 0.0, 0.0, frozen, n_images=3, checkpoint=other)
    idpp = ase_dynamics.cineb(*ends, 0.0, 0.0, frozen, n_images=3)
    assert fresh.steps == 0 and fresh.force_calls == 3
    assert _same_path(fresh, idpp)
    assert not np.allclose(_positions(fresh)[1], _positions(result)[1], atol=1e-4)
    assert json.loads(checkpoint.path.read_text())["key"] == "neb-b"  # the new run's progress replaced it


def test_off_a_terminal_progress_is_plain_lines(ends, capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # a line per step
    shown = ChgnetSettings(fmax_ev_ang=1e-4, max_steps=2, show_progress=True)
    ase_dynamics.cineb(*ends, 0.0, 0.0, shown, n_images=3)
    err = capsys.readouterr().err  # captured: not a terminal
    lines = [line.rsplit(",", 1)[0] for line in err.splitlines() if line.startswith("cineb ")]
    assert lines == [
        "cineb (limit 2 steps): 1 step",
        "cineb (limit 2 steps): 2 step",
        "cineb (limit 2 steps): done, 2 step",
    ]
    assert "\r" not in err


def test_a_stopped_relaxation_resumes_from_its_last_step(ends, tmp_path):
    """A valley relaxation keeps the same progress file (one image) and goes on from its last step."""
    checkpoint = NebCheckpoint(tmp_path / "relax-progress.json", "valley-a")
    stingy = ChgnetSettings(fmax_ev_ang=1e-4, max_steps=2)
    first = ase_dynamics.relax(ends[0], stingy, checkpoint=checkpoint)
    saved = json.loads(checkpoint.path.read_text())
    assert not first.converged and first.steps == 2 and saved["steps"] == 2
    assert saved["force_calls"] == first.force_calls and len(saved["history"]) == 3  # start + 2 steps
    np.testing.assert_allclose(saved["positions_ang"][0], first.structure.cart_coords, atol=1e-8)
    frozen = ChgnetSettings(fmax_ev_ang=1e6, max_steps=10)  # converged at its start: stays where it was
    again = ase_dynamics.relax(ends[0], frozen, checkpoint=checkpoint)
    np.testing.assert_allclose(again.structure.cart_coords, first.structure.cart_coords, atol=1e-8)
    assert again.steps == 2 and again.force_calls == first.force_calls + 1
    other = ase_dynamics.relax(ends[0], frozen, checkpoint=NebCheckpoint(checkpoint.path, "valley-b"))
    np.testing.assert_allclose(other.structure.cart_coords, ends[0].cart_coords, atol=1e-6)  # not its file
