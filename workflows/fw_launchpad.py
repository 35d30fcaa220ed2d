"""FireWorks LaunchPads for the platform: an embedded one-file LaunchPad, or MongoDB in production.

Where the LaunchPad is, highest priority first:

1. an explicit file (``--launchpad my_launchpad.yaml`` on the CLI);
2. ``EPDI_LAUNCHPAD_FILE`` (a FireWorks ``my_launchpad.yaml``);
3. FireWorks' own ``FW_CONFIG_FILE``: its ``LAUNCHPAD_LOC`` (MongoDB) or its
   ``MONGOMOCK_SERVERSTORE_FILE`` (a one-file LaunchPad elsewhere);
4. the embedded default: ``<data_dir>/fireworks/launchpad.json``, FireWorks' mongomock-persistence
   format, no server. The folder also gets ``FW_config.yaml`` and ``my_launchpad.yaml`` so that
   FireWorks' own tools work on it: ``FW_CONFIG_FILE=<data_dir>/fireworks/FW_config.yaml lpad get_wflows``.

The embedded LaunchPad is one file. FireWorks' mongomock mode writes it only when a process exits,
so a killed launcher loses everything it did and two launchers run the same jobs twice.
:class:`EmbeddedLaunchPad` writes the file atomically whenever a Firework is checked out, pinged or
completed (a killed launcher leaves its run RUNNING, which the next launcher reruns), and every
process that writes it holds :class:`~workflows.launcher_lock.LauncherLock` (one launcher at a time;
readers such as ``epdi status`` need no lock).

Worker routing: Fireworks carry ``spec._category``: ``gpu`` for CUDA training
(:data:`workflows.learn_makers.TRAINING_CATEGORY`), ``dft`` for every other job (DFT and MLIP).
Jobs that a running job adds later (``Response.addition``) carry only what their Maker set, so the DFT
worker pulls everything that is not ``gpu`` (see :func:`make_fworker` and ``deploy/``).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bson.json_util
import yaml
from fireworks import FWorker, LaunchPad, Workflow, explicit_serialize
from fireworks.utilities.fw_serializers import recursive_serialize, serialize_fw
from jobflow import Flow, Job, JobStore
from jobflow.managers.fireworks import JobFiretask
from monty.json import jsanitize

from stores.errors import EpdiError, InputError
from stores.facade import StoreFacade
from stores.settings import Settings, get_settings
from stores.validation import one_line, read_text_file
from workflows.launcher_lock import LauncherLock

#: folder of the embedded LaunchPad inside the data folder
FIREWORKS_FOLDER = "fireworks"
#: environment variable naming a production ``my_launchpad.yaml``
LAUNCHPAD_FILE_ENV = "EPDI_LAUNCHPAD_FILE"
#: FireWorks category of DFT/MLIP jobs (the default of every Firework without one)
DFT_CATEGORY = "dft"
#: FireWorks category of CUDA training jobs (same value as ``workflows.learn_makers.TRAINING_CATEGORY``)
GPU_CATEGORY = "gpu"
#: a RUNNING Firework not pinged for this long is lost (FireWorks' ``RUN_EXPIRATION_SECS``, 4 h)
LOST_RUN_EXPIRATION_S = 4 * 3600
#: database name of the embedded LaunchPad
EMBEDDED_DB = "fireworks"

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


class LaunchPadError(EpdiError, RuntimeError):
    """The LaunchPad is missing, not initialised or unreachable (message says what to do)."""


@dataclass(frozen=True)
class LaunchPadConfig:
    """Which LaunchPad to use.

    Attributes
    ----------
    kind
        ``embedded`` (one mongomock-persistence JSON file) or ``mongodb`` (a ``my_launchpad.yaml``).
    path
        The JSON file (embedded) or the ``my_launchpad.yaml`` (mongodb).
    source
        Where the choice came from, for messages.
    """

    kind: Literal["embedded", "mongodb"]
    path: Path
    source: str

    @property
    def lock_path(self) -> Path:
        """The lock file of an embedded LaunchPad (``launchpad.lock`` beside ``launchpad.json``)."""
        return self.path.with_suffix(".lock")

    def describe(self) -> str:
        """One line naming the LaunchPad."""
        what = "embedded LaunchPad" if self.kind == "embedded" else "MongoDB LaunchPad"
        return f"{what} {self.path} (from {self.source})"


def embedded_folder(settings: Settings | None = None) -> Path:
    """``<data_dir>/fireworks``: the embedded LaunchPad and its FireWorks configuration."""
    return (settings or get_settings()).data_dir / FIREWORKS_FOLDER


def resolve_launchpad(
    launchpad_file: Path | None = None, settings: Settings | None = None
) -> LaunchPadConfig:
    """Find the LaunchPad to use (see the module docstring for the order)."""
    settings = settings or get_settings()
    if launchpad_file is not None:
        return _production(Path(launchpad_file), "--launchpad")
    configured = settings.launchpad_file or os.environ.get(LAUNCHPAD_FILE_ENV)
    if configured:
        return _production(Path(configured), LAUNCHPAD_FILE_ENV)
    fw_config = os.environ.get("FW_CONFIG_FILE")
    if fw_config and Path(fw_config).is_file():
        content = _read_yaml(Path(fw_config), "FW_CONFIG_FILE")
        if isinstance(content, dict) and content.get("MONGOMOCK_SERVERSTORE_FILE"):
            path = Path(content["MONGOMOCK_SERVERSTORE_FILE"]).expanduser().resolve()
            return LaunchPadConfig("embedded", path, f"FW_CONFIG_FILE={fw_config}")
        if isinstance(content, dict) and content.get("LAUNCHPAD_LOC"):
            return _production(Path(content["LAUNCHPAD_LOC"]), f"FW_CONFIG_FILE={fw_config}")
    return LaunchPadConfig("embedded", embedded_folder(settings) / "launchpad.json", "the data folder")


def _read_yaml(path: Path, what: str) -> Any:
    """The YAML content of a FireWorks file; unreadable, binary or broken files are named."""
    try:
        return yaml.safe_load(read_text_file(path, what)) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{what} {path} is not valid YAML: {one_line(str(exc))}") from None


def _production(path: Path, source: str) -> LaunchPadConfig:
    path = path.expanduser()
    if not path.is_file():
        raise LaunchPadError(
            f"LaunchPad file {path} (from {source}) does not exist; write one as in deploy/my_launchpad.yaml"
        )
    return LaunchPadConfig("mongodb", path.resolve(), source)


def prepare_embedded(path: Path) -> Path:
    """Create the embedded LaunchPad file (``{}``) and FireWorks' config files beside it; return ``path``.

    ``FW_config.yaml`` points FireWorks' mongomock mode at the file and ``my_launchpad.yaml`` names
    the database, so ``lpad``/``rlaunch`` with ``FW_CONFIG_FILE=<folder>/FW_config.yaml`` see the
    same Fireworks (without the launcher lock: prefer ``epdi launch``).
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("{}")
    launchpad_yaml = folder / "my_launchpad.yaml"
    if not launchpad_yaml.exists():
        launchpad_yaml.write_text(yaml.safe_dump({"host": "localhost", "port": 27017, "name": EMBEDDED_DB}))
    fw_config = folder / "FW_config.yaml"
    if not fw_config.exists():
        fw_config.write_text(
            yaml.safe_dump({"MONGOMOCK_SERVERSTORE_FILE": str(path), "LAUNCHPAD_LOC": str(launchpad_yaml)})
        )
    return path


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


