"""The surface static (DFT-D3): energy, electrostatic potential and electron density of the bare slab.

- ``gpaw``: :class:`GpawStaticMaker` runs GPAW (LCAO, PBE) + D3 in the job and stores both grids in
  the ``data`` store.
- ``vasp``: atomate2's ``StaticMaker`` (settings from :mod:`workflows.engines.vasp_engine`) runs
  VASP under custodian; :func:`ingest_vasp_static` then imports its folder (LOCPOT, CHGCAR) into
  the same kind of document.

Both end in a :class:`stores.schemas.calculations.CalculationDoc` of kind ``static`` with ``surface_id``,
``potential`` (eV) and ``density`` (e/bohr^3) grid references and the vacuum level.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from jobflow import Flow, Job, Maker, job
from pymatgen.core import Structure

from stores.errors import InputError
from stores.facade import STORE_ACCESS, StoreFacade, job_facade
from stores.grids import DENSITY_UNITS, POTENTIAL_UNITS, grids_stored, put_grid
from stores.ids import stable_id
from stores.schemas.calculations import CalculationDoc
from stores.settings import data_folder
from stores.validation import make_dir
from stores.vasp_import import import_vasp
from workflows.engines import require_engine
from workflows.engines.gpaw_engine import GpawStaticResult, require_gpaw, run_gpaw_static
from workflows.engines.gpaw_settings import GpawSettings, kpts_for_supercell
from workflows.flows.engine_settings import gpaw_settings_for
from workflows.structures.surfaces import SurfaceBundle


@dataclass
class GpawStaticMaker(Maker):
    """GPAW (+D3) static of the bare slab; grids go to the ``data`` store.

    Parameters
    ----------
    name
        Job name.
    settings
        GPAW settings; ``None`` picks the k-mesh from the supercell size at ``make`` time.
    """

    name: str = "surface static"
    settings: GpawSettings | None = None

    @job(config=STORE_ACCESS)
    def make(
        self, structure: Structure | dict, surface_id: str, size: int, workdir: str | None = None
    ) -> CalculationDoc:
        """Run the static and return its :class:`CalculationDoc`."""
        structure = structure if isinstance(structure, Structure) else Structure.from_dict(structure)
        settings = self.settings or GpawSettings(kpts=kpts_for_supercell(size))
        settings_json = settings.model_dump(mode="json")
        calc_id = stable_id(
            "calc", kind="static", engine="gpaw", surface_id=surface_id, settings=settings_json
        )
        facade = job_facade()
        stored = facade.query("calculations", {"calc_id": calc_id})
        if stored and grids_stored(facade, stored[0]):
            return CalculationDoc(**stored[0])  # a rerun reuses the finished static
        # otherwise run it: also when a compact archive brought the document without its grids
        folder = Path(workdir or ".").resolve()
        result = run_gpaw_static(structure, settings, workdir=folder)
        with facade.unit():  # both grids and the document, or nothing
            return self._store(facade, result, structure, settings, calc_id, surface_id, folder)

    @staticmethod
    def _store(
        facade: StoreFacade,
        result: GpawStaticResult,
        structure: Structure,
        settings: GpawSettings,
        calc_id: str,
        surface_id: str,
        folder: Path,
    ) -> CalculationDoc:
        """Store both grids and the document of a finished static (inside the caller's unit)."""
        doc = CalculationDoc(
            calc_id=calc_id,
            kind="static",
            engine="gpaw",
            functional=f"{settings.xc}+D3(zero)" if settings.d3 else settings.xc,
            source_path=str(folder),
            surface_id=surface_id,
            formula=structure.composition.formula,
            natoms=len(structure),
            final_energy_ev=result.energy_ev,
            structure=structure.as_dict(),
            settings=settings.model_dump(mode="json")
            | {
                "scf_iterations": result.scf_iterations,
                "dft_energy_ev": result.dft_energy_ev,
                "fermi_level_ev": result.fermi_level_ev,
                "grid_spacing_ang": list(result.grid_spacing_ang),
            },
            potential=put_grid(facade, result.potential_ev, POTENTIAL_UNITS),
            density=put_grid(facade, result.density_e_per_bohr3, DENSITY_UNITS),
            vacuum_level_ev=result.vacuum_level_ev,
            converged=True,
            wall_time_s=result.wall_time_s,
            versions={
                "gpaw": version("gpaw"),
                "dftd3": version("dftd3"),
                "python": platform.python_version(),
            },
        )
        facade.upsert("calculations", [doc])
        return doc


@job(config=STORE_ACCESS)
def ingest_vasp_static(dir_name: str, surface_id: str) -> CalculationDoc:
    """Import a finished VASP static folder (``host:path`` or a path) and tag it with its surface."""
    facade = job_facade()
    folder = dir_name.split(":", 1)[-1]
    doc = import_vasp(folder, facade).model_copy(update={"surface_id": surface_id, "source": "computed"})
    facade.upsert("calculations", [doc])
    return doc


def surface_static(
    bundle: SurfaceBundle, engine: str = "gpaw", gpaw: GpawSettings | None = None, workdir: str | None = None
) -> Job | Flow:
    """The static job (``gpaw``) or flow (``vasp``: atomate2 static + ingest) for one surface.

    ``workdir`` is where GPAW writes its log (VASP runs in jobflow's job folder).

    GPAW, which runs in this process, is checked before anything is built
    (:func:`workflows.engines.require_engine`); VASP is needed where the job runs (a ``dft``
    launcher without it leaves the job READY, :class:`workflows.fireworks.launcher.EnginesMissing`).
    """
    if engine == "gpaw":
        require_engine(engine)
    surface = bundle.surface
    if engine == "gpaw":
        gpaw = gpaw or gpaw_settings_for(surface)
        return GpawStaticMaker(settings=gpaw).make(
            bundle.structure, surface.surface_id, surface.supercell, workdir=workdir
        )
    if engine == "vasp":
        from workflows.engines.vasp_engine import static_maker

        maker = static_maker(surface.supercell, (surface.metal, surface.anion), surface.dopant)
        static = maker.make(bundle.structure)
        ingest = ingest_vasp_static(static.output.dir_name, surface.surface_id)
        return Flow([static, ingest], output=ingest.output, name=f"vasp static {surface.surface_id}")
    raise InputError(f"engine {engine!r} has no potential grid; use gpaw or vasp for the static")


def static_workdir(data_dir: Path | str, surface_id: str, engine: str) -> Path:
    """Folder of a surface's static (GPAW log, jobflow job folders): ``calcs/<surface>/static-<engine>``."""
    return make_dir(data_folder(data_dir, "calcs", surface_id, f"static-{engine}"), "calculation folder")


def static_step(bundle: SurfaceBundle, engine: str, gpaw_overrides: dict, data_dir: Path | str) -> Job | Flow:
    """The static of one surface as a step of a dataset or campaign spec.

    GPAW settings are the surface's defaults (:func:`gpaw_settings_for`) with the spec's overrides,
    and the GPAW basis and setups of the surface's elements are checked before anything is built;
    the work folder is :func:`static_workdir`.
    """
    gpaw = None
    if engine == "gpaw":
        gpaw = gpaw_settings_for(bundle.surface, **gpaw_overrides)
        require_gpaw(tuple(bundle.structure.symbol_set), gpaw)
    workdir = static_workdir(data_dir, bundle.surface.surface_id, engine)
    return surface_static(bundle, engine, gpaw, workdir=str(workdir))
