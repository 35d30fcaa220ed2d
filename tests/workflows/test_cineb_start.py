"""How a CINEB starts and runs: a converged path moved onto another engine's end points (the
preconverged start), and the optimiser."""

import json
import tarfile

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from stores.schemas.calculations import NebDoc
from workflows.cli.app import app
from workflows.cli.dataset import PACKAGED_DIR
from workflows.engines import ase_dynamics
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.jobs.reuse import preconverged_images
from workflows.structures.path_transfer import moved_path

runner = CliRunner()


def _cell(li_frac, shift=(0.0, 0.0, 0.0)):
    lattice = Lattice.hexagonal(6.0, 20.0)
    frac = np.array([[0.0, 0.0, 0.5], [1 / 3, 2 / 3, 0.55], li_frac]) + shift
    return Structure(lattice, ["Mo", "S", "Li"], frac)


def _path():
    start, end = _cell([0.1, 0.1, 0.65]), _cell([0.4, 0.1, 0.65])
    images = [_cell([0.1 + 0.3 * t, 0.1 + 0.05, 0.66]) for t in (0.25, 0.5, 0.75)]
    return images, start, end


def test_same_end_points_give_the_images_back_and_a_rigid_shift_moves_them_all():
    images, start, end = _path()
    same = moved_path(images, start, end, start, end)
    assert all(np.allclose(a.frac_coords, b.frac_coords) for a, b in zip(same, images, strict=True))
    shift = (0.02, -0.01, 0.003)
    shifted = moved_path(images, start, end, _cell([0.1, 0.1, 0.65], shift), _cell([0.4, 0.1, 0.65], shift))
    for moved, image in zip(shifted, images, strict=True):
        assert np.allclose(moved.frac_coords, image.frac_coords + shift)


def test_the_bend_is_kept_and_the_straight_part_follows_the_new_ends():
    images, start, end = _path()
    new_end = _cell([0.5, 0.1, 0.65])  # the new hop is longer along a
    moved = moved_path(images, start, end, start, new_end)
    li_a = [m.frac_coords[2, 0] for m in moved]
    assert li_a == pytest.approx([0.1 + 0.4 * t for t in (0.25, 0.5, 0.75)])
    assert [m.frac_coords[2, 1] for m in moved] == pytest.approx([0.15] * 3)  # the sideways bend
    assert [m.frac_coords[2, 2] for m in moved] == pytest.approx([0.66] * 3)  # the lift over the saddle


def test_an_atom_that_crossed_a_cell_face_is_not_dragged_across_the_cell():
    images, start, end = _path()
    crossed = start.copy()
    crossed.replace(0, "Mo", [0.999, 0.0, 0.5])  # -0.001 across the face at a = 0
    moved = moved_path(images, start, end, crossed, end)
    for image, m in zip(images, moved, strict=True):
        step = m.frac_coords[0] - image.frac_coords[0]
        assert np.abs(step - np.round(step)).max() < 1e-3


def test_atom_orders_must_match():
    images, start, end = _path()
    other = Structure(start.lattice, ["S", "Mo", "Li"], start.frac_coords)
    with pytest.raises(ValueError, match="one atom order"):
        moved_path(images, start, end, other, end)


def _packaged(host):
    archive = PACKAGED_DIR / "dft-check" / f"{host}-pristine-3x3.tar.gz"
    with tarfile.open(archive) as tar:
        rows = {
            name: [json.loads(line) for line in tar.extractfile(f"{name}.jsonl").read().decode().splitlines()]
            for name in ("nebs", "valleys")
        }
    nebs = {d["engine"]: d for d in rows["nebs"]}
    valleys = {d["valley_id"]: d for d in rows["valleys"]}
    return nebs, valleys


