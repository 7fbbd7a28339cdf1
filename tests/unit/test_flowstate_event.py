"""``flowstate.state_from_event`` (compiled + twin): a heard terminal event's body read straight into
the WorkflowState. What it returns must equal the general path (``orjson.loads`` + ``_waiting.
state_from_event``) field for field; on anything else it returns None (the caller then takes that
path, which raises what is wrong). Go's vectors 25, 27, 34, our own engine's events, and edge cases:
escapes, nulls, unknown and repeated keys, numbers, bad input, and byte-level damage."""
from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from mmate_fast.stageflow import _waiting
from mmate_fast.stageflow._wire import StageResult, WorkflowState
from tests.unit._impls import impl_params
from tests.vectors import VECTORS

IMPLS = impl_params("flowstate")
ERROR = "error"


def vector(number: int) -> bytes:
    [path] = VECTORS.glob(f"{number}-stageflow-*.body.json")
    return path.read_bytes()


def reference(body: Any) -> Any:
    """What the general path makes of ``body``: (type name, state), or ERROR when it raises."""
    try:
        env = orjson.loads(body)
        type_name = env["type"]
        return type_name, _waiting.state_from_event(type_name, env["payload"])
    except Exception:
        return ERROR


def read(fs: Any, body: Any) -> Any:
    return fs.state_from_event(body, WorkflowState, StageResult)


def check(fs: Any, body: Any, *, taken: bool | None = None) -> Any:
    """``fs``'s reading of ``body``: None or the general path's result (never a state where that path
    raises); ``taken``: must (not) be read here."""
    got = read(fs, body)
    want = reference(body)
    if got is not None:
        assert want != ERROR, body
        assert got == want, body
        assert got[1].stage_results == want[1].stage_results  # (the dataclass __eq__ compares them too)
        for a, b in zip(got[1].stage_results, want[1].stage_results, strict=True):
            assert type(a) is StageResult and a.data == b.data and type(a.data) is type(b.data)
        assert type(got[1]) is WorkflowState and got[1].global_data == want[1].global_data
        assert _types(got[1].global_data) == _types(want[1].global_data)
    if taken is not None:
        assert (got is not None) == taken, body
    return got


def _types(value: Any) -> Any:
    """The value with every leaf replaced by its type (1 == 1.0 == True in Python, not on the wire)."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)


def edit(number: int, change: Any) -> bytes:
    """Vector ``number``'s body with ``change(envelope dict)`` applied, written back as JSON."""
    env = json.loads(vector(number))
    change(env)
    return json.dumps(env).encode()


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("number", [25, 27, 34])
def test_go_vectors_are_read_like_the_general_path(fs: Any, number: int) -> None:
    body = vector(number)
    check(fs, body, taken=True)
    check(fs, memoryview(body), taken=True)
    check(fs, bytearray(body), taken=True)
    check(fs, json.dumps(json.loads(body), indent=2).encode(), taken=True)  # whitespace everywhere
    assert read(fs, body.decode()) is None  # str: not the bytes of a delivery


def _engine_events() -> list[bytes]:
    """The three terminal events as our engine builds them and our Publisher writes them."""
    from mmate_fast.contracts import MessageKind
    from mmate_fast.messaging.publisher import Publisher
    from mmate_fast.stageflow import _wire

    t0 = 1_796_096_172_635_944_776
    results = [StageResult("validate", "completed", {"validated": True}, None, t0 + 10, t0 + 20, 10),
               StageResult("charge", "failed", None, 'declined: "card" <x> & é', t0 + 30, None, 0)]
    state = WorkflowState("wf-ü", "01a22fac-a25b-7486-8496-ef27a0f40f2f", "completed", None, results[:1],
                          {"amount": 99.95, "n": -7, "neg": -0.5, "s": "a\\b\u2028", "none": None,
                           "nested": {"l": [1, 2.5, "x", None, True, {"k": []}]}}, t0, t0 + 40, t0 + 40,
                          None, 5)
    pub = Publisher(None)
    events: list[Any] = [_wire.workflow_completed_event(state, workflow_name="wf", total_stages=2)]
    state.status, state.stage_results, state.error_message = "failed", results, "declined"
    events.append(_wire.workflow_failed_event(state, workflow_name="wf", failed_stage_id="charge",
                                              failed_stage_index=1, error="declined", failure_ns=t0 + 50,
                                              total_stages=2))
    bodies = [pub.prepare(e, kind=MessageKind.EVENT)[2].body for e in events]
    comp = json.loads(vector(27))
    comp["payload"]["workflowData"] = state.global_data
    bodies.append(orjson.dumps(comp))
    return bodies


