"""The neb step with ``engine: vasp``: atomate2 relax -> images -> CINEB -> documents -> labels, faked.

VASP cannot run here: :mod:`tests.workflows.fake_vasp` checks what every atomate2 job wrote against
what the platform promises (PBE + D3, ENCUT 500, EDIFF 1e-5, EDIFFG -0.02, dipole correction,
Gamma k x k x 1, bottom layer fixed, climbing image) and copies real recorded VASP outputs (Si
relaxations, an NH3 NEB). The numbers are those recordings', not Li on MoS2: these tests check the
plumbing (inputs, parsing into documents, ids and reuse, labels reaching the training data).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile

import numpy as np
import pytest
from fake_vasp import NEB_RUN, RECORDED_ENERGY_EV, RELAX_RUNS, mock_vasp
from jobflow.managers.local import run_locally
from pymatgen.core import SETTINGS as PMG_SETTINGS
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from epdi_ml.fragments.synthetic import store_synthetic_static
from epdi_ml.training.store_data import load_fragments
from stores.errors import RunError
from stores.facade import StoreFacade
from workflows.cli.app import app
from workflows.engines.vasp_dynamics import VaspDynamicsSettings
from workflows.engines.vasp_neb import neb_images_document
from workflows.flows.campaign_spec import load_spec
from workflows.flows.engine_settings import preconverge_settings_for
from workflows.flows.neb_step import hops_maker
from workflows.flows.surface_hops import SurfaceHopsMaker
from workflows.jobs.vasp_documents import valley_document
from workflows.structures.surfaces import store_surfaces, surface_from_request

runner = CliRunner()

SPEC = """
name: vaspset
hosts: [MoS2]
dopants: [pristine]
supercell: 2
neb: {{engine: vasp, images: 3{extra}}}
fragments: {{pixels: 16, symmetry_tol_ev: 0.15}}
"""

#: the platform's PBE + D3 slab settings, as the issue states them (not read from the code)
SLAB_TAGS = {
    "GGA": "PE",
    "IVDW": 11,
    "ENCUT": 500,
    "EDIFF": 1e-5,
    "EDIFFG": -0.02,
    "LDIPOL": True,
    "IDIPOL": 3,
    "ISMEAR": 0,
    "SIGMA": 0.05,
    "ISPIN": 1,
}
RELAX_TAGS = SLAB_TAGS | {"ISIF": 2, "IBRION": 2, "NSW": 200}
NEB_TAGS = SLAB_TAGS | {"ISIF": 2, "IMAGES": 3, "LCLIMB": True, "IBRION": 3, "IOPT": 1, "POTIM": 0}
LI_TAGS = {k: SLAB_TAGS[k] for k in ("GGA", "IVDW", "ENCUT", "EDIFF", "ISMEAR", "SIGMA")}
LI_TAGS |= {"ISPIN": 2, "MAGMOM": [1.0], "NSW": 0, "LDIPOL": None, "IDIPOL": None}


@pytest.fixture
def vasp_here(monkeypatch, tmp_path):
    """``require_engine('vasp')`` passes: a VASP command on PATH and a POTCAR folder (both empty)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "vasp_std"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "potcars").mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ATOMATE2_VASP_CMD", "vasp_std")
    monkeypatch.setitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", str(tmp_path / "potcars"))


def _sorted(structure: Structure) -> Structure:
    return structure.get_sorted_structure()


def _with_li(slab: Structure, site) -> Structure:
    out = slab.copy()
    out.append("Li", np.array(site.cart_coords_ang) + [0.0, 0.0, 1.6], coords_are_cartesian=True)
    return _sorted(out)


def _idpp(start: Structure, end: Structure, n: int) -> list[Structure]:
    from pymatgen.analysis.diffusion.neb.pathfinder import IDPPSolver

    return IDPPSolver.from_endpoints([start, end], nimages=n, sort_tol=0).run(
        maxiter=2000, tol=1e-5, gtol=1e-3
    )


