"""A stage's outcome — its StageResult and the ``globalData`` keys it set — and how it is claimed in the
state store so that each stage's effect is applied once per instance.

Before a stage runs, the engine looks for a claimed outcome under ``(instance, "stage{N}")``; if there
is one (a redelivered or duplicated stage message) the handler is not run again and that outcome is
used. After it ran, ``claim_stage`` stores the outcome first-writer-wins, before the next hop is
published; a worker that loses the claim uses the winner's outcome.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from mmate_fast.stageflow._state import _fast_advance, _fast_encode_result, encode_state, mark_completed
from mmate_fast.stageflow._wire import StageResult, WorkflowState

_dumps = orjson.dumps


@dataclass(slots=True)
class Outcome:
    """What one stage run produced."""

    result: StageResult
    #: the ``globalData`` keys (and values) the stage sets
    updates: dict[str, Any]

    def to_json(self) -> str:
        """The claim text: ``{"result": <the StageResult as Go writes it>, "updates": {...}}`` (the
        compiled state codec writes the result when it can; the claim is compared as text only with
        claims of the same outcome, so either form reads back the same)."""
        result = _fast_encode_result(self.result)
        if result is not None:
            return f'{{"result":{result},"updates":{_dumps(self.updates).decode()}}}'
        return _dumps({"result": self.result.to_go(), "updates": self.updates}).decode()

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        obj = orjson.loads(text)
        return cls(StageResult.from_go(obj["result"]), dict(obj.get("updates") or {}))


def advance(state: WorkflowState, outcome: Outcome, now_ns: int,
            end_ns: int | None = None) -> tuple[str, str]:
    """A stage hop's state work, in one compiled call when the state is the plain form: ``outcome``
    applied to ``state`` as the engine's step applies a result that lets the flow go on (result
    appended, its updates merged into ``globalData``, version+1, ``lastModified`` = ``now_ns``,
    ``currentStage`` cleared; with ``end_ns``, the last stage: then ``mark_completed``), and
    ``(state_json, claim_json)``: the new state as ``encode_state`` writes it and
    ``outcome.to_json()``, byte for byte (tests/unit/test_flowstate_advance.py)."""
    if _fast_advance is not None:
        out = _fast_advance(state, outcome.result, outcome.updates, now_ns, end_ns)
        if out is not None:
            return out
        return encode_state(state), outcome.to_json()  # advanced already: the general path encodes
    claim = outcome.to_json()
    state.stage_results.append(outcome.result)
    state.global_data.update(outcome.updates)
    state.version += 1
    state.last_modified_ns = now_ns
    state.current_stage = None
    if end_ns is not None:
        mark_completed(state, end_ns=end_ns)
    return encode_state(state), claim


def stage_key(index: int) -> str:
    """The claim key of stage ``index``'s outcome."""
    return f"stage{index}"


def join_key(group: str) -> str:
    """The claim key of a parallel group's join (decided exactly once)."""
    return f"join:{group}"


def compensation_key(index: int) -> str:
    """The claim key of compensation step ``index`` (``compensationIndex``)."""
    return f"compensation{index}"


__all__ = ["Outcome", "advance", "compensation_key", "join_key", "stage_key"]