@pytest.mark.parametrize("fs", IMPLS)
def test_our_engines_events_are_read_like_the_general_path(fs: Any) -> None:
    for body in _engine_events():
        got = check(fs, body, taken=True)
        assert got[0] in ("WorkflowCompletedEvent", "WorkflowFailedEvent", "WorkflowCompensatedEvent")


def _set(path: str, value: Any) -> Any:
    def change(env: dict[str, Any]) -> None:
        obj = env
        *parts, last = path.split("/")
        for p in parts:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        key: Any = int(last) if isinstance(obj, list) else last
        if value is _DEL:
            del obj[key]
        else:
            obj[key] = value
    return change


_DEL = object()

#: (vector, change) that the compiled reader reads itself (the plain form, with the odd corners JSON
#: allows): escapes and non-ASCII, nulls where the general path takes them, unknown keys anywhere
PLAIN = [
    (34, _set("payload/workflowId", 'a "quoted" <id> & \\ \u2028 é 😀')),
    (34, _set("payload/instanceId", "")),
    (34, _set("payload/finalData", {"k\u00e9y": "v\nw", "esc\"": "\\", "emoji": "😀", "f": 1.5, "z": -0.0,
                                    "big": 123456789012345678, "neg": -123456789012345678, "e": [], "o": {}})),
    (34, _set("payload/finalData", None)),
    (34, _set("payload/finalData", _DEL)),
    (34, _set("payload/stageResults", None)),
    (34, _set("payload/stageResults", [])),
    (34, _set("payload/stageResults", _DEL)),
    (34, _set("payload/stageResults/0/data", None)),
    (34, _set("payload/stageResults/0/data", {"deep": {"er": [[[{"x": [None, False]}]]]}})),
    (34, _set("payload/stageResults/0/error", "boom \"x\"")),
    (34, _set("payload/stageResults/0/error", "")),
    (34, _set("payload/stageResults/0/error", None)),
    (34, _set("payload/stageResults/0/endTime", None)),
    (34, _set("payload/stageResults/0/endTime", _DEL)),
    (34, _set("payload/stageResults/0/startTime", None)),
    (34, _set("payload/stageResults/0/duration", None)),
    (34, _set("payload/stageResults/0/duration", -5)),
    (34, _set("payload/stageResults/0/stageId", None)),
    (34, _set("payload/stageResults/0/status", _DEL)),
    (34, _set("payload/stageResults/0/extra", {"a": [1, 2.25, {"b": None}], "c": "d"})),
    (34, _set("payload/stageResults/0", {})),
    (34, _set("payload/sequence", _DEL)),
    (34, _set("payload/sequence", -1)),
    (34, _set("payload/endTime", "2026-11-27T13:11:25Z")),
    (34, _set("payload/startTime", "0001-01-01T00:00:00Z")),
    (34, _set("payload/unknown", {"x": [1, "2", 3.5, True, None, {"y": {}}]})),
    (34, _set("headers", {"k": "\u00e9\\\"", "n": [1, 2], "deep": {"a": {"b": {"c": [None]}}}})),
    (34, _set("headers", _DEL)),
    (34, _set("extra", "top-level key nobody reads")),
    (25, _set("payload/failedStageId", None)),
    (25, _set("payload/failedStageId", "")),
    (25, _set("payload/error", None)),
    (25, _set("payload/stateData", None)),
    (27, _set("payload/originalError", _DEL)),
    (27, _set("payload/workflowData", {})),
    (27, _set("payload/stageResults", [{"stageId": "s", "status": "compensated"}])),
]


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("case", range(len(PLAIN)))
def test_plain_corners_are_read_here_and_equal_the_general_path(fs: Any, case: int) -> None:
    number, change = PLAIN[case]
    body = edit(number, change)
    check(fs, body, taken=True)
    check(fs, orjson.dumps(json.loads(body)), taken=True)  # orjson's bytes (no spaces, UTF-8 as is)