def _expect_surface(fake, bundle, slab_start=None, valley_starts=None, path=None):
    """Expectations of the five VASP jobs of pristine 2x2 MoS2 (hop 0: T_M valley 1 -> H valley 0)."""
    slab = _sorted(slab_start or bundle.structure)
    fake.expect("vasp slab relax", RELAX_TAGS, [slab], ["Mo_sv", "S"], "test_relax_wc")
    li_atom = Structure(Lattice.cubic(15.0), ["Li"], [[0.5, 0.5, 0.5]])
    fake.expect("vasp li atom", LI_TAGS, [li_atom], ["Li_sv"], "relax-wc-keep-magmom")
    valleys = {s.index: s for s in bundle.sites if s.kind == "valley"}
    starts = valley_starts or {i: _with_li(slab, valleys[i]) for i in (0, 1)}
    recorded = {1: "vasp_wc_ionic_continue", 0: "test_bands_wc"}
    for i in (0, 1):
        name = f"vasp valley relax {valleys[i].label} {i}"
        fake.expect(name, RELAX_TAGS, [starts[i]], ["Li_sv", "Mo_sv", "S"], recorded[i])
    start, end = starts[1], starts[0]  # the fake moves no atom: relaxed valleys = their starts
    images = [start, *(path or _idpp(start, end, 3)[1:-1]), end]
    fake.expect("vasp cineb 0", NEB_TAGS, images, ["Li_sv", "Mo_sv", "S"], "neb")
    return starts, images


def _bottom_fixed(poscar) -> list[int]:
    """Indices whose selective-dynamics flags are F F F (the rest must be T T T)."""
    flags = [[bool(x) for x in f] for f in poscar.selective_dynamics]
    assert all(f in ([True] * 3, [False] * 3) for f in flags)
    return [i for i, f in enumerate(flags) if f == [False] * 3]


