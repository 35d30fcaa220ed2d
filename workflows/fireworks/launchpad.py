"""FireWorks LaunchPads for the platform: the embedded one-file LaunchPad, or MongoDB in production.

Where the LaunchPad is: :mod:`workflows.fireworks.location` (``--launchpad``, ``EPDI_LAUNCHPAD_FILE``, the
settings file, ``FW_CONFIG_FILE``, else ``<data_dir>/fireworks/launchpad.json``).

The embedded LaunchPad is one JSON file shared by every process on the machine through
:mod:`workflows.fireworks.embedded_mongo`: readers see its latest version, writers hold the lock of
:class:`~workflows.fireworks.launcher_lock.LauncherLock` and replace the file atomically. ``epdi launch``
holds that lock for its whole run (one running launcher at a time, so a RUNNING Firework left by a
killed launcher is provably lost and rerun at once); ``epdi campaign submit`` holds it while it adds
a workflow; FireWorks' ``lpad``/``qlaunch`` take it for each write. :class:`EmbeddedLaunchPad` writes
the file once per FireWorks operation (a check-out is on disk before its job runs).

Worker routing: Fireworks carry ``spec._category``: ``gpu`` for CUDA training
(:data:`workflows.fireworks.categories.TRAINING_CATEGORY`), ``dft`` for every other job (DFT and MLIP).
Jobs that a running job adds later (``Response.addition``) carry only what their Maker set, so the DFT
worker pulls everything that is not ``gpu`` (see :func:`workflows.fireworks.launcher.make_fworker`).

Job outputs: a Firework without a store of its own (MongoDB deployments) writes to the platform's
store from the worker's settings (``EPDI_SETTINGS_FILE``), the same store that ``epdi`` reads, so no
separate ``JOBFLOW_CONFIG_FILE`` with a second copy of the credentials is needed.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fireworks import LaunchPad, Workflow, explicit_serialize
from fireworks.utilities.fw_serializers import recursive_serialize, serialize_fw
from jobflow import Flow, Job, JobStore
from jobflow.managers.fireworks import JobFiretask
from monty.json import jsanitize

from stores.facade import StoreFacade
from workflows.fireworks.categories import DFT_CATEGORY, TRAINING_CATEGORY
from workflows.fireworks.embedded_mongo import EmbeddedFile, embedded_client, embedded_file
from workflows.fireworks.location import (  # noqa: F401  (the names callers know from here)
    EMBEDDED_DB,
    FIREWORKS_FOLDER,
    LAUNCHPAD_FILE_ENV,
    LaunchPadConfig,
    LaunchPadError,
    embedded_folder,
    launchpad_file_content,
    prepare_embedded,
    resolve_launchpad,
)

#: FireWorks category of CUDA training jobs (one home: :mod:`workflows.fireworks.categories`)
GPU_CATEGORY = TRAINING_CATEGORY
#: a RUNNING Firework not pinged for this long is lost (FireWorks' ``RUN_EXPIRATION_SECS``, 4 h)
LOST_RUN_EXPIRATION_S = 4 * 3600

FW_STATES = (
    "READY",
    "WAITING",
    "RESERVED",
    "RUNNING",
    "COMPLETED",
    "FIZZLED",
    "DEFUSED",
    "PAUSED",
    "ARCHIVED",
)


# --------------------------------------------------------------------------------------------------
# the embedded LaunchPad


@contextmanager
def _launchpad_module_globals(**values: Any) -> Iterator[None]:
    """Swap names in ``fireworks.core.launchpad`` while a LaunchPad is constructed."""
    import fireworks.core.launchpad as module

    saved = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _one_write(method):
    """Run a LaunchPad method as one write of the embedded file (locked, written once at the end)."""

    @functools.wraps(method)
    def wrapper(self: EmbeddedLaunchPad, *args: Any, **kwargs: Any):
        with self.file.writing():
            return method(self, *args, **kwargs)

    return wrapper


class EmbeddedLaunchPad(LaunchPad):
    """A FireWorks LaunchPad kept in one JSON file that several processes share (see module docstring).

    Parameters
    ----------
    path
        The JSON file (FireWorks' mongomock-persistence format; created by the first write).
    read_only
        Refuse writes (for readers such as ``epdi status``).
    strm_lvl
        FireWorks log level on the console.
    """

    def __init__(self, path: Path, read_only: bool = False, strm_lvl: str = "WARNING"):
        self.path = Path(path)
        self.read_only = read_only
        self.file: EmbeddedFile = embedded_file(self.path, read_only=read_only)

        def client(*args: Any, **kwargs: Any):
            return embedded_client(self.file)

        with _launchpad_module_globals(MongoClient=client, GRIDFS_FALLBACK_COLLECTION=None):
            super().__init__(name=EMBEDDED_DB, strm_lvl=strm_lvl)

    def flush(self) -> None:
        """Write what this process changed and has not written yet (writes are written as they end)."""
        if not self.read_only and self.file.holds_lock:
            self.file.flush()

    # FireWorks operations made of many database calls: one locked write each
    add_wf = _one_write(LaunchPad.add_wf)
    checkout_fw = _one_write(LaunchPad.checkout_fw)
    complete_launch = _one_write(LaunchPad.complete_launch)
    reserve_fw = _one_write(LaunchPad.reserve_fw)
    detect_lostruns = _one_write(LaunchPad.detect_lostruns)
    rerun_fw = _one_write(LaunchPad.rerun_fw)
    reset = _one_write(LaunchPad.reset)

    def to_dict(self) -> dict:
        """FireWorks' dict of the LaunchPad plus the file it lives in."""
        return super().to_dict() | {"mongomock_file": str(self.path)}


def open_launchpad(config: LaunchPadConfig, read_only: bool = False, strm_lvl: str = "WARNING") -> LaunchPad:
    """Open the LaunchPad of ``config`` (an embedded one gets its FireWorks files unless ``read_only``)."""
    if config.kind == "embedded":
        if not read_only:
            if config.path.exists():  # a damaged file is refused before FireWorks' files are written
                embedded_file(config.path, read_only=True).reload(force=True)
            prepare_embedded(config.path)
        return EmbeddedLaunchPad(config.path, read_only=read_only, strm_lvl=strm_lvl)
    content = launchpad_file_content(config)
    return LaunchPad.from_dict(content | {"strm_lvl": content.get("strm_lvl") or strm_lvl})


def ensure_initialised(lp: LaunchPad, config: LaunchPadConfig) -> None:
    """Initialise a new embedded LaunchPad; refuse an uninitialised MongoDB one with what to run."""
    if lp.fw_id_assigner.find_one({}) is not None:
        return
    if isinstance(lp, EmbeddedLaunchPad):
        lp.reset("", require_password=False, max_reset_wo_password=0)
        return
    raise LaunchPadError(
        f"{config.describe()} is not initialised: run `lpad -l {config.path} reset` once on the login node"
    )


@contextmanager
def writable_launchpad(
    config: LaunchPadConfig, strm_lvl: str = "WARNING", wait_s: float = 0.0
) -> Iterator[LaunchPad]:
    """The LaunchPad, ready to write: an embedded one is this process's alone until the end.

    Raises
    ------
    workflows.fireworks.launcher_lock.LauncherBusy
        Another process (a running ``epdi launch``) holds the embedded LaunchPad for ``wait_s`` s.
    """
    lp = open_launchpad(config, strm_lvl=strm_lvl)
    embedded = isinstance(lp, EmbeddedLaunchPad)
    if embedded:
        lp.file.hold(wait_s=wait_s)
    try:
        ensure_initialised(lp, config)
        yield lp
    finally:
        if embedded:
            lp.file.release()


# --------------------------------------------------------------------------------------------------
# submitting


def submission_store(facade: StoreFacade) -> JobStore | None:
    """The JobStore written into the Fireworks: the embedded store itself, else ``None``.

    The embedded store is a folder on this machine, so its (path-only) description travels with the
    Fireworks. A MongoDB/GridFS/S3 store has credentials, which stay out of the LaunchPad: the
    worker opens the platform's store from its own settings (:meth:`StrictJobFiretask.run_task`).
    """
    return facade.job_store() if facade.settings.store.backend == "embedded" else None


@explicit_serialize
class StrictJobFiretask(JobFiretask):
    """jobflow's ``JobFiretask`` that serialises its job strictly.

    jobflow stores the job of a Firework through a non-strict ``jsanitize``, which turns objects
    without ``as_dict`` (pydantic settings such as ``GpawSettings`` or ``TrainConfig`` inside a
    Maker or in a job's arguments) into their repr strings: the worker then gets a string where a
    settings object was. Strict ``jsanitize`` keeps ``@module``/``@class`` and MontyDecoder
    rebuilds the object. Fireworks that the job adds or inserts at run time (``Response.addition``,
    ``replace``, ``detour``) get this task and the default category too.

    A task without a store (MongoDB deployments) runs its job on the platform's store of the
    worker's settings, :meth:`stores.facade.StoreFacade.job_store`, instead of jobflow's
    ``JOB_STORE``: one settings file holds the credentials for ``epdi`` and the workers alike.
    """

    @serialize_fw
    @recursive_serialize
    def to_dict(self) -> dict:
        """The task with its job serialised strictly (jobflow's non-strict form as a fallback)."""
        task = dict(self)
        job = task["job"]
        as_dict = job.as_dict() if hasattr(job, "as_dict") else job
        try:
            task["job"] = jsanitize(as_dict, strict=True)
        except (AttributeError, TypeError):  # an object with no serialised form: as jobflow does
            task["job"] = jsanitize(as_dict)
        return task

    def run_task(self, fw_spec: dict):
        """Run the job (jobflow) and give the Fireworks it adds the same task class and category."""
        if self.get("store") is not None:
            action = super().run_task(fw_spec)
        else:
            from jobflow import SETTINGS

            configured = SETTINGS.JOB_STORE
            SETTINGS.JOB_STORE = StoreFacade().job_store()  # read by JobFiretask when its store is None
            try:
                action = super().run_task(fw_spec)
            finally:
                SETTINGS.JOB_STORE = configured
        for workflow in [*(action.additions or []), *(action.detours or [])]:
            _strict_tasks(workflow, DFT_CATEGORY)
        return action


#: Firework spec key naming the external engine its job needs (a launcher without it leaves it READY)
ENGINE_KEY = "_epdi_engine"
#: job modules whose jobs need an external engine: (module prefix, engine)
_ENGINE_MODULES = (("atomate2.vasp", "vasp"), ("workflows.jobs.vasp_hops", "vasp"))


def job_engine(job: Any) -> str | None:
    """The external engine (``vasp``) a jobflow job needs, from the module of its function."""
    function = job.get("function") if isinstance(job, dict) else getattr(job, "function", None)
    if isinstance(function, dict):
        module = function.get("@module", "")
    else:
        module = getattr(getattr(function, "__func__", function), "__module__", "") or ""
    return next((engine for prefix, engine in _ENGINE_MODULES if module.startswith(prefix)), None)


def _strict_tasks(workflow: Workflow, default_category: str) -> Workflow:
    for firework in workflow.fws:
        firework.tasks = [StrictJobFiretask(dict(t)) if type(t) is JobFiretask else t for t in firework.tasks]
        firework.spec.setdefault("_category", default_category)
        engines = {job_engine(t["job"]) for t in firework.tasks if "job" in t} - {None}
        if engines:
            firework.spec[ENGINE_KEY] = sorted(engines)[0]
    return workflow


def flow_workflow(
    flow: Flow | Job,
    store: JobStore | None,
    metadata: dict[str, Any] | None = None,
    default_category: str = DFT_CATEGORY,
) -> Workflow:
    """A FireWorks Workflow of ``flow`` (jobflow ``flow_to_workflow``) with categories for routing.

    Fireworks whose job set no ``_category`` (``manager_config``) get ``default_category``;
    training jobs keep their ``gpu``. Jobs are stored by :class:`StrictJobFiretask`.
    """
    from jobflow.managers.fireworks import flow_to_workflow

    workflow = flow_to_workflow(flow, store=store, metadata=dict(metadata or {}))
    return _strict_tasks(workflow, default_category)


def submit_flow(
    config: LaunchPadConfig,
    flow: Flow | Job,
    store: JobStore | None,
    metadata: dict[str, Any] | None = None,
) -> list[int]:
    """Add ``flow`` to the LaunchPad as one workflow; return its Firework ids."""
    workflow = flow_workflow(flow, store, metadata)
    with writable_launchpad(config) as lp:
        mapping = lp.add_wf(workflow)
    return sorted(mapping.values())


def workflows_with(lp: LaunchPad, metadata: dict[str, Any]) -> list[dict]:
    """Workflow documents whose metadata match ``metadata`` (name, nodes, state, metadata)."""
    criteria = {f"metadata.{k}": v for k, v in metadata.items()}
    return list(lp.workflows.find(criteria, {"_id": 0, "name": 1, "nodes": 1, "state": 1, "metadata": 1}))


# --------------------------------------------------------------------------------------------------
# reading


def fireworks_by_state(lp: LaunchPad, fw_ids: list[int] | None = None) -> dict[str, int]:
    """Number of Fireworks in each state (all, or those of ``fw_ids``), in FireWorks' state order."""
    criteria = {"fw_id": {"$in": fw_ids}} if fw_ids is not None else {}
    counts = Counter(d["state"] for d in lp.fireworks.find(criteria, {"state": 1}))
    return {state: counts[state] for state in FW_STATES if counts[state]}


def failed_fireworks(lp: LaunchPad, fw_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """FIZZLED Fireworks with the last line of their error (``fw_id``, ``name``, ``error``)."""
    criteria: dict[str, Any] = {"state": "FIZZLED"}
    if fw_ids is not None:
        criteria["fw_id"] = {"$in": fw_ids}
    rows = []
    for fw in lp.fireworks.find(criteria, {"fw_id": 1, "name": 1, "launches": 1}):
        error = None
        launches = list(lp.launches.find({"launch_id": {"$in": fw.get("launches", [])}}, {"action": 1}))
        for launch in sorted(launches, key=lambda d: d.get("launch_id", 0)):
            stored = ((launch.get("action") or {}).get("stored_data") or {}).get("_exception") or {}
            trace = (stored.get("_stacktrace") or "").strip()
            if trace:
                error = trace.splitlines()[-1]
        rows.append({"fw_id": fw["fw_id"], "name": fw.get("name"), "error": error})
    return sorted(rows, key=lambda r: r["fw_id"])
