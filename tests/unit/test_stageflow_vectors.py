"""StageFlow's wire against the captured mmate-go flow (vectors 22-34: run 1 fails at ``charge`` and
compensates ``validate``, run 2 completes): every message decodes and re-encodes to Go's body byte
for byte with Go's headers, tags and route; and the builders, fed the inputs of each Go hop, give
the next hop's payload field for field."""
from __future__ import annotations

import json
from typing import Any

import pytest

from mmate_fast._ext import load
from mmate_fast.contracts import MessageKind, TypeRegistry, from_envelope, to_payload
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import default_route
from mmate_fast.stageflow import _wire as w
from tests.vectors import VECTORS

_env = load("envelope")
_frames = load("frames")

RUN1 = ["22-stageflow-run1-fails-FlowMessageEnvelope", "23-stageflow-run1-fails-StageCompletedEvent",
        "24-stageflow-run1-fails-FlowMessageEnvelope", "25-stageflow-run1-fails-WorkflowFailedEvent",
        "26-stageflow-run1-fails-CompensationMessageEnvelope",
        "27-stageflow-run1-fails-WorkflowCompensatedEvent"]
RUN2 = ["28-stageflow-run2-ok-FlowMessageEnvelope", "29-stageflow-run2-ok-StageCompletedEvent",
        "30-stageflow-run2-ok-FlowMessageEnvelope", "31-stageflow-run2-ok-StageCompletedEvent",
        "32-stageflow-run2-ok-FlowMessageEnvelope", "33-stageflow-run2-ok-StageCompletedEvent",
        "34-stageflow-run2-ok-WorkflowCompletedEvent"]
WORKFLOW_NAME = "mmate-peer demo flow"
STAGES = ["validate", "charge", "ship"]


def _body(name: str) -> bytes:
    return (VECTORS / f"{name}.body.json").read_bytes()


def _payload(name: str) -> dict[str, Any]:
    return json.loads(_body(name))["payload"]  # type: ignore[no-any-return]


#: StageFlow's contracts only (other tests may register classes of the same names in the default one)
SF = TypeRegistry()
for _cls in (w.FlowMessageEnvelope, w.CompensationMessageEnvelope, w.StageCompletedEvent,
             w.WorkflowCompletedEvent, w.WorkflowFailedEvent, w.WorkflowCompensatedEvent):
    SF.register(_cls)


def _decode(name: str) -> Any:
    return from_envelope(_env.decode_envelope(_body(name)), SF)


def _route(msg: Any, kind: MessageKind, type_name: str) -> tuple[str, str]:
    """Where the engine publishes ``msg``: stage / compensation queue on the default exchange,
    events by the standard event route."""
    if isinstance(msg, w.FlowMessageEnvelope):
        return "", w.stage_queue(msg.workflow_id, msg.current_stage_index)
    if isinstance(msg, w.CompensationMessageEnvelope):
        return "", w.compensation_queue(msg.workflow_id)
    return default_route(msg, kind, type_name)


@pytest.mark.parametrize("name", RUN1 + RUN2)
def test_go_vector_decodes_and_reencodes_byte_for_byte(name: str) -> None:
    sidecar = json.loads((VECTORS / f"{name}.amqp.json").read_text())
    body = _body(name)
    msg = _decode(name)
    assert type(msg).__name__ == name.rsplit("-", 1)[1]
    out = build(msg, source="mmate-go", envelope_reply_to=False)
    assert out.body == body
    assert _route(msg, out.kind, out.type_name) == (sidecar["exchange"], sidecar["routing_key"])
    go_headers = sidecar["properties"]["headers"]
    props, _ = _frames.decode_properties(out.properties)
    assert set(props.headers) == set(go_headers)
    for hname, tv in go_headers.items():
        assert props.headers[hname] == tv["v"], hname
        single = _frames.encode_table({hname: out.headers[hname]})
        assert single[4 + 1 + len(hname.encode())] == ord(tv["T"]), f"{hname}: tag differs"
    assert props.delivery_mode == sidecar["properties"]["delivery_mode"] == 2
    assert props.content_type == "application/json"


