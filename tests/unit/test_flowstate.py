"""The fast path of the StageFlow state codec (compiled ``flowstate`` and its twin) writes and reads
exactly what the general path of ``stageflow._state`` does — Go's own state strings from the vectors
byte for byte — and gives up (None) on whatever is not the plain form, so that the general path
decodes it or names what is wrong."""
from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from mmate_fast.errors import FlowWireError
from mmate_fast.stageflow import _gotime
from mmate_fast.stageflow._gojson import go_dumps, go_map
from mmate_fast.stageflow._state import StageResult, WorkflowState
from tests.unit._impls import impl_params
from tests.vectors import VECTORS

IMPLS = impl_params("flowstate")


def _general_encode(state: WorkflowState) -> str:
    return go_dumps(state.to_go(go_map))


def _go_states() -> list[str]:
    """Every serializedWorkflowState string in the Go vectors (stage and compensation messages)."""
    out = []
    for path in sorted(VECTORS.glob("*-stageflow-*.body.json")):
        payload = json.loads(path.read_bytes())["payload"]
        text = payload.get("serializedWorkflowState")
        if text:
            out.append(text)
    assert len(out) >= 5
    return out


def _state(**kw: Any) -> WorkflowState:
    base: dict[str, Any] = {
        "workflow_id": "order-processing", "instance_id": "6f1c2a9e-3b7d-4c1e-9a2f-5d8e7b6c4a31",
        "status": "running", "global_data": {"orderId": "order-1", "amount": 99.95},
        "start_ns": 1_795_785_085_298_132_570, "last_modified_ns": 1_795_785_085_298_132_000, "version": 1}
    base.update(kw)
    return WorkflowState(**base)


RESULT = StageResult("validate", "completed", data={"validated": True}, start_ns=1_795_785_085_298_132_570,
                     end_ns=1_795_785_085_300_000_000, duration_ns=1_867_430)

STATES = [
    _state(),
    _state(stage_results=[RESULT], current_stage="charge", version=2),
    _state(status="failed", error_message="card <declined> & \u2028 \"quoted\"", end_ns=1_795_785_086_000_000_000,
           stage_results=[RESULT, StageResult("charge", "failed", error="boom\n", start_ns=0, duration_ns=0)]),
    _state(global_data={}, workflow_id="wf-\u00e9\u4e2d", start_ns=_gotime.ZERO_NS, last_modified_ns=-1),
    _state(global_data={"nested": {"b": [1, 2.5, None, "x<y"], "a": True}}, version=2**40),
]


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("text", _go_states(), ids=lambda t: str(len(t)))
def test_go_state_strings_decode_and_encode_back_byte_for_byte(fs: ModuleType, text: str) -> None:
    state = fs.decode_state(text, WorkflowState, StageResult)
    assert state is not None
    assert state == _strict(text)
    assert fs.encode_state(state) == text


def _strict(text: str) -> WorkflowState:
    """The general path's decoding (the fast path forced off)."""
    from mmate_fast.stageflow import _state as general

    saved = general._fast_decode_state
    general._fast_decode_state = lambda *a: None
    try:
        return general.decode_state(text)
    finally:
        general._fast_decode_state = saved


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("state", STATES, ids=range(len(STATES)))
def test_encode_is_the_general_paths_output_and_decodes_back(fs: ModuleType, state: WorkflowState) -> None:
    text = fs.encode_state(state)
    assert text == _general_encode(state)
    assert fs.decode_state(text, WorkflowState, StageResult) == _strict(text)
    for r in state.stage_results:
        assert fs.encode_result(r) == go_dumps(r.to_go(go_map))


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("state", [
    _state(version=True), _state(status=None), _state(global_data={"x": float("nan")}),
    _state(start_ns=_gotime.ZERO_NS - 1_000_000_000), _state(instance_id="\ud800"),
    _state(stage_results=[StageResult("s", "completed", start_ns=1.5)]),  # type: ignore[arg-type]
], ids=range(6))
def test_encode_gives_up_on_what_is_not_the_plain_form(fs: ModuleType, state: WorkflowState) -> None:
    assert fs.encode_state(state) is None


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("text", [
    None, b"{}", "", "not json", "[]", "{}", '{"workflowId":"w"}', '{"workflowId":"w","instanceId":""}',
    '{"workflowId":"w","instanceId":"i","globalData":{"n":-0}}',
    '{"workflowId":"w","instanceId":"i","globalData":{"n":123456789012345678901}}',
    '{"workflowId":"w","instanceId":"i","globalData":{"n":1e400}}',
    '{"workflowId":"w","instanceId":"i","version":"1"}',
    '{"workflowId":"w","instanceId":"i","version":1.0}',
    '{"workflowId":"w","instanceId":"i","startTime":"yesterday"}',
    '{"workflowId":"w","instanceId":"i","startTime":"2026-02-30T13:11:25Z"}',
    '{"workflowId":"w","instanceId":"i","stageResults":{}}',
    '{"workflowId":"w","instanceId":"i","stageResults":[{"stageId":1}]}',
    '{"workflowId":"w","instanceId":"i","globalData":[]}',
    '{"workflowId":"w","instanceId":"i","status":7}',
], ids=range(19))
def test_decode_gives_up_on_what_is_not_the_plain_form(fs: ModuleType, text: Any) -> None:
    assert fs.decode_state(text, WorkflowState, StageResult) is None


