"""MessageTemplate (compiled + twin) against the general encoders: the body must equal
encode_envelope(...) and the properties encode_properties(...) byte for byte, for random strings
(Go's escapes: < > & U+2028 U+2029, control characters, non-ASCII), optional fields on and off,
colliding header names and payloads with floats and nested objects."""
from __future__ import annotations

import importlib
import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmate_fast.errors import ContractError
from tests.unit._impls import impl_params

_penv = importlib.import_module("mmate_fast._py.envelope")
_pfr = importlib.import_module("mmate_fast._py.frames")

STATIC: dict[str, Any] = {
    "x-message-type": "OrderCreatedEvent", "x-source": "mmate-python", "x-version": "1.0",
    "message-type": "OrderCreatedEvent", "source": "mmate-python", "expiration": "300000",
    "priority": 0, "delivery-mode": 2, "x-message-kind": "event",
}
SPECIALS = list("<>&\u2028\u2029\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f\"\\/é€😀\u00a0\ufeff")
CHARS = st.one_of(st.sampled_from(SPECIALS), st.characters(blacklist_categories=("Cs",)))
TEXT = st.text(CHARS, max_size=40)
KEYS = st.one_of(st.text(CHARS, min_size=1, max_size=20), st.sampled_from(
    ["x-message-id", "message-id", "timestamp", "x-correlation-id", "a", "zz", "x-reply-to",
     "source", "priority"]))  # the last two collide with static headers
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                      st.floats(allow_nan=False, allow_infinity=False), TEXT)
PAYLOAD = st.recursive(JSON_LEAF, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(TEXT, kids, max_size=4)), max_leaves=12)
OPT_TEXT = st.one_of(st.none(), st.just(""), TEXT)


def _frames_of(wire: ModuleType) -> tuple[ModuleType, ModuleType]:
    if wire.__name__.startswith("mmate_fast._cy"):
        return (importlib.import_module("mmate_fast._cy.envelope"),
                importlib.import_module("mmate_fast._cy.frames"))
    return _penv, _pfr


def _template(wire: ModuleType, static: dict[str, Any], fr: ModuleType, **kw: Any) -> Any:
    typed = {"priority": fr.Typed("B", static.get("priority", 0)),
             "delivery-mode": fr.Typed("B", kw.get("delivery_mode", 2))}
    return wire.MessageTemplate(static, typed, type_name=kw.pop("type_name", "OrderCreatedEvent"), **kw)


def _reference(env: ModuleType, fr: ModuleType, tpl: Any, args: tuple[Any, ...]) -> tuple[bytes, bytes]:
    msg_id, ts, unix, corr, reply_to, env_rt, variable, payload = args
    body = env.encode_envelope(msg_id, tpl.type_name, ts, corr, reply_to if env_rt else None,
                               {**tpl.static_headers, **variable}, payload)
    amqp = dict(tpl.static_headers)
    amqp["priority"] = fr.Typed("B", tpl.static_headers["priority"])
    amqp["delivery-mode"] = fr.Typed("B", tpl.delivery_mode)
    amqp.update(variable)
    props = fr.encode_properties(fr.BasicProperties(
        content_type=tpl.content_type, delivery_mode=tpl.delivery_mode, headers=amqp,
        message_id=msg_id, correlation_id=corr, type=tpl.type_name, timestamp=unix,
        reply_to=reply_to, expiration=tpl.expiration, priority=tpl.priority))
    return body, props


@pytest.mark.parametrize("wire", impl_params("wire"))
@settings(max_examples=300, deadline=None)
@given(type_name=TEXT, static_extra=st.dictionaries(TEXT, TEXT, max_size=3), msg_id=TEXT, ts=TEXT,
       unix=st.integers(0, 2**64 - 1), corr=OPT_TEXT, reply_to=OPT_TEXT, env_rt=st.booleans(),
       variable=st.dictionaries(KEYS, TEXT, max_size=10), payload=PAYLOAD,
       priority=st.one_of(st.none(), st.integers(0, 255)), expiration=st.one_of(st.none(), TEXT),
       mode=st.sampled_from([1, 2]))
