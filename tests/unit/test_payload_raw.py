"""Reading a message straight from the envelope's raw payload bytes (``Envelope.raw_payload`` +
``PayloadReader.decode_envelope``; ``ContractPlan.decode_envelope``) gives exactly what the plan's
generated decoder gives for the orjson-decoded payload: the same instance or the same named error.
Everything the raw reader does not take itself (escapes, unknown / folded / duplicate keys, a
required key missing or null, huge or long numbers, exponents, NaN, deep nesting, a payload that is
no object) goes the dict path; the tests see which path ran (a declined payload was decoded, so
``raw_payload`` is None afterwards)."""
from __future__ import annotations

import dataclasses
import json
from types import ModuleType
from typing import Any

import orjson
import pydantic
import pytest

from mmate_fast import errors
from mmate_fast.contracts import Event, TypeRegistry, _plan, from_envelope
from tests.unit._impls import impl_params
from tests.unit.test_payload_reader import TS, RdOrderPlaced, RdPost, RdPrivate, RdStamp, RdStrict

READERS = impl_params("payload_reader")
ENVELOPES = impl_params("envelope")

#: (class, raw payload, path): "raw" the compiled reader reads it from the bytes, "lazy" the compiled
#: envelope keeps it as bytes but the reader declines it (dict path), "eager" the envelope decodes it
CASES: list[tuple[type, bytes, str]] = [
    (RdOrderPlaced, b'{}', "raw"),
    (RdOrderPlaced, b'{"orderId":"O-1","amount":10.5,"aggregateId":"agg","sequence":3}', "raw"),
    (RdOrderPlaced, b'{ "amount" : 10 ,\n\t"orderId" :"O-1" }', "raw"),
    (RdOrderPlaced, b'{"orderId":"O-1","amount":10,"lines":[{"sku":"a","qty":2,"price":1.5},{"sku":"b"}],'
                    b'"tags":{"x":1},"note":"n","paid":true,"colour":"red","due":"2026-01-02T03:04:05Z",'
                    b'"extra":{"any":[1,2,{"deep":["]","}"]}]},"count":4.0}', "raw"),
    (RdOrderPlaced, b'{"orderId":null,"amount":null,"lines":null,"tags":null,"note":null,"sequence":null}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":-0,"count":-0,"paid":false}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":-0.0,"count":123456789012345678}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":0.1000000000000001,"count":-12345678901234567}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.7976931348623157,"extra":[]}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":123456789.12345678,"extra":""}', "raw"),
    (RdOrderPlaced, b'{"orderId":"","amount":5e-324}', "eager"),  # an exponent: not plain
    (RdOrderPlaced, b'{"orderId":5,"amount":1.0}', "raw"),  # wrong types: the same errors
    (RdOrderPlaced, b'{"orderId":"x","amount":"1.0"}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.0,"paid":1}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.0,"count":1.5}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.0,"lines":[{"sku":3}]}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.0,"lines":"nope"}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.0,"colour":"green"}', "raw"),
    (RdOrderPlaced, b'{"orderId":1,"amount":"two"}', "raw"),  # two bad fields: the first one named
    (RdOrderPlaced, b'{"amount":"two","orderId":1}', "raw"),
    (RdOrderPlaced, b'{"orderId":"x","amount":1.0,"unknown":1}', "lazy"),  # unknown key
    (RdOrderPlaced, b'{"OrderId":"folded","AMOUNT":2.5,"orderid":"lower"}', "lazy"),  # folded keys
    (RdOrderPlaced, b'{"orderId":"exact","ORDERID":"folded-loses","amount":1}', "lazy"),
    (RdOrderPlaced, b'{"orderId":"a","amount":1,"orderId":"b"}', "lazy"),  # duplicate: the last wins
    (RdOrderPlaced, b'{"orderId":"a","amount":1,"id":"payload-id","type":"T"}', "lazy"),  # envelope keys
    (RdOrderPlaced, b'{"orderI":"x","amount":1}', "lazy"),  # a prefix of a wire name: unknown
    (RdOrderPlaced, b'{"orderIdX":"x","amount":1}', "lazy"),  # a wire name and more: unknown
    (RdOrderPlaced, b'{"":"x","amount":1}', "lazy"),  # the empty key matches no field
    (RdOrderPlaced, b'{"sequence":2,"amount":1,"orderId":"x","aggregateId":"g"}', "raw"),  # keys in
    (RdOrderPlaced, b'{"aggregateId":"g","orderId":"x","sequence":2,"amount":1}', "raw"),  # new orders
    (RdOrderPlaced, b'{"orderId":"a\\"b","amount":1}', "eager"),  # escapes
    (RdOrderPlaced, b'{"orderId":"a\\u00e9","amount":1}', "eager"),
    (RdOrderPlaced, '{"orderId":"café","amount":1,"note":"€"}'.encode(), "eager"),  # non-ASCII
    (RdOrderPlaced, b'{"orderId":"x","amount":1,"count":12345678901234567890123}', "eager"),  # huge int
    (RdOrderPlaced, b'{"orderId":"x","amount":1,"count":1234567890123456789}', "eager"),  # 19 digits
    (RdOrderPlaced, b'{"orderId":"x","amount":1.12345678901234567}', "eager"),  # a long number
    (RdOrderPlaced, b'{"orderId":"x","amount":1,"extra":' + b'[' * 40 + b']' * 40 + b'}', "eager"),
    (RdOrderPlaced, b'[1,2]', "eager"),  # not an object: TypeError on both paths
    (RdOrderPlaced, b'null', "eager"),
    (RdOrderPlaced, b'"text"', "eager"),
    (RdStrict, b'{"key":"k","must":3,"line":{"sku":"s"}}', "raw"),
    (RdStrict, b'{"must":3}', "lazy"),  # a required key missing: the dict path decides
    (RdStrict, b'{"key":"k","must":null}', "lazy"),  # ... or null
    (RdStrict, b'{"key":"k","must":3,"line":5}', "raw"),
    (RdPost, b'{"a":21}', "raw"),
    (RdPrivate, b'{"value":"v"}', "raw"),
    (RdPrivate, b'{"value":"v","_cache":{"no":1}}', "lazy"),
    (RdStamp, b'{"label":"l"}', "raw"),
]


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        obj = fn(*args)
    except (errors.MmateError, ValueError) as exc:
        return "error", (type(exc), str(exc))
    except TypeError:
        return "error", TypeError
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return "ok", (type(obj), fields, dict(vars(obj)))


