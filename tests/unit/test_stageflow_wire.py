"""StageFlow's wire codec on its own: Go's RFC3339Nano times on int nanoseconds, the state JSON in
Go's struct order with Go's escapes and numbers, strict decoding with named errors, and a round
trip over random states."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import TypeRegistry, from_envelope
from mmate_fast.messaging.outgoing import build
from mmate_fast.stageflow import _wire as w
from tests.vectors import VECTORS

_env = load("envelope")
NS = 1_000_000_000
T0 = 1795785085 * NS  # 2026-11-27T13:11:25Z


# --------------------------------------------------------------------------- Go times
@pytest.mark.parametrize(("ns", "text"), [
    (T0, "2026-11-27T13:11:25Z"),                                   # no fraction
    (T0 + 298132570, "2026-11-27T13:11:25.29813257Z"),              # trailing zero trimmed
    (T0 + 298132639, "2026-11-27T13:11:25.298132639Z"),             # 9 digits
    (T0 + 100_000_000, "2026-11-27T13:11:25.1Z"),
    (T0 + 1, "2026-11-27T13:11:25.000000001Z"),
    (0, "1970-01-01T00:00:00Z"),
    (-1, "1969-12-31T23:59:59.999999999Z"),
    (w.ZERO_NS, w.ZERO_TIME),                                      # Go's zero time, year 0001
    (253402300799 * NS + 999_999_999, "9999-12-31T23:59:59.999999999Z"),
])
def test_format_and_parse_go_times(ns: int, text: str) -> None:
    assert w.format_time(ns) == text
    assert w.parse_time(text) == ns


@pytest.mark.parametrize(("text", "ns"), [
    ("2026-11-27T15:11:25.5+02:00", T0 + 500_000_000),              # offsets become UTC
    ("2026-11-27T08:41:25-04:30", T0),
    ("2026-11-27T13:11:25+00:00", T0),
    ("2026-11-27t13:11:25z", T0),
    ("2026-11-27T13:11:25.1234567891234Z", T0 + 123456789),         # beyond ns: truncated, as Go
    ("0001-01-01T00:00:00Z", w.ZERO_NS),
])
def test_parse_accepts_what_go_accepts(text: str, ns: int) -> None:
    assert w.parse_time(text) == ns


@pytest.mark.parametrize("bad", [
    "", "2026-11-27", "2026-11-27 13:11:25Z", "2026-11-27T13:11:25", "2026-02-30T00:00:00Z",
    "2026-11-27T24:00:00Z", "2026-11-27T13:11:60Z", "2026-11-27T13:11:25.Z", "2026-11-27T13:11:25+24:00",
    "0000-01-01T00:00:00Z", 1795785085, None,
])
def test_parse_refuses_non_rfc3339(bad: Any) -> None:
    with pytest.raises(errors.FlowWireError):
        w.parse_time(bad)


def test_the_fast_path_of_a_known_second_is_as_strict() -> None:
    assert w.parse_time("2026-11-27T13:11:25Z") == T0  # the second is known from now on
    assert w.parse_time("2026-11-27T13:11:25.5Z") == T0 + 500_000_000
    assert w.parse_time("2026-11-27T13:11:25.0123456789Z") == T0 + 12345678  # 10 digits: truncated
    for bad in ("2026-11-27T13:11:25.Z", "2026-11-27T13:11:25.-5Z", "2026-11-27T13:11:25.\uff11Z",
                "2026-11-27T13:11:25.1 Z", "2026-11-27T13:11:25xZ"):
        with pytest.raises(errors.FlowWireError):
            w.parse_time(bad)


def test_format_refuses_years_go_cannot_write() -> None:
    for ns in (w.ZERO_NS - 1, 253402300800 * NS):
        with pytest.raises(errors.FlowWireError, match="0001-9999"):
            w.format_time(ns)


# --------------------------------------------------------------------------- the state JSON
def _state(**kw: Any) -> w.WorkflowState:
    base: dict[str, Any] = {"workflow_id": "wf", "instance_id": "i-1", "status": "running",
                            "start_ns": T0, "last_modified_ns": T0 + 5}
    base.update(kw)
    return w.WorkflowState(**base)


def test_state_json_is_go_struct_order_with_omitempty() -> None:
    s = _state(global_data={"b": 1, "a": {"y": 2.5, "x": [1e21, 1e-7, 3.0]}},
               stage_results=[w.StageResult("s1", "completed", start_ns=T0, end_ns=T0 + 7, duration_ns=7)])
    assert w.encode_state(s) == (
        '{"workflowId":"wf","instanceId":"i-1","status":"running","stageResults":[{"stageId":"s1",'
        '"status":"completed","startTime":"2026-11-27T13:11:25Z","endTime":"2026-11-27T13:11:25.000000007Z",'
        '"duration":7}],"globalData":{"a":{"x":[1e+21,1e-7,3],"y":2.5},"b":1},'
        '"startTime":"2026-11-27T13:11:25Z","lastModified":"2026-11-27T13:11:25.000000005Z","version":1}')
    full = _state(current_stage="s2", end_ns=T0 + 9, error_message="x", status="failed",
                  stage_results=[w.StageResult("s1", "failed", data={"k": None}, error="e", start_ns=T0)])
    assert list(json.loads(w.encode_state(full))) == [
        "workflowId", "instanceId", "status", "currentStage", "stageResults", "globalData", "startTime",
        "endTime", "lastModified", "errorMessage", "version"]
    assert list(json.loads(w.encode_state(full))["stageResults"][0]) == [
        "stageId", "status", "data", "error", "startTime", "duration"]


def test_state_json_has_go_escapes_and_never_null_global_data() -> None:
    s = _state(error_message="a<b>&c\u2028", global_data=None)  # type: ignore[arg-type]
    text = w.encode_state(s)
    assert '"errorMessage":"a\\u003cb\\u003e\\u0026c\\u2028"' in text
    assert '"globalData":{}' in text
    assert w.decode_state(text).error_message == "a<b>&c\u2028"


def test_state_decode_null_global_data_unknown_keys_and_missing_keys() -> None:
    text = ('{"workflowId":"wf","instanceId":"i","status":"running","globalData":null,"stageResults":null,'
            '"futureKey":{"x":1}}')
    s = w.decode_state(text)
    assert s.global_data == {} and s.stage_results == []
    assert (s.start_ns, s.last_modified_ns, s.end_ns, s.version) == (w.ZERO_NS, w.ZERO_NS, None, 0)
    assert '"startTime":"0001-01-01T00:00:00Z"' in w.encode_state(s)


def test_big_integers_stay_exact_and_negative_zero_stays_go_minus_zero() -> None:
    s = _state(global_data={"big": 2**64 + 1, "neg": -(2**70), "z": -0.0, "s": "a:-0"})
    text = w.encode_state(s)
    assert '"z":-0' in text
    back = w.decode_state(text)
    assert back.global_data == {"big": 2**64 + 1, "neg": -(2**70), "z": 0, "s": "a:-0"}
    assert str(back.global_data["z"]) == "-0.0" and w.encode_state(back) == text


@pytest.mark.parametrize(("text", "says"), [
    ("", "not JSON"),
    ("{not json", "not JSON"),
    ("[1,2]", "not an object"),
    ('"{}"', "not an object"),
    ('{"instanceId":"i","status":"running"}', "workflowId and instanceId"),
    ('{"workflowId":"wf","instanceId":"","status":"running"}', "workflowId and instanceId"),
    ('{"workflowId":7,"instanceId":"i"}', "workflowId: expected a string"),
    ('{"workflowId":"wf","instanceId":"i","status":1}', "status: expected a string"),
    ('{"workflowId":"wf","instanceId":"i","version":"2"}', "version: expected an integer"),
    ('{"workflowId":"wf","instanceId":"i","version":2.5}', "version: expected an integer"),
    ('{"workflowId":"wf","instanceId":"i","globalData":[]}', "globalData: expected an object"),
    ('{"workflowId":"wf","instanceId":"i","stageResults":{}}', "stageResults: expected an array"),
    ('{"workflowId":"wf","instanceId":"i","stageResults":[1]}', "expected an object"),
    ('{"workflowId":"wf","instanceId":"i","stageResults":[{"stageId":"s","duration":"5ms"}]}',
     "stageResults[0].duration"),
    ('{"workflowId":"wf","instanceId":"i","stageResults":[{"stageId":"s","data":[]}]}', "stageResults[0].data"),
    ('{"workflowId":"wf","instanceId":"i","startTime":"yesterday"}', "startTime"),
    ('{"workflowId":"wf","instanceId":"i","endTime":12}', "endTime"),
])
def test_corrupt_state_raises_flow_state_error_saying_what(text: str, says: str) -> None:
    with pytest.raises(errors.FlowStateError) as info:
        w.decode_state(text)
    assert says in str(info.value)
    assert isinstance(info.value, errors.FlowWireError) and isinstance(info.value, errors.ContractError)


def test_decode_state_refuses_a_non_string() -> None:
    with pytest.raises(errors.FlowStateError, match="must be a JSON string"):
        w.decode_state({"workflowId": "wf"})  # type: ignore[arg-type]


def test_unwritable_global_data_raises_flow_wire_error() -> None:
    with pytest.raises(errors.FlowWireError, match="globalData"):
        w.encode_state(_state(global_data={"x": object()}))
    with pytest.raises(errors.FlowWireError, match="globalData"):
        w.encode_state(_state(global_data={"x": float("nan")}))


# --------------------------------------------------------------------------- the contracts
def _vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.body.json").read_bytes())  # type: ignore[no-any-return]


def _body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


#: StageFlow's contracts only (other tests may register classes of the same names in the default one)
SF = TypeRegistry()
for _cls in (w.FlowMessageEnvelope, w.CompensationMessageEnvelope, w.WorkflowFailedEvent):
    SF.register(_cls)

FLOW = "22-stageflow-run1-fails-FlowMessageEnvelope"
COMP = "26-stageflow-run1-fails-CompensationMessageEnvelope"
EVENT = "25-stageflow-run1-fails-WorkflowFailedEvent"


@pytest.mark.parametrize(("vector", "key", "value", "says"), [
    (FLOW, "currentStageIndex", "1", "currentStageIndex: expected an integer"),
    (FLOW, "stageName", 3, "stageName: expected a string"),
    (FLOW, "checkpoint", [], "checkpoint: expected an object"),
    (FLOW, "serializedWorkflowState", {"workflowId": "x"}, "serializedWorkflowState: expected a string"),
    (COMP, "compensationResults", {}, "compensationResults: expected an array"),
    (COMP, "compensationResults", [{"stageId": 1}], "stageId: expected a string"),
    (COMP, "failureTimestamp", "now", "failureTimestamp"),
    (EVENT, "compensationExecuted", "no", "compensationExecuted: expected true or false"),
    (EVENT, "stageResults", [{"duration": 1.5}], "duration: expected an integer"),
    (EVENT, "stateData", "x", "stateData: expected an object"),
    (EVENT, "compensationResults", [1], "array of strings"),
])
def test_wrong_field_types_raise_flow_wire_error(vector: str, key: str, value: Any, says: str) -> None:
    doc = _vector(vector)
    doc["payload"][key] = value
    with pytest.raises(errors.FlowWireError) as info:
        from_envelope(_env.decode_envelope(_body(doc)), SF)
    assert says in str(info.value) and doc["id"] in str(info.value)
    assert isinstance(info.value, errors.ContractError)  # a consumer dead-letters it and goes on


@pytest.mark.parametrize("vector", [FLOW, COMP])
@pytest.mark.parametrize("corrupt", ["", "{", "[]", '{"workflowId":"","instanceId":""}'])
def test_corrupt_state_string_in_a_message_raises_flow_state_error(vector: str, corrupt: str) -> None:
    doc = _vector(vector)
    doc["payload"]["serializedWorkflowState"] = corrupt
    with pytest.raises(errors.FlowStateError) as info:
        from_envelope(_env.decode_envelope(_body(doc)), SF)
    assert doc["id"] in str(info.value) and "serializedWorkflowState" in str(info.value)


def test_missing_keys_take_go_zero_values_and_unknown_keys_are_ignored() -> None:
    doc = _vector(FLOW)
    p = doc["payload"]
    for key in ("checkpoint", "nextStageQueue", "payloadType", "payload"):
        del p[key]
    p["futureField"] = [1, 2]
    msg = from_envelope(_env.decode_envelope(_body(doc)), SF)
    assert msg.checkpoint == w.zero_checkpoint() and msg.next_stage_queue == "" and msg.payload is None
    assert msg.state.instance_id == p["instanceId"]


def test_state_property_of_a_built_message_decodes_lazily() -> None:
    s = _state()
    msg = w.flow_message(s, stage_index=1, stage_name="b", next_queue=None, payload={"a": 1})
    assert msg.payload_type == "json.RawMessage" and msg.next_stage_queue == ""
    assert msg.state == s and msg.state is msg.state
    assert "nextStageQueue" not in build(msg).body.decode()
    bad = w.FlowMessageEnvelope(serialized_workflow_state="nope")
    with pytest.raises(errors.FlowStateError):
        _ = bad.state


def test_the_plain_form_decodes_to_what_the_constructor_builds() -> None:
    """The fast decode sets the instance's fields without the dataclass __init__: the same fields, in
    the same order, the same values as the constructor (and the strict path) give."""
    import dataclasses

    s = _state()
    sent = w.flow_message(s, stage_index=1, stage_name="b", next_queue="q2", payload={"a": 1})
    msg = from_envelope(_env.decode_envelope(build(sent).body), SF)
    assert list(vars(msg)) == [f.name for f in dataclasses.fields(w.FlowMessageEnvelope)]
    again = w.FlowMessageEnvelope(
        id=msg.id, timestamp=msg.timestamp, payload=msg.payload, payload_type=msg.payload_type,
        serialized_workflow_state=msg.serialized_workflow_state, current_stage_index=1,
        next_stage_queue="q2", workflow_id=s.workflow_id, instance_id=s.instance_id, stage_name="b")
    assert msg == again and msg.state == s and msg.timestamp is not None and msg.correlation_id is None
    assert from_envelope(_env.decode_envelope(build(sent).body), SF).timestamp == msg.timestamp


def test_flow_message_builds_what_the_constructor_builds() -> None:
    """``flow_message`` sets the fields without the dataclass __init__: the same fields in the same
    order, the constructor's defaults (a fresh id each time, no timestamp, Go's zero checkpoint, a
    state decoded only when asked), the state string given or encoded."""
    import dataclasses

    s = _state()
    for state_json in (None, w.encode_state(s)):
        msg = w.flow_message(s, stage_index=1, stage_name="b", next_queue="q2", payload={"a": 1},
                             state_json=state_json)
        assert list(vars(msg)) == [f.name for f in dataclasses.fields(w.FlowMessageEnvelope)]
        made = w.FlowMessageEnvelope(
            id=msg.id, payload={"a": 1}, payload_type=w.PAYLOAD_TYPE_RAW,
            serialized_workflow_state=w.encode_state(s), current_stage_index=1, next_stage_queue="q2",
            workflow_id=s.workflow_id, instance_id=s.instance_id, stage_name="b")
        names = [f.name for f in dataclasses.fields(w.FlowMessageEnvelope)]
        assert [getattr(msg, k) for k in names] == [getattr(made, k) for k in names]
        assert msg == made and msg._state is None and msg.state == s
        assert msg.checkpoint is not w.flow_message(s, stage_index=1, stage_name="b", next_queue=None,
                                                    payload=None).checkpoint
    ids = {w.flow_message(s, stage_index=0, stage_name="a", next_queue=None, payload=None).id for _ in range(50)}
    assert len(ids) == 50


def test_queue_names_follow_the_prefix() -> None:
    assert w.stage_queue("orders", 2) == "stageflow.orders.stage2"
    assert w.compensation_queue("orders") == "stageflow.compensation.orders"
    assert w.stage_queue("orders", 0, "mmate.stageflow.") == "mmate.stageflow.orders.stage0"
    assert w.compensation_queue("orders", "p.") == "p.compensation.orders"


def test_errors_are_exported_and_named() -> None:
    for name in ("FlowError", "FlowWireError", "FlowStateError"):
        assert name in errors.__all__
    assert issubclass(errors.FlowStateError, errors.FlowWireError)
    assert issubclass(errors.FlowWireError, errors.FlowError)
    assert issubclass(errors.FlowError, errors.MmateError)


# --------------------------------------------------------------------------- round trip property
_keys = st.text(min_size=1, max_size=8)
_leaf = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
         | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
_json = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
                     max_leaves=10)
_ns = st.integers(min_value=w.ZERO_NS, max_value=253402300799 * NS)
_id = st.text(min_size=1, max_size=10)
_results = st.builds(
    w.StageResult, _id, st.sampled_from(["completed", "failed", "skipped"]),
    data=st.none() | st.dictionaries(_keys, _json, min_size=1, max_size=3),
    error=st.none() | st.text(min_size=1, max_size=10), start_ns=_ns, end_ns=st.none() | _ns,
    duration_ns=st.integers(min_value=0, max_value=2**62))
_states = st.builds(
    w.WorkflowState, _id, _id, st.sampled_from(["running", "failed", "completed", "compensated"]),
    current_stage=st.none() | st.text(min_size=1, max_size=8), stage_results=st.lists(_results, max_size=3),
    global_data=st.dictionaries(_keys, _json, max_size=4), start_ns=_ns, end_ns=st.none() | _ns,
    last_modified_ns=_ns, error_message=st.none() | st.text(min_size=1, max_size=12),
    version=st.integers(min_value=0, max_value=2**31))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, float) and type(a) is int:
        return float(a) == b
    return type(a) is type(b) and bool(a == b)


@settings(max_examples=150, deadline=None)
@given(_states)
def test_random_states_round_trip(state: w.WorkflowState) -> None:
    text = w.encode_state(state)
    back = w.decode_state(text)
    assert w.encode_state(back) == text
    # a float Go prints without a fraction (6.5e16 -> 65034858788913140) comes back as an int, as close
    # to it as Go's own float64; everything else comes back equal
    assert _same(back.global_data, state.global_data)
    assert all(_same(b.data, r.data) for b, r in zip(back.stage_results, state.stage_results, strict=True))
    doc = json.loads(text)  # maps sorted as Go sorts them, inside the struct order
    assert list(doc["globalData"]) == sorted(doc["globalData"])
    assert list(doc)[:3] == ["workflowId", "instanceId", "status"] and list(doc)[-1] == "version"
    back.global_data, state.global_data = {}, {}
    for r in back.stage_results + state.stage_results:
        r.data = None
    assert back == state
