"""Micro-benchmarks: compiled codec vs pure-Python twin vs pamqp (run with --benchmark-only).

pamqp gets the loop a good pamqp user writes: the frame size read from the 7-byte frame header at
an offset, one exact slice per frame handed to ``frame.unmarshal`` (linear; pamqp's decoders need
bytes, not a memoryview). Publishing is timed both ways, for both: properties encoded once (how our
client publishes, from its message templates) and built and encoded per message.
"""
from __future__ import annotations

import importlib
import struct
from typing import Any

import pytest
from pamqp import body as pbody
from pamqp import commands as pc
from pamqp import encode as penc
from pamqp import frame as pframe
from pamqp import header as pheader

IMPLS = {"cy": importlib.import_module("mmate_fast._cy.frames"), "py": importlib.import_module("mmate_fast._py.frames")}
POOLS = {"cy": importlib.import_module("mmate_fast._cy.pool"), "py": importlib.import_module("mmate_fast._py.pool")}
BODY = b"x" * 300
HEADERS = {"x-message-type": "OrderCreated", "x-message-id": "0b5e0000-0000-4000-8000-000000000001",
           "attempt": 2, "source": "mmate", "x-version": "1.0"}
PROPS = pc.Basic.Properties(content_type="application/json", delivery_mode=2, headers=HEADERS)
ONE = (pframe.marshal(pc.Basic.Deliver("ctag", 1, False, "ex", "rk"), 1)
       + pframe.marshal(pheader.ContentHeader(0, len(BODY), PROPS), 1) + pframe.marshal(pbody.ContentBody(BODY), 1))
CHUNK = ONE * 1000
_FRAME_HEADER = struct.Struct(">BHI")  # frame type, channel, payload size (+ payload + frame end)


@pytest.mark.parametrize("props", ["pre-encoded", "per-message"])
@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_append_publish(benchmark: Any, impl: str, props: str) -> None:
    """One publish framed (method, content header, body). ``pre-encoded``: the properties encoded once
    (our client's path, from its message templates; pamqp reuses its marshalled content-header frame
    likewise); ``per-message``: built and encoded for every publish, on both sides."""
    per_message = props == "per-message"
    out = bytearray()
    if impl == "pamqp":
        marshal, method, content, body = pframe.marshal, pc.Basic.Publish, pheader.ContentHeader, pbody.ContentBody
        header = marshal(content(0, len(BODY), PROPS), 1)

        def run() -> None:
            del out[:]
            out.extend(marshal(method(exchange="ex", routing_key="rk"), 1))
            out.extend(marshal(content(0, len(BODY), pc.Basic.Properties(
                content_type="application/json", delivery_mode=2, headers=HEADERS)), 1) if per_message else header)
            out.extend(marshal(body(BODY), 1))
        benchmark(run)
        return
    F = IMPLS[impl]
    ap, encode, properties = F.append_publish, F.encode_properties, F.BasicProperties
    enc = encode(properties(content_type="application/json", delivery_mode=2, headers=HEADERS))

    def run_ours() -> None:
        del out[:]
        ap(out, 1, "ex", "rk", BODY, encode(properties(content_type="application/json", delivery_mode=2,
                                                        headers=HEADERS)) if per_message else enc)
    benchmark(run_ours)


def _decoded(encoded: bytes) -> tuple[Any, ...]:
    """(content type, delivery mode, headers) of encoded properties, as pamqp reads them."""
    header = pheader.ContentHeader()
    header.unmarshal(struct.pack(">HHQ", 60, 0, 0) + encoded)
    p = header.properties
    return p.content_type, p.delivery_mode, p.headers


@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_encode_properties(benchmark: Any, impl: str) -> None:
    """Basic properties (content type, delivery mode, 5 headers) built and encoded, without framing
    (the bytes differ only in header order and integer field types; the values are the same)."""
    if impl == "pamqp":
        def run() -> bytes:
            return bytes(pc.Basic.Properties(content_type="application/json", delivery_mode=2,
                                             headers=HEADERS).marshal())
    else:
        encode, props = IMPLS[impl].encode_properties, IMPLS[impl].BasicProperties

        def run() -> bytes:
            return bytes(encode(props(content_type="application/json", delivery_mode=2, headers=HEADERS)))
    assert _decoded(benchmark(run)) == ("application/json", 2, HEADERS)


@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_feed_1000_deliveries(benchmark: Any, impl: str) -> None:
    if impl == "pamqp":
        def run() -> int:
            data, pos, n, end = CHUNK, 0, 0, len(CHUNK)
            unmarshal, frame_size = pframe.unmarshal, _FRAME_HEADER.unpack_from
            while pos < end:
                nxt = pos + 8 + frame_size(data, pos)[2]
                unmarshal(data[pos:nxt])
                pos = nxt
                n += 1
            return n
        assert benchmark(run) == 3000
        return
    F = IMPLS[impl]

    def run_ours() -> int:
        return len(F.FrameReader().feed(CHUNK))
    assert benchmark(run_ours) == 1000


def _poison_chunk() -> bytes:
    """1000 deliveries whose header table nests deeper than 64 (decoded as far as it goes, then kept
    raw) and whose routing key is not UTF-8."""
    deep = b"\x00\x00\x00\x00"
    for _ in range(70):
        deep = struct.pack(">I", len(deep) + 3) + b"\x01dF" + deep
    props = b"\x20\x00" + deep
    method = b"\x00\x3c\x00\x3c\x04ctag" + struct.pack(">QB", 1, 0) + b"\x02ex\x04rk\xff\xfe"
    header = b"\x00\x3c\x00\x00" + struct.pack(">Q", len(BODY)) + props

    def frame(ftype: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", ftype, 1, len(payload)) + payload + b"\xce"
    return (frame(1, method) + frame(2, header) + frame(3, BODY)) * 1000


POISON_CHUNK = _poison_chunk()


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_feed_1000_poison_deliveries(benchmark: Any, impl: str) -> None:
    F = IMPLS[impl]

    def run() -> int:
        items = F.FrameReader().feed(POISON_CHUNK)
        assert items[-1].undecodable
        return len(items)
    assert benchmark(run) == 1000


@pytest.mark.parametrize("impl", ["cy", "py", "pamqp"])
def test_encode_table(benchmark: Any, impl: str) -> None:
    if impl == "pamqp":
        benchmark(penc.field_table, HEADERS)
    else:
        benchmark(IMPLS[impl].encode_table, HEADERS)


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_confirm_add_ack(benchmark: Any, impl: str) -> None:
    t = POOLS[impl].ConfirmTracker(lambda tag: RuntimeError(tag))

    def run() -> None:
        t.ack(t.add(None), False)
    benchmark(run)
