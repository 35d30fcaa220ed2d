"""A dft launcher on a machine without VASP leaves the VASP Fireworks READY and runs the others."""

import pytest
from jobflow import Flow, job

from stores.facade import StoreFacade
from workflows.engines import EngineUnavailable, require_engine
from workflows.fireworks import launchpad as fwl
from workflows.fireworks.launcher import EnginesMissing, launch_rockets, make_fworker
from workflows.jobs.vasp_hops import VaspLiReferenceMaker


@job
def add_one(x: int) -> int:
    """A job every machine can run."""
    return x + 1


def _vasp_missing() -> bool:
    try:
        require_engine("vasp")
    except EngineUnavailable:
        return True
    return False


@pytest.mark.skipif(not _vasp_missing(), reason="VASP is configured on this machine")
def test_vasp_fireworks_are_left_ready_with_require_engines_message(data_dir):
    vasp = VaspLiReferenceMaker().make()
    plain = add_one(1)
    config = fwl.resolve_launchpad()
    fw_ids = fwl.submit_flow(config, Flow([vasp, plain]), fwl.submission_store(StoreFacade()), {"kind": "t"})
    lp = fwl.open_launchpad(config, read_only=True)
    engines = {fw["name"]: fw["spec"].get(fwl.ENGINE_KEY) for fw in lp.fireworks.find({})}
    assert engines == {"vasp li atom": "vasp", "add_one": None}

    with pytest.raises(EnginesMissing) as refused:
        launch_rockets(config, make_fworker("dft"), strm_lvl="ERROR")
    message = str(refused.value)
    assert "1 Firework(s)" in message and "engine 'vasp' cannot run here" in message
    assert "1 other Firework(s) ran" in message
    lp = fwl.open_launchpad(config, read_only=True)
    states = {fw["name"]: fw["state"] for fw in lp.fireworks.find({"fw_id": {"$in": fw_ids}})}
    assert states == {"vasp li atom": "READY", "add_one": "COMPLETED"}  # refused, not FIZZLED

    vasp_id = next(fw["fw_id"] for fw in lp.fireworks.find({"name": "vasp li atom"}))
    with pytest.raises(EnginesMissing):  # qlaunch -r names the reserved Firework
        launch_rockets(config, make_fworker("dft"), mode="singleshot", fw_id=vasp_id, strm_lvl="ERROR")
    lp = fwl.open_launchpad(config, read_only=True)
    assert lp.fireworks.find_one({"fw_id": vasp_id})["state"] == "READY"
