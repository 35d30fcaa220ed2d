"""Deterministic job uuids, so that a rerun that computes nothing adds nothing to jobflow's outputs.

jobflow gives every new :class:`jobflow.Job` a random uuid and ``run_locally`` stores each job's
output under ``(uuid, index)``. Building the same flow again (a rerun, a resumed campaign) therefore
made new uuids, and every job's output was stored once more although the Makers reused their stored
documents (the outputs collection grew 21 -> 42 -> 85 -> 127 over reruns of one campaign).

:func:`stable_uuids` gives each job of a flow a uuid derived from what the job is: a namespace, its
place in the flow (the enclosing flows' names and its position), its function (with the Maker and
its settings) and its inputs, with references to other jobs already renamed. The same flow built
again gets the same uuids, so its outputs replace the stored ones (jobflow upserts by uuid and
index); a job with other inputs gets another uuid. Jobs added at run time (``Response.addition``)
are named from the uuid of the job that adds them (see :func:`workflows.flows.campaign.campaign_round`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from jobflow import Flow, Job
from jobflow.core.reference import OutputReference
from jobflow.managers.local import run_locally as _jobflow_run_locally
from monty.json import jsanitize

#: namespace of the uuids made here
_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4b7e-9a52-3f2c1d0e5b7a")


def _places(item: Flow | Job, prefix: str, out: dict[str, tuple[Job, str]]) -> None:
    if isinstance(item, Job):
        out[item.uuid] = (item, prefix)
        return
    for index, child in enumerate(item.jobs):
        _places(child, f"{prefix}/{index}:{child.name}", out)


def _swap(value: Any, renamed: dict[str, str]) -> Any:
    """``value`` with every reference to a renamed job pointing at its new uuid."""
    if isinstance(value, OutputReference):
        return value.set_uuid(renamed[value.uuid], inplace=False) if value.uuid in renamed else value
    if isinstance(value, list | tuple):
        return type(value)(_swap(v, renamed) for v in value)
    if isinstance(value, dict):
        return {k: _swap(v, renamed) for k, v in value.items()}
    return value


def _identity(job: Job, place: str) -> str:
    payload = {
        "place": place,
        "name": job.name,
        "function": jsanitize(job.function, strict=True, enum_values=True),
        "args": jsanitize(job.function_args, strict=True, enum_values=True),
        "kwargs": jsanitize(job.function_kwargs, strict=True, enum_values=True),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return str(uuid.uuid5(_NAMESPACE, digest))


def _flows(item: Flow | Job) -> list[Flow]:
    if isinstance(item, Job):
        return []
    return [item, *(f for child in item.jobs for f in _flows(child))]


def stable_uuids(item: Flow | Job, namespace: str = "epdi") -> Flow | Job:
    """Give every job of ``item`` its deterministic uuid (in place); return ``item``.

    Parameters
    ----------
    item
        A job or a flow (nested flows included).
    namespace
        Distinguishes otherwise identical flows; for jobs added at run time, the uuid of the job
        that adds them.

    Raises
    ------
    RuntimeError
        A reference to a renamed job sits where it cannot be renamed (a bug of the flow's builder).
    """
    jobs: dict[str, tuple[Job, str]] = {}
    _places(item, f"{namespace}/{item.name}", jobs)
    renamed: dict[str, str] = {}

    def rename(old: str) -> None:
        if old in renamed:
            return
        job, place = jobs[old]
        for ref in job.input_references:
            if ref.uuid in jobs and ref.uuid != old:
                rename(ref.uuid)
        job.function_args = _swap(job.function_args, renamed)
        job.function_kwargs = _swap(job.function_kwargs, renamed)
        renamed[old] = _identity(job, place)
        job.set_uuid(renamed[old])

    for old in list(jobs):
        rename(old)
    for flow in _flows(item):
        if flow.output is not None:
            flow.output = _swap(flow.output, renamed)
    left = {ref.uuid for job, _ in jobs.values() for ref in job.input_references} & set(renamed)
    if left:
        raise RuntimeError(f"references to jobs {sorted(left)} could not be renamed")
    return item


def run_locally(flow: Flow | Job, *args: Any, namespace: str = "epdi", **kwargs: Any) -> dict:
    """Run ``flow`` with jobflow's ``run_locally`` after :func:`stable_uuids` (reruns replace outputs)."""
    return _jobflow_run_locally(stable_uuids(flow, namespace), *args, **kwargs)