@pytest.mark.parametrize("fs", IMPLS)
def test_numbers_only_matter_outside_strings(fs: ModuleType) -> None:
    text = ('{"workflowId":"w-1","instanceId":"i-0","status":"running","globalData":{"id":"order-1",'
            '"big":"123456789012345678901234","e":"1e400","k":-5.5,"n":-10},"version":3}')
    state = fs.decode_state(text, WorkflowState, StageResult)
    assert state == _strict(text)
    assert state.global_data["k"] == -5.5 and state.global_data["n"] == -10
    assert state.start_ns == _gotime.ZERO_NS and state.end_ns is None


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("ns", [0, 1, -1, 1_795_785_085_298_132_570, 1_795_785_085_000_000_000,
                                1_795_785_085_100_000_000, _gotime.ZERO_NS, 253402300799_999_999_999,
                                951_782_400_000_000_000, -2_208_988_800_000_000_001])
def test_times_are_gotimes(fs: ModuleType, ns: int) -> None:
    text = _gotime._format(ns)
    assert fs.format_time(ns) == text
    assert fs.parse_time(text) == ns == _gotime._parse(text)


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("text", ["2026-11-27T15:11:25.5+02:00", "2026-11-27t13:11:25.5z",
                                  "2026-11-27T13:11:25.1234567891Z", "2026-11-27T13:11:25.000Z",
                                  "2024-02-29T00:00:00Z"])
def test_other_rfc3339_forms_parse_as_the_general_path(fs: ModuleType, text: str) -> None:
    assert fs.parse_time(text) == _gotime._parse(text)


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("bad", ["2026-11-27T13:11:25.Z", "2026-02-30T13:11:25Z", "2026-11-27T24:00:00Z",
                                 "0000-01-01T00:00:00Z", "2026-11-27T13:11:25.\u0661Z", "", 5])
def test_bad_times_raise_flow_wire_error(fs: ModuleType, bad: Any) -> None:
    with pytest.raises(FlowWireError):
        fs.parse_time(bad)


@pytest.mark.parametrize("fs", IMPLS)
def test_format_outside_go_years_raises(fs: ModuleType) -> None:
    with pytest.raises(FlowWireError):
        fs.format_time(_gotime.ZERO_NS - 1)
    with pytest.raises(FlowWireError):
        fs.format_time(253402300800 * 1_000_000_000)


@pytest.mark.parametrize("fs", IMPLS)
def test_read_result_is_the_strict_readers(fs: ModuleType) -> None:
    from mmate_fast.stageflow._state import _result

    for text in _go_states():
        for obj in json.loads(text)["stageResults"]:
            assert fs.read_result(obj, StageResult) == _result(obj, "")
    for odd in (None, [], {"stageId": 1}, {"stageId": "s", "startTime": "x"}, {"duration": 1.5},
                {"data": []}, {"error": 3}):
        assert fs.read_result(odd, StageResult) is None
    assert fs.read_result({}, StageResult) == _result({}, "")


@pytest.mark.parametrize("fs", IMPLS)
def test_read_strs(fs: ModuleType) -> None:
    assert fs.read_strs({"a": "x", "b": None}, ("a", "b", "c")) == ("x", "", "")
    assert fs.read_strs({"a": "x", "b": 1}, ("a", "b")) is None
    assert fs.read_strs({}, ()) == ()


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("number", [
    -9223372036854775809, -9999999999999999999, -9223372036854775808, -1000000000000000000,
    9223372036854775807, 9223372036854775808, 18446744073709551615, 18446744073709551616, -(2**70)])
def test_an_integer_near_the_64_bit_edges_stays_an_exact_int(fs: ModuleType, number: int) -> None:
    """orjson reads an integer below -2**63 with 19 digits as a float: such text takes the strict
    path, which keeps it exact (found by the round-trip property test)."""
    state = _state(global_data={"n": number, "s": "x"})
    text = _general_encode(state)
    decoded = fs.decode_state(text, WorkflowState, StageResult)
    back = decoded if decoded is not None else _strict(text)
    assert back.global_data == {"n": number, "s": "x"} and type(back.global_data["n"]) is int
    assert _strict(text).global_data["n"] == number and type(_strict(text).global_data["n"]) is int
    assert _general_encode(back) == text
