"""Helpers for tests that need surfaces, fragments and labels in the store."""

import json

from pymatgen.core import Structure
from typer.testing import CliRunner

from epdi_ml.fragments.synthetic import store_synthetic_static
from epdi_ml.training.registry import get_model
from stores.facade import StoreFacade
from stores.schemas.calculations import NebDoc, ValleyDoc
from stores.schemas.campaigns import CampaignDoc, RoundDoc
from workflows.cli.app import app

runner = CliRunner()

#: surfaces and physics of the tests' tiny campaigns: 2 x 2 x 1 MoS2 pristine and Zn-doped, GPAW at
#: h = 0.3 Angstrom on the Gamma point, a 3-image CINEB to 0.2 eV/Angstrom
TINY_SURFACES = """\
hosts: [MoS2]
dopants: [pristine, Zn]
supercell: 2
static: {engine: gpaw, h_ang: 0.3, basis: dzp, kpts: [1, 1, 1]}
neb: {images: 3, fmax_ev_ang: 0.2}
"""


def tiny_spec(name: str, steps: str) -> str:
    """A campaign spec of :data:`TINY_SURFACES` named ``name``, with the YAML of its other ``steps``."""
    return f"name: {name}\n{TINY_SURFACES}{steps}"


#: Zn-doped surface of :func:`build_campaign_store`: hop classes that keep their CINEB label
#: (the others are removed)
ZN_KEPT_CLASSES = 2