@pytest.mark.parametrize("name", [n for n in RUN1 + RUN2 if "Envelope" in n])
def test_state_strings_round_trip_byte_for_byte(name: str) -> None:
    p = _payload(name)
    text = p["serializedWorkflowState"]
    state = w.decode_state(text)
    assert w.encode_state(state) == text
    assert state.workflow_id == "mmate-peer-vectors-flow" and state.global_data["amount"] == 99.95
    if "serializedOriginalResult" in p:
        original = p["serializedOriginalResult"]
        assert w.encode_result(w.decode_result(original)) == original
        assert original == json.dumps(json.loads(text)["stageResults"][0], separators=(",", ":"))


def test_events_are_events_and_envelopes_are_plain_messages() -> None:
    assert _decode(RUN1[0]).__mmate_kind__ is MessageKind.MESSAGE
    assert _decode(RUN1[4]).__mmate_kind__ is MessageKind.MESSAGE
    ev = _decode(RUN1[1])
    assert ev.__mmate_kind__ is MessageKind.EVENT
    assert (ev.aggregate_id, ev.sequence, ev.source) == ("6ce1e1b3-b8c4-451c-9c2b-a5d23bc5c8cb", 2, "stageflow")


# --------------------------------------------------------------------------- builders vs Go's hops
def _same_payload(msg: Any, name: str, *, except_keys: tuple[str, ...] = ()) -> None:
    ours = json.loads(_env.encode_json(to_payload(msg)))
    go = _payload(name)
    for key in except_keys:
        ours.pop(key), go.pop(key)
    assert ours == go


def _state(name: str) -> w.WorkflowState:
    return w.decode_state(_payload(name)["serializedWorkflowState"])


def _result_of(event_name: str) -> w.StageResult:
    ev = _decode(event_name)
    return w.StageResult(ev.stage_id, ev.status, data=ev.data, start_ns=ev.start_ns, end_ns=ev.end_ns,
                         duration_ns=ev.duration_ns)


def test_start_builds_the_first_hop() -> None:
    go = _state(RUN2[0])
    initial = {"amount": 99.95, "orderId": "order-2002"}
    state = w.WorkflowState("mmate-peer-vectors-flow", go.instance_id, "running", global_data=dict(initial),
                            start_ns=go.start_ns, last_modified_ns=go.last_modified_ns)
    msg = w.flow_message(state, stage_index=0, stage_name="validate",
                         next_queue=w.stage_queue("mmate-peer-vectors-flow", 1), payload=initial)
    _same_payload(msg, RUN2[0])
    assert msg.payload_type == "map[string]interface {}"


@pytest.mark.parametrize(("run", "hop"), [(RUN2, 0), (RUN2, 2), (RUN1, 0)])
def test_a_stage_result_builds_the_event_and_the_next_hop(run: list[str], hop: int) -> None:
    """state of hop i + the stage's result (times from Go's event) == event i+1 and hop i+2."""
    inbound, event_name, outbound = run[hop], run[hop + 1], run[hop + 2]
    msg_in = _decode(inbound)
    state = msg_in.state
    index = msg_in.current_stage_index
    next_state = _state(outbound)
    result = _result_of(event_name)
    w.begin_stage(state, STAGES[index], now_ns=result.start_ns)
    w.add_stage_result(state, result, now_ns=next_state.last_modified_ns)
    state.current_stage = None
    _same_payload(w.stage_completed_event(state, result, stage_index=index, total_stages=3), event_name)
    nxt = index + 1
    hop_msg = w.flow_message(state, stage_index=nxt, stage_name=STAGES[nxt],
                             next_queue=w.stage_queue(state.workflow_id, nxt + 1) if nxt + 1 < 3 else None,
                             payload=msg_in.payload)
    _same_payload(hop_msg, outbound)
    assert hop_msg.serialized_workflow_state == _payload(outbound)["serializedWorkflowState"]


def test_last_stage_builds_the_completed_event() -> None:
    msg_in = _decode(RUN2[4])
    state = msg_in.state
    result = _result_of(RUN2[5])
    go = _decode(RUN2[6])
    w.add_stage_result(state, result, now_ns=result.end_ns)
    state.current_stage = None
    _same_payload(w.stage_completed_event(state, result, stage_index=2, total_stages=3), RUN2[5])
    w.mark_completed(state, end_ns=go.end_ns)
    event = w.workflow_completed_event(state, workflow_name=WORKFLOW_NAME, total_stages=3)
    _same_payload(event, RUN2[6])  # duration = endTime - startTime, exactly as Go's
    assert event.sequence == 5


