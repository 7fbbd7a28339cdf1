"""StageFlow's Go state codec, fast path (pure-Python twin of ``src_cy/flowstate.pyx``).

The ``serializedWorkflowState`` string travels in every stage message and is decoded and written
again at every hop, so its codec is on the hot path. These functions cover the plain form that Go
and our engine write (string ids, Go's UTC times, integer versions and durations) and give up on
anything else: ``encode_*`` and ``decode_state`` return None, and the caller
(``mmate_fast.stageflow._state``) takes its strict, general path, which also names what is wrong.
Output is byte-identical to that path (Go's ``json.Marshal``: struct key order, ``omitempty``, maps
with sorted keys via the envelope codec's ``encode_json``, Go's ``< > & U+2028 U+2029`` escapes).

``format_time`` / ``parse_time`` are Go's RFC3339Nano for UTC on integer nanoseconds since the epoch
(the whole of ``stageflow._gotime``'s rules, without its caches).
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any

import orjson

from mmate_fast._ext import load
from mmate_fast._py.envelope import _go_escapes
from mmate_fast.errors import FlowWireError

_encode_json = load("envelope").encode_json

_NS = 1_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1)
_MIN_S = -62135596800          # 0001-01-01T00:00:00Z
_MAX_S = 253402300799          # 9999-12-31T23:59:59Z
#: Go's zero time.Time in ns since the epoch (what a missing or null time decodes to)
ZERO_NS = _MIN_S * _NS
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")
#: ASCII that a JSON string holds as it is, for Go too (no escapes: not '"', '\\', '<', '>', '&')
_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('"\\<>&')


class _Odd(Exception):
    """Not the plain form: the caller takes the general path."""


# --------------------------------------------------------------------------- times
def format_time(ns: int) -> str:
    """``ns`` as Go writes a UTC ``time.Time`` in JSON (no quotes); FlowWireError outside 0001-9999."""
    secs, frac = divmod(ns, _NS)
    if not _MIN_S <= secs <= _MAX_S:
        raise FlowWireError(f"time {ns} ns is outside the years 0001-9999 that Go can write in JSON")
    d = _EPOCH + _dt.timedelta(seconds=secs)
    s = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if frac:
        return f"{s}.{frac:09d}".rstrip("0") + "Z"
    return s + "Z"


def parse_time(text: Any) -> int:
    """An RFC 3339 time as nanoseconds since the epoch, UTC; FlowWireError when it is not one."""
    m = _RFC3339.fullmatch(text) if text.__class__ is str else None
    if m is None:
        raise FlowWireError(f"time {text!r} is not RFC 3339 (like 2026-11-27T13:11:25.29813257Z)")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    try:
        day = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError as exc:
        raise FlowWireError(f"time {text!r} is not a valid time: {exc}") from None
    secs = (day - _EPOCH) // _dt.timedelta(seconds=1)
    if z is None:
        if int(oh) > 23 or int(om) > 59:
            raise FlowWireError(f"time {text!r} has an offset out of range")
        off = int(oh) * 3600 + int(om) * 60
        secs -= off if sign == "+" else -off
    ns = secs * _NS
    if frac:
        ns += int((frac + "00000000")[:9])
    return ns


# --------------------------------------------------------------------------- encoding
def quote(s: Any) -> str:
    """``s`` as a JSON string the way Go writes it (quotes included); _Odd for a non-str."""
    if s.__class__ is not str:
        raise _Odd
    if _SAFE.issuperset(s):
        return f'"{s}"'
    try:
        return _go_escapes(orjson.dumps(s)).decode()
    except orjson.JSONEncodeError:  # a lone surrogate: the general path names it
        raise _Odd from None


def _map(value: Any) -> str:
    if value.__class__ is not dict:
        raise _Odd
    try:
        return _encode_json(value).decode()
    except Exception:  # the general path raises the named error
        raise _Odd from None


def _int(v: Any) -> str:
    if v.__class__ is not int:
        raise _Odd
    return str(v)


def _time(ns: Any) -> str:
    if ns.__class__ is not int:
        raise _Odd
    try:
        return format_time(ns)
    except FlowWireError:
        raise _Odd from None


def _result(out: list[str], r: Any) -> None:
    out.append('{"stageId":')
    out.append(quote(r.stage_id))
    out.append(',"status":')
    out.append(quote(r.status))
    if r.data:
        out.append(',"data":')
        out.append(_map(r.data))
    if r.error:
        out.append(',"error":')
        out.append(quote(r.error))
    out.append(',"startTime":"')
    out.append(_time(r.start_ns))
    if r.end_ns is not None:
        out.append('","endTime":"')
        out.append(_time(r.end_ns))
    out.append('","duration":')
    out.append(_int(r.duration_ns))
    out.append("}")


def encode_result(result: Any) -> str | None:
    """A StageResult as Go's ``json.Marshal`` writes it, or None (not the plain form)."""
    out: list[str] = []
    try:
        _result(out, result)
    except _Odd:
        return None
    return "".join(out)