def test_bench_cineb_start_a_gpaw_path_moved_onto_chgnet_valleys_needs_fewer_calls():
    """`epdi bench cineb-start` mirrors the preconverged start at CHGNet cost: pristine 3x3x1 WS2's
    converged GPAW path starts a CHGNet CINEB between the CHGNet valleys, as it is and moved."""
    empty = runner.invoke(app, ["bench", "cineb-start"])
    assert empty.exit_code == 2 and "epdi dataset load dft-check" in empty.stderr
    assert runner.invoke(app, ["dataset", "load", "dft-check"]).exit_code == 0
    bad = runner.invoke(app, ["bench", "cineb-start", "--optimizer", "fire,newton"])
    assert bad.exit_code == 2 and "'newton'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    none = runner.invoke(app, ["bench", "cineb-start", "--optimizer", ","])
    assert none.exit_code == 2 and "at least one optimizer" in none.stderr
    result = runner.invoke(app, ["bench", "cineb-start", "--host", "WS2", "--optimizer", "fire", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["surfaces"] == ["WS2-pristine"] and figures["bfgs_vs_fire"] is None
    runs = {run["start"]: run for run in figures["runs"]}
    assert set(runs) == {"idpp", "dft path as is", "dft path moved"}
    assert all(run["converged"] for run in runs.values())
    barriers = [run["forward_barrier_ev"] for run in runs.values()]
    assert max(barriers) - min(barriers) < 0.005  # one saddle, whichever the start
    assert runs["dft path moved"]["force_calls"] < 0.75 * runs["dft path as is"]["force_calls"]
    ratio = runs["dft path moved"]["force_calls"] / runs["idpp"]["force_calls"]
    assert figures["calls_vs_idpp"]["fire"]["dft path moved"] == pytest.approx(ratio, abs=1e-3)

    nebs, valleys = _packaged("WS2")
    ends = [Structure.from_dict(valleys[v]["structure"]) for v in nebs["chgnet"]["valley_ids"]]
    with pytest.raises(ValueError, match="other way"):
        preconverged_images(NebDoc(**nebs["gpaw"]), 3, (ends[1], ends[0]))


def test_bfgs_converges_the_same_cineb_in_fewer_calls_than_fire():
    """Pristine 3x3x1 WS2 from IDPP between the packaged CHGNet valleys, at CHGNet cost."""
    nebs, valleys = _packaged("WS2")
    ends = [Structure.from_dict(valleys[v]["structure"]) for v in nebs["chgnet"]["valley_ids"]]
    energies = [valleys[v]["energy_ev"] for v in nebs["chgnet"]["valley_ids"]]
    runs = {
        name: ase_dynamics.cineb(*ends, *energies, ChgnetSettings(), n_images=3, optimizer=name)
        for name in ("fire", "bfgs")
    }
    assert all(run.converged for run in runs.values())
    barriers = [max(run.energies_ev) - run.energies_ev[0] for run in runs.values()]
    assert barriers[1] == pytest.approx(barriers[0], abs=0.005)
    assert runs["bfgs"].force_calls < 0.75 * runs["fire"].force_calls
    with pytest.raises(ValueError, match="accepted: fire, bfgs"):
        ase_dynamics.cineb(*ends, *energies, ChgnetSettings(), n_images=3, optimizer="lbfgs")


def test_the_spec_s_optimizer_reaches_the_cineb_document_and_vasp_refuses_it(tmp_path):
    from jobflow.managers.local import run_locally

    from stores.facade import StoreFacade
    from workflows.flows.campaign_spec import load_spec
    from workflows.flows.neb_step import hops_maker
    from workflows.structures.hosts import InputError
    from workflows.structures.surfaces import store_surfaces, surface_from_request

    spec_path = tmp_path / "bfgs.yaml"
    spec_path.write_text("name: bfgs\nhosts: [MoS2]\nsupercell: 2\nneb: {optimizer: bfgs}\n")
    spec = load_spec(spec_path)
    bundle = surface_from_request("MoS2", None, 2)
    facade = StoreFacade()
    store_surfaces([bundle], facade)
    run_locally(
        hops_maker(spec, bundle).make(bundle, [0]), store=facade.job_store(), log=False, ensure_success=True
    )
    (neb,) = facade.query("nebs")
    assert neb["optimizer"] == "bfgs" and neb["converged"]
    spec_path.write_text(
        "name: v\nhosts: [MoS2]\nstatic: {engine: vasp}\nneb: {engine: vasp, optimizer: bfgs}\n"
    )
    with pytest.raises(InputError, match=r"neb.optimizer bfgs applies to the ASE engines"):
        load_spec(spec_path)
    spec_path.write_text("name: v\nhosts: [MoS2]\nneb: {optimizer: newton}\n")
    with pytest.raises(InputError, match=r"neb\.optimizer"):
        load_spec(spec_path)
