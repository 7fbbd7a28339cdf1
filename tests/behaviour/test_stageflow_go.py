"""Go interop: mmate-go's captured StageFlow hops (vectors 22 and 28, the first hop of each run)
published raw into our engine run to the same states, hops and events as Go's capture (vectors 23-27
and 29-34), field for field with ids and times aside; every hop our engine sends decodes with the
wire layer's strict decoder. Run 1 fails at ``charge`` and compensates ``validate``; run 2 completes.
"""
from __future__ import annotations

import json
from typing import Any

from mmate_fast._ext import load
from mmate_fast.contracts import from_envelope
from mmate_fast.stageflow import CompensationMessageEnvelope, FlowMessageEnvelope, StageInfo, Workflow
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import Events, engine_for
from tests.vectors import VECTORS

_env = load("envelope")
_frames = load("frames")

WORKFLOW_ID = "mmate-peer-vectors-flow"
GO_PREFIX = "stageflow."
TIME_KEYS = frozenset({"startTime", "endTime", "lastModified", "duration", "failureTime", "failureTimestamp",
                       "compensationStartTime", "compensationEndTime", "compensationDuration"})
STRING_JSON = ("serializedWorkflowState", "serializedOriginalResult")


def vector(number: int) -> tuple[bytes, dict[str, Any]]:
    [body_file] = VECTORS.glob(f"{number}-stageflow-*.body.json")
    sidecar = json.loads(body_file.with_name(body_file.name.replace(".body.", ".amqp.")).read_text())
    return body_file.read_bytes(), sidecar


def go_payload(number: int) -> dict[str, Any]:
    return json.loads(vector(number)[0])["payload"]  # type: ignore[no-any-return]


def normal(value: Any, prefix: str) -> Any:
    """Times and durations dropped, state strings parsed, our queue prefix written as Go's."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in TIME_KEYS:
                continue
            if k in STRING_JSON:
                v = json.loads(v)
            out[k] = normal(v, prefix)
        return out
    if isinstance(value, list):
        return [normal(v, prefix) for v in value]
    if isinstance(value, str) and value.startswith(prefix):
        return GO_PREFIX + value[len(prefix):]
    return value


def state_key_order(payload: dict[str, Any]) -> list[Any]:
    """The key order inside the state string and its results (Go's struct order)."""
    state = json.loads(payload["serializedWorkflowState"])
    return [list(state), [list(r) for r in state["stageResults"]]]


def go_workflow(charges: list[str]) -> Workflow:
    """The mmate-peer capture's workflow: charge fails once (run 1), then succeeds (run 2)."""
    wf = Workflow(WORKFLOW_ID, name="mmate-peer demo flow")

    @wf.stage("validate")
    def validate(ctx: dict[str, Any]) -> dict[str, Any]:
        return {"validated": True}

    @validate.compensate
    def undo_validate(ctx: dict[str, Any], result: Any) -> None:
        return None

    @wf.stage("charge")
    def charge(ctx: dict[str, Any], info: StageInfo) -> dict[str, Any]:
        charges.append(info.instance_id)
        if len(charges) == 1:
            raise RuntimeError("payment gateway declined (simulated failure 1/1)")
        return {"chargeId": f"ch_{info.instance_id[:8]}"}

    @wf.stage("ship")
    def ship(ctx: dict[str, Any]) -> dict[str, Any]:
        return {"trackingNo": "TRK-1"}

    return wf


async def test_go_hops_run_through_our_engine_as_go_ran_them(url: str, names: Names) -> None:
    charges: list[str] = []
    wf = go_workflow(charges)
    events = Events()
    async with engine_for(url, names, wf, events=events) as flows:
        prefix = flows.prefix
        sent: list[tuple[str, Any]] = []
        publish = flows.client.publish

        async def spy(message: Any, **options: Any) -> str:
            if options.get("exchange") == "":
                sent.append((options["routing_key"], message))
            return await publish(message, **options)

        flows.client.publish = spy  # type: ignore[method-assign]
        publisher = flows.client.publisher
        ch = await flows.client.connection.channel(publisher_confirms=True)
        try:
            for number in (22, 28):
                body, sidecar = vector(number)
                props = sidecar["properties"]
                await ch.publish(body, "", flows.stage_queue(wf, 0), _frames.BasicProperties(
                    content_type=props["content_type"], delivery_mode=props["delivery_mode"],
                    headers={k: v["v"] for k, v in props["headers"].items()}))
                iid = go_payload(number)["instanceId"]
                state = await flows.wait(iid, timeout=10)
                assert state.status == ("compensated" if number == 22 else "completed")
        finally:
            await ch.close()

        # our hops: what Go sent next, field for field; each decodes with the strict decoder
        ours = []
        for queue, envelope in sent:
            _, routing_key, out = publisher.prepare(envelope, exchange="", routing_key=queue)
            decoded = from_envelope(_env.decode_envelope(out.body))
            assert type(decoded) is type(envelope)
            ours.append((routing_key, json.loads(out.body)["payload"]))
        go_hops = [24, 26, 30, 32]
        assert [normal(rk, prefix) for rk, _ in ours] == [
            f"{GO_PREFIX}{WORKFLOW_ID}.stage1", f"{GO_PREFIX}compensation.{WORKFLOW_ID}",
            f"{GO_PREFIX}{WORKFLOW_ID}.stage1", f"{GO_PREFIX}{WORKFLOW_ID}.stage2"]
        for (_, payload), number in zip(ours, go_hops, strict=True):
            go = go_payload(number)
            assert normal(payload, prefix) == normal(go, prefix), number
            assert list(payload) == list(go), number
            assert state_key_order(payload) == state_key_order(go), number
        assert isinstance(sent[1][1], CompensationMessageEnvelope) and isinstance(sent[0][1], FlowMessageEnvelope)

        # our events: Go's, with the same sequences (x-sequence too)
        for iid_vector, numbers in ((22, [23, 25, 27]), (28, [29, 31, 33, 34])):
            iid = go_payload(iid_vector)["instanceId"]
            await events.wait_for(iid, len(numbers))
            got = [(t, p, h) for t, p, h in events.seen if p.get("instanceId") == iid]
            for (type_name, payload, headers), number in zip(got, numbers, strict=True):
                go_body, go_sidecar = vector(number)
                go = json.loads(go_body)
                assert type_name == go["type"]
                assert normal(payload, prefix) == normal(go["payload"], prefix), number
                assert list(payload) == list(go["payload"]), number
                assert str(headers["x-sequence"]) == go_sidecar["properties"]["headers"]["x-sequence"]["v"]
                assert headers["x-aggregate-id"] == iid
        assert charges == [go_payload(22)["instanceId"], go_payload(28)["instanceId"]]
