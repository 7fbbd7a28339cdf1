"""Go StageFlow's WorkflowState, StageResult and CompensationResult, and their JSON exactly as Go's
``json.Marshal`` writes them (wire spec §8.3, §8.4): struct key order, ``omitempty``, maps with
sorted keys, RFC3339Nano times, durations in integer nanoseconds.

``encode_state`` / ``decode_state`` are the ``serializedWorkflowState`` string of every stage and
compensation message; a string Go wrote decodes and re-encodes byte for byte. Decoding is strict
(FlowStateError names the key that is wrong), ignores unknown keys (a newer peer may add some) and
takes a missing key as Go does, as its zero value; ``globalData: null`` decodes to ``{}`` (a Go
consumer would crash on it later; we do not pass the crash on).

The state transitions Go applies (``add_stage_result``, ``mark_failed``, ``mark_completed``,
``mark_compensated``) are here too: they decide ``version`` and ``globalData``, which are wire.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmate_fast._ext import COMPILED, load
from mmate_fast.errors import FlowStateError, FlowWireError
from mmate_fast.stageflow._gojson import go_dumps, go_map, loads
from mmate_fast.stageflow._gotime import format_time
from mmate_fast.stageflow._read import (
    Bad,
    r_dict,
    r_int,
    r_list,
    r_opt_dict,
    r_opt_str,
    r_opt_time,
    r_str,
    r_time,
    show,
)

#: the compiled fast path of the state codec (the plain form only: None sends a value down the general
#: path below); its pure-Python twin is slower than that path, so without extensions it is left out
_fs = load("flowstate")
_no_fast: Callable[..., None] = lambda *args: None  # noqa: E731
_fast_encode_state = _fs.encode_state if COMPILED["flowstate"] else _no_fast
_fast_encode_result = _fs.encode_result if COMPILED["flowstate"] else _no_fast
_fast_decode_state = _fs.decode_state if COMPILED["flowstate"] else _no_fast
_fast_read_result = _fs.read_result if COMPILED["flowstate"] else _no_fast
#: the compiled one-call hop (``_outcome.advance``); None without extensions (the general path)
_fast_advance: Callable[..., tuple[str, str] | None] | None = _fs.advance if COMPILED["flowstate"] else None

#: StageResult / CompensationResult statuses
STAGE_STATUSES = ("pending", "running", "completed", "failed", "compensated", "skipped")
#: WorkflowState statuses
WORKFLOW_STATUSES = ("pending", "running", "completed", "failed", "compensated", "cancelled")


def _same(value: dict[str, Any], what: str) -> dict[str, Any]:
    return value


@dataclass(slots=True)
class StageResult:
    """One stage's result (Go ``StageResult``); times in ns since the epoch, UTC."""

    stage_id: str
    status: str
    data: dict[str, Any] | None = None
    error: str | None = None
    start_ns: int = 0
    end_ns: int | None = None
    duration_ns: int = 0

    def to_go(self, _map: Callable[[dict[str, Any], str], Any] = _same) -> dict[str, Any]:
        """JSON-ready dict in Go's struct order (``data`` and ``error`` omitted when empty,
        ``endTime`` when None), for a Go payload (whose keys the envelope codec sorts)."""
        d: dict[str, Any] = {"stageId": self.stage_id, "status": self.status}
        if self.data:
            d["data"] = _map(self.data, "data")
        if self.error:
            d["error"] = self.error
        d["startTime"] = format_time(self.start_ns)
        if self.end_ns is not None:
            d["endTime"] = format_time(self.end_ns)
        d["duration"] = self.duration_ns
        return d

    @classmethod
    def from_go(cls, obj: dict[str, Any]) -> StageResult:
        """From Go's JSON object (decoded); raises FlowStateError naming the wrong key."""
        result = _fast_read_result(obj, StageResult)
        return result if result is not None else _result(obj, "")


