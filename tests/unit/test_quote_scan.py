"""Strings of a clean body end at the next quote (the compiled envelope decoder and payload reader
search for it with no escape handling): wherever it sits (every string length and start offset, a
string cut off by the end of the body) they must find it, read the body on the plain path, and give
what the twin gives."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._py import envelope as twin
from mmate_fast.contracts import Event, TypeRegistry, from_envelope
from tests.unit._impls import NO_EXT

pytestmark = pytest.mark.skipif(NO_EXT, reason="MMATE_NO_EXTENSIONS=1")


@dataclass
class QuoteScanned(Event):
    name: str = ""
    note: str = ""


def _bodies() -> list[bytes]:
    out = []
    for k in range(0, 20):
        s = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(k))
        for pad in range(0, 9):
            key = b"k" * (pad + 1)
            out.append(b'{"id":"' + s + b'","type":"QuoteScanned","headers":{"' + key + b'":"' + s + b'"},'
                       b'"payload":{"name":"' + s + b'","note":"' + key + s + b'"}}')
            out.append(b'{"type":"QuoteScanned","payload":{"name":"' + key + s)  # cut inside a string
    return out


def _outcome(E: Any, body: bytes, registry: TypeRegistry) -> tuple[str, Any]:
    try:
        env = E.decode_envelope(body)
    except errors.EnvelopeError as exc:
        return "error", (exc.reason, str(exc))
    msg = from_envelope(env, registry)  # first: the compiled reader reads the raw payload
    return "ok", (env.id, env.type, env.headers, env.payload, type(msg), vars(msg))


def test_a_string_ends_at_its_quote_wherever_it_sits() -> None:
    from mmate_fast._cy import envelope as compiled

    registry = TypeRegistry()
    registry.register(QuoteScanned)
    for body in _bodies():
        assert _outcome(compiled, body, registry) == _outcome(twin, body, registry), body
        if body.endswith(b"}}"):  # read by the plain path (a wrong quote would send it the general way)
            assert compiled.decode_envelope(body).raw_payload is not None, body