def _load_server_store(path: Path):
    """A mongomock server holding the databases saved in ``path`` (mongomock-persistence format)."""
    import mongomock_persistence  # noqa: F401  (adds to_dict/from_dict to mongomock's stores)
    from mongomock.store import DatabaseStore, ServerStore

    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        data = bson.json_util.loads(text or "{}")
    except ValueError as exc:  # not UTF-8, or not JSON
        raise LaunchPadError(
            f"embedded LaunchPad {path} is not readable JSON ({one_line(str(exc))[:120]}); restore it from a "
            "copy, or move it away to start an empty one (its Fireworks are then lost)"
        ) from None
    if not isinstance(data, dict):
        raise LaunchPadError(f"embedded LaunchPad {path} does not hold a mapping of databases; move it away")
    store = ServerStore.__new__(ServerStore)  # no file finaliser: writes are explicit and atomic
    store._databases = {name: DatabaseStore.from_dict(db) for name, db in data.items()}
    return store


class EmbeddedLaunchPad(LaunchPad):
    """A FireWorks LaunchPad kept in one JSON file, written after every change of a Firework's state.

    Parameters
    ----------
    path
        The JSON file (FireWorks' mongomock-persistence format; created when missing).
    read_only
        Never write the file (for readers such as ``epdi status``).
    strm_lvl
        FireWorks log level on the console.
    """

    def __init__(self, path: Path, read_only: bool = False, strm_lvl: str = "WARNING"):
        import mongomock

        self.path = Path(path)
        self.read_only = read_only
        self._io_lock = threading.RLock()
        self._server = _load_server_store(self.path)

        def client(*args: Any, **kwargs: Any) -> mongomock.MongoClient:
            return mongomock.MongoClient(_store=self._server)

        with _launchpad_module_globals(MongoClient=client, GRIDFS_FALLBACK_COLLECTION=None):
            super().__init__(name=EMBEDDED_DB, strm_lvl=strm_lvl)

    def flush(self) -> None:
        """Write the whole database to the file atomically (temporary file, fsync, rename)."""
        if self.read_only:
            return
        with self._io_lock:
            text = bson.json_util.dumps(self._server.to_dict())
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

    def checkout_fw(self, *args: Any, **kwargs: Any):
        """Check a Firework out and record it as RUNNING on disk before it runs."""
        with self._io_lock:
            result = super().checkout_fw(*args, **kwargs)
            self.flush()
        return result

    def complete_launch(self, *args: Any, **kwargs: Any):
        """Complete a launch (and add what the job added to the workflow) and write the file."""
        with self._io_lock:
            result = super().complete_launch(*args, **kwargs)
            self.flush()
        return result

    def ping_launch(self, *args: Any, **kwargs: Any) -> None:
        """Ping a running launch (called from FireWorks' ping thread too) and write the file."""
        with self._io_lock:
            super().ping_launch(*args, **kwargs)
            self.flush()

    def to_dict(self) -> dict:
        """FireWorks' dict of the LaunchPad plus the file it lives in."""
        return super().to_dict() | {"mongomock_file": str(self.path)}


