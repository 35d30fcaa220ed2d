"""CHGNet engine and the hop flow on a tiny pristine 2x2x1 MoS2 cell (loose fmax, few images)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import app
from workflows.engines.ase_dynamics import cineb, relax
from workflows.engines.chgnet_engine import ChgnetSettings, make_calculator
from workflows.flows.barrier import run_barrier
from workflows.structures.hosts import get_host
from workflows.structures.li_sites import add_li
from workflows.structures.surfaces import describe_surface

LOOSE = ChgnetSettings(fmax_ev_ang=0.1, max_steps=150)


@pytest.fixture(scope="module")
def barrier_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chgnet") / "epdi-data"
    mp = pytest.MonkeyPatch()
    mp.setenv("EPDI_DATA_DIR", str(folder))
    get_settings.cache_clear()
    bundle = describe_surface(get_host("MoS2"), None, size=2)
    result = run_barrier(bundle, LOOSE, n_images=3)
    yield result, StoreFacade()
    mp.undo()
    get_settings.cache_clear()


def test_pristine_barrier_is_in_the_literature_band(barrier_run):
    result, _ = barrier_run
    summary = result.summary()
    # Li on pristine 2H-MoS2: 0.23-0.24 eV in PBE studies; MX2 band 0.15-0.30 eV
    assert 0.15 <= summary["local_barrier_ev"] <= 0.30
    assert summary["lowest_valley"] == "T_M"  # Li prefers the Mo-top site (Ersan et al. 2015)
    assert summary["neb_converged"]
    energies = summary["image_energies_rel_ev"]
    assert energies[0] == 0 and max(energies) == pytest.approx(summary["forward_barrier_ev"], abs=1e-3)


def test_binding_energies_are_positive_and_li_stays(barrier_run):
    result, _ = barrier_run
    for valley in result.valleys:
        assert 1.5 < valley.binding_energy_ev < 4.0  # bound, eV (DESIGN: E_b > 0 means bound)
        assert not valley.left_valley
        assert valley.displacement_ang < 0.5
    saddle = result.neb.saddle_binding_energy_ev
    assert saddle < min(v.binding_energy_ev for v in result.valleys)


def test_documents_are_in_the_store_and_the_li_reference_is_cached(barrier_run, monkeypatch):
    result, facade = barrier_run
    monkeypatch.setenv("EPDI_DATA_DIR", str(facade.settings.data_dir))  # jobs read the settings
    get_settings.cache_clear()
    assert facade.count("valleys") == 2
    assert facade.count("nebs") == 1
    assert facade.count("li_references") == 1
    (neb,) = facade.query("nebs")
    assert neb["hop_id"] == result.neb.hop_id and len(neb["image_energies_ev"]) == 5
    # a second run reuses every finished job (nothing recomputed) and duplicates no document
    again = run_barrier(result.bundle, LOOSE, n_images=3)
    assert again.neb.image_energies_ev == result.neb.image_energies_ev
    assert again.wall_time_s < result.wall_time_s
    assert (facade.count("li_references"), facade.count("valleys"), facade.count("nebs")) == (1, 2, 1)
    # the jobflow JobStore holds the job outputs as well, once: the rerun replaced them
    job_store = facade.job_store()
    job_store.connect()
    assert job_store.count({"name": f"hop cineb {result.hop_index}"}) == 1
    assert job_store.count() == len(again.valleys) + 3  # slab relax, Li reference, valleys, CINEB
    job_store.close()


def test_one_calculator_per_image_counts_its_own_calls():
    spec = get_host("MoS2")
    bundle = describe_surface(spec, None, size=2)
    slab = relax(bundle.structure, LOOSE)
    ends = [
        relax(add_li(slab.structure, bundle.graph.valleys[v].cart_coords), LOOSE)
        for v in bundle.graph.hops[0].valleys
    ]
    result = cineb(
        ends[0].structure, ends[1].structure, ends[0].energy_ev, ends[1].energy_ev, LOOSE, n_images=1
    )
    # one image: every optimiser step is exactly one force call (plus the final check)
    assert result.steps + 1 <= result.force_calls <= result.steps + 2
    assert len(result.images) == 3
    a, b = make_calculator(LOOSE), make_calculator(LOOSE)
    assert a is not b and a.force_calls == 0
    moved = np.linalg.norm(result.images[1][-1].coords[:2] - result.images[0][-1].coords[:2])
    assert moved > 0.3  # the image lies between the two valleys, not on an end point


def test_barrier_cli_rejects_unknown_engine():
    result = CliRunner().invoke(app, ["barrier", "MoS2", "--size", "2", "--engine", "abinit"])
    assert result.exit_code == 2
    assert "unknown engine 'abinit'" in result.stderr


def test_surface_hops_maker_labels_every_distinct_hop(monkeypatch):
    from jobflow.managers.local import run_locally

    from workflows.flows.surface_hops import SurfaceHopsMaker

    bundle = describe_surface(get_host("MoS2"), "Zn", size=2)
    flow = SurfaceHopsMaker(settings=LOOSE, n_images=1).make(bundle)
    facade = StoreFacade()
    run_locally(flow, store=facade.job_store(), log=False, ensure_success=True)
    n_hop_classes = bundle.surface.n_distinct_hops
    assert facade.count("nebs") == n_hop_classes
    nebs = facade.query("nebs")
    assert {n["hop_id"] for n in nebs} == {
        bundle.hops[i].hop_id for i in set(h.symmetry.representative_index for h in bundle.hops)
    }
    valleys = facade.query("valleys")
    reps = {v.symmetry.representative_index for v in bundle.sites if v.kind == "valley"}
    assert reps <= {v["site_index"] for v in valleys}
    for neb in nebs:
        assert neb["forward_barrier_ev"] >= 0 and neb["reverse_barrier_ev"] >= 0


def test_a_slab_relaxation_is_found_again_whatever_the_last_digits_of_its_start():
    """The slab id names the surface, not coordinates: an atom wrapped across the cell edge is reused."""
    from jobflow.managers.local import run_locally

    from workflows.jobs.hops import SlabRelaxMaker

    bundle = describe_surface(get_host("MoS2"), None, size=2)
    facade = StoreFacade()
    maker = SlabRelaxMaker(settings=LOOSE)
    run_locally(maker.make(bundle.structure, bundle.surface.surface_id), store=facade.job_store(), log=False)
    (first,) = facade.query("calculations", {"kind": "relax"})
    shifted = bundle.structure.copy()
    shifted.translate_sites([0], [1.0 + 1e-8, 0.0, 0.0], frac_coords=True, to_unit_cell=False)
    job = maker.make(shifted, bundle.surface.surface_id)
    responses = run_locally(job, store=facade.job_store(), log=False, ensure_success=True)
    assert responses[job.uuid][1].output.calc_id == first["calc_id"]
    assert facade.query("calculations", {"kind": "relax"}) == [first]  # reused, not computed again
    assert first["preconverged_from"] is None


def test_hops_compute_cli_lists_every_distinct_hop_and_resumes():
    import json

    args = ["hops", "compute", "MoS2", "--dopant", "Zn", "--size", "2", "--images", "3", "--fmax", "0.1"]
    args.append("--json")
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rows = json.loads(first.stdout)
    bundle = describe_surface(get_host("MoS2"), "Zn", size=2)
    assert len(rows) == bundle.surface.n_distinct_hops
    assert sum(r["multiplicity"] for r in rows) == len(bundle.hops)
    for r in rows:
        assert r["forward_barrier_ev"] == pytest.approx(r["start_eb_ev"] - r["saddle_eb_ev"], abs=2e-3)
    again = CliRunner().invoke(app, args)  # finished jobs are reused: same numbers
    assert json.loads(again.stdout) == rows


CHGNET_MAKERS = ["SlabRelaxMaker", "LiReferenceMaker", "ValleyRelaxMaker", "HopNebMaker", "SurfaceHopsMaker"]


@pytest.mark.parametrize("maker_name", CHGNET_MAKERS)
def test_makers_keep_their_engine_settings_through_serialisation(maker_name):
    """A Maker read back from a job store or a Firework holds ChgnetSettings, not a dict."""
    from monty.json import MontyDecoder, jsanitize

    from workflows.flows import surface_hops
    from workflows.jobs import hops

    settings = ChgnetSettings(fmax_ev_ang=0.1, max_steps=7, show_progress=True)
    maker = getattr(hops, maker_name, None) or getattr(surface_hops, maker_name)
    maker = maker(settings=settings)
    back = MontyDecoder().process_decoded(jsanitize(maker.as_dict(), strict=True, allow_bson=True))
    assert isinstance(back.settings, ChgnetSettings) and back.settings == settings
    assert back.settings.provenance() == settings.provenance()
    assert "show_progress" not in settings.provenance()  # display only: not part of ids
