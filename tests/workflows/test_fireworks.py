"""FireWorks on the embedded LaunchPad: submit, rapidfire, failures, killed launchers, lock, deploy files."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
import yaml
from jobflow import Flow, job
from typer.testing import CliRunner

from stores.facade import StoreFacade
from workflows.cli import cluster, status
from workflows.engines.chgnet_engine import ChgnetSettings
from workflows.fireworks import launchpad as fwl
from workflows.fireworks.launcher_lock import LauncherBusy, LauncherLock
from workflows.flows.surface_hops import SurfaceHopsMaker
from workflows.jobs.train import TRAINING_CATEGORY
from workflows.structures.surfaces import store_surfaces, surface_from_request

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
runner = CliRunner()
cli = typer.Typer()
cli.command("launch")(cluster.launch)
cli.command("status")(status.status)


def _hops_flow(n_images: int):
    """Slab relax, Li reference, 2 valley relaxations and one CINEB on 2x2 MoS2 (CHGNet, loose fmax)."""
    bundle = surface_from_request("MoS2", None, 2)
    store_surfaces([bundle], StoreFacade())
    settings = ChgnetSettings(fmax_ev_ang=0.3, max_steps=30)
    return SurfaceHopsMaker(settings=settings, n_images=n_images).make(bundle, hop_indices=[0])


def _submit(flow) -> tuple[fwl.LaunchPadConfig, list[int]]:
    config = fwl.resolve_launchpad()
    fw_ids = fwl.submit_flow(config, flow, fwl.submission_store(StoreFacade()), {"kind": "test"})
    return config, fw_ids


def _states(config) -> dict[str, int]:
    return fwl.fireworks_by_state(fwl.open_launchpad(config, read_only=True))


def _outputs() -> list[dict]:
    store = StoreFacade().job_store()
    store.connect()
    try:
        return list(store.query({}, properties=["uuid", "index", "name"]))
    finally:
        store.close()


def test_submit_rapidfire_fizzled_job_and_store_results(data_dir):
    config, fw_ids = _submit(_hops_flow(n_images=0))  # a CINEB with no image is bad input
    assert config.kind == "embedded" and config.path == data_dir / "fireworks" / "launchpad.json"
    assert len(fw_ids) == 5
    lp = fwl.open_launchpad(config, read_only=True)
    assert {fw["spec"]["_category"] for fw in lp.fireworks.find({})} == {fwl.DFT_CATEGORY}

    result = runner.invoke(cli, ["launch", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["launched"] == 5
    assert summary["states"] == {"COMPLETED": 4, "FIZZLED": 1}

    failed = fwl.failed_fireworks(fwl.open_launchpad(config, read_only=True))
    assert [f["name"] for f in failed] == ["hop cineb 0"]
    assert "CINEB needs at least one intermediate image" in failed[0]["error"]

    facade = StoreFacade()
    assert facade.count("calculations") == 1 and facade.count("li_references") == 1
    assert sorted(v["label"] for v in facade.query("valleys")) == ["H", "T_M"]
    assert facade.count("nebs") == 0
    outputs = _outputs()
    assert len(outputs) == 4 and len({o["uuid"] for o in outputs}) == 4

    status = runner.invoke(cli, ["status", "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert info["fireworks"] == {"COMPLETED": 4, "FIZZLED": 1}
    assert "CINEB needs at least one intermediate image" in info["fizzled"][0]["error"]
    assert info["valley_labels"] == 2 and info["saddle_labels"] == 0

    # FireWorks' own tools read the same file through the FW_config.yaml written beside it
    env = os.environ | {"FW_CONFIG_FILE": str(config.path.parent / "FW_config.yaml")}
    lpad = subprocess.run(
        [str(Path(sys.executable).parent / "lpad"), "get_fws", "-s", "COMPLETED", "-d", "count"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lpad.returncode == 0, lpad.stderr
    assert lpad.stdout.strip().splitlines()[-1] == "4"


def test_quiet_launch_prints_no_info_lines_and_no_library_warnings(data_dir):
    config, fw_ids = _submit(_hops_flow(n_images=1))
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-m", "workflows.cli", "launch", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert _states(config) == {"COMPLETED": len(fw_ids)}
    assert " INFO " not in proc.stdout and " INFO " not in proc.stderr, proc.stdout + proc.stderr
    assert "Warning:" not in proc.stderr, proc.stderr


def test_killed_launcher_is_rerun_without_duplicates_and_a_second_launcher_is_refused(data_dir):
    config, fw_ids = _submit(_hops_flow(n_images=1))
    first = subprocess.Popen(
        [sys.executable, "-m", "workflows.cli", "launch", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while "RUNNING" not in _states(config):
            assert first.poll() is None, "the launcher ended before running a Firework"
            assert time.monotonic() < deadline, "no Firework started within 90 s"
            time.sleep(0.2)
        refused = runner.invoke(cli, ["launch"])
        assert refused.exit_code == 1
        assert f"PID {first.pid} on host {socket.gethostname()}" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    lost = [
        fw["fw_id"] for fw in fwl.open_launchpad(config, read_only=True).fireworks.find({"state": "RUNNING"})
    ]
    assert len(lost) == 1  # SIGKILL left the run RUNNING on disk
    time.sleep(1.0)  # older than the expiration below

    result = runner.invoke(cli, ["launch", "--json", "--lost-after", "0.5"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["lost_runs_rerun"] == lost
    assert summary["states"] == {"COMPLETED": 5}

    facade = StoreFacade()
    counts = {c: facade.count(c) for c in ("calculations", "li_references", "valleys", "nebs")}
    assert counts == {"calculations": 1, "li_references": 1, "valleys": 2, "nebs": 1}
    outputs = _outputs()
    assert len(outputs) == 5 and len({(o["uuid"], o["index"]) for o in outputs}) == 5
    neb = facade.query("nebs")[0]
    assert neb["n_images"] == 1 and len(neb["image_energies_ev"]) == 3


def test_lock_names_its_holder_and_is_free_again_after_release(tmp_path):
    path = tmp_path / "lp.lock"
    held = LauncherLock(path, purpose="the test LaunchPad").acquire()
    with pytest.raises(LauncherBusy) as busy:
        LauncherLock(path, purpose="the test LaunchPad").acquire(wait_s=0.2, poll_s=0.05)
    assert busy.value.holder.pid == os.getpid()
    assert f"PID {os.getpid()} on host {socket.gethostname()}" in str(busy.value)
    held.release()
    assert LauncherLock(path).holder() is None
    with LauncherLock(path) as again:
        assert again.held and again.holder().pid == os.getpid()


def test_launchpad_location_from_options_environment_and_fireworks_config(data_dir, tmp_path, monkeypatch):
    assert fwl.resolve_launchpad().path == data_dir / "fireworks" / "launchpad.json"
    with pytest.raises(fwl.LaunchPadError, match="does not exist"):
        fwl.resolve_launchpad(tmp_path / "missing.yaml")
    production = tmp_path / "my_launchpad.yaml"
    production.write_text(yaml.safe_dump({"host": "db.example.org", "name": "fireworks"}))
    monkeypatch.setenv(fwl.LAUNCHPAD_FILE_ENV, str(production))
    assert fwl.resolve_launchpad() == fwl.LaunchPadConfig("mongodb", production, fwl.LAUNCHPAD_FILE_ENV)
    monkeypatch.delenv(fwl.LAUNCHPAD_FILE_ENV)
    fw_config = tmp_path / "FW_config.yaml"
    fw_config.write_text(yaml.safe_dump({"MONGOMOCK_SERVERSTORE_FILE": str(tmp_path / "other.json")}))
    monkeypatch.setenv("FW_CONFIG_FILE", str(fw_config))
    assert fwl.resolve_launchpad().path == tmp_path / "other.json"
    fw_config.write_text(yaml.safe_dump({"LAUNCHPAD_LOC": str(production)}))
    assert fwl.resolve_launchpad().kind == "mongodb"


def test_deploy_files_one_credentials_file_and_queue_scripts_for_both_qlaunch_modes(tmp_path, monkeypatch):
    from click.testing import CliRunner as ClickRunner
    from fireworks import FWorker, LaunchPad
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter
    from typer.main import get_command

    dft = FWorker.from_file(str(DEPLOY / "my_fworker_dft.yaml"))
    gpu = FWorker.from_file(str(DEPLOY / "my_fworker_gpu.yaml"))
    assert gpu.category == TRAINING_CATEGORY == fwl.GPU_CATEGORY
    assert dft.query["spec._category"] == {"$ne": TRAINING_CATEGORY}

    launch_app = typer.Typer()
    launch_app.command()(cluster.launch)
    names = ["slurm", "slurm_gpu", "pbs", "pbs_gpu", "local", "local_gpu"]  # local: deploy/slurm/
    for name in names:
        folder = DEPLOY / "slurm" if name.startswith("local") else DEPLOY
        adapter = CommonAdapter.from_file(str(folder / f"my_qadapter_{name}.yaml"))
        script = adapter.get_script_str(".")
        command = adapter["rocket_launch"]
        assert command in script and "JOBFLOW_CONFIG_FILE" not in script
        # qlaunch -r accepts only a singleshot launcher and appends the Firework it reserved
        assert command.startswith("epdi launch ") and "singleshot" in command
        gpu_kind = name.endswith("gpu")
        if name.startswith("local"):  # the job inherits qlaunch's environment
            assert f"--category {'gpu' if gpu_kind else 'dft'}" in command
        else:
            assert "EPDI_SETTINGS_FILE" in script
            assert f"deploy/{'my_fworker_gpu.yaml' if gpu_kind else 'my_fworker_dft.yaml'}" in command
        if not name.startswith("pbs"):
            assert adapter["queue"] == ("gpu" if gpu_kind else "cpu")
        args = [*command.split()[2:], "--fw_id", "7", "--help"]  # parsed in full before --help acts
        result = ClickRunner().invoke(get_command(launch_app), args)
        assert result.exit_code == 0, result.output  # every option of the queue script is known
        bad = ClickRunner().invoke(get_command(launch_app), [*command.split()[2:], "--no-such", "--help"])
        assert bad.exit_code == 2  # so an unknown option would have failed

    # one file: FireWorks reads the LaunchPad keys, epdi the store, which takes the LaunchPad's server
    one = DEPLOY / "epdi-mongodb.yaml"
    content = yaml.safe_load(one.read_text())
    lp = LaunchPad.from_dict(content | {"mongoclient_kwargs": {"connect": False}})
    assert lp.host == content["host"] and lp.name == "fireworks" and lp.password == content["password"]
    monkeypatch.setenv("EPDI_SETTINGS_FILE", str(one))
    from stores.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    assert settings.store.backend == "mongodb" and settings.store.database == "epdi"
    assert (settings.store.host, settings.store.port) == (content["host"], content["port"])
    assert (settings.store.username, settings.store.password) == (content["username"], content["password"])
    assert settings.store.auth_source == content["authsource"]
    config = fwl.resolve_launchpad()
    assert config.kind == "mongodb" and config.path == one.resolve()
    assert fwl.launchpad_file_content(config)["host"] == content["host"]
    assert "store" not in fwl.launchpad_file_content(config)
    production = StoreFacade(settings)
    assert production.docs_store("outputs").collection_name == "outputs"
    assert production.data_store().collection_name == "outputs_data"
    get_settings.cache_clear()

    assert "epdi retrain --if-new" in (DEPLOY / "epdi-retrain.cron").read_text()
    service = (DEPLOY / "epdi-retrain.service").read_text()
    timer = (DEPLOY / "epdi-retrain.timer").read_text()
    assert "ExecStart=" in service and "epdi retrain --if-new" in service
    assert "OnCalendar=" in timer and "Unit=epdi-retrain.service" in timer


def test_fireworks_keep_pydantic_settings_and_categories_of_jobs():
    from fireworks import Firework

    from epdi_ml.training.config import TrainConfig
    from workflows.jobs.train import TrainMaker

    config = TrainConfig(model="small_cnn", epochs=2, pixels=16, pretrained=False)
    workflow = fwl.flow_workflow(TrainMaker(config=config, fraction=0.5).make(), store=None)
    stored = Firework.from_dict(json.loads(json.dumps(workflow.fws[0].to_dict(), default=str)))
    assert stored.spec["_category"] == TRAINING_CATEGORY
    maker = stored.tasks[0]["job"].function.__self__
    assert maker.config == config and maker.fraction == 0.5


@job
def double(x: int) -> int:
    return 2 * x


def test_a_firework_without_store_writes_to_the_workers_platform_store(data_dir):
    config = fwl.resolve_launchpad()
    first = double(21)
    flow = Flow([first, double(first.output)])
    fw_ids = fwl.submit_flow(config, flow, store=None, metadata={"kind": "test"})  # as for MongoDB
    lp = fwl.open_launchpad(config, read_only=True)
    fireworks = lp.fireworks.find({"fw_id": {"$in": fw_ids}})
    assert all(fw["spec"]["_tasks"][0]["store"] is None for fw in fireworks)
    result = runner.invoke(cli, ["launch", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["states"] == {"COMPLETED": 2}
    store = StoreFacade().job_store()  # the worker's settings: EPDI_DATA_DIR of this test
    store.connect()
    try:
        outputs = sorted(d["output"] for d in store.query({}, properties=["output"]))
    finally:
        store.close()
    assert outputs == [42, 84]
