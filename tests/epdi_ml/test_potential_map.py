"""Isosurface potential maps: an analytic pair with known answers, and the real VASP fixtures."""

from pathlib import Path

import numpy as np
import pytest

from epdi_ml.fragments.potential_map import NoVacuumError, isosurface_potential_map, resample
from stores.grids import BOHR3_ANG3
from stores.vasp_import import read_density_grid, read_potential_grid

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vasp" / "macrodensity"
A, B, C = 4.0, 5.0, 20.0
RHO0, DECAY_ANG = 1.0, 0.5
V0, AX, BY, FIELD = -1.5, 0.3, -0.2, 0.05  # eV, eV, eV, eV/Angstrom


def _analytic(shape=(40, 50, 400), z_centre=10.0, field=FIELD):
    """Slab density RHO0 exp(-(|z - zc| - h(x)) / L) and potential V0 + A cos + B sin + E (z - zc)."""
    fa, fb, fc = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    x, y, z = fa * A, fb * B, fc * C
    dz = (z - z_centre + C / 2) % C - C / 2  # periodic distance to the slab centre
    h = 0.3 * np.cos(2 * np.pi * x / A)
    density = RHO0 * np.exp(-(np.abs(dz) - h) / DECAY_ANG)
    potential = V0 + AX * np.cos(2 * np.pi * x / A) + BY * np.sin(2 * np.pi * y / B) + field * dz
    lattice = np.diag([A, B, C])
    # expected on the top side: |dz| = h + L ln(RHO0 / 0.01)
    x2, y2 = x[:, :, 0], y[:, :, 0]
    height = 0.3 * np.cos(2 * np.pi * x2 / A) + DECAY_ANG * np.log(RHO0 / 0.01)
    v_iso = V0 + AX * np.cos(2 * np.pi * x2 / A) + BY * np.sin(2 * np.pi * y2 / B) + field * height
    return potential, density, lattice, (z_centre + height) % C, v_iso


@pytest.mark.parametrize("z_centre", [10.0, 0.7, 19.5])
def test_analytic_isosurface_height_and_potential(z_centre):
    potential, density, lattice, z_expected, v_expected = _analytic(z_centre=z_centre)
    pmap = isosurface_potential_map(potential, density, lattice, 0.01, vacuum_level_ev=0.25)
    assert pmap.shape == (40, 50)
    assert pmap.reference == "vacuum" and pmap.vacuum_level_source == "calculation"
    np.testing.assert_allclose(pmap.z_iso_ang, z_expected, atol=1e-6)
    np.testing.assert_allclose(pmap.values_ev, v_expected - 0.25, atol=1e-6)
    assert pmap.spacing_ang == pytest.approx((0.1, 0.1))


def test_vacuum_level_estimated_from_the_planar_average():
    potential, density, lattice, _, v_expected = _analytic(field=0.0)
    pmap = isosurface_potential_map(potential, density, lattice)
    assert pmap.vacuum_level_source == "planar_average"
    assert pmap.vacuum_level_ev == pytest.approx(V0, abs=1e-9)
    np.testing.assert_allclose(pmap.values_ev, v_expected - V0, atol=1e-6)


def test_sample_is_periodic_and_interpolates_smoothly():
    potential, density, lattice, _, _ = _analytic(field=0.0)
    pmap = isosurface_potential_map(potential, density, lattice, vacuum_level_ev=0.0)
    pts = np.array([[0.37, 1.21], [2.05, 4.4]])
    exact = V0 + AX * np.cos(2 * np.pi * pts[:, 0] / A) + BY * np.sin(2 * np.pi * pts[:, 1] / B)
    np.testing.assert_allclose(pmap.sample(pts), exact, atol=1e-4)
    shifted = pts + np.array([A, 0.0]) * 3 - np.array([0.0, B]) * 2
    np.testing.assert_allclose(pmap.sample(shifted), pmap.sample(pts), atol=1e-12)
    coarse = resample(pmap, 0.25)
    assert coarse.shape == (16, 20)
    np.testing.assert_allclose(coarse.sample(pts), exact, atol=2e-3)


def test_bulk_cell_is_refused():
    uniform = np.full((8, 8, 8), 0.05)
    with pytest.raises(NoVacuumError, match="bulk"):
        isosurface_potential_map(np.zeros_like(uniform), uniform, np.eye(3) * 4)
    with pytest.raises(ValueError, match="same shape"):
        isosurface_potential_map(np.zeros((8, 8, 9)), uniform, np.eye(3) * 4)


def test_real_vasp_fixtures_end_to_end():
    potential, zns = read_potential_grid(FIXTURES / "LOCPOT.test")
    assert potential.shape == (32, 32, 32)
    assert -150 < potential.min() < potential.max() < 20  # eV: deep at the nuclei, a few eV between
    density, si = read_density_grid(FIXTURES / "CHGCAR.test")
    assert density.shape == (56, 56, 56)
    assert density.mean() * si.volume / BOHR3_ANG3 == pytest.approx(8.0, rel=1e-6)  # Si2: 8 valence e
    # both cells are bulk: no surface to map
    with pytest.raises(NoVacuumError):
        isosurface_potential_map(np.zeros_like(density), density, si.lattice.matrix)
    # the real Si density as a slab: stack vacuum on top (c doubled along z)
    lattice = np.array(si.lattice.matrix)
    if abs(lattice[2, 0]) > 1e-6 or abs(lattice[2, 1]) > 1e-6:
        # fcc primitive cell: use a cubic box of the same grid instead of the real cell shape
        lattice = np.diag(si.lattice.abc)
    slab_density = np.concatenate([density.clip(min=0), np.zeros_like(density)], axis=2)
    slab_potential = -10.0 * slab_density  # eV; zero in the vacuum
    slab_lattice = lattice.copy()
    slab_lattice[2] *= 2
    # every column of this Si grid peaks above 0.006 e/bohr^3: take 0.005 as the isovalue
    pmap = isosurface_potential_map(slab_potential, slab_density, slab_lattice, isovalue=0.005)
    assert pmap.shape == (56, 56)
    assert pmap.vacuum_level_ev == pytest.approx(0.0)
    # potential = -10 eV per e/bohr^3 of density: -0.05 eV on the isosurface where the crossing is
    # interpolated from the vacuum side, between the two bracketing grid values elsewhere
    assert np.median(pmap.values_ev) == pytest.approx(-0.05, abs=1e-3)
    assert np.all((pmap.values_ev <= 0) & (pmap.values_ev >= -10 * density.max()))
    assert np.all((pmap.z_iso_ang > 0) & (pmap.z_iso_ang < lattice[2, 2] + 1e-9))
