"""Import of real VASP outputs (MacroDensity test files, MIT) into the calculations collection."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Locpot
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.grids import BOHR_ANG, get_grid
from stores.schemas.fields import GridRef
from stores.vasp_import import (
    VaspImportError,
    import_vasp,
    read_density_grid,
    vacuum_level,
)
from workflows.cli.app import app

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vasp" / "macrodensity"
ZNS_ENERGY_EV = -0.23926528  # energy(sigma->0) of the ZnS OUTCAR
runner = CliRunner()


def _static_folder(root: Path, name: str = "zns") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for src, dst in (("OUTCAR.test", "OUTCAR"), ("POSCAR.test", "POSCAR"), ("LOCPOT.test", "LOCPOT")):
        shutil.copyfile(FIXTURES / src, folder / dst)
    return folder


def _truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _n_blobs(facade: StoreFacade) -> int:
    store = facade.data_store()
    store.connect()
    try:
        return store.count()
    finally:
        store.close()


def test_fixture_licence_travels_with_the_files():
    assert "MIT License" in (FIXTURES / "LICENSE").read_text()
    assert "MacroDensity" in (FIXTURES / "SOURCE.md").read_text()


def test_static_import_energy_grid_and_round_trip(tmp_path):
    facade = StoreFacade()
    folder = _static_folder(tmp_path)
    doc = import_vasp(folder, facade)
    assert doc.kind == "static" and doc.engine == "vasp" and doc.source == "imported"
    assert doc.final_energy_ev == pytest.approx(ZNS_ENERGY_EV, abs=1e-8)
    assert doc.formula == "Zn1 S1" and doc.natoms == 2  # element names from the OUTCAR's POTCARs
    assert doc.functional == "PBE"
    assert doc.converged is True
    assert doc.versions == {"vasp": "6.1.1"}
    assert doc.source_path == str(folder.resolve())
    assert doc.potential is not None and doc.potential.shape == (32, 32, 32) and doc.potential.units == "eV"
    assert doc.density is None
    assert doc.vacuum_level_ev is None  # bulk ZnS has no vacuum
    assert any("vacuum" in w for w in doc.settings["warnings"])
    # round trip through the store
    stored = facade.query("calculations", {"calc_id": doc.calc_id})
    assert len(stored) == 1
    assert stored[0]["final_energy_ev"] == pytest.approx(ZNS_ENERGY_EV)
    grid = get_grid(facade, GridRef(**stored[0]["potential"]))
    expected = Locpot.from_file(str(FIXTURES / "LOCPOT.test")).data["total"]
    np.testing.assert_array_equal(grid, expected)
    assert grid.min() == pytest.approx(-102.17399625)
    # deterministic id: importing again (or a copy elsewhere) updates the same document
    again = import_vasp(_static_folder(tmp_path, "copy"), facade)
    assert again.calc_id == doc.calc_id
    assert facade.count("calculations") == 1


def test_gzipped_outputs_are_read(tmp_path):
    folder = _static_folder(tmp_path)
    for name in ("OUTCAR", "LOCPOT"):
        with gzip.open(folder / f"{name}.gz", "wb") as handle:
            handle.write((folder / name).read_bytes())
        (folder / name).unlink()
    doc = import_vasp(folder, StoreFacade())
    assert doc.final_energy_ev == pytest.approx(ZNS_ENERGY_EV) and doc.potential.shape == (32, 32, 32)


def test_chgcar_density_in_electrons_per_bohr3(tmp_path):
    density, structure = read_density_grid(FIXTURES / "CHGCAR.test")
    assert density.shape == (56, 56, 56)
    assert structure.composition.reduced_formula == "Si"
    assert BOHR_ANG == pytest.approx(0.529177210903, rel=1e-9)  # CODATA 2018, NIST
    # integral of rho over the cell = 8 valence electrons of two Si atoms
    voxel_bohr3 = structure.volume / density.size / BOHR_ANG**3
    assert density.sum() * voxel_bohr3 == pytest.approx(8.0, rel=1e-6)
    assert 0 < density.max() < 1  # e/bohr^3, not e/Angstrom^3 times volume


def test_grid_of_another_cell_is_refused_and_nothing_is_written(tmp_path):
    facade = StoreFacade()
    folder = _static_folder(tmp_path)
    shutil.copyfile(FIXTURES / "CHGCAR.test", folder / "CHGCAR")  # Si grid beside a ZnS run
    with pytest.raises(VaspImportError, match="CHGCAR"):
        import_vasp(folder, facade)
    assert facade.count("calculations") == 0
    assert _n_blobs(facade) == 0  # the LOCPOT was parsed fine but not stored


@pytest.mark.parametrize("name", ["LOCPOT", "OUTCAR", "POSCAR"])
def test_truncated_file_names_the_file_and_writes_nothing(tmp_path, name):
    facade = StoreFacade()
    folder = _static_folder(tmp_path)
    _truncate(folder / name, 0.5 if name != "POSCAR" else 0.3)
    with pytest.raises(VaspImportError) as info:
        import_vasp(folder, facade)
    assert str(folder / name) in str(info.value)
    assert facade.count("calculations") == 0
    assert _n_blobs(facade) == 0


def test_folder_without_outputs_is_an_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    shutil.copyfile(FIXTURES / "POSCAR.test", folder / "POSCAR")
    with pytest.raises(VaspImportError, match="no vasprun.xml or OUTCAR"):
        import_vasp(folder, StoreFacade())


def _neb_folder(root: Path, n_images: int = 3, endpoint_outputs: bool = False) -> Path:
    top = root / "neb"
    top.mkdir()
    for index in range(n_images + 2):
        image = top / f"{index:02d}"
        image.mkdir()
        shutil.copyfile(FIXTURES / "POSCAR.test", image / "POSCAR")
        endpoint = index in (0, n_images + 1)
        if endpoint_outputs or not endpoint:
            shutil.copyfile(FIXTURES / "OUTCAR.test", image / "OUTCAR")
    return top


def test_neb_folder_without_end_point_outputs(tmp_path):
    facade = StoreFacade()
    doc = import_vasp(_neb_folder(tmp_path), facade)
    assert doc.kind == "neb"
    assert doc.image_energies_ev == pytest.approx([ZNS_ENERGY_EV] * 3)
    assert doc.settings["image_folders"] == ["00", "01", "02", "03", "04"]
    assert doc.settings["image_indices"] == [1, 2, 3]
    warnings = " ".join(doc.settings["warnings"])
    assert "00" in warnings and "04" in warnings
    assert doc.final_energy_ev == pytest.approx(ZNS_ENERGY_EV)
    assert facade.count("calculations", {"kind": "neb"}) == 1


def test_neb_folder_with_end_points(tmp_path):
    doc = import_vasp(_neb_folder(tmp_path, n_images=1, endpoint_outputs=True), StoreFacade())
    assert len(doc.image_energies_ev) == 3 and doc.settings["warnings"] == []


def test_neb_with_a_truncated_image_names_it(tmp_path):
    facade = StoreFacade()
    top = _neb_folder(tmp_path)
    _truncate(top / "02" / "OUTCAR", 0.6)
    with pytest.raises(VaspImportError, match=r"02/OUTCAR"):
        import_vasp(top, facade)
    (top / "02" / "OUTCAR").unlink()
    with pytest.raises(VaspImportError, match=r"neb/02 has no vasprun.xml or OUTCAR"):
        import_vasp(top, facade)
    assert facade.count("calculations") == 0


def _slab(gap_frac: float = 0.7) -> Structure:
    """Two-plane slab in a 20 Angstrom cell: planes at z = 0.15 and 0.15 + (1 - gap) (fractional)."""
    z0 = 0.15
    return Structure(
        Lattice.hexagonal(3.16, 20.0), ["Mo", "S"], [[0, 0, z0], [1 / 3, 2 / 3, z0 + 1 - gap_frac]]
    )


def _profile(structure: Structure, nc: int = 200, step_ev: float = 0.0, noise_ev: float = 0.0) -> np.ndarray:
    z = np.arange(nc) / nc * 20.0
    centre = np.mean(structure.cart_coords[:, 2])
    profile = 4.5 - 15.0 * np.exp(-(((z - centre) / 1.5) ** 2))
    top = structure.cart_coords[:, 2].max()
    profile[z > top + 0.5 * 14.0] += step_ev  # dipole-correction step at mid-vacuum
    profile += noise_ev * np.sin(np.arange(nc))
    return np.broadcast_to(profile, (4, 4, nc)).copy()


def test_vacuum_level_of_a_slab_and_none_for_bulk():
    slab = _slab()
    assert vacuum_level(_profile(slab), slab) == pytest.approx(4.5, abs=1e-3)
    # a dipole step in the middle of the vacuum does not change the top-side level
    assert vacuum_level(_profile(slab, step_ev=-0.4), slab) == pytest.approx(4.5, abs=1e-3)
    # a potential that is not flat gives no level
    assert vacuum_level(_profile(slab, noise_ev=0.2), slab) is None
    # atoms every 4 Angstrom along c: no gap of MIN_VACUUM_ANG, a bulk cell
    bulk = Structure(
        Lattice.hexagonal(3.16, 20.0), ["Mo"] * 5, [[0, 0, z] for z in (0.1, 0.3, 0.5, 0.7, 0.9)]
    )
    assert vacuum_level(_profile(slab), bulk) is None


def test_cli_import_query_and_exit_codes(tmp_path):
    folder = _static_folder(tmp_path)
    result = runner.invoke(app, ["import", "vasp", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "static" and data["final_energy_ev"] == pytest.approx(ZNS_ENERGY_EV)
    assert "structure" not in data
    rows = json.loads(runner.invoke(app, ["query", "calculations", "--json"]).stdout)
    assert len(rows) == 1
    assert set(rows[0]) == {"calc_id", "kind", "engine", "functional", "final_energy_ev", "source_path"}
    assert rows[0]["engine"] == "vasp" and rows[0]["source_path"] == str(folder.resolve())
    csv_lines = runner.invoke(app, ["query", "calculations", "--csv"]).stdout.splitlines()
    assert (
        csv_lines[0] == "calc_id,kind,engine,functional,final_energy_ev,source_path" and len(csv_lines) == 2
    )
    text = runner.invoke(app, ["query", "calculations", "--kind", "neb"]).stdout.splitlines()
    assert len(text) == 1  # header only
    # a truncated file: one line naming it, exit 1 (bad data, not a bad command line)
    bad = _static_folder(tmp_path, "bad")
    _truncate(bad / "OUTCAR")
    result = runner.invoke(app, ["import", "vasp", str(bad)])
    assert result.exit_code == 1
    assert "OUTCAR" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # a folder that does not exist is a command-line error: exit 2
    assert runner.invoke(app, ["import", "vasp", str(tmp_path / "missing")]).exit_code == 2
    assert StoreFacade().count("calculations") == 1
