"""DFT labels: GPAW relaxations and CINEB on a tiny cell, preconverged by CHGNet; label provenance."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from epdi_ml.analysis.labels import MixedLabels, label_set, label_source, source_of_settings
from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import app
from workflows.engines import ase_dynamics
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.engines.gpaw_dynamics import GpawDynamicsSettings
from workflows.engines.gpaw_settings import GpawSettings
from workflows.flows.barrier import run_barrier
from workflows.structures.hosts import get_host
from workflows.structures.surfaces import describe_surface

runner = CliRunner()

#: loose settings that keep a 2x2x1 GPAW relaxation and CINEB to about a minute (not physics)
LOOSE_GPAW = GpawDynamicsSettings(
    gpaw=GpawSettings(
        h_ang=0.35,
        kpts=(1, 1, 1),
        convergence={"energy": 1e-3, "density": 1e-3, "eigenstates": 1e-6},
    ),
    fmax_ev_ang=0.5,
    max_steps=20,
)
LOOSE_CHGNET = ChgnetSettings(fmax_ev_ang=0.2, max_steps=100)


@pytest.fixture(scope="module")
def preconverged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpaw-labels") / "epdi-data"
    mp = pytest.MonkeyPatch()
    mp.setenv("EPDI_DATA_DIR", str(folder))
    get_settings.cache_clear()
    bundle = describe_surface(get_host("MoS2"), None, size=2)
    lines = []
    result = run_barrier(bundle, LOOSE_GPAW, n_images=3, preconverge=LOOSE_CHGNET, echo=lines.append)
    yield result, StoreFacade(), lines
    mp.undo()
    get_settings.cache_clear()


def test_dft_documents_record_engine_settings_and_link_to_chgnet(preconverged, monkeypatch):
    result, facade, lines = preconverged
    monkeypatch.setenv("EPDI_DATA_DIR", str(facade.settings.data_dir))
    get_settings.cache_clear()
    assert [line.split(":")[0] for line in lines] == [
        "stage 1/2",
        "stage 1/2 done",
        "stage 2/2",
        "stage 2/2 done",
    ]
    neb = result.neb
    assert neb.engine == "gpaw" and neb.functional == "PBE+D3(zero)"
    assert neb.settings["gpaw"]["h_ang"] == 0.35 and "gpaw" in neb.versions
    chgnet = facade.query("nebs", {"engine": "chgnet"})
    assert len(chgnet) == 1 and neb.preconverged_from == chgnet[0]["neb_id"]
    assert len(chgnet[0]["image_structures"]) == 5  # end points + three images kept for the DFT stage
    chgnet_valleys = {v["valley_id"] for v in facade.query("valleys", {"engine": "chgnet"})}
    assert {v.preconverged_from for v in result.valleys} == chgnet_valleys
    (gpaw_slab,) = facade.query("calculations", {"engine": "gpaw", "kind": "relax"})
    (chgnet_slab,) = facade.query("calculations", {"engine": "chgnet", "kind": "relax"})
    assert gpaw_slab["preconverged_from"] == chgnet_slab["calc_id"]
    # one GPAW log per structure and per NEB image
    logs = sorted(p.name for p in facade.settings.data_dir.glob("calcs/*/gpaw-cineb-*/*.txt"))
    assert logs == ["cineb-image-01.txt", "cineb-image-02.txt", "cineb-image-03.txt"]
    # the CINEB's progress file (written after every step) is gone once its document is stored
    cineb_folders = list(facade.settings.data_dir.glob("calcs/*/gpaw-cineb-*"))
    assert len(cineb_folders) == 1 and not list(cineb_folders[0].glob("*progress.json*"))


def test_dft_binding_energies_come_from_one_engine(preconverged):
    result, facade, _ = preconverged
    slab = facade.query("calculations", {"kind": "relax", "engine": "gpaw"})
    (li,) = facade.query("li_references", {"engine": "gpaw"})
    assert len(slab) == 1 and li["settings"]["box_ang"] == 12.0
    for valley in result.valleys:
        expected = slab[0]["final_energy_ev"] + li["energy_ev"] - valley.energy_ev
        assert valley.binding_energy_ev == pytest.approx(expected, abs=1e-9)
        assert valley.engine == "gpaw"
    top = max(result.neb.image_energies_ev)
    assert result.neb.saddle_binding_energy_ev == pytest.approx(
        slab[0]["final_energy_ev"] + li["energy_ev"] - top, abs=1e-9
    )
    summary = result.summary()
    assert summary["engine"] == "gpaw" and summary["preconverge"] == "chgnet"
    assert summary["neb_force_calls"] >= 1 and summary["preconverge_force_calls"] > 0


def test_mixed_label_sources_are_refused_and_one_can_be_chosen(preconverged, monkeypatch):
    _, facade, _ = preconverged
    with pytest.raises(MixedLabels) as info:
        label_set(facade)
    message = str(info.value)
    assert "chgnet:" in message and "gpaw:" in message and "PBE+D3(zero)" in message
    gpaw = label_set(facade, "gpaw")
    assert gpaw.functional == "PBE+D3(zero)" and len(gpaw.energies_ev) == 3  # two valleys + saddle
    assert gpaw.source == source_of_settings(LOOSE_GPAW)
    chgnet = label_set(facade, "chgnet")
    assert set(chgnet.energies_ev) == set(gpaw.energies_ev)
    assert all(chgnet.energies_ev[k] != gpaw.energies_ev[k] for k in gpaw.energies_ev)


def test_a_second_run_reuses_every_dft_job(preconverged, monkeypatch):
    result, facade, _ = preconverged
    monkeypatch.setenv("EPDI_DATA_DIR", str(facade.settings.data_dir))
    get_settings.cache_clear()
    again = run_barrier(result.bundle, LOOSE_GPAW, n_images=3, preconverge=LOOSE_CHGNET)
    assert again.neb.neb_id == result.neb.neb_id and again.neb.updated_at == result.neb.updated_at
    assert facade.count("nebs") == 2 and facade.count("valleys") == 4


def test_preconverged_images_are_the_start_of_the_next_engine():
    """A CINEB given initial images starts from them (threshold met at once: the path is unchanged)."""
    bundle = describe_surface(get_host("MoS2"), None, size=2)
    from workflows.structures.li_sites import add_li

    valleys = [s for s in bundle.sites if s.kind == "valley"]
    hop = bundle.hops[0]
    ends = [add_li(bundle.structure, valleys[v].cart_coords_ang) for v in hop.valley_indices]
    mid = ends[0].copy()
    mid.replace(
        len(mid) - 1, "Li", (np.array(ends[0][-1].coords) + ends[1][-1].coords) / 2 + [0, 0, 0.3], True
    )
    frozen = ChgnetSettings(fmax_ev_ang=1e6, max_steps=1)  # converged before the first step
    out = ase_dynamics.cineb(*ends, 0.0, 0.0, frozen, n_images=3, initial_images=[mid, mid, mid])
    assert all(np.allclose(image.cart_coords, mid.cart_coords, atol=1e-8) for image in out.images[1:-1])
    idpp = ase_dynamics.cineb(*ends, 0.0, 0.0, frozen, n_images=3)
    assert not np.allclose(idpp.images[1].cart_coords[-1], mid.cart_coords[-1], atol=1e-3)


def test_unconverged_cineb_is_retried_once_then_left_out_of_the_labels():
    from jobflow.managers.local import run_locally

    from workflows.flows.surface_hops import SurfaceHopsMaker

    bundle = describe_surface(get_host("MoS2"), None, size=2)
    stingy = ChgnetSettings(fmax_ev_ang=0.001, max_steps=2)
    flow = SurfaceHopsMaker(settings=stingy, n_images=3).make(bundle)
    facade = StoreFacade()
    run_locally(flow, store=facade.job_store(), log=False, ensure_success=True)
    (neb,) = facade.query("nebs")
    assert not neb["converged"] and neb["retries"] == 1 and neb["steps"] == 2 + 4
    labels = label_set(facade)
    assert labels.unconverged_hop_ids == [neb["hop_id"]]
    saddle = bundle.hops[0].saddle_id
    assert saddle not in labels.energies_ev and len(labels.energies_ev) == 2  # the two valleys only


def test_label_source_ignores_spin_and_device_but_not_physics():
    base = {
        "engine": "gpaw",
        "settings": {"gpaw": {"h_ang": 0.25, "spin_polarized": False}, "fmax_ev_ang": 0.05},
    }
    spin = {
        "engine": "gpaw",
        "settings": {"gpaw": {"h_ang": 0.25, "spin_polarized": True}, "fmax_ev_ang": 0.05},
    }
    finer = {
        "engine": "gpaw",
        "settings": {"gpaw": {"h_ang": 0.2, "spin_polarized": False}, "fmax_ev_ang": 0.05},
    }
    assert label_source(base) == label_source(spin) != label_source(finer)
    assert label_source({"engine": "chgnet", "settings": {}}) == "chgnet:unrecorded"
    cpu, gpu = ChgnetSettings(device="cpu"), ChgnetSettings(device="cuda")
    assert (
        source_of_settings(cpu)
        == source_of_settings(gpu)
        != source_of_settings(ChgnetSettings(fmax_ev_ang=0.1))
    )


def test_gpaw_settings_survive_a_job_store_round_trip():
    from monty.json import MontyDecoder, jsanitize

    from workflows.jobs.hops import HopNebMaker

    maker = HopNebMaker(settings=LOOSE_GPAW, n_images=3)
    back = MontyDecoder().process_decoded(jsanitize(maker.as_dict(), strict=True, allow_bson=True))
    assert isinstance(back.settings, GpawDynamicsSettings)
    assert back.settings.provenance() == LOOSE_GPAW.provenance()


def test_campaign_plan_of_the_dft_check_set():
    result = runner.invoke(app, ["campaign", "plan", "dft-check", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["n_surfaces"] == 6 and plan["supercell"] == 3 and plan["natoms_per_surface"] == [27]
    assert plan["engines"] == {"static": "gpaw", "neb": "gpaw", "preconverge": "chgnet", "model": "small_cnn"}
    assert plan["n_distinct_hops"] == 3 + 3 * 6 and plan["n_distinct_valleys"] == 3 * 2 + 3 * 7
    # the CHGNet stage doubles the relaxations: 2 x (27 valley classes + slab + Li reference per surface)
    assert plan["jobs"]["valleys"] == 2 * (27 + 2 * 6)
    assert sum(plan["fireworks_by_category"].values()) == plan["n_fireworks_max"]
    assert StoreFacade().count("surfaces") == 0  # planning writes nothing


@pytest.mark.parametrize(
    ("neb", "message"),
    [
        ("{engine: chgnet, preconverge: chgnet}", "with engine chgnet leave preconverge out"),
        ("{engine: gpaw, preconverge: gpaw}", "neb.preconverge"),
        ("{engine: chgnet, gpaw: {h_ang: 0.2}}", "neb.gpaw options are set but neb.engine is chgnet"),
        ("{engine: abinit}", "neb.engine"),
        ("{engine: gpaw, gpaw: {kpts: [0, -1, 1]}}", "neb.gpaw.kpts.1 -1"),
    ],
)
def test_bad_neb_steps_exit_2_with_one_line(tmp_path, neb, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: bad\nhosts: [MoS2]\ndopants: [pristine, Zn]\nsupercell: 2\nneb: {neb}\n")
    result = runner.invoke(app, ["campaign", "plan", str(spec)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "vasp"], "engine 'vasp' runs hops through campaigns"),
        (["--preconverge", "chgnet"], "--preconverge chgnet"),
        (["--engine", "gpaw", "--preconverge", "gpaw"], "--preconverge gpaw"),
    ],
)
def test_barrier_refuses_bad_engine_combinations_before_any_work(args, message):
    result = runner.invoke(app, ["barrier", "MoS2", "--size", "2", *args])
    assert result.exit_code == 2 and message in result.stderr
    assert StoreFacade().count("surfaces") == 0