def build_surface_cli(dopant):
    """Build a 3x3 MoS2 surface with the CLI and return its id."""
    result = runner.invoke(app, ["surfaces", "build", "MoS2", "--dopant", dopant, "--size", "3", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["surface_id"]


def synthetic_fragment_store(dopants, pixels, dataset=None):
    """3x3 MoS2 surfaces (one per dopant) with synthetic statics and their fragments; no labels.

    Returns the store facade and the surface ids in the order of ``dopants``. ``dataset`` names the
    colour-scale dataset of the fragments (default: the CLI's).
    """
    facade = StoreFacade()
    ids = []
    for dopant in dopants:
        sid = build_surface_cli(dopant)
        structure = Structure.from_dict(facade.query("surfaces", {"surface_id": sid})[0]["structure"])
        store_synthetic_static(facade, structure, sid)
        ids.append(sid)
    build = ["fragments", "build", "--all", "--pixels", str(pixels)]
    built = runner.invoke(app, build + (["--dataset", dataset] if dataset else []))
    assert built.exit_code == 0, built.output
    return facade, ids


def add_binding_energies(facade, surface_id, offset):
    """Store E_b labels for every valley and hop class: a linear function of the fragment MEP."""
    sites = facade.query("sites", {"surface_id": surface_id})
    frags = {f["site_id"]: f for f in facade.query("fragments", {"surface_id": surface_id})}
    structure = facade.query("surfaces", {"surface_id": surface_id})[0]["structure"]
    valleys = []
    for s in sites:
        if s["kind"] == "valley" and s["symmetry"]["representative_index"] == s["index"]:
            eb = 2.0 * frags[s["site_id"]]["mep_ev"] + 3.5 + offset
            valleys.append(
                ValleyDoc(
                    valley_id=f"v-{s['site_id']}",
                    surface_id=surface_id,
                    site_id=s["site_id"],
                    site_index=s["index"],
                    label=s["label"],
                    engine="chgnet",
                    binding_energy_ev=eb,
                    energy_ev=-eb,
                    final_li_cart_ang=s["cart_coords_ang"],
                    final_site_index=s["index"],
                    left_valley=False,
                    displacement_ang=0.0,
                    force_calls=10,
                    converged=True,
                    structure=structure,
                )
            )
    facade.upsert("valleys", valleys)
    nebs = []
    for hop in facade.query("hops", {"surface_id": surface_id}):
        if hop["symmetry"]["representative_index"] == hop["index"]:
            eb = 2.0 * frags[hop["saddle_id"]]["mep_ev"] + 3.3 + offset
            nebs.append(
                NebDoc(
                    neb_id=f"n-{hop['hop_id']}",
                    surface_id=surface_id,
                    hop_id=hop["hop_id"],
                    engine="chgnet",
                    valley_ids=("a", "b"),
                    image_energies_ev=[0.0, 0.2, 0.0],
                    saddle_binding_energy_ev=eb,
                    forward_barrier_ev=0.2,
                    reverse_barrier_ev=0.2,
                    climbing_image=1,
                    converged=True,
                    fmax_ev_ang=0.03,
                    force_calls=50,
                    n_images=3,
                )
            )
    facade.upsert("nebs", nebs)


def representatives(facade, surface_id):
    """Return the representative hop of every symmetry class of a surface, by hop index."""
    hops = facade.query("hops", {"surface_id": surface_id})
    return sorted(
        (h for h in hops if h["symmetry"]["representative_index"] == h["index"]), key=lambda h: h["index"]
    )


def build_campaign_store(campaign_id: str, *, finished: bool) -> dict:
    """Fill the current store with a small two-round campaign "demo".

    3x3 MoS2 pristine/Co/Zn surfaces with synthetic statics, 16 px fragments, E_b labels (the Zn
    surface keeps only its first ``ZN_KEPT_CLASSES`` hop classes), a one-epoch two-fold small_cnn
    ensemble with predictions, and the campaign with round 0 (pristine and Co hops selected) and
    round 1 (those labelled, the kept Zn hops selected, the ensemble recorded).

    Parameters
    ----------
    campaign_id
        Id of the campaign document.
    finished
        True: the campaign is finished ("budget reached") and names the ensemble as its current
        model. False: it is still running and names no model (readers take the last round's).

    Returns
    -------
    dict
        ``ids`` (surface id per dopant: "none", "Co", "Zn"), ``model_id``, ``n_classes`` (distinct
        hops over all surfaces) and ``zn`` (the Zn surface's representative hops).
    """
    dopants = ("none", "Co", "Zn")
    facade, surface_ids = synthetic_fragment_store(dopants, 16)
    ids = dict(zip(dopants, surface_ids, strict=True))
    for i, sid in enumerate(ids.values()):
        add_binding_energies(facade, sid, offset=0.05 * i)
    zn = representatives(facade, ids["Zn"])
    facade.remove("nebs", {"hop_id": {"$in": [h["hop_id"] for h in zn[ZN_KEPT_CLASSES:]]}})
    train = ["train", "--model", "small_cnn", "--no-pretrained", "--epochs", "1", "--folds", "2"]
    trained = runner.invoke(app, [*train, "--fraction", "0.5", "--pixels", "16"])
    assert trained.exit_code == 0, trained.output
    assert runner.invoke(app, ["predict"]).exit_code == 0
    model = get_model(facade)
    first = [h["hop_id"] for sid in (ids["none"], ids["Co"]) for h in representatives(facade, sid)]
    later = [h["hop_id"] for h in zn[:ZN_KEPT_CLASSES]]
    n_classes = len(first) + len(zn)
    campaign = CampaignDoc(
        campaign_id=campaign_id,
        name="demo",
        spec={"name": "demo", "hosts": ["MoS2"], "dopants": [None, "Co", "Zn"], "selection": {"rounds": 1}},
        surface_ids=list(ids.values()),
        n_hop_classes=n_classes,
        status="finished" if finished else "running",
        stop_reason="budget reached" if finished else None,
        current_model_id=model.model_id if finished else None,
    )
    rounds = [
        RoundDoc(
            round_id="round-0",
            campaign_id=campaign_id,
            round=0,
            strategy="random",
            labelled_hop_ids=[],
            selected_hop_ids=first,
            n_hop_classes=n_classes,
            fraction_labelled=0.0,
            wall_time_s=1.5,
        ),
        RoundDoc(
            round_id="round-1",
            campaign_id=campaign_id,
            round=1,
            strategy="hybrid",
            labelled_hop_ids=first,
            selected_hop_ids=later,
            n_hop_classes=n_classes,
            fraction_labelled=len(first) / n_classes,
            model_id=model.model_id,
            cv_mae_ev=model.cv_mae_ev,
            max_spread_ev=0.04,
            mean_spread_ev=0.02,
            wall_time_s=3.0,
        ),
    ]
    facade.upsert("campaigns", [campaign])
    facade.upsert("campaign_rounds", rounds)
    return {"ids": ids, "model_id": model.model_id, "n_classes": n_classes, "zn": zn}


def module_campaign_store(tmp_path_factory, name, campaign_id, finished):
    """Build :func:`build_campaign_store` once in its own data folder; return ``(folder, info)``."""
    import pytest

    from stores.settings import get_settings

    folder = tmp_path_factory.mktemp(name) / "epdi-data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EPDI_DATA_DIR", str(folder))
        mp.delenv("EPDI_SETTINGS_FILE", raising=False)
        mp.chdir(folder.parent)
        get_settings.cache_clear()
        info = build_campaign_store(campaign_id, finished=finished)
    get_settings.cache_clear()
    return folder, info


def count_outputs(facade) -> int:
    """Documents in jobflow's outputs collection of the facade's job store."""
    store = facade.job_store()
    store.connect()
    try:
        return store.count()
    finally:
        store.close()
