import numpy as np
import pytest

from workflows.structures.hosts import get_host
from workflows.structures.site_graph import build_site_graph, in_plane_distances
from workflows.structures.supercells import build_surface


@pytest.mark.parametrize("host", ["MoS2", "TiS2"])
@pytest.mark.parametrize("size", [2, 3, 4, 6])
def test_counts_scale_as_2n2_3n2_3n2(host, size):
    spec = get_host(host)
    structure, _ = build_surface(spec, "Co", size)
    graph = build_site_graph(structure, spec.anion)
    assert len(graph.valleys) == 2 * size**2
    assert len(graph.saddles) == 3 * size**2
    assert len(graph.hops) == 3 * size**2
    assert graph.count_labels() == {"T_M": size**2, "H": size**2}


def test_6x6_doped_mos2_is_72_108_108():
    spec = get_host("MoS2")
    structure, _ = build_surface(spec, "Co", 6)
    graph = build_site_graph(structure, spec.anion)
    assert (len(graph.valleys), len(graph.saddles), len(graph.hops)) == (72, 108, 108)


def test_geometry_of_sites_and_hops():
    spec = get_host("MoS2")
    structure, _ = build_surface(spec, None, 4)
    graph = build_site_graph(structure, spec.anion)
    a = spec.a_ang
    metals = np.array([s.frac_coords[:2] for s in structure if s.specie.symbol == "Mo"])
    for valley in graph.valleys:
        d_metal = in_plane_distances(structure, np.array([valley.frac_coords[:2]]), metals).min()
        # T_M sits on a metal; H sits a/sqrt(3) from the nearest metals
        assert d_metal == pytest.approx(0.0 if valley.label == "T_M" else a / np.sqrt(3), abs=1e-6)
        assert len(valley.anion_indices) == 3
    for saddle in graph.saddles:
        i, j = saddle.anion_indices
        assert structure.get_distance(i, j) == pytest.approx(a)
    for hop in graph.hops:
        t_m, h = hop.valleys
        assert graph.valleys[t_m].label == "T_M" and graph.valleys[h].label == "H"
        assert hop.length_ang == pytest.approx(a / np.sqrt(3))
    # every valley is the end of exactly three hops (three bridges around a triangle)
    ends = np.bincount([v for hop in graph.hops for v in hop.valleys], minlength=len(graph.valleys))
    assert set(ends) == {3}
    z_top = max(s.coords[2] for s in structure if s.specie.symbol == "S")
    assert all(v.cart_coords[2] == pytest.approx(z_top) for v in graph.valleys)


def test_rejects_tilted_cells():
    from pymatgen.core import Lattice, Structure

    tilted = Structure(
        Lattice([[3, 0, 0], [0, 3, 0], [1, 0, 20]]), ["Mo", "S"], [[0, 0, 0.5], [0.3, 0.6, 0.6]]
    )
    with pytest.raises(ValueError, match="c along z"):
        build_site_graph(tilted, "S")
