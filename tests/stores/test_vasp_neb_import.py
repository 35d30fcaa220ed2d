"""`epdi import vasp` of a real VTST NEB (aiida-vasp NH3, MIT): OSZICAR end points, barrier_ev, refusals."""

import gzip
import json
import shutil
from pathlib import Path

import pytest
from pymatgen.core import Structure
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.vasp_import import NebFolderError, VaspImportError, import_vasp
from workflows.cli.app import app

NEB = Path(__file__).parents[1] / "fixtures" / "vasp" / "aiida-vasp-nh3-neb" / "neb"
runner = CliRunner()

#: last energy(sigma->0) of each image's OUTCAR and last E0 of its OSZICAR (eV), see SOURCE.md
OUTCAR_EV = {"01": -19.49550593, "02": -19.27978461, "03": -19.49550730}
OSZICAR_EV = {"01": -19.495402, "03": -19.495404}


def _neb(tmp_path: Path, end_points: bool = True) -> Path:
    """The recorded NEB; with ``end_points`` 00/ and 04/ hold a real OSZICAR (those of 01 and 03).

    VTST users copy the end-point relaxations' OSZICAR there; the recorded run has none, so the
    OSZICARs of the images next to the end points stand in (real files, not made up).
    """
    folder = tmp_path / "neb"
    shutil.copytree(NEB, folder)
    if end_points:
        shutil.copyfile(NEB / "01" / "OSZICAR", folder / "00" / "OSZICAR")
        shutil.copyfile(NEB / "03" / "OSZICAR", folder / "04" / "OSZICAR")
    return folder


def test_end_point_energies_from_oszicar_and_barrier(tmp_path):
    folder = _neb(tmp_path)
    result = runner.invoke(app, ["import", "vasp", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "neb" and doc["engine"] == "vasp" and doc["source"] == "imported"
    expected = [OSZICAR_EV["01"], OUTCAR_EV["01"], OUTCAR_EV["02"], OUTCAR_EV["03"], OSZICAR_EV["03"]]
    assert doc["image_energies_ev"] == pytest.approx(expected, abs=1e-8)
    assert doc["barrier_ev"] == pytest.approx(OUTCAR_EV["02"] - OSZICAR_EV["01"], abs=1e-8)
    assert doc["settings"]["image_indices"] == [0, 1, 2, 3, 4] and doc["settings"]["warnings"] == []
    assert doc["settings"]["image_energy_files"] == [
        "OSZICAR",
        "OUTCAR.gz",
        "OUTCAR.gz",
        "OUTCAR.gz",
        "OSZICAR",
    ]
    assert doc["settings"]["highest_image"] == 2 and doc["final_energy_ev"] == pytest.approx(OUTCAR_EV["02"])
    assert doc["converged"] is True  # every image's last SCF reached EDIFF
    text = runner.invoke(app, ["import", "vasp", str(folder)])
    assert "barrier_ev: 0.215617" in text.stdout and "02 -19.279785" in text.stdout


def test_without_end_point_energies_the_barrier_is_not_given(tmp_path):
    doc = import_vasp(_neb(tmp_path, end_points=False), StoreFacade())
    assert doc.image_energies_ev == pytest.approx(list(OUTCAR_EV.values()))
    assert doc.barrier_ev is None
    assert any("00" in w and "barrier_ev" in w for w in doc.settings["warnings"])


def _one_line_exit(folder: Path, code: int, *words: str) -> None:
    result = runner.invoke(app, ["import", "vasp", str(folder)])
    assert result.exit_code == code, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    for word in words:
        assert word in result.stderr
    assert StoreFacade().count("calculations") == 0


def test_a_gap_in_the_image_folders_is_refused(tmp_path):
    folder = _neb(tmp_path)
    shutil.rmtree(folder / "02")
    with pytest.raises(NebFolderError, match="lacks image folder 02"):
        import_vasp(folder, StoreFacade())
    _one_line_exit(folder, 2, "lacks image folder 02", "00, 01, 03, 04")


def test_images_with_different_atoms_are_refused(tmp_path):
    folder = _neb(tmp_path)
    end = Structure.from_file(folder / "04" / "POSCAR")
    end.append("H", [0.5, 0.5, 0.9])
    end.to(filename=str(folder / "04" / "POSCAR"), fmt="poscar")
    _one_line_exit(folder, 2, f"{folder / '04'} holds 5 atoms", "00 holds 4")


def test_an_unfinished_image_stays_an_error(tmp_path):
    folder = _neb(tmp_path)
    with gzip.open(NEB / "02" / "OUTCAR.gz", "rt") as handle:
        text = handle.read()
    (folder / "02" / "OUTCAR.gz").unlink()
    (folder / "02" / "OUTCAR").write_text(text[: len(text) // 2])
    with pytest.raises(VaspImportError, match=r"02/OUTCAR is incomplete"):
        import_vasp(folder, StoreFacade())
    _one_line_exit(folder, 1, "02/OUTCAR")
