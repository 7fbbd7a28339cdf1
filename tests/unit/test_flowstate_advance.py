"""The one-call hop (``flowstate.advance``, compiled and twin, and ``_outcome.advance`` around it) gives
byte for byte what the strict path gives: the step's state change applied by hand, the new state
written by the general encoder (``go_dumps(state.to_go(go_map))``) and the claim text of
``Outcome.to_json`` — on Go's own states from the vectors and on many generated ones (escapes,
non-ASCII, nested data, odd numbers, missing times, errors, a current stage to clear)."""
from __future__ import annotations

import copy
import json
import random
from types import ModuleType
from typing import Any

import orjson
import pytest

from mmate_fast.stageflow import _outcome, _state
from mmate_fast.stageflow._gojson import go_dumps, go_map
from mmate_fast.stageflow._outcome import Outcome
from mmate_fast.stageflow._state import StageResult, WorkflowState
from tests.unit._impls import impl_params
from tests.vectors import VECTORS

IMPLS = impl_params("flowstate")
NOW = 1_795_785_099_123_456_789

_CHARS = "aZ09 -_.:/\"\\<>&\u2028\u2029\n\t\x01\u00e9\u4e2d\U0001f600'"


def _text(rng: random.Random, n: int = 8) -> str:
    if rng.random() < 0.005:
        return "lone \ud800"  # not UTF-8: refused
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(1, n)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 7, 2**53 + 1, -(2**62), 2**63 - 1])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e21, 1e-7, 99.95, 123456789.125, 3.0])
    if kind in (4, 5, 6):
        return _text(rng)
    if kind in (7, 8):
        return {_text(rng, 4): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def _time(rng: random.Random) -> int:
    if rng.random() < 0.005:
        return 253402300800_000_000_000  # beyond year 9999: refused
    return rng.choice([1_795_785_085_298_132_570, 1_795_785_085_000_000_000, 1_795_785_085_100_000_000,
                       0, -1, _state.ZERO_NS if hasattr(_state, "ZERO_NS") else 0,
                       253402300799_999_999_999])


def _result(rng: random.Random, stage_id: str | None = None) -> StageResult:
    data = {_text(rng, 5): _value(rng) for _ in range(rng.randint(0, 4))} or None
    return StageResult(stage_id or _text(rng), rng.choice(["completed", "failed", "skipped"]), data=data,
                       error=rng.choice([None, "", _text(rng)]), start_ns=_time(rng),
                       end_ns=rng.choice([None, _time(rng)]), duration_ns=rng.choice([0, 1, 1_867_430]))


def _generated(rng: random.Random) -> WorkflowState:
    results = [_result(rng) for _ in range(rng.randint(0, 4))]
    gd = {_text(rng, 6): _value(rng) for _ in range(rng.randint(0, 6))}
    return WorkflowState(_text(rng), _text(rng), "running", rng.choice([None, "", _text(rng)]), results, gd,
                         _time(rng), rng.choice([None, _time(rng)]), _time(rng), rng.choice([None, _text(rng)]),
                         rng.randint(0, 2**40))


def _go_states() -> list[WorkflowState]:
    out = []
    for path in sorted(VECTORS.glob("*-stageflow-*.body.json")):
        text = json.loads(path.read_bytes())["payload"].get("serializedWorkflowState")
        if text:
            out.append(_state.decode_state(text))
    assert len(out) >= 5
    return out


def _cases() -> list[tuple[WorkflowState, Outcome]]:
    rng = random.Random(9)
    cases = []
    for st in _go_states():
        result = _result(rng, "charge")
        cases.append((st, Outcome(result, {f"charge.{k}": v for k, v in (result.data or {}).items()})))
    for _ in range(400):
        result = _result(rng)
        updates = {f"{result.stage_id}.{k}": v for k, v in (result.data or {}).items()}
        if rng.random() < 0.2:  # a typed context's updates: overwrite keys already there
            updates.update({k: _value(rng) for k in list(_generated(rng).global_data)[:2]})
        cases.append((_generated(rng), Outcome(result, updates)))
    return cases


CASES = _cases()


def _strict(state: WorkflowState, outcome: Outcome,
            end_ns: int | None = None) -> tuple[WorkflowState, str | None, str | None]:
    """The step applied by hand (as StageHandler.step does for a result that lets the flow go on, and
    with ``end_ns`` for the last stage's: then ``mark_completed``), the
    general encoder's text (None where it refuses) and the claim text as ``Outcome.to_json`` makes it
    on the general path (its stage result written by the general encoder)."""
    st = copy.deepcopy(state)
    st.stage_results.append(copy.deepcopy(outcome.result))
    st.global_data.update(copy.deepcopy(outcome.updates))
    st.version += 1
    st.last_modified_ns = NOW
    st.current_stage = None
    if end_ns is not None:
        _state.mark_completed(st, end_ns=end_ns)
    try:
        text: str | None = go_dumps(st.to_go(go_map))
        claim: str | None = ('{"result":' + go_dumps(outcome.result.to_go(go_map)) + ',"updates":'
                             + orjson.dumps(outcome.updates).decode() + "}")
    except Exception:
        text = claim = None
    return st, text, claim


def _writable(updates: dict[str, Any]) -> bool:
    try:
        orjson.dumps(updates)
    except orjson.JSONEncodeError:
        return False
    return True


def test_cases_cover_what_matters() -> None:
    texts = [_strict(s, o)[1] for s, o in CASES]
    assert sum(t is None for t in texts) >= 5  # lone surrogates, years Go cannot write
    assert sum(t is not None for t in texts) >= 300
    assert any(s.current_stage for s, _ in CASES)


@pytest.mark.parametrize("end_ns", [None, NOW + 5], ids=["hop", "last"])
@pytest.mark.parametrize("fs", IMPLS)
def test_one_call_is_the_strict_path_byte_for_byte(fs: ModuleType, end_ns: int | None) -> None:
    for state, outcome in CASES:
        strict, text, claim = _strict(state, outcome, end_ns)
        st = copy.deepcopy(state)
        if not _writable(outcome.updates):  # the claim cannot be written: raises before any change
            with pytest.raises(orjson.JSONEncodeError):
                fs.advance(st, outcome.result, outcome.updates, NOW, end_ns)
            assert st == state
            continue
        out = fs.advance(st, copy.deepcopy(outcome.result), copy.deepcopy(outcome.updates), NOW, end_ns)
        assert st == strict  # advanced either way
        if out is None:
            assert fs.encode_state(st) is None
            continue
        assert text is not None, "the fast path wrote what the general path refuses"
        assert out == (text, claim), state
        assert claim == outcome.to_json() or _state._fast_encode_result(outcome.result) is None


@pytest.mark.parametrize("end_ns", [None, NOW + 5], ids=["hop", "last"])
def test_the_engines_advance_is_the_strict_path_or_raises_as_it_does(end_ns: int | None) -> None:
    for state, outcome in CASES:
        strict, text, _ = _strict(state, outcome, end_ns)
        st = copy.deepcopy(state)
        if text is None or not _writable(outcome.updates):
            with pytest.raises(Exception):  # noqa: B017 - the general path's named error, whichever
                _outcome.advance(st, outcome, NOW, end_ns)
            continue
        assert _outcome.advance(st, outcome, NOW, end_ns) == (text, outcome.to_json())
        assert text == _state.encode_state(st)
        assert st == strict


@pytest.mark.parametrize("fs", IMPLS)
def test_updates_orjson_cannot_write_raise_before_any_change(fs: ModuleType) -> None:
    state = _go_states()[0]
    before = copy.deepcopy(state)
    with pytest.raises(orjson.JSONEncodeError):
        fs.advance(state, StageResult("x", "completed"), {"x.big": 2**70}, NOW)
    assert state == before
