"""A campaign with one failing CINEB among several: named, recorded, shown, and redone alone on rerun.

Real jobs throughout (CHGNet relaxations and CINEBs, fragments, small_cnn training). Two things are
put in the store first, as a resumed campaign would find them: the bare-slab statics (synthetic
grids under the id the GPAW static job computes, so GPAW does not run) and, for the failure, one
relaxed valley of the Zn surface whose structure lost its Li atom (a CINEB from it cannot start).
"""

import json

from pymatgen.core import Structure
from store_helpers import tiny_spec
from typer.testing import CliRunner

from epdi_ml.fragments.synthetic import store_synthetic_static
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc, ValleyDoc
from workflows.cli.app import app
from workflows.flows.campaign_hops import campaign_bundles, campaign_id
from workflows.flows.campaign_spec import load_spec
from workflows.flows.engine_settings import gpaw_settings_for, neb_settings_for

runner = CliRunner()

SPEC = tiny_spec(
    "failing",
    """\
fragments: {pixels: 16, symmetry_tol_ev: 0.3}
model: {arch: small_cnn, pretrained: false, pixels: 16, epochs: 1, folds: 2}
selection: {strategy: all}
""",
)


def _seed_statics(spec, facade):
    """Synthetic bare-slab grids stored under the id of each surface's GPAW static job."""
    for bundle in campaign_bundles(spec, facade):
        sid = bundle.surface.surface_id
        settings = gpaw_settings_for(bundle.surface, **spec.static.gpaw_overrides())
        calc_id = stable_id(
            "calc", kind="static", engine="gpaw", surface_id=sid, settings=settings.model_dump(mode="json")
        )
        doc = store_synthetic_static(facade, bundle.structure, sid)
        facade.remove("calculations", {"calc_id": doc.calc_id})
        facade.upsert("calculations", [CalculationDoc(**doc.model_dump() | {"calc_id": calc_id})])


def _plant_broken_valley(spec, facade) -> str:
    """A stored 'relaxed' valley of the Zn surface without its Li atom; returns its valley id."""
    zn = next(b for b in campaign_bundles(spec, facade) if b.surface.dopant == "Zn")
    site = next(s for s in zn.sites if s.kind == "valley" and s.symmetry.representative_index == s.index)
    settings = neb_settings_for(spec, zn.surface)
    valley_id = stable_id(  # the id the campaign's valley relaxation looks up
        "valley",
        surface_id=zn.surface.surface_id,
        site_id=site.site_id,
        engine=settings.engine,
        settings=settings.provenance(),
    )
    slab = Structure.from_dict(zn.structure.as_dict())
    doc = ValleyDoc(
        valley_id=valley_id,
        surface_id=zn.surface.surface_id,
        site_id=site.site_id,
        site_index=site.index,
        label=site.label,
        engine=settings.engine,
        settings=settings.provenance(),
        binding_energy_ev=0.0,
        energy_ev=0.0,
        final_li_cart_ang=list(site.cart_coords_ang),
        final_site_index=site.index,
        left_valley=False,
        displacement_ang=0.0,
        force_calls=0,
        converged=True,
        structure=slab.as_dict(),
    )
    facade.upsert("valleys", [doc])
    return valley_id


def test_one_failing_cineb_is_reported_recorded_and_redone_alone(tmp_path, data_dir):
    path = tmp_path / "failing.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    facade = StoreFacade()
    _seed_statics(spec, facade)
    broken = _plant_broken_valley(spec, facade)

    first = runner.invoke(app, ["campaign", "run", str(path)])
    assert first.exit_code == 1, first.output
    error = first.stderr.strip().splitlines()[-1]
    assert error.startswith("error: campaign failing (see `epdi status failing`): job 'hop cineb ")
    assert "Traceback" not in first.output

    doc = facade.query("campaigns", {"campaign_id": campaign_id(spec)})[0]
    assert doc["status"] == "failed" and doc["failures"]
    assert all(f["job"].startswith("hop cineb ") for f in doc["failures"])
    assert doc["failures"][0]["error"] in error  # the job's own exception, not jobflow's RuntimeError
    assert "Flow did not finish" not in error

    zn_id = next(b.surface.surface_id for b in campaign_bundles(spec, facade) if b.surface.dopant == "Zn")
    done = {d["neb_id"]: (d["surface_id"], d["updated_at"]) for d in facade.query("nebs")}
    assert done and any(sid != zn_id for sid, _ in done.values())  # the other CINEBs went on
    assert facade.count("models") == 0  # training needs every CINEB of the round

    status = runner.invoke(app, ["status", "failing", "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert info["campaign_status"] == "failed" and info["failed_jobs"] == doc["failures"]
    text = runner.invoke(app, ["status", "failing"])
    assert f"FAILED job '{doc['failures'][0]['job']}'" in text.stdout

    facade.remove("valleys", {"valley_id": broken})  # the cause is fixed: rerun
    again = runner.invoke(app, ["campaign", "run", str(path)])
    assert again.exit_code == 0, again.output
    doc = facade.query("campaigns", {"campaign_id": campaign_id(spec)})[0]
    assert doc["status"] == "finished" and doc["failures"] == []
    after = {d["neb_id"]: (d["surface_id"], d["updated_at"]) for d in facade.query("nebs")}
    assert all(after[k] == v for k, v in done.items())  # finished CINEBs were not recomputed
    assert len(after) > len(done) and {sid for sid, _ in after.values()} >= {zn_id}
    assert facade.count("models") >= 1