def _state_out(out: list[str], state: Any) -> tuple[int, int]:
    """Append ``state``'s JSON parts to ``out`` (raises _Odd); returns where the last stage result's
    parts begin and end in ``out`` (-1, n: no result)."""
    out += ['{"workflowId":', quote(state.workflow_id), ',"instanceId":', quote(state.instance_id),
            ',"status":', quote(state.status)]
    if state.current_stage:
        out.append(',"currentStage":')
        out.append(quote(state.current_stage))
    out.append(',"stageResults":[')
    first = True
    last = -1
    for r in state.stage_results:
        if not first:
            out.append(",")
        first = False
        last = len(out)
        _result(out, r)
    last_end = len(out)
    out.append('],"globalData":')
    gd = state.global_data
    out.append(_map(gd) if gd is not None else "{}")
    out.append(',"startTime":"')
    out.append(_time(state.start_ns))
    if state.end_ns is not None:
        out.append('","endTime":"')
        out.append(_time(state.end_ns))
    out.append('","lastModified":"')
    out.append(_time(state.last_modified_ns))
    out.append('"')
    if state.error_message:
        out.append(',"errorMessage":')
        out.append(quote(state.error_message))
    out.append(',"version":')
    out.append(_int(state.version))
    out.append("}")
    return last, last_end


def encode_state(state: Any) -> str | None:
    """A WorkflowState as Go's ``json.Marshal`` writes it (the ``serializedWorkflowState``), or None
    (not the plain form)."""
    out: list[str] = []
    try:
        _state_out(out, state)
    except _Odd:
        return None
    return "".join(out)


def advance(state: Any, result: Any, updates: dict[str, Any], now_ns: int,
            end_ns: int | None = None) -> tuple[str, str] | None:
    """A stage hop's whole state work in one call: Go's ``addStageResult`` as the engine's step does
    it (``result`` appended, ``updates`` merged into ``globalData``, version+1, ``lastModified`` =
    ``now_ns``, ``currentStage`` cleared: the flow moves on), with ``end_ns`` then Go's
    ``markCompleted`` (status ``completed``, ``endTime`` = ``lastModified`` = ``end_ns``, version+1:
    the last stage), then ``(state_json, claim_json)``: the
    new state as ``encode_state`` writes it and the outcome's claim text
    (``{"result":<result as encode_result writes it>,"updates":<orjson>}``, the stage result's JSON
    taken from the state's). None when the state is not the plain form: the state is advanced either
    way and the caller encodes it on the general path (which names what is wrong). An ``updates``
    that orjson cannot write raises first, before anything changes (as the claim text would)."""
    upd = orjson.dumps(updates).decode()
    state.stage_results.append(result)
    state.global_data.update(updates)
    state.version += 1
    state.last_modified_ns = now_ns
    state.current_stage = None
    if end_ns is not None:
        state.status = "completed"
        state.end_ns = end_ns
        state.last_modified_ns = end_ns
        state.version += 1
    out: list[str] = []
    try:
        start, end = _state_out(out, state)
    except _Odd:
        return None
    return "".join(out), '{"result":' + "".join(out[start:end]) + ',"updates":' + upd + "}"