#: (vector, change) the general path reads differently from the plain form or refuses: declined (None)
#: here, or (for the twin, where it reads more) equal to that path
ODD = [
    (34, _set("type", "WorkflowStartedEvent")),
    (34, _set("type", None)),
    (34, _set("type", _DEL)),
    (34, _set("payload", _DEL)),
    (34, _set("payload", [1])),
    (34, _set("payload", None)),
    (34, _set("payload/workflowId", _DEL)),
    (34, _set("payload/workflowId", 7)),
    (34, _set("payload/instanceId", None)),
    (34, _set("payload/sequence", None)),
    (34, _set("payload/sequence", "5")),
    (34, _set("payload/sequence", True)),
    (34, _set("payload/sequence", 5.0)),
    (34, _set("payload/sequence", 10 ** 19)),
    (34, _set("payload/endTime", None)),
    (34, _set("payload/endTime", _DEL)),
    (34, _set("payload/endTime", "2026-11-27T14:11:25.5+01:00")),
    (34, _set("payload/endTime", "yesterday")),
    (34, _set("payload/endTime", 1700000000)),
    (34, _set("payload/startTime", "2026-13-27T13:11:25Z")),
    (34, _set("payload/failureTime", "not a time")),
    (34, _set("payload/finalData", [["a", 1]])),
    (34, _set("payload/finalData", "")),
    (34, _set("payload/finalData", 0)),
    (34, _set("payload/stageResults", {})),
    (34, _set("payload/stageResults", "x")),
    (34, _set("payload/stageResults", [None])),
    (34, _set("payload/stageResults", [[]])),
    (34, _set("payload/stageResults/0/data", [1])),
    (34, _set("payload/stageResults/0/data", "x")),
    (34, _set("payload/stageResults/0/stageId", 3)),
    (34, _set("payload/stageResults/0/error", 3)),
    (34, _set("payload/stageResults/0/duration", 1.5)),
    (34, _set("payload/stageResults/0/duration", True)),
    (34, _set("payload/stageResults/0/duration", "9")),
    (34, _set("payload/stageResults/0/startTime", "2026-11-27T13:11:25+00:00")),
    (34, _set("payload/stageResults/0/endTime", 5)),
    (34, _set("payload/finalData", {"x": 1e300})),
    (34, _set("payload/finalData", {"x": 10 ** 19})),
    (25, _set("payload/failedStageId", 3)),
    (25, _set("payload/error", ["x"])),
    (25, _set("payload/stateData", [])),
    (27, _set("payload/compensationEndTime", _DEL)),
    (27, _set("payload/originalError", False)),
]


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("case", range(len(ODD)))
def test_odd_payloads_are_declined_or_equal_the_general_path(fs: Any, case: int) -> None:
    number, change = ODD[case]
    body = edit(number, change)
    got = check(fs, body)
    if fs.__name__.startswith("mmate_fast._cy"):
        assert got is None  # the compiled reader takes none of these


