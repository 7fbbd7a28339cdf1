"""Stages of one workflow served by different engines (``register(wf, stages=..., compensation=...)``),
on memory:// and RabbitMQ: each engine runs only its stages, the flow completes across them, a failure
is compensated where the compensation queue is served, and a stage the workflow does not have is
refused when registering."""
from __future__ import annotations

from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.stageflow import FlowEngine, Workflow
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import flow_queues


def split_flow(wf_id: str, ran: list[tuple[str, str]], who: str, *, fail_at: str = "") -> Workflow:
    """validate -> charge -> ship; each run recorded as (stage, who ran it)."""
    wf = Workflow(wf_id)

    def stage(name: str) -> Any:
        def run(ctx: dict[str, Any]) -> dict[str, Any]:
            ran.append((name, who))
            if name == fail_at:
                raise RuntimeError(f"{name} declined")
            return {"ok": True}

        return run

    def undo(name: str) -> Any:
        def run(ctx: dict[str, Any]) -> None:
            ran.append((f"undo:{name}", who))

        return run

    for name in ("validate", "charge", "ship"):
        wf.add_stage(name, stage(name), compensate=undo(name))
    return wf


async def _two_engines(url: str, names: Names, fail_at: str = "") -> list[tuple[str, str]]:
    ran: list[tuple[str, str]] = []
    wf_id = f"split-{names.queue('wf')}"
    prefix = f"{names.queue('sf')}."
    wf_a, wf_b = split_flow(wf_id, ran, "a", fail_at=fail_at), split_flow(wf_id, ran, "b", fail_at=fail_at)
    flow_queues(names, prefix, wf_a)
    async with Client(url, service_name=names.service()) as ca, Client(url, service_name=names.service()) as cb:
        a = FlowEngine(ca, prefix=prefix, store="memory://")
        b = FlowEngine(cb, prefix=prefix, store="memory://")
        try:
            await a.register(wf_a, stages=["validate", 2], compensation=True)
            await b.register(wf_b, stages=[1])
            iid = await a.start(wf_a, {"orderId": "o-1"})
            state = await a.wait(iid, timeout=10)
            assert state.status == ("compensated" if fail_at else "completed")
        finally:
            await a.close()
            await b.close()
    return ran


async def test_each_engine_runs_only_its_stages(url: str, names: Names) -> None:
    assert await _two_engines(url, names) == [("validate", "a"), ("charge", "b"), ("ship", "a")]


async def test_a_failure_is_compensated_where_the_compensation_queue_is_served(url: str, names: Names) -> None:
    assert await _two_engines(url, names, fail_at="charge") == [
        ("validate", "a"), ("charge", "b"), ("undo:validate", "a")]


@pytest.mark.parametrize("stages", [["nope"], [3], [-1], [True], "ship2"])
async def test_a_stage_the_workflow_does_not_have_is_refused(url: str, names: Names, stages: Any) -> None:
    wf = split_flow(f"split-{names.queue('wf')}", [], "a")
    async with Client(url, service_name=names.service()) as client:
        flows = FlowEngine(client, prefix=f"{names.queue('sf')}.")
        with pytest.raises(errors.InvalidArgumentError, match="stage"):
            await flows.register(wf, stages=stages)
        await flows.close()
