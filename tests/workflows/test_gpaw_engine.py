"""GPAW engine: real (tiny) LCAO statics on the MoS2 primitive cell, plus error paths.

The statics use the dzp basis (the only one ``gpaw-data`` ships), h = 0.25 Angstrom and Gamma
only: about 10 s each on 2 cores. They are skipped only when GPAW cannot be imported.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from stores.grids import BOHR_ANG
from workflows.engines import EngineUnavailable, require_engine
from workflows.engines.gpaw_engine import (
    GpawScfNotConverged,
    require_gpaw,
    run_gpaw_static,
    vacuum_levels,
)
from workflows.engines.gpaw_settings import GpawSettings, kpts_for_supercell
from workflows.structures.hosts import get_host
from workflows.structures.supercells import unit_cell

TINY = GpawSettings(mode="lcao", basis="dzp", h_ang=0.25, kpts=(1, 1, 1))


def mos2_cell():
    return unit_cell(get_host("MoS2"), vacuum_ang=8.0)


@pytest.fixture(scope="module")
def mos2_static(tmp_path_factory):
    pytest.importorskip("gpaw", reason="GPAW is not built here: run deploy/install_gpaw.sh .venv/bin/pip")
    return run_gpaw_static(mos2_cell(), TINY, tmp_path_factory.mktemp("gpaw-mos2"))


def test_grids_share_one_shape(mos2_static):
    r = mos2_static
    assert r.potential_ev.shape == r.density_e_per_bohr3.shape == r.grid_shape
    assert r.potential_ev.ndim == 3
    # Fine grid: twice as dense as the coarse grid, whose spacing GPAW rounds from h (here 0.25).
    assert all(0.4 * TINY.h_ang <= h <= 0.6 * TINY.h_ang for h in r.grid_spacing_ang), r.grid_spacing_ang
    cell = mos2_cell()
    lengths = cell.lattice.abc
    for h, n, length in zip(r.grid_spacing_ang, r.grid_shape, lengths, strict=True):
        assert h * n == pytest.approx(length)


def test_all_electron_density_integrates_to_total_z(mos2_static):
    r = mos2_static
    cell = mos2_cell()
    volume_bohr3 = cell.volume / BOHR_ANG**3
    n_electrons = r.density_e_per_bohr3.mean() * volume_bohr3
    total_z = sum(site.specie.Z for site in cell)  # Mo 42 + 2 S 16 = 74
    assert n_electrons == pytest.approx(total_z, rel=0.02)


def test_density_is_tiny_in_vacuum_and_potential_flat(mos2_static):
    r = mos2_static
    planar_n = r.density_e_per_bohr3.mean(axis=(0, 1))
    planar_v = r.potential_ev.mean(axis=(0, 1))
    n3 = planar_n.shape[0]
    # Planes within 1 Angstrom of the top and bottom faces of the cell (3+ Angstrom from any atom).
    c = mos2_cell().lattice.c
    edge = max(2, round(1.0 / c * n3))
    vacuum = np.r_[0:edge, n3 - edge : n3]
    assert planar_n[vacuum].max() < 1e-4  # e/bohr^3; the EPDI isosurface is 0.01
    assert planar_n.max() > 0.1
    assert np.ptp(planar_v[n3 - edge :]) < 0.05
    assert r.vacuum_flatness_ev < 0.05
    assert abs(r.potential_ev[..., n3 - edge :].mean() - r.vacuum_level_ev) < 0.05
    # Symmetric slab: equal vacuum levels on both sides; potential deep below them inside the slab.
    assert r.vacuum_level_ev == pytest.approx(r.vacuum_level_bottom_ev, abs=0.01)
    assert planar_v.min() < r.vacuum_level_ev - 10.0
    # A semiconductor's Fermi level lies a few eV below the vacuum level.
    assert 3.0 < r.work_function_ev < 7.0


def test_energy_has_negative_d3_part(mos2_static):
    r = mos2_static
    assert np.isfinite(r.energy_ev)
    assert r.d3_energy_ev < 0
    assert r.energy_ev == pytest.approx(r.dft_energy_ev + r.d3_energy_ev)
    assert r.scf_iterations > 1
    assert r.wall_time_s > 0
    assert r.magnetic_moment_mub == 0.0
    assert r.settings["kpts"] == (1, 1, 1)


def test_dipole_layer_splits_vacuum_levels_of_janus_slab(tmp_path):
    pytest.importorskip("gpaw", reason="GPAW is not built here: run deploy/install_gpaw.sh .venv/bin/pip")
    janus = mos2_cell()
    janus.replace(2, "Se")  # bottom S -> Se: MoSSe, an out-of-plane dipole
    r = run_gpaw_static(janus, TINY.model_copy(update={"d3": False}), tmp_path)
    assert r.d3_energy_ev == 0.0
    assert r.vacuum_flatness_ev < 0.05
    # Literature (relaxed Janus MoSSe): about 0.7-0.8 eV, S side higher.
    assert 0.3 < r.vacuum_level_ev - r.vacuum_level_bottom_ev < 1.2


def test_spin_polarised_vs2_keeps_a_moment(tmp_path):
    pytest.importorskip("gpaw", reason="GPAW is not built here: run deploy/install_gpaw.sh .venv/bin/pip")
    vs2 = mos2_cell()
    vs2.replace(0, "V")  # V starts at 3 muB (DEFAULT_INITIAL_MAGMOMS); 2H-VS2 keeps about 1 muB per V
    r = run_gpaw_static(vs2, TINY.model_copy(update={"spin_polarized": True, "d3": False}), tmp_path)
    assert r.formula == "VS2"
    assert 0.5 < abs(r.magnetic_moment_mub) < 1.5
    n_electrons = r.density_e_per_bohr3.mean() * vs2.volume / BOHR_ANG**3
    assert n_electrons == pytest.approx(23 + 2 * 16, rel=0.02)  # both spins summed


def test_scf_not_converged_names_structure_and_fix(tmp_path):
    pytest.importorskip("gpaw", reason="GPAW is not built here: run deploy/install_gpaw.sh .venv/bin/pip")
    with pytest.raises(GpawScfNotConverged, match=r"MoS2.*maxiter"):
        run_gpaw_static(mos2_cell(), TINY.model_copy(update={"maxiter": 2}), tmp_path)


def test_require_gpaw_names_install_command_when_import_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # makes `import gpaw` raise ImportError
    monkeypatch.setitem(sys.modules, "gpaw.cgpaw", None)
    with pytest.raises(
        EngineUnavailable, match=r"'gpaw'.*deploy/install_gpaw\.sh \.venv/bin/pip.*make install"
    ):
        require_gpaw()
    with pytest.raises(EngineUnavailable, match="install_gpaw"):
        require_engine("gpaw")


def test_require_gpaw_reports_missing_setups(monkeypatch, tmp_path):
    gpaw = pytest.importorskip("gpaw", reason="GPAW is not built here")
    monkeypatch.setattr(gpaw, "setup_paths", [tmp_path])
    with pytest.raises(EngineUnavailable, match=r"Mo\.PBE \(PAW setup\).*Mo\.dzp\.basis.*install_gpaw"):
        require_gpaw(("Mo", "S"))


def test_require_gpaw_passes_when_built():
    pytest.importorskip("gpaw", reason="GPAW is not built here")
    require_gpaw(("Mo", "S", "Li", "Co", "W", "Se"))


def test_kpts_follow_supercell():
    assert kpts_for_supercell(1) == (6, 6, 1)
    assert kpts_for_supercell(3) == (2, 2, 1)
    assert kpts_for_supercell(4) == (2, 2, 1)
    assert kpts_for_supercell(6) == (1, 1, 1)
    assert kpts_for_supercell(8) == (1, 1, 1)
    with pytest.raises(ValueError):
        kpts_for_supercell(0)


def test_vacuum_levels_pick_flattest_window():
    n3, c = 100, 20.0
    z = np.arange(n3) / n3
    planar = np.where(z < 0.5, 1.0, -1.0) - 8.0 * np.exp(-(((z - 0.5) / 0.05) ** 2))
    grid = np.broadcast_to(planar, (4, 4, n3)).copy()
    top, top_spread, bottom, bottom_spread = vacuum_levels(grid, np.array([0.4, 0.5, 0.6]), 1.0, c)
    assert top == pytest.approx(-1.0, abs=1e-6)
    assert bottom == pytest.approx(1.0, abs=1e-6)
    assert top_spread < 1e-6 and bottom_spread < 1e-6
    with pytest.raises(ValueError, match="centre the slab"):
        vacuum_levels(grid, np.array([0.0, 0.5, 0.99]), 1.0, c)


def test_settings_validate():
    with pytest.raises(ValueError):
        GpawSettings(mode="fd")
    assert GpawSettings().functional == "PBE+D3(zero)"
    assert GpawSettings().kpts == (1, 1, 1)
