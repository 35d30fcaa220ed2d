"""Helpers for tests that need surfaces, fragments and labels in the store."""

import json

from typer.testing import CliRunner

from stores.calc_documents import NebDoc, ValleyDoc
from workflows.cli.app import app

runner = CliRunner()


def build_surface_cli(dopant):
    """Build a 3x3 MoS2 surface with the CLI and return its id."""
    result = runner.invoke(app, ["surfaces", "build", "MoS2", "--dopant", dopant, "--size", "3", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["surface_id"]


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
