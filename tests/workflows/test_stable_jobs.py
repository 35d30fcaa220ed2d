"""Deterministic job uuids: a rerun of the same flow replaces its outputs instead of adding them."""

from jobflow import Flow, job
from store_helpers import count_outputs

from stores.facade import StoreFacade
from workflows.flows.stable_jobs import run_locally, stable_uuids


@job
def add(a, b):
    return a + b


def _flow(b=2):
    first = add(1, b)
    second = add(first.output, 10)
    twin = add(1, b)  # same function and inputs as ``first``, another place in the flow
    return Flow([first, Flow([second, twin], name="inner")], output=second.output, name="sums")


def test_the_same_flow_gets_the_same_uuids_and_references_follow():
    one, two = stable_uuids(_flow()), stable_uuids(_flow())
    uuids = [one.jobs[0].uuid, *(j.uuid for j in one.jobs[1].jobs)]
    assert uuids == [two.jobs[0].uuid, *(j.uuid for j in two.jobs[1].jobs)]
    assert len(set(uuids)) == 3  # twins at different places stay apart
    second = one.jobs[1].jobs[0]
    assert [r.uuid for r in second.input_references] == [one.jobs[0].uuid]
    assert one.output.uuid == second.uuid
    other = stable_uuids(_flow(b=3))
    assert other.jobs[0].uuid != one.jobs[0].uuid  # other inputs, another job
    assert other.jobs[1].jobs[0].uuid != second.uuid  # ... and so everything downstream


def test_a_rerun_adds_no_outputs():
    facade = StoreFacade()
    responses = run_locally(_flow(), store=facade.job_store(), log=False, ensure_success=True)
    assert count_outputs(facade) == 3
    again = _flow()
    rerun = run_locally(again, store=facade.job_store(), log=False, ensure_success=True)
    assert count_outputs(facade) == 3
    assert rerun.keys() == responses.keys()
    assert rerun[again.jobs[1].jobs[0].uuid][1].output == 13
    run_locally(_flow(b=5), store=facade.job_store(), log=False, ensure_success=True)
    assert count_outputs(facade) == 6  # new inputs are new jobs