# --------------------------------------------------------------------------- decoding
def _plain_json(text: str) -> bool:
    """True when orjson reads ``text`` as Go does. Outside strings: no run of 20 digits and no ``-`` +
    19 digits (an integer that may be beyond 64 bits, which orjson would not keep exact), no ``-`` +
    one digit + a non-number character (``-0``: Go keeps a float -0, orjson an int 0), no exponent (a
    float beyond float64 is an error for the strict reader). What strings hold does not matter
    (``"order-1"`` is plain)."""
    run = 0
    p1 = p2 = 3
    in_str = esc = neg = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
            c = 3
        elif "0" <= ch <= "9":
            c = 0
        elif ch in "eE" and p1 == 0:  # an exponent (the e of true/false follows a letter)
            return False
        elif ch == "-":
            c = 2
        elif ch == "." or (ch.isascii() and ch.isalpha()):
            c = 1
        else:
            c = 3
        if c == 0:
            if run == 0:
                neg = p1 == 2
            run += 1
            if run >= 20 or (run == 19 and neg):
                return False
        else:
            run = 0
            if c == 3 and p1 == 0 and p2 == 2:
                return False
        p2, p1 = p1, c
    return not (p1 == 0 and p2 == 2)


def _str(v: Any) -> str:
    if v.__class__ is str:
        return v
    if v is None:
        return ""
    raise _Odd


def _opt_str(v: Any) -> str | None:
    if v.__class__ is str:
        return v or None
    if v is None:
        return None
    raise _Odd


def _opt_dict(v: Any) -> dict[str, Any] | None:
    if v is None or v.__class__ is dict:
        return v
    raise _Odd


def _read_time(v: Any) -> int:
    if v is None:
        return ZERO_NS
    try:
        return parse_time(v)
    except FlowWireError:
        raise _Odd from None


def _read_int(v: Any) -> int:
    if v.__class__ is int:
        return v
    if v is None:
        return 0
    raise _Odd