#: raw bodies: JSON orjson refuses or reads otherwise than a plain reader would (declined), and JSON
#: corners it reads (taken: True) that a JSON dump does not write
GOOD = vector(34)
RAW: list[tuple[bytes, bool | None]] = [
    (b"", False),
    (b"null", False),
    (b"[]", False),
    (b"{}", False),
    (b" \n\t\r" + GOOD + b" \n\t\r", True),
    (GOOD + b"x", False),
    (GOOD + b"}", False),
    (GOOD[:-1], False),
    (GOOD[: len(GOOD) // 2], False),
    (GOOD.replace(b'"type"', b'"type": "X", "type"', 1), True),  # the last of a repeated key wins
    (GOOD.replace(b'"type":"WorkflowCompletedEvent"', b'"type":"WorkflowCompletedEvent","type":"X"', 1), False),
    (GOOD.replace(b'"payload":{', b'"payload":{"workflowId":"first",', 1), True),
    (GOOD.replace(b'"payload":{', b'"payload":[],"payload":{', 1), True),
    (GOOD.replace(b'"sequence":5', b'"sequence":5,"sequence":6', 1), True),
    (GOOD.replace(b'"duration":', b'"duration":1,"duration":', 1), True),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"1.0","x-version":"2"', 1), True),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"\\u00e9\\ud83d\\ude00\\n\\/"', 1), True),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"\\ud800"', 1), False),  # a lone surrogate
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"\xff"', 1), False),  # not UTF-8
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"\xc3\xa9"', 1), True),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"a\x01"', 1), False),  # a control character
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"\\x"', 1), False),  # a bad escape
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":"\\u12g4"', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":01', 1), False),  # a leading zero
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":-', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":1.', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":.5', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":1e5', 1), False),  # exponents: declined
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":1e999', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":NaN', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":tru', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":[1,]', 1), False),  # a trailing comma
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":{"a":1,}', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":{"a" 1}', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":' + b'[' * 40 + b']' * 40, 1), False),  # deeper than 32
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":' + b'[' * 20 + b']' * 20, 1), True),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":12345678901234567890', 1), False),
    (GOOD.replace(b'"x-version":"1.0"', b'"x-version":-0,"y":-0.0,"z":0.5', 1), True),
    (GOOD.replace(b'"stageId":', b'"stage\\u0049d":"x","stageId":', 1), False),  # a key with an escape
    (GOOD.replace(b'"payload":{', b'"payload":{"x\\u00f3":1,', 1), False),
    (GOOD.replace(b'"payload":{', b'"payload":{"x\xc3\xb3":1,', 1), False),
    (GOOD.replace(b'"x-version":', b'"x-versi\\u00f3n":', 1), True),  # in a value nobody reads: orjson's
    (GOOD.replace(b'"x-version":', b'"x-versi\xc3\xb3n":', 1), True),
    (GOOD.replace(b'"type":"WorkflowCompletedEvent"', b'"type":"WorkflowCompletedEven\\u0074"', 1), False),
]


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("case", range(len(RAW)))
def test_raw_json_corners(fs: Any, case: int) -> None:
    body, taken = RAW[case]
    if not fs.__name__.startswith("mmate_fast._cy"):
        taken = None if taken is False else taken  # the twin may read what orjson reads
    check(fs, body, taken=taken)


def test_the_corners_are_what_they_claim() -> None:
    """Every edit of GOOD in RAW changed it (a replace that finds nothing would test GOOD again)."""
    assert b'"type":"WorkflowCompletedEvent"' in GOOD and b'"x-version":"1.0"' in GOOD
    assert b'"sequence":5' in GOOD and b'"payload":{' in GOOD and b'"stageId":' in GOOD
    assert all(body != GOOD for body, _ in RAW)


@pytest.mark.parametrize("fs", IMPLS)
def test_floats_equal_orjsons(fs: Any) -> None:
    rng = random.Random(7)
    values = []
    for _ in range(3000):
        digits = rng.randint(1, 17)
        text = "".join(rng.choice("0123456789") for _ in range(digits))
        point = rng.randint(1, digits)
        text = text[:point].lstrip("0") or "0"
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 18 - len(text))))
        values.append(("-" if rng.random() < 0.5 else "") + text + "." + frac)
    values += ["0.1", "0.30000000000000004", "1.7976931348623157", "2.2250738585072014", "-0.0", "0.0",
               "9007199254740993.0", "123456789012345.678"]
    body = GOOD.replace(b'"finalData":{', b'"finalData":{' + b"".join(
        b'"f%d":%s,' % (i, v.encode()) for i, v in enumerate(values)), 1)
    got = check(fs, body, taken=True)
    want = orjson.loads(body)["payload"]["finalData"]
    for i, v in enumerate(values):
        a, b = got[1].global_data[f"f{i}"], want[f"f{i}"]
        assert a.hex() == b.hex() and type(a) is float, v


