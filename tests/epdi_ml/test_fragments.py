"""Fragments: geometry, periodic crops, symmetry duplicates on a built surface, the fixed colour scale."""

import numpy as np
import pytest

from epdi_ml.fragments import build as fb
from epdi_ml.fragments import colour_scales
from epdi_ml.fragments import errors as fragment_errors
from epdi_ml.fragments.crops import (
    ColourScale,
    FragmentCutter,
    cut_fragment,
    frames_from_directions,
    mep_ev,
    minimum_image,
)
from epdi_ml.fragments.potential_map import PotentialMap
from epdi_ml.fragments.synthetic import store_synthetic_static
from stores.arrays import get_array
from stores.facade import StoreFacade
from stores.schemas.fields import ArrayRef
from workflows.structures.hosts import get_host
from workflows.structures.surfaces import describe_surface, store_surfaces


def _hex_map(n=60, a=9.0):
    lattice = np.array([[a, 0.0], [-a / 2, a * np.sqrt(3) / 2]])
    fa, fb_ = np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij")
    values = np.cos(2 * np.pi * fa) + 0.5 * np.sin(2 * np.pi * 2 * fb_) + 0.2 * np.cos(2 * np.pi * (fa + fb_))
    return PotentialMap(values, np.zeros_like(values), lattice, 0.01, 0.0)


def test_crop_geometry_orientation_and_mep():
    pmap = _hex_map()
    centre = np.array([2.0, 1.5])
    along_x = cut_fragment(pmap, centre, np.array([1.0, 0.0]), size_ang=3.0, pixels=16)
    along_y = cut_fragment(pmap, centre, np.array([0.0, 2.0]), size_ang=3.0, pixels=16)
    assert along_x.shape == (16, 16)
    # turning the frame by +90 degrees permutes the pixels: B[iy, ix] = A[ix, P - 1 - iy]
    np.testing.assert_allclose(along_y, np.rot90(along_x, k=1), atol=1e-12)
    # pixel [iy, ix] sits at centre + x e_x + y e_y with pixel-centred coordinates
    x = ((3 + 0.5) / 16 - 0.5) * 3.0
    y = ((12 + 0.5) / 16 - 0.5) * 3.0
    assert along_x[12, 3] == pytest.approx(pmap.sample(centre + np.array([x, y])))
    assert mep_ev(along_x) == pytest.approx(along_x.mean())


def test_periodic_crop_across_the_cell_edge_equals_crop_of_the_shifted_map():
    pmap = _hex_map()
    shift = (17, 41)
    moved = pmap.shifted(shift)
    shift_cart = (np.array(shift) / np.array(pmap.shape)) @ pmap.lattice_ang
    cutter = FragmentCutter(6.0, 32)
    centres = np.array([[0.1, 0.05], [-4.4, 7.7], [8.9, 0.0]])  # on corners and edges of the cell
    frames = frames_from_directions(np.array([[1.0, 0.3], [-0.5, 1.0], [0.0, -1.0]]))
    np.testing.assert_allclose(
        cutter.cut(moved, centres + shift_cart, frames), cutter.cut(pmap, centres, frames), atol=1e-10
    )
    # and a crop is the same from any periodic image of its centre
    image = centres + pmap.lattice_ang[0] * 2 - pmap.lattice_ang[1]
    np.testing.assert_allclose(cutter.cut(pmap, image, frames), cutter.cut(pmap, centres, frames), atol=1e-10)


def test_minimum_image_on_a_hexagonal_cell():
    lattice = np.array([[3.0, 0.0], [-1.5, 1.5 * np.sqrt(3)]])
    far = np.array([2.9, 0.1]) + lattice[0] * 3 + lattice[1] * 2
    np.testing.assert_allclose(minimum_image(far, lattice), [-0.1, 0.1], atol=1e-12)


def test_colour_scale_rgb_and_clipping():
    scale = ColourScale(-1.0, 1.0, "viridis")
    rgb, clipped = scale.to_rgb(np.array([[[-1.0, 0.0], [1.0, 2.0]], [[0.5, 0.5], [0.5, -3.0]]]))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 2, 3)
    assert clipped.tolist() == [1, 1]
    np.testing.assert_array_equal(rgb[0, 1, 0], rgb[0, 1, 1])  # clipped to the top colour
    with pytest.raises(ValueError):
        ColourScale(1.0, 1.0)


def _surface(dopant, size=3):
    facade = StoreFacade()
    bundle = describe_surface(get_host("MoS2"), dopant, size)
    store_surfaces([bundle], facade)
    store_synthetic_static(facade, bundle.structure, bundle.surface.surface_id)
    return facade, bundle


