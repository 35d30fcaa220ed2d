"""A fake VASP for the neb-step flow, in the manner of atomate2's own tests.

atomate2's :func:`atomate2.utils.testing.vasp.fake_run_vasp` checks the inputs a job wrote (INCAR
tags, KPOINTS style, POSCAR sites and species, POTCAR.spec) against a reference folder's
``inputs/`` and copies its ``outputs/`` into the job folder. :func:`mock_vasp` patches atomate2's
``run_vasp`` with it as :func:`atomate2.utils.testing.vasp.monkeypatch_vasp` does (POTCAR.spec
instead of POTCARs, a fixed NELECT) and records what every job wrote, so a test can also look at
what the fake does not compare (selective dynamics, the k-mesh, every INCAR value).

The reference ``outputs/`` hold real recorded VASP files (``tests/fixtures/vasp``, MIT): the
relaxation and static outputs of small Si cells (aiida-vasp's test data) and the three image
folders of a finished VTST NEB of NH3. They are not Li on MoS2, so the fake keeps the job's own
geometry: each reference's ``CONTCAR`` is the job's input geometry (the fake VASP moves no atom)
while energies, convergence, forces and versions are the recorded ones.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import atomate2.vasp.jobs.base
import atomate2.vasp.jobs.neb
import atomate2.vasp.run
from atomate2.utils.testing.vasp import fake_run_vasp
from atomate2.vasp.sets.base import VaspInputGenerator
from jobflow import CURRENT_JOB
from pymatgen.core import Structure
from pymatgen.io.vasp import Incar, Kpoints, Poscar
from pymatgen.io.vasp.sets import VaspInputSet

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vasp"
RELAX_RUNS = FIXTURES / "aiida-vasp-relax"
NEB_RUN = FIXTURES / "aiida-vasp-nh3-neb" / "neb"

#: recorded final energies (eV) of the runs used here: vasprun.xml of the relax/static runs,
#: energy(sigma->0) of the NEB images' OUTCARs (see the SOURCE.md files)
RECORDED_ENERGY_EV = {
    "test_relax_wc": -10.8179159,
    "relax-wc-keep-magmom": -1.99014685,
    "vasp_wc_ionic_continue": -4.82820291,
    "test_bands_wc": -7.67442437,
    "neb-01": -19.49550593,
    "neb-02": -19.27978461,
    "neb-03": -19.49550730,
}


@dataclass
class WrittenInputs:
    """What one faked VASP job wrote before the fake ran."""

    job_name: str
    incar: Incar
    kpoints: Kpoints
    poscars: list[Poscar]
    potcar_spec: list[str]


@dataclass
class FakeVasp:
    """Reference folders by job name, and the inputs every faked job wrote."""

    root: Path
    refs: dict[str, Path] = field(default_factory=dict)
    checked_tags: dict[str, list[str]] = field(default_factory=dict)
    written: list[WrittenInputs] = field(default_factory=list)

    def expect(
        self,
        job_name: str,
        incar: dict,
        structures: list[Structure],
        potcar: list[str],
        recorded: str,
    ) -> None:
        """Expect ``job_name`` to write ``incar`` tags, Gamma KPOINTS, ``structures`` and ``potcar``.

        A tag whose expected value is ``None`` must be absent from the written INCAR.

        ``recorded`` names the recorded run whose outputs the fake copies: a folder of
        :data:`RELAX_RUNS`, or ``"neb"`` for the NH3 NEB (three intermediate images).
        """
        ref = self.root / job_name.replace(" ", "_")
        inputs, outputs = ref / "inputs", ref / "outputs"
        inputs.mkdir(parents=True)
        outputs.mkdir()
        Incar({k: v for k, v in incar.items() if v is not None}).write_file(inputs / "INCAR")  # None: absent
        Kpoints.gamma_automatic().write_file(inputs / "KPOINTS")
        (inputs / "POTCAR.spec").write_text("\n".join(potcar) + "\n")
        if recorded == "neb":
            shutil.copyfile(NEB_RUN / "INCAR", outputs / "INCAR")
            for index, structure in enumerate(structures):
                (inputs / f"{index:02d}").mkdir()
                structure.to(filename=str(inputs / f"{index:02d}" / "POSCAR"), fmt="poscar")
            for index in range(len(structures)):  # atomate2 copies outputs/0K into 0K by position
                image = outputs / f"{index:02d}"
                image.mkdir()
                if index in (0, len(structures) - 1):
                    continue  # VASP writes nothing into the end-point folders
                for name in ("OUTCAR.gz", "OSZICAR"):
                    shutil.copyfile(NEB_RUN / f"{index:02d}" / name, image / name)
                _geometry(structures[index]).to(filename=str(image / "CONTCAR"), fmt="poscar")
        else:
            (structure,) = structures
            structure.to(filename=str(inputs / "POSCAR"), fmt="poscar")
            for source in (RELAX_RUNS / recorded).iterdir():
                shutil.copyfile(source, outputs / source.name)
            _geometry(structure).to(filename=str(outputs / "CONTCAR"), fmt="poscar")
        self.refs[job_name] = ref
        self.checked_tags[job_name] = sorted(incar)

    def by_name(self, job_name: str) -> WrittenInputs:
        """The inputs the job ``job_name`` wrote (the last run of that name)."""
        return next(w for w in reversed(self.written) if w.job_name == job_name)


def _geometry(structure: Structure) -> Structure:
    """The job's geometry as the fake's CONTCAR (no selective-dynamics flags)."""
    out = structure.copy()
    for prop in list(out.site_properties):
        out.remove_site_property(prop)
    return out


def mock_vasp(monkeypatch, root: Path, nelect: int = 12) -> FakeVasp:
    """Patch atomate2's ``run_vasp`` with :func:`fake_run_vasp` on the references of the result.

    Like :func:`atomate2.utils.testing.vasp.monkeypatch_vasp`: input sets write ``POTCAR.spec``
    instead of POTCARs and NELECT is fixed. A job without a reference raises ``ValueError``.
    """
    fake = FakeVasp(root)

    def run_vasp(*args, **kwargs) -> None:
        name = CURRENT_JOB.job.name
        if name not in fake.refs:
            raise ValueError(f"no fake VASP reference for job {name!r}; known: {sorted(fake.refs)}")
        images = sorted(Path.cwd().glob("[0-9][0-9]/POSCAR"))
        fake.written.append(
            WrittenInputs(
                job_name=name,
                incar=Incar.from_file("INCAR"),
                kpoints=Kpoints.from_file("KPOINTS"),
                poscars=[Poscar.from_file(p) for p in images] or [Poscar.from_file("POSCAR")],
                potcar_spec=Path("POTCAR.spec").read_text().split(),
            )
        )
        fake_run_vasp(fake.refs[name], incar_settings=fake.checked_tags[name])

    get_input_set = VaspInputGenerator.get_input_set

    def with_potcar_spec(self, *args, **kwargs):
        kwargs["potcar_spec"] = True
        return get_input_set(self, *args, **kwargs)

    for module in (atomate2.vasp.run, atomate2.vasp.jobs.base, atomate2.vasp.jobs.neb):
        monkeypatch.setattr(module, "run_vasp", run_vasp)
    monkeypatch.setattr(VaspInputGenerator, "get_input_set", with_potcar_spec)
    monkeypatch.setattr(VaspInputSet, "nelect", lambda *a, **k: nelect)
    return fake
