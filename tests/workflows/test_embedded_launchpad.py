"""The embedded LaunchPad shared by epdi and FireWorks' tools: fresh reads, locked writes, no stale copies."""

import os
import subprocess
import sys
from pathlib import Path

from fireworks import Firework, ScriptTask, Workflow

from workflows.fireworks import launchpad as fwl

BIN = Path(sys.executable).parent


def _add(config, name: str) -> None:
    with fwl.writable_launchpad(config) as lp:
        lp.add_wf(Workflow([Firework(ScriptTask.from_str(f"echo {name}"), name=name)]))


def _fireworks_env(data_dir: Path, **extra: str) -> dict:
    return dict(os.environ) | {"FW_CONFIG_FILE": str(data_dir / "fireworks" / "FW_config.yaml")} | extra


def test_lpad_and_a_long_lived_fireworks_process_see_and_keep_every_write(data_dir):
    config = fwl.resolve_launchpad()
    _add(config, "a")
    env = _fireworks_env(data_dir)
    reader = fwl.open_launchpad(config, read_only=True)  # long-lived, like a running qlaunch
    assert reader.fireworks.count_documents({}) == 1

    added = subprocess.run(  # FireWorks' own lpad, LaunchPad from FW_config.yaml (no -l)
        [str(BIN / "lpad"), "add_scripts", "echo b", "-n", "b"], env=env, capture_output=True, text=True
    )
    assert added.returncode == 0, added.stderr
    assert reader.fireworks.count_documents({}) == 2  # seen without reopening
    counted = subprocess.run(
        [
            str(BIN / "lpad"),
            "-l",
            str(data_dir / "fireworks" / "my_launchpad.yaml"),
            "get_fws",
            "-d",
            "count",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert counted.returncode == 0 and counted.stdout.strip().splitlines()[-1] == "2"

    # a FireWorks process opened before a write neither misses it nor undoes it when it exits
    code = (
        "from fireworks import LaunchPad\n"
        "lp = LaunchPad.auto_load()\n"
        "print(lp.fireworks.count_documents({}), flush=True)\n"
        "input()\n"
        "print(lp.fireworks.count_documents({}), flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "2"
    _add(config, "c")
    out, _ = process.communicate("\n", timeout=120)
    assert out.strip() == "3" and process.returncode == 0
    names = sorted(fw["name"] for fw in fwl.open_launchpad(config, read_only=True).fireworks.find({}))
    assert names == ["a", "b", "c"]


def test_fireworks_writes_wait_for_a_running_launcher_then_stop_with_its_pid(data_dir):
    config = fwl.resolve_launchpad()
    _add(config, "a")
    env = _fireworks_env(data_dir, EPDI_LAUNCHPAD_WAIT_S="1")
    with fwl.writable_launchpad(config):  # this process is the writer, as `epdi launch` is for its run
        refused = subprocess.run(
            [str(BIN / "lpad"), "add_scripts", "echo b"], env=env, capture_output=True, text=True
        )
        read = subprocess.run(
            [str(BIN / "lpad"), "get_fws", "-d", "count"], env=env, capture_output=True, text=True
        )
    assert refused.returncode != 0
    assert f"is in use by PID {os.getpid()}" in refused.stderr + refused.stdout
    assert read.returncode == 0 and read.stdout.strip().splitlines()[-1] == "1"  # readers never wait
    assert fwl.open_launchpad(config, read_only=True).fireworks.count_documents({}) == 1
