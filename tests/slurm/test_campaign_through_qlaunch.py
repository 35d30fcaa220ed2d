"""A tiny campaign submitted with `epdi campaign submit` and run to the end only through FireWorks' qlaunch.

Against the local Slurm: DFT/MLIP Fireworks in jobs of the cpu partition, training in the gpu
partition (Slurm's records and the launches' worker names), one job cancelled mid-Firework and its
run redone by a later job, `epdi status` listing the campaign's jobs meanwhile, and at the end the
same labels and models as `epdi campaign run` leaves for that spec, with no document twice.
"""

import json
import subprocess

import pytest

from stores.facade import StoreFacade
from stores.schemas.surfaces import COLLECTIONS
from stores.settings import Settings
from workflows.bench.slurm import compare_through_slurm, epdi
from workflows.fireworks import launchpad as fwl
from workflows.fireworks.qlaunch_rounds import TINY_SPEC, campaign_results, local_queue_files
from workflows.fireworks.queue_jobs import job_of_worker, sacct_jobs

pytestmark = pytest.mark.slurm


class CancelASurfaceStatic:
    """While the rounds run: ask `epdi status` once a static runs, then cancel the job of the other one."""

    def __init__(self, spec):
        self.spec = spec
        self.status: dict | None = None
        self.first_static: int | None = None
        self.cancelled: tuple[int, str] | None = None

    def __call__(self, config, data_dir):
        if self.cancelled is not None:
            return
        lp = fwl.open_launchpad(config, read_only=True)
        for fw in lp.fireworks.find({"name": "surface static", "state": "RUNNING"}):
            launch = lp.launches.find_one({"launch_id": fw["launches"][-1]})
            job = job_of_worker(launch["fworker"]["name"])
            if job is None:
                continue
            if self.first_static is None:
                self.first_static = fw["fw_id"]
                done = epdi(["status", str(self.spec), "--json"], data_dir, timeout=300)
                assert done.returncode == 0, done.stderr
                self.status = json.loads(done.stdout.strip().splitlines()[-1])
            elif fw["fw_id"] != self.first_static:
                subprocess.run(["scancel", job], check=True)
                self.cancelled = (fw["fw_id"], job)


def _counts(data_dir):
    facade = StoreFacade(Settings(data_dir=data_dir))
    return {name: facade.count(name) for name in COLLECTIONS}


def _outputs(data_dir):
    store = StoreFacade(Settings(data_dir=data_dir)).job_store()
    store.connect()
    try:
        return [(d["uuid"], d["index"]) for d in store.query({}, properties=["uuid", "index"])]
    finally:
        store.close()


def test_tiny_campaign_through_qlaunch_matches_campaign_run_despite_a_cancelled_job(slurm, tmp_path):
    pytest.importorskip("gpaw")
    spec = tmp_path / "tinyslurm.yaml"
    spec.write_text(TINY_SPEC)
    during = CancelASurfaceStatic(spec)
    run = compare_through_slurm(spec, tmp_path, local_queue_files(tmp_path / "queue"), while_running=during)

    lp = fwl.open_launchpad(run.config, read_only=True)
    fireworks = list(lp.fireworks.find({}))
    assert run.rounds.states == {"COMPLETED": len(fireworks)}
    wf = fwl.workflows_with(lp, {"campaign": "tinyslurm"})
    assert len(wf) == 1 and sorted(wf[0]["nodes"]) == sorted(fw["fw_id"] for fw in fireworks)

    # epdi status, while a static ran, listed the campaign's Slurm jobs beside its Fireworks
    assert during.status is not None and during.status["slurm_jobs"]
    for job in during.status["slurm_jobs"]:
        assert job["partition"] in ("cpu", "gpu") and job["name"].startswith("epdi-")
        assert set(job["fw_ids"]) <= set(wf[0]["nodes"])
    assert "RUNNING" in during.status["fireworks"]

    # the cancelled job's run was found lost and redone by a later job; Slurm recorded the cancel
    assert during.cancelled is not None
    fw_id, cancelled_job = during.cancelled
    launches = lp.launches.find({"fw_id": fw_id})
    runs = sorted((d["state"], job_of_worker(d["fworker"]["name"])) for d in launches)
    assert [state for state, _ in runs] == ["COMPLETED", "FIZZLED"]
    assert runs[1][1] == cancelled_job and runs[0][1] != cancelled_job

    # every Firework ran in a job of its category's partition (Slurm's records and worker names)
    completed = {d["fw_id"]: d for d in lp.launches.find({"state": "COMPLETED"})}
    jobs = {fw["fw_id"]: job_of_worker(completed[fw["fw_id"]]["fworker"]["name"]) for fw in fireworks}
    records = sacct_jobs(sorted({*jobs.values(), cancelled_job}))
    assert records[cancelled_job]["state"] == "CANCELLED"
    training = [fw for fw in fireworks if fw["spec"]["_category"] == "gpu"]
    assert [fw["name"] for fw in training] == ["campaign train 1"]
    for fw in fireworks:
        gpu = fw["spec"]["_category"] == "gpu"
        assert records[jobs[fw["fw_id"]]]["partition"] == ("gpu" if gpu else "cpu"), fw["name"]
        assert completed[fw["fw_id"]]["fworker"]["name"].startswith("gpu-train" if gpu else "cpu-dft")

    # the same labels, rounds and models as `epdi campaign run`, and nothing stored twice
    ours, reference = campaign_results(run.slurm_data), campaign_results(run.local_data)
    assert ours["rounds"] == reference["rounds"] and ours["models"] == reference["models"]
    assert [n[0::2] for n in ours["nebs"]] == [n[0::2] for n in reference["nebs"]] and ours["nebs"]
    assert [n[1] for n in ours["nebs"]] == pytest.approx([n[1] for n in reference["nebs"]], abs=2e-4)
    assert [v[0] for v in ours["valleys"]] == [v[0] for v in reference["valleys"]]
    assert [v[1] for v in ours["valleys"]] == pytest.approx([v[1] for v in reference["valleys"]], abs=2e-4)
    assert _counts(run.slurm_data) == _counts(run.local_data)
    outputs = _outputs(run.slurm_data)
    assert len(outputs) == len(set(outputs)) == len(fireworks)