@dataclass(slots=True)
class CompensationResult:
    """One compensation step's result (Go ``CompensationResult``)."""

    stage_id: str
    compensation_index: int
    status: str
    start_ns: int = 0
    end_ns: int | None = None
    duration_ns: int = 0
    error: str | None = None
    data: dict[str, Any] | None = None

    def to_go(self, _map: Callable[[dict[str, Any], str], Any] = _same) -> dict[str, Any]:
        """JSON-ready dict in Go's struct order (omitempty: ``endTime``, ``error``, ``data``)."""
        d: dict[str, Any] = {"stageId": self.stage_id, "compensationIndex": self.compensation_index,
                             "status": self.status, "startTime": format_time(self.start_ns)}
        if self.end_ns is not None:
            d["endTime"] = format_time(self.end_ns)
        d["duration"] = self.duration_ns
        if self.error:
            d["error"] = self.error
        if self.data:
            d["data"] = _map(self.data, "data")
        return d

    @classmethod
    def from_go(cls, obj: Any) -> CompensationResult:
        """From Go's JSON object (decoded); raises FlowWireError naming the wrong key."""
        if obj.__class__ is not dict:
            raise FlowWireError(f"a compensation result must be a JSON object, got {show(obj)}")
        try:
            return cls(r_str(obj, "stageId"), r_int(obj, "compensationIndex"), r_str(obj, "status"),
                       r_time(obj, "startTime"), r_opt_time(obj, "endTime"), r_int(obj, "duration"),
                       r_opt_str(obj, "error"), r_opt_dict(obj, "data"))
        except Bad as bad:
            raise FlowWireError(f"compensation result: {bad}") from None


@dataclass(slots=True)
class WorkflowState:
    """One workflow instance's state (Go ``WorkflowState``), carried by every stage message."""

    workflow_id: str
    instance_id: str
    status: str
    current_stage: str | None = None
    stage_results: list[StageResult] = field(default_factory=list)
    global_data: dict[str, Any] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int | None = None
    last_modified_ns: int = 0
    error_message: str | None = None
    version: int = 1

    def to_go(self, _map: Callable[[dict[str, Any], str], Any] = _same) -> dict[str, Any]:
        """JSON-ready dict in Go's struct order (omitempty: ``currentStage``, ``endTime``,
        ``errorMessage``); ``globalData`` is ``{}`` at least."""
        d: dict[str, Any] = {"workflowId": self.workflow_id, "instanceId": self.instance_id,
                             "status": self.status}
        if self.current_stage:
            d["currentStage"] = self.current_stage
        d["stageResults"] = [r.to_go(_map) for r in self.stage_results]
        d["globalData"] = _map(self.global_data if self.global_data is not None else {}, "globalData")
        d["startTime"] = format_time(self.start_ns)
        if self.end_ns is not None:
            d["endTime"] = format_time(self.end_ns)
        d["lastModified"] = format_time(self.last_modified_ns)
        if self.error_message:
            d["errorMessage"] = self.error_message
        d["version"] = self.version
        return d


def encode_state(state: WorkflowState) -> str:
    """The ``serializedWorkflowState`` string, byte-identical to Go's ``json.Marshal(state)``."""
    text = _fast_encode_state(state)
    return text if text is not None else go_dumps(state.to_go(go_map))


def encode_result(result: StageResult) -> str:
    """A StageResult as Go's ``json.Marshal`` (the ``serializedOriginalResult`` string)."""
    text = _fast_encode_result(result)
    return text if text is not None else go_dumps(result.to_go(go_map))


def decode_state(text: str) -> WorkflowState:
    """Parse a ``serializedWorkflowState`` string. Raises FlowStateError when it is not JSON, not
    an object, has a key of the wrong type or no ``workflowId``/``instanceId``."""
    state = _fast_decode_state(text, WorkflowState, StageResult)
    if state is not None:
        return state
    obj = _object(text, "serializedWorkflowState")
    try:
        wid = r_str(obj, "workflowId")
        iid = r_str(obj, "instanceId")
        if not wid or not iid:
            raise Bad("workflowId and instanceId must be non-empty strings "
                       f"(got {obj.get('workflowId')!r}, {obj.get('instanceId')!r})")
        results = [_result(r, f"stageResults[{i}].") for i, r in enumerate(r_list(obj, "stageResults"))]
        return WorkflowState(wid, iid, r_str(obj, "status"), r_opt_str(obj, "currentStage"), results,
                             r_dict(obj, "globalData"), r_time(obj, "startTime"), r_opt_time(obj, "endTime"),
                             r_time(obj, "lastModified"), r_opt_str(obj, "errorMessage"),
                             r_int(obj, "version"))
    except Bad as bad:
        raise FlowStateError(f"serializedWorkflowState is not a Go WorkflowState: {bad}") from None