def open_launchpad(config: LaunchPadConfig, read_only: bool = False, strm_lvl: str = "WARNING") -> LaunchPad:
    """Open the LaunchPad of ``config`` (an embedded one is created when missing unless ``read_only``)."""
    if config.kind == "embedded":
        if not read_only:
            prepare_embedded(config.path)
        return EmbeddedLaunchPad(config.path, read_only=read_only, strm_lvl=strm_lvl)
    content = _read_yaml(config.path, "LaunchPad file")
    if not isinstance(content, dict) or "host" not in content:
        raise InputError(f"{config.path} is not a FireWorks my_launchpad.yaml (no 'host'); see deploy/")
    return LaunchPad.from_dict(content | {"strm_lvl": content.get("strm_lvl") or strm_lvl})


def ensure_initialised(lp: LaunchPad, config: LaunchPadConfig) -> None:
    """Initialise a new embedded LaunchPad; refuse an uninitialised MongoDB one with what to run."""
    if lp.fw_id_assigner.find_one({}) is not None:
        return
    if isinstance(lp, EmbeddedLaunchPad):
        lp.reset("", require_password=False, max_reset_wo_password=0)
        lp.flush()
        return
    raise LaunchPadError(
        f"{config.describe()} is not initialised: run `lpad -l {config.path} reset` once on the login node"
    )


@contextmanager
def writable_launchpad(config: LaunchPadConfig, strm_lvl: str = "WARNING") -> Iterator[LaunchPad]:
    """The LaunchPad, ready to write: an embedded one is locked for this process and saved on exit.

    Raises
    ------
    workflows.launcher_lock.LauncherBusy
        Another process (a running ``epdi launch``) holds the embedded LaunchPad.
    """
    lock = None
    if config.kind == "embedded":
        if config.path.exists():
            _load_server_store(config.path)  # a damaged file is refused before the lock file is made
        lock = LauncherLock(config.lock_path, purpose=f"the embedded LaunchPad {config.path}").acquire()
    try:
        lp = open_launchpad(config, strm_lvl=strm_lvl)
        ensure_initialised(lp, config)
        try:
            yield lp
        finally:
            if isinstance(lp, EmbeddedLaunchPad):
                lp.flush()
    finally:
        if lock is not None:
            lock.release()


# --------------------------------------------------------------------------------------------------
# submitting


