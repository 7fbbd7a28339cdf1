"""The payload reader's instance build (session 9): the compiled reader keeps one decode's values in a
C array (on the stack up to 32 fields, else on the heap; never shared between decodes, so a
recursive contract that decodes its own class inside a converter is safe) and reads the compiled
Envelope's fields from its struct. These tests pin what that must not change: values and errors
equal the generated decoder's for every path (exact compiled envelope, a subclass of it, a
duck-typed envelope), wide classes, recursive classes, and no reference leaks on success, decline
or error."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from types import ModuleType
from typing import Any

import pytest

from mmate_fast.contracts import Event, _plan
from tests.unit._impls import impl_params
from tests.unit.test_payload_raw import _body, _general, _outcome
from tests.unit.test_payload_reader import RdOrderPlaced

READERS = impl_params("payload_reader")
ENVELOPES = impl_params("envelope")


@dataclasses.dataclass
class Node:
    """A recursive value: its children are decoded by the same nested reader while the outer
    decode of that reader still holds its values."""

    name: str = ""
    weight: float = 0.0
    children: list[Node] = dataclasses.field(default_factory=list)
    parent: Node | None = None


@dataclasses.dataclass
class RdNode(Event):
    root: Node | None = None
    label: str = ""


_WIDE_FIELDS = [(f"f{i:02d}", int if i % 3 == 0 else str if i % 3 == 1 else bool) for i in range(40)]
RdWide = dataclasses.make_dataclass(
    "RdWide", [(n, t, dataclasses.field(default=t())) for n, t in _WIDE_FIELDS], bases=(Event,),
    namespace={"__module__": __name__})


def _wide_raw(skip: int = -1, bad: int = -1) -> bytes:
    parts = []
    for i, (n, t) in enumerate(_WIDE_FIELDS):
        if i == skip:
            continue
        v = (i if t is int else f"s{i}" if t is str else i % 2 == 0)
        if i == bad:
            v = [i]
        parts.append(f'"{n}":{json.dumps(v)}')
    return ("{" + ",".join(parts) + "}").encode()


WIDE_CASES = [_wide_raw(), _wide_raw(skip=0), _wide_raw(skip=39), _wide_raw(bad=1), _wide_raw(bad=38),
              _wide_raw(skip=5, bad=33), _wide_raw()[:-1] + b',"F00":7}', b'{}']

NODE_CASES = [
    b'{"label":"t","root":{"name":"root","weight":1.5,"children":[{"name":"a","children":[{"name":"a1",'
    b'"weight":2}]},{"name":"b","parent":{"name":"p"}}]}}',
    b'{"root":{"name":"root","children":[{"name":"a","children":[{"name":5}]}]}}',  # a bad leaf
    b'{"root":{"name":"root","children":[{"name":"a","children":[{"Name":"folded"}]}]}}',
    b'{"root":{"name":"r","children":null,"parent":null}}',
    b'{"root":{"name":"r","children":[{"name":"c","weight":"heavy"}],"weight":1},"label":"x"}',
]


def _check_cases(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType, env_impl: ModuleType,
                 cls: type, raws: list[bytes]) -> None:
    monkeypatch.setattr(_plan, "_reader", reader_impl)
    reader = _plan.plan_for(cls).payload_reader(top=True)
    for raw in raws:
        for cid in (None, "corr-9"):
            want = _general(cls, raw, cid)
            env = env_impl.decode_envelope(_body(cls, raw, cid))
            assert _outcome(reader.decode_envelope, env) == want, (raw, cid)
            env = env_impl.decode_envelope(_body(cls, raw, cid))
            assert _outcome(reader.decode, env.payload, env.id, env.type, env.timestamp,
                            env.correlation_id) == want, (raw, cid)


@pytest.mark.parametrize("reader_impl", READERS)
@pytest.mark.parametrize("env_impl", ENVELOPES)
def test_a_wide_class_equals_the_generated_decoder(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType,
                                                   env_impl: ModuleType) -> None:
    """40 fields (the compiled reader's values on the heap): values and errors as the general path."""
    _check_cases(monkeypatch, reader_impl, env_impl, RdWide, WIDE_CASES)


@pytest.mark.parametrize("reader_impl", READERS)
@pytest.mark.parametrize("env_impl", ENVELOPES)
def test_a_recursive_class_equals_the_generated_decoder(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType,
                                                        env_impl: ModuleType) -> None:
    """A converter decodes the same class again while the outer decode holds its values."""
    _check_cases(monkeypatch, reader_impl, env_impl, RdNode, NODE_CASES)
    msg = _plan.plan_for(RdNode).payload_reader(top=True).decode_envelope(
        env_impl.decode_envelope(_body(RdNode, NODE_CASES[0], None)))
    assert [c.name for c in msg.root.children] == ["a", "b"]
    assert msg.root.children[0].children[0].weight == 2.0 and msg.root.children[1].parent.name == "p"


class _DuckEnvelope:
    """Not an Envelope at all: what the reader reads by attribute."""

    def __init__(self, env: Any, raw: bytes | None) -> None:
        self.id, self.type, self.timestamp = "duck-id", env.type, env.timestamp
        self.correlation_id = "duck-cid"
        self.raw_payload = raw
        self.payload = json.loads(raw) if raw is not None else env.payload


@pytest.mark.parametrize("reader_impl", READERS)
@pytest.mark.parametrize("env_impl", ENVELOPES)
def test_other_envelopes_are_read_by_attribute(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType,
                                               env_impl: ModuleType) -> None:
    """A subclass of the envelope class that overrides a field, and a duck-typed envelope holding raw
    payload bytes: the reader uses what their attributes say (``decode``'s arguments)."""
    monkeypatch.setattr(_plan, "_reader", reader_impl)
    reader = _plan.plan_for(RdOrderPlaced).payload_reader(top=True)
    raw = b'{"orderId":"o-1","amount":2.5,"paid":true}'

    class SubEnvelope(env_impl.Envelope):  # type: ignore[name-defined,misc]
        id = property(lambda self: "sub-id", lambda self, value: None)

    base = env_impl.decode_envelope(_body(RdOrderPlaced, raw, "c-1"))
    sub = SubEnvelope("x", base.type, base.timestamp, "c-1", None, {}, json.loads(raw))
    msg = reader.decode_envelope(sub)
    assert (msg.id, msg.order_id, msg.amount, msg.paid, msg.correlation_id) == ("sub-id", "o-1", 2.5, True, "c-1")
    for held in (raw, None):
        duck = _DuckEnvelope(base, held)
        msg = reader.decode_envelope(duck)
        assert (msg.id, msg.correlation_id, msg.order_id, msg.amount) == ("duck-id", "duck-cid", "o-1", 2.5)
        assert _outcome(reader.decode_envelope, duck) == _outcome(
            reader.decode, duck.payload, duck.id, duck.type, duck.timestamp, duck.correlation_id)


@pytest.mark.parametrize("reader_impl", READERS)
@pytest.mark.parametrize("env_impl", ENVELOPES)
def test_no_reference_is_leaked(monkeypatch: pytest.MonkeyPatch, reader_impl: ModuleType,
                                env_impl: ModuleType) -> None:
    """Decoded, declined (a required key missing), failed (a bad value after good ones) and nulls:
    the shared objects' reference counts come back (a leak of one per decode would show 500)."""
    monkeypatch.setattr(_plan, "_reader", reader_impl)
    reader = _plan.plan_for(RdOrderPlaced).payload_reader(top=True)
    bodies = [
        _body(RdOrderPlaced, b'{"orderId":"o","amount":1,"paid":true,"note":null,"extra":null}', None),
        _body(RdOrderPlaced, b'{"amount":1,"paid":true,"note":null}', None),  # required missing
        _body(RdOrderPlaced, b'{"orderId":"o","amount":1,"paid":true,"note":null,"count":"x"}', None),
        _body(RdOrderPlaced, b'{"orderId":"o","amount":1,"paid":false,"unknown":null}', None),
    ]

    def run(n: int) -> None:
        for _ in range(n):
            for body in bodies:
                with contextlib.suppress(Exception):  # the failing body raises each time
                    reader.decode_envelope(env_impl.decode_envelope(body))

    run(5)  # warm: caches, the first decode's one-off objects
    before = (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None))
    run(500)
    after = (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None))
    assert all(abs(a - b) < 50 for a, b in zip(after, before, strict=True)), (before, after)
