import pytest

from workflows.structures.hosts import get_host
from workflows.structures.site_graph import build_site_graph
from workflows.structures.supercells import build_surface
from workflows.structures.symmetry import isometry_classes, symmetry_classes


def _classes(host, dopant, size):
    spec = get_host(host)
    structure, index = build_surface(spec, dopant, size)
    graph = build_site_graph(structure, spec.anion)
    return structure, index, graph, symmetry_classes(structure, graph), isometry_classes(structure, graph)


@pytest.mark.parametrize(
    "host, dopant, size", [("MoS2", "Co", 6), ("WSe2", "Al", 4), ("TiS2", "V", 6), ("HfS2", "Fe", 3)]
)
def test_spglib_classes_agree_with_the_isometry_search(host, dopant, size):
    _, _, graph, sym, iso = _classes(host, dopant, size)
    for kind in ("valleys", "saddles", "hops"):
        assert getattr(sym, kind).as_sets() == getattr(iso, kind).as_sets(), kind
    assert sum(sym.valleys.multiplicities) == len(graph.valleys)
    assert sum(sym.saddles.multiplicities) == len(graph.saddles)
    assert sum(sym.hops.multiplicities) == len(graph.hops)


def test_doped_6x6_class_counts():
    # 2H and 1T give the same counts: C3v around the dopant plus the 3-fold axes of the
    # dopant superlattice; measured by both routes above.
    for host in ("MoS2", "TiS2"):
        *_, sym, _ = _classes(host, "Co", 6)
        assert (sym.valleys.n_classes, sym.saddles.n_classes, sym.hops.n_classes) == (19, 21, 21)


def test_pristine_has_one_valley_class_per_label_and_one_bridge():
    *_, graph, sym, _ = _classes("MoS2", None, 4)
    assert sym.valleys.n_classes == 2
    labels = {graph.valleys[r].label for r in sym.valleys.representatives}
    assert labels == {"T_M", "H"}
    assert sym.saddles.n_classes == sym.hops.n_classes == 1


def test_site_on_top_of_the_dopant_is_alone_in_its_class():
    structure, index, graph, sym, _ = _classes("MoS2", "Co", 6)
    dopant_xy = structure[index].frac_coords[:2]
    on_top = [
        i
        for i, v in enumerate(graph.valleys)
        if v.label == "T_M"
        and abs(v.frac_coords[0] - dopant_xy[0]) < 1e-6
        and abs(v.frac_coords[1] - dopant_xy[1]) < 1e-6
    ]
    assert len(on_top) == 1
    assert sym.valleys.multiplicities[sym.valleys.class_of[on_top[0]]] == 1
    # C3v: a bridge next to the dopant has two mirror-related partners at most three times
    assert max(sym.saddles.multiplicities) <= 6