def test_encode_equals_general_encoders(wire: ModuleType, type_name: str, static_extra: dict[str, str],
                                        msg_id: str, ts: str, unix: int, corr: str | None,
                                        reply_to: str | None, env_rt: bool, variable: dict[str, str],
                                        payload: Any, priority: int | None, expiration: str | None,
                                        mode: int) -> None:
    env, fr = _frames_of(wire)
    static = {**static_extra, **STATIC, "priority": priority or 0, "delivery-mode": mode}
    tpl = _template(wire, static, fr, type_name=type_name, delivery_mode=mode, expiration=expiration,
                    priority=priority)
    args = (msg_id, ts, unix, corr, reply_to, env_rt, variable, payload)
    body, props = tpl.encode(*args)
    ref_body, ref_props = _reference(env, fr, tpl, args)
    assert body == ref_body
    assert props == ref_props
    assert fr.decode_properties(props)[0] == fr.decode_properties(ref_props)[0]
    assert json.loads(body)["headers"] == {**static, **variable}


@pytest.mark.parametrize("wire", impl_params("wire"))
def test_typical_event_and_other_typed_class(wire: ModuleType) -> None:
    env, fr = _frames_of(wire)
    other = _pfr if fr is not _pfr else importlib.import_module("mmate_fast._ext").load("frames")
    tpl = wire.MessageTemplate(STATIC, {"priority": other.Typed("B", 0), "delivery-mode": other.Typed("B", 2)},
                               type_name="OrderCreatedEvent")
    var = {"x-message-id": "m-1", "message-id": "m-1", "timestamp": "2025-01-02T03:04:05Z",
           "x-aggregate-id": "order-1", "x-sequence": "7"}
    args = ("m-1", "2025-01-02T03:04:05Z", 1735787045, None, None, True, var, {"amount": 99.95})
    assert tpl.encode(*args) == _reference(env, fr, tpl, args)
    props, _ = fr.decode_properties(tpl.encode(*args)[1])
    assert props.headers["delivery-mode"] == 2 and props.timestamp == 1735787045
    many = {f"k{i:02d}": str(i) for i in range(40)}  # beyond the compiled fast path's 32
    args = ("m-1", "ts", 1, "c", "r", False, many, None)
    assert tpl.encode(*args) == _reference(env, fr, tpl, args)


@pytest.mark.parametrize("wire", impl_params("wire"))
@pytest.mark.parametrize(("change", "error"), [
    ({"msg_id": 5}, ContractError),
    ({"ts": None}, ContractError),
    ({"corr": 7}, ContractError),
    ({"variable": {"a": 1}}, ContractError),
    ({"variable": {1: "a"}}, ContractError),
    ({"variable": ["a"]}, ContractError),
    ({"msg_id": "bad\ud800"}, ContractError),
    ({"variable": {"a": "bad\udfff"}}, ContractError),
    ({"payload": {"x": float("nan")}}, ContractError),
    ({"payload": object()}, ContractError),
    ({"unix": -1}, ValueError),
    ({"unix": 2**64}, ValueError),
    ({"unix": True}, TypeError),
    ({"unix": 1.5}, TypeError),
    ({"msg_id": "x" * 256}, ValueError),
    ({"reply_to": 3, "env_rt": False}, TypeError),
    ({"variable": {"k" * 256: "v"}}, ValueError),
])
def test_bad_input_raises_the_encoders_errors(wire: ModuleType, change: dict[str, Any],
                                              error: type[Exception]) -> None:
    env, fr = _frames_of(wire)
    tpl = _template(wire, dict(STATIC), fr)
    a: dict[str, Any] = {"msg_id": "m", "ts": "t", "unix": 1, "corr": "c", "reply_to": "r",
                         "env_rt": True, "variable": {"x-message-id": "m"}, "payload": {"a": 1}}
    a.update(change)
    args = tuple(a.values())
    with pytest.raises(error):
        tpl.encode(*args)
    if isinstance(a["variable"], dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in a["variable"].items()):
        with pytest.raises(error):
            _reference(env, fr, tpl, args)


@pytest.mark.parametrize("wire", impl_params("wire"))
@pytest.mark.parametrize(("kw", "error"), [
    ({"type_name": 3}, ContractError),
    ({"delivery_mode": 256}, ValueError),
    ({"priority": "5"}, TypeError),
    ({"expiration": "9" * 256}, ValueError),
    ({"content_type": None}, TypeError),
])
def test_bad_template_options(wire: ModuleType, kw: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        wire.MessageTemplate(STATIC, {}, **{"type_name": "T", **kw})
    with pytest.raises(ContractError):
        wire.MessageTemplate({"bad": float("inf")}, {}, type_name="T")
