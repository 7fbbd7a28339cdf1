"""StageFlow's wire through a real consumer, on both transports: a stage message published with
``Client.publish`` arrives with its decoded state; one whose ``serializedWorkflowState`` is corrupt,
or whose fields have the wrong JSON types, goes to ``dlq.{queue}`` with a reason naming what was
wrong, and the consumer goes on with the next message."""
from __future__ import annotations

import json
import uuid
from typing import Any

from mmate_fast.client import Client
from mmate_fast.messaging.outgoing import build
from mmate_fast.stageflow import _wire as w
from mmate_fast.stageflow._gotime import now_ns

from .behaviour_helpers import drain_queue, wait_until
from .conftest import Names


def _state(iid: str) -> w.WorkflowState:
    t = now_ns()
    return w.WorkflowState("bt-flow", iid, "running", global_data={"orderId": "o-1", "amount": 9.5},
                           start_ns=t, last_modified_ns=t)


async def test_stage_messages_decode_and_bad_ones_are_dead_lettered(url: str, names: Names) -> None:
    queue = names.queue("stage0")
    names.queues.append(f"dlq.{queue}")
    got: list[w.FlowMessageEnvelope] = []
    async with Client(url, service_name=f"bt-sf-{uuid.uuid4().hex[:8]}", dead_letter=True) as client:
        names.queues.append(client.service_queue)
        names.queues.append(f"dlq.{client.service_queue}")
        client.add_handler(w.FlowMessageEnvelope, got.append, bind=False)
        sub = await client.subscribe(queue)

        first = w.flow_message(_state("i-1"), stage_index=0, stage_name="validate", next_queue="next",
                               payload={"orderId": "o-1"})
        await client.publish(first, exchange="", routing_key=queue)
        await wait_until(lambda: len(got) == 1, timeout=5)
        assert got[0].state.instance_id == "i-1" and got[0].state.global_data["amount"] == 9.5
        assert got[0].id == first.id and got[0].payload == {"orderId": "o-1"}

        # the same message with a corrupt state string, then with a field of the wrong type
        ch = await client.connection.channel()
        bad_state = _body(first, serializedWorkflowState='{"workflowId":"bt-flow","instanceId":')
        bad_field = _body(first, currentStageIndex="0")
        await ch.publish(bad_state, "", queue)
        await ch.publish(bad_field, "", queue)
        third = w.flow_message(_state("i-3"), stage_index=0, stage_name="validate", next_queue=None,
                               payload=None)
        await client.publish(third, exchange="", routing_key=queue)
        await wait_until(lambda: len(got) == 2 and sub.stats.dead_lettered == 2, timeout=5)
        assert got[1].state.instance_id == "i-3"  # the consumer went on
        dead = await drain_queue(ch, f"dlq.{queue}", timeout=5, expect=2)
        reasons = sorted((d.properties.headers["x-mmate-reason"], d.properties.headers["x-mmate-error"])
                         for d in dead)
        assert [r for r, _ in reasons] == ["contract-error", "contract-error"]
        errors_text = " | ".join(e for _, e in reasons)
        assert "serializedWorkflowState is not JSON" in errors_text
        assert "currentStageIndex: expected an integer" in errors_text
        assert {d.body for d in dead} == {bad_state, bad_field}
        await ch.close()


def _body(msg: Any, **payload: Any) -> bytes:
    """``msg``'s body under a new id, with payload keys replaced."""
    doc = json.loads(build(msg).body)
    doc["id"] = str(uuid.uuid4())
    doc["payload"].update(payload)
    return json.dumps(doc).encode()