def test_vasp_neb_step_in_dataset_generation(tmp_path, monkeypatch, vasp_here):
    spec_path = tmp_path / "vasp.yaml"
    spec_path.write_text(SPEC.format(extra=""))
    bundle = surface_from_request("MoS2", None, 2)
    facade = StoreFacade()
    store_surfaces([bundle], facade)
    store_synthetic_static(facade, bundle.structure, bundle.surface.surface_id)  # a map to cut fragments
    fake = mock_vasp(monkeypatch, tmp_path / "vasp-refs")
    starts, images = _expect_surface(fake, bundle)
    out = tmp_path / "archives"

    result = runner.invoke(app, ["dataset", "generate", str(spec_path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output

    # inputs the fake does not compare: k-mesh, selective dynamics (bottom S layer only), POTCARs
    assert [w.job_name for w in fake.written] == [
        "vasp slab relax", "vasp li atom", "vasp valley relax H 0", "vasp valley relax T_M 1", "vasp cineb 0",
    ]  # fmt: skip
    for written in fake.written:
        mesh = [1, 1, 1] if written.job_name == "vasp li atom" else [3, 3, 1]
        assert written.kpoints.style.name == "Gamma" and list(written.kpoints.kpts[0]) == mesh
    slab_poscar = fake.by_name("vasp slab relax").poscars[0]
    fixed = _bottom_fixed(slab_poscar)
    z = slab_poscar.structure.cart_coords[:, 2]
    assert len(fixed) == 4 and {slab_poscar.structure[i].species_string for i in fixed} == {"S"}
    assert max(z[fixed]) < min(np.delete(z, fixed))
    neb = fake.by_name("vasp cineb 0")
    assert len(neb.poscars) == 5 and all(
        _bottom_fixed(p) == _bottom_fixed(neb.poscars[0]) for p in neb.poscars
    )
    assert _bottom_fixed(neb.poscars[0]) == [1 + i for i in fixed]  # Li first, then the slab's order
    assert neb.incar["IMAGES"] == 3 and neb.incar["LCLIMB"] is True

    # documents: engine, settings and the recorded numbers
    sid = bundle.surface.surface_id
    slab = facade.query("calculations", {"surface_id": sid, "kind": "relax", "engine": "vasp"})
    (slab,) = slab
    assert slab["final_energy_ev"] == pytest.approx(RECORDED_ENERGY_EV["test_relax_wc"])
    assert slab["functional"] == "PBE+D3(zero)" and slab["versions"]["vasp"] == "5.4.1"
    assert slab["converged"] is True and "atomate2" in slab["versions"]
    (li,) = facade.query("li_references", {"engine": "vasp"})
    assert li["energy_ev"] == pytest.approx(RECORDED_ENERGY_EV["relax-wc-keep-magmom"])
    assert li["settings"]["incar"]["ISPIN"] == 2 and li["settings"]["kpoints"] == [1, 1, 1]
    e_slab, e_li = slab["final_energy_ev"], li["energy_ev"]
    valleys = {v["site_index"]: v for v in facade.query("valleys", {"surface_id": sid})}
    assert set(valleys) == {0, 1} and {v["engine"] for v in valleys.values()} == {"vasp"}
    for index, run in ((1, "vasp_wc_ionic_continue"), (0, "test_bands_wc")):
        valley = valleys[index]
        assert valley["energy_ev"] == pytest.approx(RECORDED_ENERGY_EV[run])
        assert valley["binding_energy_ev"] == pytest.approx(e_slab + e_li - RECORDED_ENERGY_EV[run])
        assert valley["settings"]["incar_relax"]["IVDW"] == 11 and valley["settings"]["kpoints"] == [3, 3, 1]
        assert valley["final_site_index"] == index and valley["left_valley"] is False
        assert valley["preconverged_from"] is None
        li_site = next(s for s in Structure.from_dict(valley["structure"]) if s.species_string == "Li")
        np.testing.assert_allclose(li_site.coords, valley["final_li_cart_ang"])
    (hop,) = facade.query("nebs", {"surface_id": sid})
    recorded = [RECORDED_ENERGY_EV[f"neb-0{i}"] for i in (1, 2, 3)]
    assert hop["image_energies_ev"] == pytest.approx(
        [valleys[1]["energy_ev"], *recorded, valleys[0]["energy_ev"]]
    )
    assert hop["climbing_image"] == 2 and hop["converged"] is True and hop["fmax_ev_ang"] is None
    # the saddle is the highest image, end points included, as for the ASE engines (neb_barriers)
    top = max(hop["image_energies_ev"])
    assert hop["forward_barrier_ev"] == pytest.approx(top - valleys[1]["energy_ev"])
    assert hop["reverse_barrier_ev"] == pytest.approx(top - valleys[0]["energy_ev"])
    assert hop["saddle_binding_energy_ev"] == pytest.approx(e_slab + e_li - top)
    assert hop["valley_ids"] == [valleys[1]["valley_id"], valleys[0]["valley_id"]]
    assert hop["engine"] == "vasp" and hop["settings"]["climbing_image"] is True
    assert hop["settings"]["incar_neb"]["ISIF"] == 2
    assert hop["force_calls"] > 3 and hop["n_images"] == 3

    # the labels reach the training data, and the archive holds them
    fragments = load_fragments(facade, source="vasp")
    labels = dict(zip(fragments.data.ids, fragments.data.energies_ev, strict=True))
    assert labels[valleys[0]["site_id"]] == pytest.approx(valleys[0]["binding_energy_ev"])
    saddle = facade.query("hops", {"hop_id": hop["hop_id"]})[0]["saddle_id"]
    assert labels[saddle] == pytest.approx(hop["saddle_binding_energy_ev"])
    with tarfile.open(out / "MoS2-pristine-2x2.tar.gz") as archive:
        assert any("nebs" in name for name in archive.getnames())

    # a rerun reuses every VASP job: no new run, the same documents
    ids = {
        c: sorted(d[k] for d in facade.query(c)) for c, k in (("valleys", "valley_id"), ("nebs", "neb_id"))
    }
    (out / "MoS2-pristine-2x2.tar.gz").unlink()
    again = runner.invoke(app, ["dataset", "generate", str(spec_path), "--out", str(out), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert len(fake.written) == 5
    assert {
        c: sorted(d[k] for d in facade.query(c)) for c, k in (("valleys", "valley_id"), ("nebs", "neb_id"))
    } == ids


def test_preconverge_chgnet_starts_vasp_from_chgnet(tmp_path, monkeypatch, vasp_here):
    spec_path = tmp_path / "pre.yaml"
    spec_path.write_text(SPEC.format(extra=", preconverge: chgnet, fmax_ev_ang: 0.5, max_steps: 5"))
    spec = load_spec(spec_path)
    bundle = surface_from_request("MoS2", None, 2)
    facade = StoreFacade()
    store_surfaces([bundle], facade)
    # the CHGNet stage alone first, to know what VASP must start from (the full flow reuses it)
    stage = SurfaceHopsMaker(settings=preconverge_settings_for(spec), n_images=3, keeps_images=True)
    run_locally(stage.make(bundle, [0]), store=facade.job_store(), log=False, ensure_success=True)
    chgnet_valleys = {v["site_index"]: v for v in facade.query("valleys", {"engine": "chgnet"})}
    (chgnet_neb,) = facade.query("nebs", {"engine": "chgnet"})
    starts = {i: _sorted(Structure.from_dict(chgnet_valleys[i]["structure"])) for i in (0, 1)}
    path = [_sorted(Structure.from_dict(s)) for s in chgnet_neb["image_structures"][1:-1]]
    fake = mock_vasp(monkeypatch, tmp_path / "vasp-refs")
    chgnet_slab = Structure.from_dict(facade.query("calculations", {"engine": "chgnet"})[0]["structure"])
    _expect_surface(fake, bundle, slab_start=chgnet_slab, valley_starts=starts, path=path)

    flow = hops_maker(spec, bundle).make(bundle, [0])
    run_locally(flow, store=facade.job_store(), log=False, ensure_success=True, create_folders=True)

    assert len(fake.written) == 5  # the CHGNet stage was reused, every VASP job ran once
    vasp_valleys = {v["site_index"]: v for v in facade.query("valleys", {"engine": "vasp"})}
    for i in (0, 1):
        assert vasp_valleys[i]["preconverged_from"] == chgnet_valleys[i]["valley_id"]
    (vasp_neb,) = facade.query("nebs", {"engine": "vasp"})
    assert vasp_neb["preconverged_from"] == chgnet_neb["neb_id"]
    (vasp_slab,) = facade.query("calculations", {"engine": "vasp", "kind": "relax"})
    assert vasp_slab["preconverged_from"] == facade.query("calculations", {"engine": "chgnet"})[0]["calc_id"]
    assert facade.count("nebs", {"engine": "chgnet"}) == 1  # both stages stored
    written = fake.by_name("vasp cineb 0").poscars
    for image, expected in zip(written[1:-1], path, strict=True):  # 01..03: the CHGNet images
        np.testing.assert_allclose(image.structure.cart_coords, expected.cart_coords, atol=1e-6)
    np.testing.assert_allclose(written[0].structure.cart_coords, starts[1].cart_coords, atol=1e-6)


def test_vasp_spec_stops_before_any_job_without_vasp(tmp_path, monkeypatch):
    monkeypatch.setenv("ATOMATE2_VASP_CMD", "vasp_std_not_installed")
    monkeypatch.delitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", raising=False)
    spec_path = tmp_path / "vasp.yaml"
    spec_path.write_text(SPEC.format(extra=""))
    out = tmp_path / "archives"
    result = runner.invoke(app, ["dataset", "generate", str(spec_path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: engine 'vasp' cannot run here")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and StoreFacade().count("calculations") == 0
    two = tmp_path / "two.yaml"
    two.write_text(SPEC.format(extra="").replace("[pristine]", "[pristine, Zn]"))
    campaign = runner.invoke(app, ["campaign", "run", str(two)])
    assert campaign.exit_code == 2 and "engine 'vasp' cannot run here" in campaign.stderr
    assert StoreFacade().count("surfaces") == 0


def test_vasp_settings_follow_the_surface():
    co = VaspDynamicsSettings(size=3, elements=("Mo", "S", "Co"), incar_updates={"ENCUT": 520})
    relax = co.incar("relax")
    assert relax["ISPIN"] == 2 and relax["MAGMOM"]["Co"] == 3.0 and relax["MAGMOM"]["Li"] < 1
    assert relax["ENCUT"] == 520 and co.kpoint_divisions() == [2, 2, 1]
    li = co.li_atom_incar()
    assert li["ISPIN"] == 2 and li["MAGMOM"] == {"Li": 1.0} and li["ENCUT"] == 520 and li["LDIPOL"] is None
    pristine = VaspDynamicsSettings(size=3, elements=("Mo", "S"))
    assert pristine.incar("relax")["ISPIN"] == 1 and "MAGMOM" not in pristine.incar("relax")
    assert pristine.provenance() != co.provenance() and pristine.functional == "PBE+D3(zero)"
    # the isolated Li atom is the same for every surface with the same electronic settings
    assert (
        pristine.reference_settings()
        == VaspDynamicsSettings(size=6, elements=("W", "S")).reference_settings()
    )


def test_neb_images_of_a_vasp5_folder(tmp_path):
    folder = tmp_path / "neb"
    shutil.copytree(NEB_RUN, folder)
    doc = neb_images_document(folder)
    assert doc.energies == pytest.approx([RECORDED_ENERGY_EV[f"neb-0{i}"] for i in (1, 2, 3)])
    assert doc.state == "successful" and [len(s) for s in doc.images] == [4, 4, 4]
    assert doc.ionic_steps == [
        21,
        21,
        21,
    ]  # OSZICAR: the images step together and all(w > 0 for w in doc.wall_times_s)
    (folder / "02" / "OUTCAR.gz").unlink()
    with pytest.raises(RunError, match=r"neb/02 has no OUTCAR"):
        neb_images_document(folder)


def test_outputs_of_another_calculation_are_refused(tmp_path):
    from emmet.core.tasks import TaskDoc

    folder = tmp_path / "si"
    shutil.copytree(RELAX_RUNS / "test_relax_wc", folder)
    Structure(Lattice.cubic(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]).to(
        filename=str(folder / "CONTCAR"), fmt="poscar"
    )
    task = TaskDoc.from_directory(folder)
    bundle = surface_from_request("MoS2", None, 2)
    site = {"surface_id": "s", "site_id": "x", "site_index": 0, "label": "H"}
    with pytest.raises(RunError, match="holds Si2 but the job's input held"):
        valley_document.original(
            task, bundle.structure, "v", site, [[0.0, 0.0]], (0.0, 0.0), VaspDynamicsSettings(size=2)
        )


VASP_MAKERS = ["VaspSlabRelaxMaker", "VaspLiReferenceMaker", "VaspValleyRelaxMaker", "VaspHopNebMaker"]


@pytest.mark.parametrize("maker_name", VASP_MAKERS)
def test_vasp_makers_keep_their_settings_through_serialisation(maker_name):
    """A Maker read back from a job store or a Firework holds VaspDynamicsSettings, not a dict."""
    from monty.json import MontyDecoder, jsanitize

    from workflows.jobs import vasp_hops as vasp_flows

    settings = VaspDynamicsSettings(
        size=3, elements=("Mo", "S", "Co"), kpoints=2, incar_updates={"ENCUT": 520}
    )
    maker = getattr(vasp_flows, maker_name)(settings=settings)
    back = MontyDecoder().process_decoded(jsanitize(maker.as_dict(), strict=True, allow_bson=True))
    assert isinstance(back.settings, VaspDynamicsSettings) and back.settings == settings
    assert back.settings.provenance() == settings.provenance()


def test_vasp_campaign_flow_builds_with_vasp_jobs(tmp_path, vasp_here):
    """``campaign run`` with ``neb.engine: vasp``: the flow holds the VASP jobs and survives a Firework."""
    from jobflow import Flow

    from workflows.flows.campaign import build_campaign_flow

    path = tmp_path / "two.yaml"
    path.write_text(SPEC.format(extra=", preconverge: chgnet").replace("[pristine]", "[pristine, Zn]"))
    flow = build_campaign_flow(load_spec(path), StoreFacade())
    names = [j.name for j in _jobs(flow)]
    assert names.count("vasp slab relax") == 2 and names.count("vasp li atom") == 2
    assert {"vasp valley relax H 0", "vasp valley relax T_M 1"} <= set(names)
    assert any(n.startswith("preconverge surface hops") for n in _flow_names(flow))
    back = Flow.from_dict(flow.as_dict())
    assert [j.name for j in _jobs(back)] == [j.name for j in _jobs(flow)]


def _jobs(flow):
    from jobflow import Flow

    for item in flow.jobs:
        yield from _jobs(item) if isinstance(item, Flow) else [item]


def _flow_names(flow):
    from jobflow import Flow

    for item in flow.jobs:
        if isinstance(item, Flow):
            yield item.name
            yield from _flow_names(item)
