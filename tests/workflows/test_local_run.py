"""run_flow: a failing job among several is named with its own error; the others run to the end."""

import logging
import threading
import time

import pytest
from jobflow import Flow, job

from stores.facade import StoreFacade
from workflows.flows.local_run import JobsFailed, run_flow


@job
def square(x: float) -> float:
    return x * x


@job
def inverse(x: float) -> float:
    return 1.0 / x


def test_the_failed_job_and_its_error_are_named_and_independent_jobs_finish(data_dir):
    ok = square(3.0)
    bad = inverse(0.0)
    bad.name = "inverse of zero"
    after_bad = square(bad.output)  # needs the failed job: skipped
    after_ok = square(ok.output)
    flow = Flow([ok, bad, after_bad, after_ok])
    store = StoreFacade().job_store()
    with pytest.raises(JobsFailed) as info:
        run_flow(flow, store, what="demo")
    message = str(info.value)
    assert message.startswith("demo: job 'inverse of zero' failed: ZeroDivisionError: float division by zero")
    assert "\n" not in message and "a rerun redoes only what failed" in message
    assert [f.as_dict() for f in info.value.failures] == [
        {"job": "inverse of zero", "error": "ZeroDivisionError: float division by zero"}
    ]
    assert "Traceback" in info.value.failures[0].traceback
    store.connect()
    try:
        finished = {d["uuid"]: d["output"] for d in store.query({}, properties=["uuid", "output"])}
    finally:
        store.close()
    assert finished == {ok.uuid: 9.0, after_ok.uuid: 81.0}  # the independent branch ran to the end


def test_a_flow_without_failures_returns_the_responses(data_dir):
    first = square(2.0)
    second = square(first.output)
    responses = run_flow(Flow([first, second]), StoreFacade().job_store())
    assert responses[second.uuid][1].output == 16.0


def test_jobs_write_to_the_store_their_flow_runs_with_not_the_environment(data_dir, tmp_path):
    """Settings are passed once, with the JobStore: the documents a job writes itself follow it."""
    from stores.settings import Settings, StoreSettings
    from workflows.jobs.hops import LiReferenceMaker

    given = StoreFacade(Settings(data_dir=tmp_path / "given", store=StoreSettings(backend="embedded")))
    flow = Flow([LiReferenceMaker().make()])
    run_flow(flow, given.job_store(), what="Li reference")
    [doc] = given.query("li_references", {})
    assert doc["engine"] == "chgnet" and doc["energy_ev"] < 0
    environment = StoreFacade()  # EPDI_DATA_DIR of the data_dir fixture
    assert environment.settings.data_dir != given.settings.data_dir
    assert environment.query("li_references", {}) == []


def test_progress_says_each_finished_job_with_counts_per_kind(data_dir, caplog):
    first, second = square(2.0), square(3.0)
    first.name, second.name = "square relax 1", "square relax 2"
    total = inverse(second.output)
    total.name = "inverse cineb 0"
    lines: list[str] = []
    run_flow(Flow([first, second, total]), StoreFacade().job_store(), progress=lines.append)
    assert len(lines) == 3
    assert "done: square relax 1 (" in lines[0] and lines[0].endswith("so far square relax 1")
    assert lines[1].endswith("so far square relax 2")
    assert "done: inverse cineb 0" in lines[2] and lines[2].endswith("so far inverse cineb 1, square relax 2")
    assert lines[0].split()[0].count(":") == 2  # elapsed as h:mm:ss
    assert not [r for r in caplog.records if r.name.startswith("jobflow")]  # jobflow's own lines stay quiet
    assert not logging.getLogger("jobflow.core.job").handlers  # the listener is gone after the run


@job
def pause(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_long_job_is_named_again_while_it_runs(data_dir):
    slow = pause(1.5)
    slow.name = "slow static"
    lines: list[str] = []
    run_flow(Flow([slow]), StoreFacade().job_store(), progress=lines.append, heartbeat_s=0.2)
    running = [line for line in lines if " running: slow static (" in line]
    assert running and lines[-1].split()[1] == "done:"  # heartbeats while it ran, then its done line
    assert all(line.split()[0].count(":") == 2 for line in lines)
    n = len(lines)
    time.sleep(0.5)
    assert len(lines) == n  # the heartbeat stops with the run
    assert not [t for t in threading.enumerate() if t.name == "epdi-progress"]
