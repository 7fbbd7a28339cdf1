"""The compiled contract encode plan (wire.PayloadWriter, compiled + twin) against the general path:
its payload JSON must equal ``encode_json(to_payload(msg))`` byte for byte for random field values
(Go's string escapes, floats on both sides of Go's notation switch, ints beyond 64 bits, None,
nested dataclasses, enums, omitempty and fallback fields), and ``build`` must give the same body
with the writer as without it."""
from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmate_fast.contracts import Command, Event, Query, Reply, payload_json, to_payload, wire_field
from mmate_fast.contracts._plan import ENVELOPE_WIRE, _encode_any, plan_for
from tests.unit._impls import impl_params

_penv = importlib.import_module("mmate_fast._py.envelope")
SPECIALS = list("<>&\u2028\u2029\x00\x01\x1f\"\\/é€😀\ufeff")
TEXT = st.text(st.one_of(st.sampled_from(SPECIALS), st.characters(blacklist_categories=("Cs",))), max_size=30)
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([0.0, -0.0, 1e-4, 9.9999e-5, 1e16, 9999999999999998.0, 10.0, -2.5, 1e21,
                                    1e-7, 123456789.125]))
INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**70), 2**70))


IMPLS = [p.values[0] for p in impl_params("wire") if p.values[0] is not None]  # type: ignore[attr-defined]