def decode_result(text: str) -> StageResult:
    """Parse a ``serializedOriginalResult`` string; raises FlowStateError like ``decode_state``."""
    return _result(_object(text, "serializedOriginalResult"), "serializedOriginalResult: ")


# --------------------------------------------------------------------------- Go's transitions
def begin_stage(state: WorkflowState, stage_id: str, *, now_ns: int) -> None:
    """A stage starts on a consumer: ``currentStage`` and ``lastModified`` (no version change)."""
    state.current_stage = stage_id
    state.last_modified_ns = now_ns


def add_stage_result(state: WorkflowState, result: StageResult, *, now_ns: int) -> None:
    """Go's ``addStageResult``: append, ``lastModified``, version+1, and copy each ``data[k]`` into
    ``globalData["{stageId}.{k}"]``; the engine clears ``currentStage`` after a success."""
    state.stage_results.append(result)
    state.last_modified_ns = now_ns
    state.version += 1
    if result.data:
        gd = state.global_data
        prefix = result.stage_id + "."
        for key, value in result.data.items():
            gd[prefix + key] = value


def mark_failed(state: WorkflowState, error: str, *, end_ns: int, now_ns: int | None = None) -> None:
    """A required stage failed: status ``failed``, ``errorMessage``, ``endTime``, version+1
    (``currentStage`` stays on the failed stage)."""
    state.status = "failed"
    state.error_message = error
    state.end_ns = end_ns
    state.last_modified_ns = end_ns if now_ns is None else now_ns
    state.version += 1


def mark_completed(state: WorkflowState, *, end_ns: int, now_ns: int | None = None) -> None:
    """The last stage is done: status ``completed``, ``endTime``, version+1."""
    state.status = "completed"
    state.end_ns = end_ns
    state.last_modified_ns = end_ns if now_ns is None else now_ns
    state.version += 1


def mark_compensated(state: WorkflowState, *, now_ns: int) -> None:
    """The compensation chain finished: status ``compensated``, version+1."""
    state.status = "compensated"
    state.last_modified_ns = now_ns
    state.version += 1


# --------------------------------------------------------------------------- strict readers
def _object(text: Any, what: str) -> dict[str, Any]:
    if text.__class__ is not str:
        raise FlowStateError(f"{what} must be a JSON string holding an object, got {show(text)}")
    try:
        obj = loads(text)
    except (ValueError, RecursionError) as exc:
        raise FlowStateError(f"{what} is not JSON ({exc}): {text[:80]!r}") from None
    if obj.__class__ is not dict:
        raise FlowStateError(f"{what} is a JSON {type(obj).__name__}, not an object: {text[:80]!r}")
    return obj


def _result(obj: Any, path: str) -> StageResult:
    try:
        if obj.__class__ is not dict:
            raise Bad(f"expected an object, got {show(obj)}")
        return StageResult(r_str(obj, "stageId"), r_str(obj, "status"), r_opt_dict(obj, "data"),
                           r_opt_str(obj, "error"), r_time(obj, "startTime"), r_opt_time(obj, "endTime"),
                           r_int(obj, "duration"))
    except Bad as bad:
        raise FlowStateError(f"stage result is not a Go StageResult: {path}{bad}") from None


__all__ = [
    "STAGE_STATUSES", "WORKFLOW_STATUSES", "CompensationResult", "StageResult", "WorkflowState",
    "add_stage_result", "begin_stage", "decode_result", "decode_state", "encode_result", "encode_state",
    "mark_compensated", "mark_completed", "mark_failed",
]
