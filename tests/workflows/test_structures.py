import numpy as np
import pytest

from workflows.structures.hosts import InputError, check_dopant, get_host, load_hosts
from workflows.structures.supercells import build_surface, ordered_formula, unit_cell


def test_host_table_has_the_twelve_paper_hosts_with_sources():
    table = load_hosts()
    assert set(table) == {
        "MoS2",
        "MoSe2",
        "WS2",
        "WSe2",
        "NbS2",
        "TaS2",
        "TiS2",
        "ZrS2",
        "HfS2",
        "HfSe2",
        "VS2",
        "VSe2",
    }
    assert {h.phase for h in table.values() if h.metal in ("Mo", "W", "Nb", "Ta")} == {"2H"}
    assert {h.phase for h in table.values() if h.metal in ("Ti", "Zr", "Hf", "V")} == {"1T"}
    assert all(h.source for h in table.values())


def test_user_table_overrides_a_row(tmp_path):
    extra = tmp_path / "hosts.yaml"
    extra.write_text(
        "MoS2: {phase: 2H, metal: Mo, anion: S, a_ang: 3.20, anion_height_ang: 1.59,"
        " group: VIB, source: my PBE-D3 relaxation}\n"
    )
    table = load_hosts(extra)
    assert table["MoS2"].a_ang == 3.20
    assert table["WS2"].a_ang == load_hosts()["WS2"].a_ang


@pytest.mark.parametrize("phase_host, bottom_xy", [("MoS2", (1 / 3, 2 / 3)), ("TiS2", (2 / 3, 1 / 3))])
def test_unit_cell_geometry(phase_host, bottom_xy):
    host = get_host(phase_host)
    cell = unit_cell(host, vacuum_ang=15.0)
    assert cell.lattice.c == pytest.approx(2 * host.anion_height_ang + 15.0)
    assert cell.lattice.gamma == pytest.approx(120.0)
    z = cell.cart_coords[:, 2]
    assert z[1] - z[0] == pytest.approx(host.anion_height_ang)
    assert z[0] - z[2] == pytest.approx(host.anion_height_ang)
    np.testing.assert_allclose(cell.frac_coords[2, :2], bottom_xy)
    # metal-anion bond length is physical (2.3-2.7 Angstrom for these sulfides)
    assert 2.2 < cell.get_distance(0, 1) < 2.7


def test_doped_6x6_mos2_formula_and_central_dopant():
    host = get_host("MoS2")
    structure, index = build_surface(host, "Co", size=6)
    assert len(structure) == 108
    assert ordered_formula(structure, "Mo", "S", "Co") == "Mo35 Co1 S72"
    assert structure[index].specie.symbol == "Co"
    np.testing.assert_allclose(structure[index].frac_coords[:2], [0.5, 0.5], atol=1e-8)


def test_pristine_has_no_dopant():
    structure, index = build_surface(get_host("WS2"), None, size=3)
    assert index is None
    assert structure.composition.reduced_formula == "WS2"


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: get_host("MoX2"), "unknown host 'MoX2'"),
        (lambda: check_dopant("S"), "not a metal"),
        (lambda: check_dopant("Xx"), "unknown dopant element 'Xx'"),
        (lambda: build_surface(get_host("MoS2"), None, size=1), "size 1"),
        (lambda: build_surface(get_host("MoS2"), None, vacuum_ang=-1.0), "vacuum -1.0"),
    ],
)
def test_bad_input_names_the_value(call, fragment):
    with pytest.raises(InputError, match=fragment):
        call()


def test_dopant_aliases_for_pristine():
    assert check_dopant(None) is None
    assert check_dopant("none") is None
    assert check_dopant("Zn") == "Zn"
    assert check_dopant("Li") == "Li"  # any metal is accepted