@pytest.fixture(params=impl_params("wire"))
def W(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Inner:
    name: str = ""
    weight: float = 0.0


@dataclass
class Shipment(Event):
    text: str = ""
    count: int = 0
    ratio: float = 0.0
    flag: bool = False
    maybe: str | None = None
    anything: Any = None
    items: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    color: Color = Color.RED
    note: str = wire_field(default="", omitempty=True)
    alias: str = wire_field(default="", wire="Alias")


def _writer(W: ModuleType, cls: type) -> Any:
    fields = [(f.attr, f.wire, f.omitempty, f.fallback, not f.needs_encoding)
              for f in plan_for(cls).fields() if f.wire not in ENVELOPE_WIRE]
    return W.PayloadWriter(fields, _encode_any)


@settings(max_examples=150, deadline=None)
@given(text=TEXT, count=INTS, ratio=FLOATS, flag=st.booleans(), maybe=st.one_of(st.none(), TEXT),
       anything=st.one_of(st.none(), INTS, FLOATS, TEXT, st.lists(INTS, max_size=3)),
       items=st.lists(INTS, max_size=3), inner=st.builds(Inner, TEXT, FLOATS),
       color=st.sampled_from(list(Color)), note=TEXT, seq=INTS)
def test_writer_equals_dict_path(text: str, count: int, ratio: float, flag: bool,
                                 maybe: str | None, anything: Any, items: list[int], inner: Inner,
                                 color: Color, note: str, seq: int) -> None:
    msg = Shipment(text=text, count=count, ratio=ratio, flag=flag, maybe=maybe, anything=anything,
                   items=items, inner=inner, color=color, note=note, alias=text, aggregate_id=text,
                   sequence=seq)
    want = _penv.encode_json(to_payload(msg))
    for W in IMPLS:
        assert _writer(W, Shipment).encode(msg) == want


def test_writer_grows_past_its_stack_buffer(W: ModuleType) -> None:
    """Payloads far beyond the writer's 1 KiB stack buffer (escapes grow 6x) come out whole."""
    w = _writer(W, Shipment)
    for n in (150, 170, 1000, 20000):
        msg = Shipment(text="<\u2028é" * n, note="x" * n, items=list(range(n)), alias="\x01" * n)
        assert w.encode(msg) == _penv.encode_json(to_payload(msg))


def test_writer_leaves_unencodable_values_to_the_general_path(W: ModuleType) -> None:
    """NaN, a str with a lone surrogate, an object the codec refuses: None (no partial JSON)."""
    w = _writer(W, Shipment)
    for msg in (Shipment(ratio=float("nan")), Shipment(text="\ud800"), Shipment(anything=object())):
        assert w.encode(msg) is None


def test_payload_json_is_what_build_sends() -> None:
    """``payload_json`` (the compiled plan, when extensions are on) and the dict path give one body."""
    from mmate_fast.messaging.outgoing import build

    msg = Shipment(text="a<b>&\u2028", count=2**64 + 3, ratio=10.0, items=[1, 2], anything={"z": 1, "a": 0.5},
                   aggregate_id="agg", sequence=7)
    msg.id = "00000000-0000-4000-8000-000000000000"
    pj = payload_json(msg)
    assert pj == _penv.encode_json(to_payload(msg))
    body = build(msg, persistent=False).body
    assert body.endswith(b',"payload":' + pj + b"}")


@dataclass
class Ask(Query):
    text: str = ""


@dataclass
class Answer(Reply):
    text: str = ""


@dataclass
class Order(Command):
    text: str = ""


@settings(max_examples=60, deadline=None)
@given(text=TEXT, corr=st.one_of(st.none(), st.just(""), TEXT), agg=TEXT, seq=INTS, ok=st.booleans(),
       reply_to=st.one_of(st.none(), st.just(""), TEXT), env_rt=st.booleans(), rt_header=st.booleans(),
       persistent=st.booleans())
def test_one_call_build_equals_general_build(text: str, corr: str | None, agg: str, seq: int, ok: bool,
                                             reply_to: str | None, env_rt: bool, rt_header: bool,
                                             persistent: bool) -> None:
    """build's one-call compiled path (MessageTemplate.encode_message) gives the bytes of its
    general path (forced here with a twin template, whose encode_message always declines), for every
    kind: event headers, reply success, command/query reply addresses, correlation ids."""
    from mmate_fast.messaging import outgoing

    twin = importlib.import_module("mmate_fast._py.wire")
    msgs = [Shipment(text=text, aggregate_id=agg, sequence=seq, correlation_id=corr),
            Ask(text=text, reply_to=text), Answer(text=text, success=ok), Order(text=text, target_service="svc"),
            Answer(text=text, success=ok, correlation_id=corr)]
    for msg in msgs:
        msg.id = "6f1c2a9e-3b7d-4c1e-9a2f-5d8e7b6c4a31"
        opts: dict[str, Any] = {"persistent": persistent, "reply_to": reply_to, "envelope_reply_to": env_rt,
                                "reply_to_header": rt_header}
        for _ in range(3):  # the two builds may straddle a second (the envelope timestamp)
            fast = outgoing.build(msg, **opts)
            real = outgoing._template
            try:
                outgoing._template = lambda *a: twin.MessageTemplate(  # type: ignore[assignment]
                    *outgoing._static_headers(*a), type_name=a[0], delivery_mode=2 if a[5] else 1)
                general = outgoing.build(msg, **opts)
            finally:
                outgoing._template = real  # type: ignore[assignment]
            if fast.body[:200] == general.body[:200] or b"timestamp" not in fast.body:
                break
        assert (fast.body, fast.properties, fast.message_id, fast.correlation_id, fast.reply_to) == \
            (general.body, general.properties, general.message_id, general.correlation_id, general.reply_to)
        assert _plain(fast.headers) == _plain(general.headers)


def _plain(headers: dict[str, Any]) -> dict[str, Any]:
    """Headers with each Typed as (tag, value): the twin's and the compiled frame codec's compare."""
    return {k: (v.tag, v.value) if hasattr(v, "tag") else v for k, v in headers.items()}


def test_a_hand_written_codec_wins_over_a_cached_writer() -> None:
    """use_codec after the class was published once (its writer cached by the template): the next
    build sends the hand-written payload, not the writer's."""
    from mmate_fast.contracts import contract_plan
    from mmate_fast.messaging.outgoing import build

    @dataclass
    class Custom(Event):
        text: str = ""

    msg = Custom(text="x", aggregate_id="a")
    assert build(msg).body.endswith(b',"payload":{"aggregateId":"a","sequence":0,"text":"x"}}')
    plan = contract_plan(Custom)
    plan.use_codec(lambda m: {"t": m.text}, plan.decode)
    assert build(msg).body.endswith(b',"payload":{"t":"x"}}')


#: decimals of 1-17 significant digits anywhere in (and around) the range the compiled writer prints
#: without Python's dtoa (1e-4 <= |x| < 1e16, at most 15 digits), both signs
SHORT_DECIMALS = st.builds(lambda digits, scale, neg: float(f"{'-' if neg else ''}{digits}e-{scale}"),
                           st.integers(1, 10**17 - 1), st.integers(0, 24), st.booleans())
FLOAT_EDGES = [1e-4, 1.0000000000000002e-4, 9.999999999999999e-5, 1e15, 999999999999999.0,
               999999999999999.9, 99999999999999.99, 1e16, 9999999999999998.0, 0.1 + 0.2, 9.95, 0.5, 1.0,
               2.0**53, 123456789012345.6, 123456789012345.0, 10.42, 0.001, 1234.5678]


@settings(max_examples=500, deadline=None)
@given(x=st.one_of(SHORT_DECIMALS, st.floats(allow_nan=False, allow_infinity=False),
                   st.floats(1e-4, 1e16), st.sampled_from(FLOAT_EDGES + [-e for e in FLOAT_EDGES])))
def test_writer_floats_equal_the_dict_path(x: float) -> None:
    """A float field prints as the general path does (Python's shortest repr, Go's form): the compiled
    writer's own short-decimal formatter (no dtoa for up to 15 significant digits) included."""
    inner = Inner(weight=x)
    want = _penv.encode_json(to_payload(inner))
    for W in IMPLS:
        assert _writer(W, Inner).encode(inner) == want