def submission_store(facade: StoreFacade) -> JobStore | None:
    """The JobStore written into the Fireworks: the embedded store itself, else ``None``.

    The embedded store is a folder on this machine, so its (path-only) description travels with the
    Fireworks. A MongoDB/GridFS/S3 store has credentials: workers use their own ``JOBFLOW_CONFIG_FILE``
    instead (``deploy/jobflow-mongodb-gridfs.yaml`` or ``deploy/jobflow-mongodb-s3.yaml``).
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
        action = super().run_task(fw_spec)
        for workflow in [*(action.additions or []), *(action.detours or [])]:
            _strict_tasks(workflow, DFT_CATEGORY)
        return action


def _strict_tasks(workflow: Workflow, default_category: str) -> Workflow:
    for firework in workflow.fws:
        firework.tasks = [StrictJobFiretask(dict(t)) if type(t) is JobFiretask else t for t in firework.tasks]
        firework.spec.setdefault("_category", default_category)
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

    from workflows.stable_jobs import stable_uuids

    workflow = flow_to_workflow(stable_uuids(flow), store=store, metadata=dict(metadata or {}))
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
# launching


def make_fworker(category: str | None = None, worker_file: Path | None = None) -> FWorker:
    """The FireWorker of a launcher.

    Parameters
    ----------
    category
        ``dft``: every Firework that is not ``gpu`` (DFT/MLIP, and jobs added later without a
        category); ``gpu``: CUDA training only; any other value: exactly that category;
        ``None``: everything (the embedded default, one machine).
    worker_file
        A FireWorks ``my_fworker.yaml`` (overrides ``category``), e.g. from ``deploy/``.
    """
    import socket

    if worker_file is not None:
        return FWorker.from_file(str(worker_file))
    host = socket.gethostname()
    if category is None:
        return FWorker(name=f"{host} (all categories)")
    if category == DFT_CATEGORY:
        return FWorker(name=f"{host} dft", query={"spec._category": {"$ne": GPU_CATEGORY}})
    return FWorker(name=f"{host} {category}", category=category)


@dataclass
class LaunchReport:
    """What one launcher did: Fireworks started, lost runs it reran, states at the end."""

    launched: int = 0
    lost_reran: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def rerun_lost_runs(lp: LaunchPad, expiration_s: float) -> list[int]:
    """``lpad detect_lostruns --rerun``: RUNNING Fireworks silent for ``expiration_s`` s go back to READY."""
    _, lost_fw_ids, _ = lp.detect_lostruns(expiration_secs=expiration_s, rerun=True)
    if isinstance(lp, EmbeddedLaunchPad):
        lp.flush()
    return sorted(lost_fw_ids)


def launch_rockets(
    config: LaunchPadConfig,
    fworker: FWorker,
    *,
    max_jobs: int = 0,
    lost_after_s: float | None = None,
    rerun_lost: bool = True,
    launch_dir: Path | None = None,
    sleep_s: int = 60,
    timeout_s: int | None = None,
    strm_lvl: str = "INFO",
) -> LaunchReport:
    """Run Fireworks until none is left for ``fworker`` (FireWorks ``rapidfire``).

    Parameters
    ----------
    config
        The LaunchPad; an embedded one is locked for the whole run (a second launcher is refused).
    fworker
        Which Fireworks to pull (see :func:`make_fworker`).
    max_jobs
        Stop after this many Fireworks (0: no limit).
    lost_after_s
        Rerun RUNNING Fireworks not pinged for this many seconds before starting. Default: 0 on the
        embedded LaunchPad (its lock proves that no other launcher is running them), FireWorks' 4 h
        on MongoDB (running launchers ping hourly).
    rerun_lost
        Look for lost runs at all.
    launch_dir
        Folder for FireWorks' ``launcher_*`` run folders. Default: ``launches`` beside the embedded
        LaunchPad; the working directory with MongoDB (queue scripts ``cd`` to their launch folder).
    sleep_s
        Seconds between polls while other launchers still run jobs that this one waits for
        (MongoDB; the embedded launcher stops when nothing is READY).
    timeout_s
        Start no new Firework after this many seconds (e.g. a queue job's wall time).
    strm_lvl
        FireWorks log level on the console.
    """
    from fireworks.core.rocket_launcher import rapidfire

    lock = None
    if config.kind == "embedded":
        if config.path.exists():
            _load_server_store(config.path)  # a damaged file is refused before the lock file is made
        lock = LauncherLock(config.lock_path, purpose=f"the embedded LaunchPad {config.path}").acquire()
    cwd = Path.cwd()
    try:
        lp = open_launchpad(config, strm_lvl=strm_lvl)
        ensure_initialised(lp, config)
        report = LaunchReport()
        if rerun_lost:
            if lost_after_s is None:
                lost_after_s = 0.0 if config.kind == "embedded" else LOST_RUN_EXPIRATION_S
            report.lost_reran = rerun_lost_runs(lp, lost_after_s)
        if launch_dir is None:
            launch_dir = config.path.parent / "launches" if config.kind == "embedded" else cwd
        folder = Path(launch_dir)
        folder.mkdir(parents=True, exist_ok=True)
        before = lp.launches.count_documents({})
        # On the embedded LaunchPad this launcher is the only one (it holds the lock): no other
        # process can finish a RUNNING Firework, so waiting for "future" work would wait forever.
        rapidfire(
            lp,
            fworker,
            m_dir=str(folder),
            nlaunches=max_jobs,
            max_loops=1 if config.kind == "embedded" else -1,
            sleep_time=sleep_s,
            timeout=timeout_s,
            strm_lvl=strm_lvl,
        )
        report.launched = lp.launches.count_documents({}) - before
        report.states = fireworks_by_state(lp)
        if isinstance(lp, EmbeddedLaunchPad):
            lp.flush()
        return report
    finally:
        os.chdir(cwd)
        if lock is not None:
            lock.release()


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