def test_symmetry_duplicates_agree_on_a_doped_surface():
    facade, bundle = _surface("Co", size=4)
    result = fb.cut_surface(facade, bundle.surface.surface_id, pixels=32)
    n_dup = sum(1 for s in bundle.sites if s.symmetry.representative_index != s.index)
    assert n_dup > 0 and len(result.symmetry_diff_ev) == n_dup
    span = np.ptp(result.arrays)
    assert max(result.symmetry_diff_ev.values()) < 1e-3 * max(span, 1.0)
    # saddles: the hop-direction rule gives equal crops, or crops mirrored about the crop x axis
    reps = {s.site_id: s for s in bundle.sites}
    index = {s["site_id"]: n for n, s in enumerate(result.sites)}
    saddles = [s for s in result.sites if s["kind"] == "saddle"]
    by_class = {}
    for s in saddles:
        by_class.setdefault(s["symmetry"]["class_index"], []).append(index[s["site_id"]])
    checked = 0
    for members in by_class.values():
        ref = result.arrays[members[0]]
        for n in members[1:]:
            diff = min(np.abs(result.arrays[n] - ref).max(), np.abs(result.arrays[n] - ref[::-1]).max())
            assert diff < 1e-3
            checked += 1
    assert checked > 0 and reps


def test_duplicate_check_catches_a_map_without_the_slab_symmetry():
    facade, bundle = _surface("Co")
    calc = fb.find_static(facade, bundle.surface.surface_id)
    from stores.grids import get_grid, put_grid
    from stores.schemas.fields import GridRef

    potential = get_grid(facade, GridRef(**calc["potential"]))
    ramp = np.linspace(0, 0.5, potential.shape[0])[:, None, None] * np.ones(potential.shape)
    calc["potential"] = put_grid(facade, potential + ramp, "eV").model_dump()
    from stores.schemas.calculations import CalculationDoc

    facade.upsert("calculations", [CalculationDoc(**calc)])
    with pytest.raises(fragment_errors.SymmetryCheckError, match="symmetry"):
        fb.cut_surface(facade, bundle.surface.surface_id)


def test_colour_scale_is_stable_when_a_surface_is_added():
    facade, first = _surface("Co")
    r1 = fb.cut_surface(facade, first.surface.surface_id, pixels=24)
    scale1, created1 = colour_scales.choose_colour_scale(facade, [r1.map_doc])
    docs1 = fb.store_fragments(facade, r1, scale1)
    assert created1 and len(docs1) == 45
    assert all(d.colour_scale_id == scale1.scale_id for d in docs1)

    _, second = _surface("Zn")
    r2 = fb.cut_surface(facade, second.surface.surface_id, pixels=24)
    scale2, created2 = colour_scales.choose_colour_scale(facade, [r2.map_doc])
    assert not created2
    assert (scale2.scale_id, scale2.vmin_ev, scale2.vmax_ev, scale2.cmap) == (
        scale1.scale_id,
        scale1.vmin_ev,
        scale1.vmax_ev,
        scale1.cmap,
    )
    docs2 = fb.store_fragments(facade, r2, scale2)
    outside = ((r2.arrays < scale1.vmin_ev) | (r2.arrays > scale1.vmax_ev)).sum()
    assert r2.clipped_pixels == outside  # reported, never silently rescaled
    # the first surface's fragments are untouched
    stored1 = {
        d["fragment_id"]: d for d in facade.query("fragments", {"surface_id": first.surface.surface_id})
    }
    assert sorted(stored1) == sorted(d.fragment_id for d in docs1)
    assert all(stored1[d.fragment_id]["sha256"] == d.sha256 for d in docs1)
    assert facade.count("fragments") == 90 and facade.count("colour_scales") == 1
    # stacks round-trip from the data store
    raw = get_array(facade, ArrayRef(**stored1[docs1[0].fragment_id]["array"]))
    rgb = get_array(facade, ArrayRef(**stored1[docs1[0].fragment_id]["rgb"]))
    assert raw.shape == (45, 24, 24) and raw.dtype == np.float32 and rgb.shape == (45, 24, 24, 3)
    assert float(raw[docs1[0].stack_index].mean()) == pytest.approx(docs1[0].mep_ev, abs=1e-5)
    # an explicit rescale covers both maps
    scale3, created3 = colour_scales.choose_colour_scale(facade, [], rescale=True)
    assert created3 and scale3.scale_id == scale1.scale_id
    assert scale3.vmin_ev <= min(r1.map_doc.min_ev, r2.map_doc.min_ev)
    assert scale3.vmax_ev >= max(r1.map_doc.max_ev, r2.map_doc.max_ev)
    assert docs2
