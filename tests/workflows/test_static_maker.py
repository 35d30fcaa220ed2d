"""The surface static through jobflow: GPAW grids land in the data store with a document."""

import numpy as np
import pytest
from jobflow.managers.local import run_locally
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.grids import get_grid
from stores.schemas.calculations import CalculationDoc
from workflows.cli.app import app
from workflows.fireworks.launchpad import job_engine
from workflows.jobs.static import gpaw_settings_for, surface_static
from workflows.structures.hosts import get_host
from workflows.structures.surfaces import describe_surface


def test_gpaw_static_stores_grids_and_document(tmp_path):
    pytest.importorskip("gpaw")
    bundle = describe_surface(get_host("MoS2"), None, size=2, vacuum_ang=8.0)
    settings = gpaw_settings_for(bundle.surface, h_ang=0.3, kpts=(1, 1, 1))
    job = surface_static(bundle, "gpaw", settings, workdir=str(tmp_path))
    facade = StoreFacade()
    run_locally(job, store=facade.job_store(), log=False, ensure_success=True, root_dir=tmp_path)
    (raw,) = facade.query("calculations", {"kind": "static"})
    doc = CalculationDoc(**raw)
    assert doc.engine == "gpaw" and doc.surface_id == bundle.surface.surface_id
    assert doc.functional == "PBE+D3(zero)"
    potential, density = get_grid(facade, doc.potential), get_grid(facade, doc.density)
    assert potential.shape == density.shape == doc.potential.shape
    assert doc.potential.units == "eV" and doc.density.units == "e/bohr^3"
    # GPAW's potential is zero far from the slab; the dipole layer keeps both sides flat
    assert abs(doc.vacuum_level_ev) < 0.05
    assert density[:, :, 0].max() < 1e-3  # vacuum at the cell edge holds (almost) no electrons
    assert np.isfinite(doc.final_energy_ev) and doc.settings["dft_energy_ev"] > doc.final_energy_ev


def test_vasp_static_needs_vasp_before_anything_starts(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    bundle = describe_surface(get_host("MoS2"), None, size=2)
    # the flow builds without VASP (it runs on the workers) and its jobs name the engine they need
    flow = surface_static(bundle, "vasp")
    engines = {job.name: job_engine(job) for job, _ in flow.iterflow()}
    assert "vasp" in engines.values() and engines["ingest_vasp_static"] is None  # ingest runs anywhere
    result = CliRunner().invoke(app, ["static", "MoS2", "--size", "2", "--engine", "vasp"])
    assert result.exit_code == 2 and "vasp" in result.stderr
    assert StoreFacade().count("calculations") == 0


def test_chgnet_has_no_potential_grid():
    bundle = describe_surface(get_host("MoS2"), None, size=2)
    with pytest.raises(ValueError, match="no potential grid"):
        surface_static(bundle, "chgnet")
