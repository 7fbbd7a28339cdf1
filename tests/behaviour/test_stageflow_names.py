"""A user's own classes with StageFlow's type names (natural in a service that consumes Go's events or
watches its stage messages) take those names in the registry; the engine does not depend on them: flows
run, compensate and ``wait`` answers (even when the user's class could not decode StageFlow's payload),
and the user's handlers still get the user's classes. On memory:// and RabbitMQ."""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event, Message, default_registry
from mmate_fast.stageflow import (
    CompensationMessageEnvelope,
    FlowEngine,
    FlowMessageEnvelope,
    StageCompletedEvent,
    Workflow,
    WorkflowCompensatedEvent,
    WorkflowCompletedEvent,
    WorkflowFailedEvent,
)
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import flow_queues

OURS = (FlowMessageEnvelope, CompensationMessageEnvelope, StageCompletedEvent, WorkflowCompletedEvent,
        WorkflowFailedEvent, WorkflowCompensatedEvent)


@contextmanager
def users_classes() -> Iterator[dict[str, type]]:
    """The user's classes, defined (so registered in the default registry under StageFlow's names) for
    the test, StageFlow's own put back after it."""
    try:
        @dataclasses.dataclass
        class StageCompletedEvent(Event):  # the same name as StageFlow's, on purpose
            workflow_id: str = ""
            instance_id: str = ""
            stage_id: str = ""

        @dataclasses.dataclass
        class WorkflowCompletedEvent(Event):
            workflow_id: str = ""
            instance_id: str = ""
            status: str = ""

        @dataclasses.dataclass
        class WorkflowCompensatedEvent(Event):
            instance_id: str = ""

        @dataclasses.dataclass
        class FlowMessageEnvelope(Message):  # a watcher of Go's stage messages, with a wrong guess
            workflow_id: str = ""
            instance_id: str = ""
            stage_name: str = ""
            checkpoint: str = ""  # an object on the wire: this class cannot decode a stage message

        @dataclasses.dataclass
        class CompensationMessageEnvelope(Message):
            workflow_id: str = ""
            instance_id: str = ""

        classes = {c.__name__: c for c in (StageCompletedEvent, WorkflowCompletedEvent, WorkflowCompensatedEvent,
                                            FlowMessageEnvelope, CompensationMessageEnvelope)}
        assert all(default_registry.resolve(name) is cls for name, cls in classes.items())
        yield classes
    finally:
        for cls in OURS:
            default_registry.register(cls)


async def test_users_classes_with_stageflow_names(url: str, names: Names) -> None:
    wf = Workflow(f"names-{names.queue('wf')}")
    undone: list[str] = []
    wf.add_stage("a", lambda ctx: {"a": 1}, compensate=lambda ctx: undone.append("a"))
    wf.add_stage("b", lambda ctx: None if ctx.get("ok") else (_ for _ in ()).throw(RuntimeError("no")))
    prefix = f"{names.queue('sf')}."
    flow_queues(names, prefix, wf)
    with users_classes() as classes:
        got: list[Any] = []
        async with Client(url, service_name=names.service()) as client:
            client.add_handler(classes["StageCompletedEvent"], got.append)
            client.add_handler(classes["WorkflowCompletedEvent"], got.append)
            await client.start_consuming()
            flows = FlowEngine(client, prefix=prefix, events=True)
            try:
                await flows.register(wf)
                iid = await flows.start(wf, {"ok": True})
                state = await flows.wait(iid, timeout=10)
                assert state.status == "completed" and state.global_data["a.a"] == 1
                failing = await flows.start(wf, {"ok": False})
                state = await flows.wait(failing, timeout=10)
                assert state.status == "compensated" and undone == ["a"]
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 10
                while len(got) < 4 and loop.time() < deadline:  # a, b and the completion; a of the failing one
                    await asyncio.sleep(0.01)
            finally:
                await flows.close()
        mine = [m for m in got if m.instance_id == iid]
        assert [type(m) for m in mine] == [classes["StageCompletedEvent"]] * 2 + [classes["WorkflowCompletedEvent"]]
        assert [m.stage_id for m in mine[:2]] == ["a", "b"] and mine[2].status == "completed"