def test_required_stage_failure_builds_failed_event_and_compensation() -> None:
    msg_in = _decode(RUN1[2])  # the hop to `charge`, which fails
    state = msg_in.state
    go_failed = _decode(RUN1[3])
    go_comp = _decode(RUN1[4])
    at_failure = go_comp.state
    error = "payment gateway declined (simulated failure 1/1)"
    w.begin_stage(state, "charge", now_ns=at_failure.last_modified_ns)
    w.mark_failed(state, error, end_ns=at_failure.end_ns, now_ns=at_failure.last_modified_ns)
    assert w.encode_state(state) == _payload(RUN1[4])["serializedWorkflowState"]
    failed = w.workflow_failed_event(state, workflow_name=WORKFLOW_NAME, failed_stage_id="charge",
                                     failed_stage_index=1, error=error, failure_ns=go_failed.failure_ns,
                                     total_stages=3)
    # Go measures this duration with a second clock reading; ours is failureTime - startTime
    _same_payload(failed, RUN1[3], except_keys=("duration",))
    assert abs(failed.duration_ns - go_failed.duration_ns) < 1_000_000
    comp = w.compensation_start(state, failed_stage_index=1, original_error=error,
                                failure_ns=go_comp.failure_ns)
    assert comp is not None
    _same_payload(comp, RUN1[4])
    assert w.compensation_next(comp, []) is None  # index 0 was the last step


def test_compensation_done_builds_the_compensated_event() -> None:
    msg = _decode(RUN1[4])
    go = _decode(RUN1[5])
    state = msg.state
    results = [w.CompensationResult(r.stage_id, r.compensation_index, r.status, start_ns=r.start_ns,
                                    end_ns=r.end_ns, duration_ns=r.duration_ns)
               for r in go.compensation_results]
    w.mark_compensated(state, now_ns=go.compensation_end_ns)
    event = w.workflow_compensated_event(state, workflow_name=WORKFLOW_NAME, message=msg, results=results,
                                         end_ns=go.compensation_end_ns)
    _same_payload(event, RUN1[5])
    assert event.sequence == 4


def test_nothing_to_compensate_sends_nothing() -> None:
    state = _decode(RUN2[0]).state  # failure at stage 0: no completed stage before it
    w.mark_failed(state, "boom", end_ns=state.start_ns + 5)
    assert w.compensation_plan(state, 0) == []
    assert w.compensation_start(state, failed_stage_index=0, original_error="boom", failure_ns=1) is None


def test_compensation_walks_back_in_reverse_order() -> None:
    state = _decode(RUN2[4]).state  # validate and charge completed; ship fails
    w.mark_failed(state, "no truck", end_ns=state.last_modified_ns + 10)
    first = w.compensation_start(state, failed_stage_index=2, original_error="no truck", failure_ns=state.end_ns or 0)
    assert first is not None
    assert (first.total_compensations, first.compensation_index, first.stage_to_compensate) == (2, 1, "charge")
    assert first.original_result() == state.stage_results[1]
    done = [w.CompensationResult("charge", 1, "completed", start_ns=1, end_ns=3, duration_ns=2)]
    second = w.compensation_next(first, done)
    assert second is not None
    assert (second.compensation_index, second.stage_to_compensate) == (0, "validate")
    assert second.serialized_workflow_state == first.serialized_workflow_state
    assert second.compensation_results == done and second.id != first.id
    assert w.compensation_next(second, done) is None


@pytest.mark.parametrize("draft", ["2020-12", "draft-07"])
@pytest.mark.parametrize("name", RUN1 + RUN2)
def test_payload_schema_describes_go_payloads(name: str, draft: Any) -> None:
    """The announced JSON Schema (``__mmate_schema__``) fits Go's payload and refuses a wrong one."""
    pytest.importorskip("jsonschema")
    from mmate_fast.contracts import json_schema, schema_errors

    cls = type(_decode(name))
    payload = _payload(name)
    assert schema_errors(cls, payload, draft) is None
    assert json_schema(cls, draft)["title"] == cls.__name__
    time_key = next(k for k in ("startTime", "failureTimestamp", "failureTime") if k in payload) \
        if "FlowMessageEnvelope" not in name else "currentStageIndex"
    payload[time_key] = 12 if time_key != "currentStageIndex" else "0"
    assert schema_errors(cls, payload, draft) is not None