def read_strs(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The values of ``keys`` in ``obj`` as a tuple of str (a missing key or null: ""), or None when
    one of them is not a string (the caller's strict reader names it)."""
    out = []
    for key in keys:
        v = obj.get(key)
        if v.__class__ is str:
            out.append(v)
        elif v is None:
            out.append("")
        else:
            return None
    return tuple(out)


def read_result(obj: Any, result_cls: Any) -> Any:
    """A decoded StageResult object (a dict from JSON) as ``result_cls(...)`` (StageResult field
    order), or None when it is not the plain form (the strict reader then names what is wrong)."""
    if obj.__class__ is not dict:
        return None
    try:
        end = obj.get("endTime")
        return result_cls(
            _str(obj.get("stageId")), _str(obj.get("status")), _opt_dict(obj.get("data")),
            _opt_str(obj.get("error")), _read_time(obj.get("startTime")),
            None if end is None else _read_time(end), _read_int(obj.get("duration")))
    except _Odd:
        return None


def decode_state(text: Any, state_cls: Any, result_cls: Any) -> Any:
    """A ``serializedWorkflowState`` string as ``state_cls(...)`` (its StageResults as
    ``result_cls(...)``, both in WorkflowState / StageResult field order), or None when it is not
    the plain form (the caller's strict reader then decodes it or names what is wrong). A missing
    key or ``null`` is Go's zero value, as in the strict reader."""
    if text.__class__ is not str or not _plain_json(text):
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if obj.__class__ is not dict:
        return None
    get = obj.get
    wid = get("workflowId")
    iid = get("instanceId")
    if wid.__class__ is not str or iid.__class__ is not str or not wid or not iid:
        return None
    try:
        raw = get("stageResults")
        results = []
        if raw is not None:
            if raw.__class__ is not list:
                return None
            for r in raw:
                if r.__class__ is not dict:
                    return None
                end = r.get("endTime")
                results.append(result_cls(
                    _str(r.get("stageId")), _str(r.get("status")), _opt_dict(r.get("data")),
                    _opt_str(r.get("error")), _read_time(r.get("startTime")),
                    None if end is None else _read_time(end), _read_int(r.get("duration"))))
        gd = get("globalData")
        if gd is None:
            gd = {}
        elif gd.__class__ is not dict:
            return None
        end = get("endTime")
        return state_cls(wid, iid, _str(get("status")), _opt_str(get("currentStage")), results, gd,
                         _read_time(get("startTime")), None if end is None else _read_time(end),
                         _read_time(get("lastModified")), _opt_str(get("errorMessage")),
                         _read_int(get("version")))
    except _Odd:
        return None


#: the two times each terminal event's state is built from
_EVENT_TIMES = {"WorkflowCompletedEvent": ("startTime", "endTime"),
                "WorkflowFailedEvent": ("startTime", "failureTime"),
                "WorkflowCompensatedEvent": ("failureTime", "compensationEndTime")}
_ALL_TIMES = ("startTime", "endTime", "failureTime", "compensationEndTime")
_EVENT_STRS = ("failedStageId", "error", "originalError")
_EVENT_DATA = ("finalData", "stateData", "workflowData")


def _event_data(p: dict[str, Any], key: str) -> dict[str, Any]:
    v = p.get(key)
    if v is None:
        return {}
    if v.__class__ is not dict:
        raise _Odd
    return v


def _event_time(p: dict[str, Any], key: str) -> int:
    v = p.get(key)
    if v.__class__ is not str:
        raise _Odd
    try:
        return parse_time(v)
    except FlowWireError:
        raise _Odd from None


def state_from_event(body: Any, state_cls: Any, result_cls: Any) -> tuple[str, Any] | None:
    """A heard terminal event's body (the envelope's JSON bytes) as ``(type name, state_cls(...))``
    (its StageResults as ``result_cls(...)``, field order as in ``decode_state``), equal to
    ``orjson.loads`` + ``stageflow._waiting.state_from_event``; None when it is not the plain form
    (the caller then takes that path, which also raises what is wrong): a body orjson refuses, a type
    other than the three terminal events, a payload value of another JSON type than that path reads
    plainly (ids and error texts strings, ``sequence`` an integer, data objects, results a list of
    result objects ``read_result`` reads, every one of the four times there in Go's UTC form; null
    where that path takes it).

    The compiled reader reads the bytes in one pass and may decline more (a number with an exponent
    or more than 18 digits anywhere, a key with an escape or beyond ASCII, nesting deeper than 32, a
    time it does not parse in C); what it returns equals this."""
    if body.__class__ is str:
        return None
    try:
        env = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return None
    if env.__class__ is not dict:
        return None
    type_name = env.get("type")
    p = env.get("payload")
    if type_name not in _EVENT_TIMES or p.__class__ is not dict:
        return None
    wid = p.get("workflowId", 0)
    iid = p.get("instanceId", 0)
    if wid.__class__ is not str or iid.__class__ is not str:
        return None
    try:
        items = p.get("stageResults")
        results = []
        if items is not None:
            if items.__class__ is not list:
                return None
            for r in items:
                result = read_result(r, result_cls)
                if result is None:
                    return None
                results.append(result)
        version = p.get("sequence", 0)
        if version.__class__ is not int:
            return None
        for key in _EVENT_STRS:
            v = p.get(key)
            if v is not None and v.__class__ is not str:
                return None
        for key in _EVENT_DATA:
            _event_data(p, key)
        for key in _ALL_TIMES:  # each one there must be in Go's form, whatever the event's type
            if key in p:
                _event_time(p, key)
        first, second = _EVENT_TIMES[type_name]
        t1 = _event_time(p, first)
        t2 = _event_time(p, second)
        if type_name == "WorkflowCompletedEvent":
            return type_name, state_cls(wid, iid, "completed", None, results, _event_data(p, "finalData"),
                                        t1, t2, t2, None, version)
        if type_name == "WorkflowFailedEvent":
            return type_name, state_cls(wid, iid, "failed", p.get("failedStageId") or None, results,
                                        _event_data(p, "stateData"), t1, t2, t2, p.get("error") or None,
                                        version)
        return type_name, state_cls(wid, iid, "compensated", None, results, _event_data(p, "workflowData"),
                                    0, t1, t2, p.get("originalError") or None, version)
    except _Odd:
        return None


__all__ = ["ZERO_NS", "advance", "decode_state", "encode_result", "encode_state", "format_time", "parse_time",
           "quote",
           "read_result", "read_strs", "state_from_event"]