@pytest.mark.parametrize("fs", IMPLS)
def test_damaged_bodies_are_declined_or_equal_the_general_path(fs: Any) -> None:
    """Random byte damage (flips, cuts, insertions of JSON's own characters) to each vector: never a
    state the general path does not give."""
    rng = random.Random(11)
    alphabet = b'{}[],:"\\ -+.0123456789eEtrufalsn\x00\x1f\x7f\xc3\xa9\xff'
    read_here = 0
    for number in (25, 27, 34):
        good = vector(number)
        for _ in range(700):
            b = bytearray(good)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(b))
                op = rng.random()
                if op < 0.4:
                    b[i] = rng.choice(alphabet)
                elif op < 0.7:
                    b.insert(i, rng.choice(alphabet))
                elif op < 0.9:
                    del b[i]
                else:
                    del b[i:]
            body = bytes(b)
            if check(fs, body) is not None:
                read_here += 1
    assert read_here > 50  # some damage leaves the plain form (a changed digit or letter)


#: string contents that stop the shared string scanner (``_jsonscan.stop_at``) somewhere: escapes,
#: bytes from 0x80 (then escapes or control bytes after them), control bytes, bad escapes or UTF-8
SCAN_STOPS = [b"", b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\\u12g4", b"\\x", b"\xc3\xa9",
              b"\xe4\xb8\xad\\t", b"\xc3\xa9\x01", b"\x7f", b"\x01", b"\x1f", b"\t", b"\xff", b"\xc3"]


@pytest.mark.parametrize("fs", IMPLS)
@pytest.mark.parametrize("stop", SCAN_STOPS, ids=repr)
def test_a_stop_at_every_offset_of_a_string_is_read_like_the_general_path(fs: Any, stop: bytes) -> None:
    """The stop bytes at every offset of a 16-byte scan (0-40 bytes in), with 0, 1 or 17 bytes after
    them, in a string read (workflowId), one in the state data and one of its keys: the general path's
    result or None; a valid value is read here."""
    marker = "\x00MARK\x00"
    sites = [(_set("payload/workflowId", marker), True), (_set("payload/finalData/orderId", marker), True),
             (_set("payload/finalData", {marker: 1}), False)]
    for change, value in sites:
        template = edit(34, change)
        assert orjson.dumps(marker)[1:-1] in template
        for before in range(41):
            for after in (0, 1, 17):
                body = template.replace(orjson.dumps(marker)[1:-1], b"x" * before + stop + b"y" * after)
                try:
                    orjson.loads(body)
                    valid = True
                except orjson.JSONDecodeError:
                    valid = False
                check(fs, body, taken=(valid and (value or stop == b"")) or None)


def test_heard_takes_the_general_path_for_what_the_reader_declines(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Waiters._heard`` ends in the same state (or the same ignored error) with the reader as
    without it."""
    from mmate_fast.stageflow.store import open_store

    bodies = [vector(n) for n in (25, 27, 34)] + _engine_events() + [body for body, _ in RAW]
    bodies += [edit(n, change) for n, change in ODD + PLAIN]

    def finals(reader: Any) -> list[Any]:
        monkeypatch.setattr(_waiting, "_read_event", reader)
        w = _waiting.Waiters(None, open_store("memory://"))
        out = []
        for body in bodies:
            w._finals.clear()
            w._heard(body)
            out.append(list(w._finals.items()))
        return out

    assert finals(lambda body, s, r: None) == finals(_waiting._read_event)
