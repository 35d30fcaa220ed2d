"""VASP inputs for PBE-D3 slabs: INCAR, k-mesh, POTCAR.spec, NEB folders, Makers, availability check."""

import json
import os
import stat

import numpy as np
import pytest
from pymatgen.core import SETTINGS as PMG_SETTINGS
from pymatgen.core import Structure
from pymatgen.io.vasp import Incar, Kpoints, Poscar
from typer.testing import CliRunner

from stores.facade import StoreFacade
from workflows.cli.app import app
from workflows.engines import DEFAULT_CINEB_IMAGES, EngineUnavailable, require_engine
from workflows.engines.spin import MAGNETIC_ELEMENTS, MAGNETIC_MAGMOM_MUB
from workflows.engines.vasp_engine import (
    kpoint_mesh,
    neb_maker,
    relax_maker,
    require_vasp,
    static_maker,
)
from workflows.engines.vasp_inputs import write_vasp_inputs
from workflows.structures.hosts import get_host
from workflows.structures.surfaces import describe_surface

runner = CliRunner()


def _inputs(tmp_path, *args):
    out = tmp_path / "inputs"
    result = runner.invoke(app, ["vasp", "inputs", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _potcar_spec(folder):
    return (folder / "POTCAR.spec").read_text().split()


def test_static_incar_kpoints_and_potcar_spec(tmp_path):
    out = _inputs(tmp_path, "MoS2", "--dopant", "Co", "--size", "3", "--kind", "static")
    assert sorted(p.name for p in out.iterdir()) == ["INCAR", "KPOINTS", "POSCAR", "POTCAR.spec"]
    assert not (out / "POTCAR").exists()
    incar = Incar.from_file(out / "INCAR")
    assert str(incar["GGA"]).upper() == "PE"
    assert incar["LVHAR"] is True and incar["LCHARG"] is True
    assert incar["LVTOT"] is False  # LOCPOT = electrostatic potential only
    assert incar["IVDW"] == 11
    assert incar["ENCUT"] == 500
    assert incar["EDIFF"] == pytest.approx(1e-5)
    assert incar["EDIFFG"] == pytest.approx(-0.02)
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    assert incar["NSW"] == 0
    # Co is magnetic: spin-polarised, the moment seeded on Co only
    poscar = Poscar.from_file(out / "POSCAR")
    assert incar["ISPIN"] == 2
    magmom = dict(zip([s.species_string for s in poscar.structure], incar["MAGMOM"], strict=True))
    assert magmom["Co"] == MAGNETIC_MAGMOM_MUB and magmom["Mo"] < 1 and magmom["S"] < 1
    assert len(incar["MAGMOM"]) == len(poscar.structure) == 27
    kpoints = Kpoints.from_file(out / "KPOINTS")
    assert kpoints.style == Kpoints.supported_modes.Gamma
    assert tuple(kpoints.kpts[0]) == (2, 2, 1)
    # one POTCAR symbol per POSCAR species, in the same order
    symbols = _potcar_spec(out)
    assert [s.split("_")[0] for s in symbols] == poscar.site_symbols == ["Co", "Mo", "S"]
    assert symbols[1] == "Mo_sv"


@pytest.mark.parametrize("size, expected", [(3, (2, 2, 1)), (6, (1, 1, 1)), (2, (3, 3, 1)), (12, (1, 1, 1))])
def test_kpoint_mesh_rule(size, expected):
    mesh = kpoint_mesh(size)
    assert mesh.style == Kpoints.supported_modes.Gamma
    assert tuple(mesh.kpts[0]) == expected


def test_6x6_is_gamma_only_and_kpoints_can_be_given(tmp_path):
    out = _inputs(tmp_path, "MoS2", "--size", "6", "--kind", "static")
    assert tuple(Kpoints.from_file(out / "KPOINTS").kpts[0]) == (1, 1, 1)
    out2 = tmp_path / "k3"
    result = runner.invoke(
        app,
        ["vasp", "inputs", "MoS2", "--size", "6", "--kind", "static", "--kpoints", "3", "--out", str(out2)],
    )
    assert result.exit_code == 0, result.output
    assert tuple(Kpoints.from_file(out2 / "KPOINTS").kpts[0]) == (3, 3, 1)


@pytest.mark.parametrize("dopant", ["Al", "none"])
def test_non_magnetic_cells_are_not_spin_polarised(tmp_path, dopant):
    out = _inputs(tmp_path, "MoS2", "--dopant", dopant, "--size", "3", "--kind", "static")
    incar = Incar.from_file(out / "INCAR")
    assert incar["ISPIN"] == 1
    assert "MAGMOM" not in incar


def test_magnetic_set_is_the_design_set():
    assert {"Cr", "Mn", "Fe", "Co", "Ni", "V"} == MAGNETIC_ELEMENTS


def test_relax_puts_li_at_the_valley_nearest_the_dopant(tmp_path):
    out = _inputs(tmp_path, "MoS2", "--dopant", "Co", "--size", "3", "--kind", "relax")
    incar = Incar.from_file(out / "INCAR")
    assert incar["ISIF"] == 2 and incar["IBRION"] == 2 and incar["NSW"] > 0
    assert str(incar["GGA"]).upper() == "PE" and incar["IVDW"] == 11 and incar["ISPIN"] == 2
    structure = Poscar.from_file(out / "POSCAR").structure
    assert structure.composition["Li"] == 1
    assert _potcar_spec(out)[0].startswith("Li")
    li = next(s for s in structure if s.species_string == "Li")
    co = next(s for s in structure if s.species_string == "Co")
    bundle = describe_surface(get_host("MoS2"), "Co", 3)
    nearest = min(s.dopant_distance_ang for s in bundle.sites if s.kind == "valley")
    # in-plane distance Li-Co (minimum image) equals the nearest valley's dopant distance
    frac = li.frac_coords - co.frac_coords
    frac[:2] -= np.round(frac[:2])
    frac[2] = 0.0
    assert np.linalg.norm(structure.lattice.get_cartesian_coords(frac)) == pytest.approx(nearest, abs=1e-3)
    top_s = max(s.coords[2] for s in structure if s.species_string == "S")
    assert li.coords[2] - top_s == pytest.approx(1.6, abs=1e-6)


def test_neb_folders_images_and_cineb_settings(tmp_path):
    out = _inputs(tmp_path, "MoS2", "--dopant", "Co", "--size", "3", "--kind", "neb", "--images", "3")
    assert sorted(p.name for p in out.iterdir()) == [
        "00", "01", "02", "03", "04", "INCAR", "KPOINTS", "POTCAR.spec",
    ]  # fmt: skip
    incar = Incar.from_file(out / "INCAR")
    assert incar["IMAGES"] == 3
    assert incar["LCLIMB"] is True and incar["IBRION"] == 3 and incar["IOPT"] == 1 and incar["POTIM"] == 0
    assert incar["ISIF"] == 2 and incar["IVDW"] == 11 and str(incar["GGA"]).upper() == "PE"
    assert incar["EDIFF"] == pytest.approx(1e-5)
    images = [Poscar.from_file(out / f"{i:02d}" / "POSCAR").structure for i in range(5)]
    assert all((out / f"{i:02d}" / "KPOINTS").is_file() for i in range(5))
    species = [[s.species_string for s in image] for image in images]
    assert all(sp == species[0] for sp in species)
    assert [s.split("_")[0] for s in _potcar_spec(out)] == Poscar.from_file(
        out / "00" / "POSCAR"
    ).site_symbols
    li = species[0].index("Li")
    positions = np.array([image[li].coords for image in images])
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    # IDPP: Li walks from one valley to the other in comparable steps; the slab barely moves
    assert np.all(steps > 0.1) and steps.max() / steps.min() < 2.0
    assert np.linalg.norm(positions[-1, :2] - positions[0, :2]) == pytest.approx(3.16 / 3**0.5, abs=0.05)
    others = [i for i in range(len(images[0])) if i != li]
    drift = max(np.abs(images[2].cart_coords[others] - images[0].cart_coords[others]).max(), 0)
    assert drift < 0.2


def test_default_neb_has_the_default_image_count_of_every_command(tmp_path):
    out = _inputs(tmp_path, "MoS2", "--size", "3", "--kind", "neb")
    assert Incar.from_file(out / "INCAR")["IMAGES"] == DEFAULT_CINEB_IMAGES == 3
    folders = [f"{i:02d}" for i in range(DEFAULT_CINEB_IMAGES + 2)]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == folders


def test_makers_carry_settings_and_custodian_handlers():
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
    from atomate2.vasp.jobs.neb import NebFromImagesMaker
    from atomate2.vasp.run import JobType

    static = static_maker(6, ["Mo", "S"], "Co")
    assert isinstance(static, StaticMaker)
    settings = static.input_set_generator.user_incar_settings
    assert settings["GGA"] == "PE" and settings["LVHAR"] and settings["LCHARG"] and settings["IVDW"] == 11
    assert settings["ISPIN"] == 2 and settings["MAGMOM"]["Co"] == MAGNETIC_MAGMOM_MUB
    assert tuple(static.input_set_generator.user_kpoints_settings.kpts[0]) == (1, 1, 1)
    assert static.run_vasp_kwargs["job_type"] == JobType.NORMAL
    assert [type(h).__name__ for h in static.run_vasp_kwargs["handlers"]] == [
        "VaspErrorHandler",
        "UnconvergedErrorHandler",
        "NonConvergingErrorHandler",
        "PotimErrorHandler",
        "PositiveEnergyErrorHandler",
        "FrozenJobErrorHandler",
        "StdErrHandler",
    ]
    relax = relax_maker(3, ["Mo", "S"], "Al")
    assert isinstance(relax, RelaxMaker)
    assert relax.input_set_generator.user_incar_settings["ISIF"] == 2
    assert relax.input_set_generator.user_incar_settings["ISPIN"] == 1
    neb = neb_maker(3, ["Mo", "S"], None)
    assert isinstance(neb, NebFromImagesMaker)
    assert neb.input_set_generator.climbing_image is True
    # atomate2's run_vasp turns JobType.NEB into custodian's VaspNEBJob
    assert neb.run_vasp_kwargs["job_type"] == JobType.NEB
    assert {type(h).__name__ for h in neb.run_vasp_kwargs["handlers"]} == {
        "VaspErrorHandler",
        "FrozenJobErrorHandler",
        "StdErrHandler",
    }
    # handlers hold state: every Maker gets its own instances
    assert (
        static.run_vasp_kwargs["handlers"][0]
        is not static_maker(6, ["Mo", "S"]).run_vasp_kwargs["handlers"][0]
    )


def test_atomate2_writer_with_the_static_maker_generator(tmp_path, monkeypatch):
    """atomate2's own input writer (what StaticMaker.make runs before VASP) gives the same INCAR."""
    from atomate2.vasp.files import write_vasp_input_set
    from jobflow import Job

    bundle = describe_surface(get_host("MoS2"), "Co", 3)
    maker = static_maker(3, ["Mo", "S"], "Co")
    assert isinstance(maker.make(bundle.structure), Job)
    folder = tmp_path / "atomate2"
    folder.mkdir()
    monkeypatch.chdir(folder)  # atomate2 cleans old inputs in the working folder
    write_vasp_input_set(bundle.structure, maker.input_set_generator, directory=".", potcar_spec=True)
    ours = tmp_path / "ours"
    write_vasp_inputs("static", bundle.structure, ours, size=3)
    theirs = Incar.from_file(folder / "INCAR")
    mine = Incar.from_file(ours / "INCAR")
    # same settings; MAGMOM differs only in order (the writer groups species: Co first)
    assert sorted(theirs.pop("MAGMOM")) == sorted(mine.pop("MAGMOM"))
    assert theirs == mine
    assert Kpoints.from_file(folder / "KPOINTS").kpts == Kpoints.from_file(ours / "KPOINTS").kpts
    assert not (folder / "POTCAR").exists() and (folder / "POTCAR.spec").is_file()


@pytest.mark.parametrize(
    "args, bad",
    [
        (["MoX2", "--kind", "static"], "MoX2"),
        (["MoS2", "--kind", "md"], "'md'"),
        (["MoS2", "--kind", "neb", "--images", "0"], "--images 0"),
        (["MoS2", "--kind", "static", "--kpoints", "0"], "--kpoints 0"),
        (["MoS2", "--kind", "static", "--dopant", "Xx"], "Xx"),
        (["MoS2", "--kind", "static", "--size", "1"], "size 1"),
        (["MoS2", "--kind", "neb", "--preconverge", "gpaw"], "--preconverge 'gpaw'"),
        (["MoS2", "--kind", "relax", "--preconverge", "chgnet"], "needs --kind neb"),
        (["MoS2", "--kind", "neb", "--preconverge", "chgnet", "--fmax", "0"], "--fmax 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, bad):
    result = runner.invoke(app, ["vasp", "inputs", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert bad in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def _fixed(poscar: Poscar) -> list[str]:
    """Species of the sites whose selective-dynamics flags are F F F (the others must be T T T)."""
    flags = [[bool(x) for x in f] for f in poscar.selective_dynamics]
    assert all(f in ([True] * 3, [False] * 3) for f in flags)
    return [poscar.structure[i].species_string for i, f in enumerate(flags) if f == [False] * 3]


def test_relax_and_neb_hold_the_bottom_layer(tmp_path):
    relax = _inputs(tmp_path, "MoS2", "--size", "3", "--kind", "relax")
    poscar = Poscar.from_file(relax / "POSCAR")
    assert _fixed(poscar) == ["S"] * 9  # the bottom S layer of 3x3 MoS2, nothing else
    z = poscar.structure.cart_coords[:, 2]
    fixed = [i for i, f in enumerate(poscar.selective_dynamics) if not any(f)]
    assert max(z[fixed]) < min(np.delete(z, fixed))
    static = _inputs(tmp_path / "s", "MoS2", "--size", "3", "--kind", "static")
    assert Poscar.from_file(static / "POSCAR").selective_dynamics is None


def test_neb_inputs_from_the_chgnet_path(tmp_path):
    out = tmp_path / "neb"
    args = ["vasp", "inputs", "MoS2", "--size", "2", "--kind", "neb", "--images", "3"]
    args += ["--preconverge", "chgnet", "--fmax", "0.5", "--json", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["preconverge"] == "chgnet" and summary["n_images"] == 3
    facade = StoreFacade()
    (neb,) = facade.query("nebs", {"neb_id": summary["chgnet_neb_id"]})
    assert neb["engine"] == "chgnet" and summary["chgnet_forward_barrier_ev"] == round(
        neb["forward_barrier_ev"], 4
    )
    for index, image in enumerate(neb["image_structures"]):  # 00..04 = the CHGNet path, VASP's atom order
        written = Poscar.from_file(out / f"{index:02d}" / "POSCAR")
        expected = Structure.from_dict(image).get_sorted_structure()
        np.testing.assert_allclose(written.structure.cart_coords, expected.cart_coords, atol=1e-6)
        assert _fixed(written) == ["S"] * 4
    assert Incar.from_file(out / "INCAR")["IMAGES"] == 3 and Incar.from_file(out / "INCAR")["LCLIMB"] is True
    again = runner.invoke(app, args)  # the CHGNet path is reused from the store
    assert again.exit_code == 0, again.output
    assert facade.query("nebs", {"neb_id": summary["chgnet_neb_id"]})[0]["updated_at"] == neb["updated_at"]


def test_require_vasp_names_what_to_set(monkeypatch, tmp_path):
    monkeypatch.setenv("ATOMATE2_VASP_CMD", "vasp_std_not_installed")
    monkeypatch.delitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", raising=False)
    with pytest.raises(EngineUnavailable) as info:
        require_vasp()
    message = str(info.value)
    assert "'vasp'" in message
    assert "ATOMATE2_VASP_CMD" in message and "vasp_std_not_installed" in message
    assert "PMG_VASP_PSP_DIR" in message
    with pytest.raises(EngineUnavailable):
        require_engine("vasp")


def test_require_vasp_passes_when_configured(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "vasp_std"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    potcars = tmp_path / "potcars"
    potcars.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ATOMATE2_VASP_CMD", "mpirun -n 4 vasp_std")
    monkeypatch.setitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", str(potcars))
    if not __import__("shutil").which("mpirun"):
        (bin_dir / "mpirun").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "mpirun").chmod(0o755)
    require_vasp()
    # POTCAR folder missing: only that is reported
    monkeypatch.setitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(EngineUnavailable, match="PMG_VASP_PSP_DIR") as info:
        require_vasp()
    assert "ATOMATE2_VASP_CMD" not in str(info.value)