def _body(cls: type, raw: bytes, cid: str | None) -> bytes:
    corr = b'' if cid is None else b'"correlationId":"' + cid.encode() + b'",'
    return (b'{"id":"msg-id","type":"' + cls.__name__.encode() + b'","timestamp":"' + TS.encode() + b'",'
            + corr + b'"headers":{"x-a":"b"},"payload":' + raw + b'}')


def _general(cls: type, raw: bytes, cid: str | None) -> tuple[str, Any]:
    payload = json.loads(raw)  # exact integers, as the envelope reads them
    if type(payload) is not dict:
        return "error", TypeError
    return _outcome(_plan.plan_for(cls).generated_decoder(top=True), payload, "msg-id", cls.__name__,
                    TS, cid)


@pytest.mark.parametrize("reader_impl", READERS)
@pytest.mark.parametrize("env_impl", ENVELOPES)
@pytest.mark.parametrize("cls,raw,path", CASES, ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_decode_envelope_equals_the_generated_decoder(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType,
                                                      env_impl: ModuleType, cls: type, raw: bytes,
                                                      path: str) -> None:
    monkeypatch.setattr(_plan, "_reader", reader_impl)
    reader = _plan.plan_for(cls).payload_reader(top=True)
    env_compiled = env_impl.__name__.startswith("mmate_fast._cy")
    both_compiled = env_compiled and reader_impl.__name__.startswith("mmate_fast._cy")
    for cid in (None, "", "corr-1"):
        env = env_impl.decode_envelope(_body(cls, raw, cid))
        assert (env.raw_payload is not None) == (env_compiled and path != "eager"), raw
        got = _outcome(reader.decode_envelope, env)
        assert got == _general(cls, raw, cid), (raw, cid)
        assert (env.raw_payload is not None) == (both_compiled and path == "raw"), (raw, cid)
        assert env.payload == json.loads(raw)  # decoded on first access


@pytest.mark.parametrize("env_impl", ENVELOPES)
def test_bad_json_payloads_fail_at_the_envelope(env_impl: ModuleType) -> None:
    """NaN, a bare word, a cut-off object: the envelope decode refuses them as before (not-json)."""
    for raw in (b'{"amount":NaN}', b'{"amount":tru}', b'{"amount":1', b'{"amount":01}', b'{"a" 1}'):
        with pytest.raises(errors.EnvelopeError) as info:
            env_impl.decode_envelope(_body(RdOrderPlaced, raw, None))
        assert info.value.reason == "not-json"


@pytest.mark.parametrize("reader_impl", READERS)
def test_a_set_payload_replaces_the_raw_one(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType) -> None:
    monkeypatch.setattr(_plan, "_reader", reader_impl)
    from mmate_fast._ext import load
    env = load("envelope").decode_envelope(_body(RdOrderPlaced, b'{"orderId":"raw","amount":1}', None))
    env.payload = {"orderId": "set", "amount": 2.0}
    assert env.raw_payload is None
    msg = _plan.plan_for(RdOrderPlaced).payload_reader(top=True).decode_envelope(env)
    assert (msg.order_id, msg.amount) == ("set", 2.0)


@dataclasses.dataclass
class RawCodec(Event):
    text: str = ""


class RawModel(pydantic.BaseModel):
    text: str = ""


def test_plan_decode_envelope_follows_the_codec() -> None:
    """``ContractPlan.decode_envelope``: the reader's for a dataclass, the general one for a pydantic
    model and after ``use_codec`` (the codec decides; a payload that is no dict: TypeError)."""
    from mmate_fast._ext import load
    envelope = load("envelope")
    plan = _plan.plan_for(RawCodec)
    env = envelope.decode_envelope(_body(RawCodec, b'{"text":"t"}', None))
    assert plan.decode_envelope(env).text == "t"
    plan.use_codec(plan.encode, lambda p, i, t, ts, c: RawCodec(text=p["text"].upper(), id=i))
    env = envelope.decode_envelope(_body(RawCodec, b'{"text":"t"}', None))
    assert plan.decode_envelope(env).text == "T"
    with pytest.raises(TypeError):
        plan.decode_envelope(envelope.decode_envelope(_body(RawCodec, b'[1]', None)))
    model = _plan.plan_for(RawModel)
    env = envelope.decode_envelope(_body(RawModel, b'{"text":"m"}', None))
    assert model.decode_envelope(env).text == "m"


@pytest.mark.parametrize("env_impl", ENVELOPES)
def test_from_envelope_reads_the_raw_payload(env_impl: ModuleType) -> None:
    """The general path's ``from_envelope`` takes the same route (and a GenericMessage still gets the
    payload dict)."""
    reg = TypeRegistry()
    reg.register(RdOrderPlaced)
    env = env_impl.decode_envelope(_body(RdOrderPlaced, b'{"orderId":"o","amount":2}', "c"))
    msg = from_envelope(env, reg)
    assert (msg.order_id, msg.amount, msg.correlation_id) == ("o", 2.0, "c")
    env = env_impl.decode_envelope(_body(RdStamp, b'{"label":"l"}', None))
    assert from_envelope(env, reg).payload == {"label": "l"}


@pytest.mark.parametrize("reader_impl", READERS)
def test_numbers_read_raw_equal_orjson(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType) -> None:
    """Random integers and floats (every length up to the plain limit) come out as orjson reads them."""
    import random

    from mmate_fast._ext import load
    monkeypatch.setattr(_plan, "_reader", reader_impl)
    reader = _plan.plan_for(RdOrderPlaced).payload_reader(top=True)
    rnd = random.Random(11)
    for _ in range(3000):
        digits = rnd.randint(1, 16)
        f = round(rnd.uniform(-1, 1) * 10 ** rnd.randint(0, 17 - digits), digits)
        tok = repr(f) if "e" not in repr(f) else "0.5"
        i = rnd.randint(-(10 ** rnd.randint(1, 17)), 10 ** rnd.randint(1, 17))
        raw = b'{"orderId":"n","amount":' + tok.encode() + b',"extra":' + str(i).encode() + b'}'
        env = load("envelope").decode_envelope(_body(RdOrderPlaced, raw, None))
        msg = reader.decode_envelope(env)
        want = orjson.loads(raw)
        assert (msg.amount, msg.extra) == (want["amount"], want["extra"]), raw
        assert type(msg.extra) is int and type(msg.amount) is float
