"""Frame codec (both implementations) against pamqp as the reference, golden mmate-go vectors and
every error path."""
from __future__ import annotations

import datetime
import decimal
import glob
import json
import struct
from types import ModuleType
from typing import Any

import pytest
from pamqp import body as pbody
from pamqp import commands as pc
from pamqp import frame as pframe
from pamqp import header as pheader

from mmate_fast.errors import FrameError
from tests.vectors import VECTORS as VECTOR_DIR

from ._impls import impl_params

VECTORS = sorted(glob.glob(str(VECTOR_DIR / "*.amqp.json")))


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


UTC = datetime.UTC
ALL_TYPES_TABLE: dict[str, Any] = {
    "bool": True, "small": 5, "neg": -100, "short": 300, "ushort": 40000, "int": -70000,
    "uint": 3_000_000_000, "long": 2**40, "float": 1.5, "str": "héllo", "dec": decimal.Decimal("3.14"),
    "ts": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), "nested": {"a": [1, "x", None, {"b": False}]},
    "none": None, "bytes": bytearray(b"\x00\x01"),
}


def all_props(headers: dict[str, Any] | None = None) -> pc.Basic.Properties:
    return pc.Basic.Properties(
        content_type="application/json", content_encoding="gzip", headers=headers or ALL_TYPES_TABLE,
        delivery_mode=2, priority=7, correlation_id="corr", reply_to="rq", expiration="6000",
        message_id="mid", timestamp=datetime.datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
        message_type="Kind", user_id="guest", app_id="app")


def props_dict(p: pc.Basic.Properties) -> dict[str, Any]:
    d = {k: v for k, v in dict(p).items() if v is not None and v != ""}
    if "message_type" in d:
        d["type"] = d.pop("message_type")
    if "timestamp" in d:
        d["timestamp"] = int(d["timestamp"].timestamp())
    if "headers" in d:
        d["headers"] = norm(d["headers"])
    return d


def norm(v: Any) -> Any:
    """bytearray -> bytes so pamqp and our values compare."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def content(channel: int, method: Any, props: pc.Basic.Properties, body: bytes, frame_max: int = 131072) -> bytes:
    out = pframe.marshal(method, channel)
    out += pframe.marshal(pheader.ContentHeader(0, len(body), props), channel)
    step = frame_max - 8
    for i in range(0, len(body), step):
        out += pframe.marshal(pbody.ContentBody(body[i:i + step]), channel)
    return out


def feed_all(F: ModuleType, data: bytes, step: int = 0, frame_max: int = 131072) -> list[Any]:
    r = F.FrameReader(frame_max)
    items: list[Any] = []
    if step:
        for i in range(0, len(data), step):
            items += r.feed(data[i:i + step])
    else:
        items += r.feed(data)
    assert r.pending() == 0
    return items


# --------------------------------------------------------------------------- encoding vs pamqp
@pytest.mark.parametrize("size", [0, 1, 300, 4088, 4089, 20000])
@pytest.mark.parametrize("mandatory", [False, True])
def test_append_publish_unmarshals_with_pamqp(F: ModuleType, size: int, mandatory: bool) -> None:
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    props = F.BasicProperties(content_type="text/plain", delivery_mode=2, headers={"a": 1, "b": "x"},
                              timestamp=1700000000, type="T", message_id="m")
    out = bytearray(b"prefix")
    F.append_publish(out, 7, "ex.é", "rk", memoryview(body), F.encode_properties(props), mandatory, 4096)
    data, pos, frames = bytes(out), 6, []
    while pos < len(data):
        used, ch, obj = pframe.unmarshal(data[pos:])
        assert ch == 7
        frames.append(obj)
        pos += used
    pub, hdr, bodies = frames[0], frames[1], frames[2:]
    assert isinstance(pub, pc.Basic.Publish)
    assert (pub.exchange, pub.routing_key, pub.mandatory, pub.immediate) == ("ex.é", "rk", mandatory, False)
    assert hdr.body_size == size
    assert props_dict(hdr.properties) == {"content_type": "text/plain", "delivery_mode": 2, "headers": {"a": 1, "b": "x"},
                                          "timestamp": 1700000000, "type": "T", "message_id": "m"}
    assert b"".join(b.value for b in bodies) == body
    assert all(len(b.value) <= 4088 for b in bodies)
    assert len(bodies) == -(-size // 4088)


def test_append_publish_rejects(F: ModuleType) -> None:
    out = bytearray()
    with pytest.raises(ValueError):
        F.append_publish(out, 1, "x" * 256, "rk", b"", b"\x00\x00")
    with pytest.raises(ValueError):
        F.append_publish(out, 1, "ex", "é" * 128, b"", b"\x00\x00")
    with pytest.raises(ValueError):
        F.append_publish(out, 1, "ex", "rk", b"", b"\x00\x00", False, 4095)
    assert out == b""


@pytest.mark.parametrize(("fn", "args", "expected"), [
    ("append_ack", (3, 99, True), pc.Basic.Ack(99, True)),
    ("append_ack", (3, 2**63 - 1, False), pc.Basic.Ack(2**63 - 1, False)),
    ("append_nack", (3, 5, True, False), pc.Basic.Nack(5, True, False)),
    ("append_nack", (3, 5, False, True), pc.Basic.Nack(5, False, True)),
    ("append_reject", (3, 6, False), pc.Basic.Reject(6, False)),
    ("append_reject", (3, 6, True), pc.Basic.Reject(6, True)),
])
def test_append_tag_methods(F: ModuleType, fn: str, args: tuple[Any, ...], expected: Any) -> None:
    out = bytearray()
    getattr(F, fn)(out, *args)
    assert bytes(out) == pframe.marshal(expected, 3)


def test_marshal_method_uses_go_safe_ints(F: ModuleType) -> None:
    m = pc.Queue.Declare(queue="q", durable=True, arguments={"x-message-ttl": 40000, "x-max-priority": 5})
    data = F.marshal_method(m, 1)
    assert b"\rx-message-ttlI\x00\x00\x9c\x40" in data
    assert b"x-max-priorityI\x00\x00\x00\x05" in data
    used, ch, back = pframe.unmarshal(data)
    assert (used, ch) == (len(data), 1)
    assert back.queue == "q" and back.durable and back.arguments == {"x-message-ttl": 40000, "x-max-priority": 5}


@pytest.mark.parametrize("method", [
    pc.Exchange.Declare(exchange="e", exchange_type="topic", durable=True, arguments={"alternate-exchange": "ae"}),
    pc.Queue.Bind(queue="q", exchange="e", routing_key="#", arguments={"x-match": "all", "n": 70000}),
    pc.Queue.Unbind(queue="q", exchange="e", routing_key="#", arguments={"n": 1}),
    pc.Exchange.Bind(destination="d", source="s", routing_key="r", arguments={"n": 2}),
    pc.Basic.Consume(queue="q", consumer_tag="c", no_ack=True, exclusive=True, arguments={"x-priority": 10}),
    pc.Connection.StartOk(client_properties={"product": "mmate", "capabilities": {"publisher_confirms": True}},
                          mechanism="PLAIN", response="\x00guest\x00guest", locale="en_US"),
    pc.Basic.Qos(prefetch_count=100), pc.Confirm.Select(), pc.Channel.Open(),
    pc.Queue.Declare(queue="", exclusive=True, auto_delete=True, nowait=True),
])
def test_marshal_method_roundtrips_with_pamqp(F: ModuleType, method: Any) -> None:
    data = F.marshal_method(method, 9)
    used, ch, back = pframe.unmarshal(data)
    assert (used, ch, type(back)) == (len(data), 9, type(method))
    assert dict(back) == dict(method)
    if "arguments" not in method and "client_properties" not in method:
        assert data == pframe.marshal(method, 9)


def test_plain_ints_never_use_u_i_L(F: ModuleType) -> None:
    for v in [0, 1, 127, 128, 255, 256, 32767, 32768, 40000, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
              2**32, 2**63 - 1, -1, -129, -32769, -(2**31), -(2**31) - 1, -(2**63)]:
        enc = F.encode_table({"k": v})
        tag = enc[6:7]
        assert tag == (b"I" if -(2**31) <= v < 2**31 else b"l"), v
        assert F.decode_table(enc) == ({"k": v}, len(enc))
    with pytest.raises(ValueError):
        F.encode_table({"k": 2**63})
    assert F.encode_table({"k": True})[6:8] == b"t\x01"


@pytest.mark.parametrize(("tag", "good", "bad"), [
    ("b", [-128, 127], [128, -129]), ("B", [0, 255], [256, -1]), ("s", [-32768, 32767], [32768]),
    ("u", [0, 65535], [65536, -1]), ("I", [-(2**31), 2**31 - 1], [2**31]), ("i", [0, 2**32 - 1], [2**32, -1]),
    ("l", [-(2**63), 2**63 - 1], [2**63]), ("L", [0, 2**64 - 1], [2**64, -1]),
])
def test_typed_int_ranges(F: ModuleType, tag: str, good: list[int], bad: list[int]) -> None:
    opt = {"go_safe": False} if tag in F.GO_UNSAFE_TAGS else {}  # tests/unit/test_go_unsafe_headers.py
    for v in good:
        enc = F.encode_table({"k": F.Typed(tag, v, **opt)})
        assert enc[6:7] == tag.encode()
        assert F.decode_table(enc)[0] == {"k": v}
    for v in bad:
        with pytest.raises(ValueError):
            F.encode_table({"k": F.Typed(tag, v, **opt)})
    with pytest.raises(TypeError):
        F.encode_table({"k": F.Typed(tag, "1", **opt)})


def test_encode_table_types(F: ModuleType) -> None:
    ts = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    table = {"s": "x", "t": False, "d": 2.5, "x": b"\xff", "V": None, "F": {"n": 1}, "A": [1, "a"],
             "T": ts, "D": decimal.Decimal("-12.345"), "f": F.Typed("f", 0.5), "S": F.Typed("S", b"\xff"),
             "tup": (1, 2)}
    enc = F.encode_table(table)
    got, end = F.decode_table(enc)
    assert end == len(enc)
    assert got == {"s": "x", "t": False, "d": 2.5, "x": b"\xff", "V": None, "F": {"n": 1}, "A": [1, "a"],
                   "T": ts, "D": decimal.Decimal("-12.345"), "f": 0.5, "S": b"\xff", "tup": [1, 2]}
    assert got["T"].tzinfo is not None
    # same bytes as pamqp for the types both encode the same way
    common = {"s": "x", "t": False, "F": {"n": "1"}, "T": ts, "D": decimal.Decimal("12.345"), "V": None}
    from pamqp import encode as penc
    assert F.encode_table(dict(sorted(common.items()))) == penc.field_table(common)
    for bad in [{"k": object()}, {1: 2}, {"k": F.Typed("Q", 1)}, {"k": F.Typed("V", 1)}]:
        with pytest.raises((TypeError, ValueError)):
            F.encode_table(bad)
    with pytest.raises(ValueError):
        F.encode_table({"k": decimal.Decimal("1e20")})
    with pytest.raises(ValueError):
        F.encode_table({"k" * 256: 1})


def test_decode_table_all_pamqp_tags(F: ModuleType) -> None:
    from pamqp import encode as penc
    raw = penc.field_table(ALL_TYPES_TABLE)
    got, end = F.decode_table(b"junk" + raw, 4)
    assert end == 4 + len(raw)
    assert got == norm(ALL_TYPES_TABLE)
    # RabbitMQ's 's' is signed, 'L' unsigned 64, 'f' float32
    extra = b"\x01ss\xff\xfe\x01LL\xff\xff\xff\xff\xff\xff\xff\xff\x01ff\x3f\xc0\x00\x00"
    got2, _ = F.decode_table(struct.pack(">I", len(extra)) + extra)
    assert got2 == {"s": -2, "L": 2**64 - 1, "f": 1.5}


def test_properties_roundtrip(F: ModuleType) -> None:
    p = F.BasicProperties(content_type="a", content_encoding="b", headers={"h": 1}, delivery_mode=1, priority=0,
                          correlation_id="c", reply_to="r", expiration="e", message_id="m", timestamp=5, type="t",
                          user_id="u", app_id="ap", cluster_id="cl")
    enc = F.encode_properties(p)
    back, end = F.decode_properties(enc)
    assert end == len(enc) and back == p and back.to_dict() == p.to_dict() and len(p.to_dict()) == 14
    assert F.encode_properties(None) == b"\x00\x00" == F.encode_properties(F.BasicProperties())
    assert "content_type='a'" in repr(back)
    with pytest.raises(ValueError):
        F.encode_properties(F.BasicProperties(delivery_mode=256))
    with pytest.raises(TypeError):
        F.encode_properties(F.BasicProperties(content_type=5))


@pytest.mark.parametrize("size", [1, 7, 8, 9, 15, 16, 17, 24])
def test_a_header_key_byte_above_0x7f_at_every_offset(F: ModuleType, size: int) -> None:
    """The header table's keys are checked 8 bytes at a time (compiled): a byte >= 0x80 anywhere in a
    key, in a whole word or the tail, sends the key to the UTF-8 decoder (valid: kept; not UTF-8:
    FrameError 502), as a key of plain ASCII bytes passes as it is."""
    def props(key: bytes) -> bytes:
        entry = bytes([len(key)]) + key + b"S" + struct.pack(">I", 1) + b"v"
        return b"\x20\x00" + struct.pack(">I", len(entry)) + entry

    plain = b"k" * size
    assert F.decode_properties(props(plain))[0].headers == {plain.decode(): "v"}
    for at in range(size):
        for odd, valid in ((b"\xc3\xa9", True), (b"\xff", False), (b"\x80", False)):
            key = plain[:at] + odd + plain[at + 1:]
            if valid:
                assert F.decode_properties(props(key))[0].headers == {key.decode(): "v"}
            else:
                with pytest.raises(FrameError):
                    _ = F.decode_properties(props(key))[0].headers  # lazy or not: it fails


# --------------------------------------------------------------------------- decoding pamqp frames
def test_decode_deliver_getok_return_all_props(F: ModuleType) -> None:
    big = bytes(range(256)) * 1000
    data = (content(1, pc.Basic.Deliver("ctag", 42, True, "ex", "rk"), all_props(), b"hello")
            + content(2, pc.Basic.GetOk(43, False, "ex2", "rk2", 17), all_props(), b"", 8192)
            + content(3, pc.Basic.Return(312, "NO_ROUTE", "ex3", "rk3"), all_props(), big, 8192))
    for step in (0, 1, 7, 4096):
        items = feed_all(F, data, step, 8192)
        assert [type(i).__name__ for i in items] == ["Delivery"] * 3
        d, g, r = items
        assert (d.kind, d.channel, d.consumer_tag, d.delivery_tag, d.redelivered, d.exchange, d.routing_key,
                d.body) == (F.Delivery.KIND_DELIVER, 1, "ctag", 42, True, "ex", "rk", b"hello")
        assert (g.kind, g.delivery_tag, g.message_count, g.body, g.exchange) == (F.Delivery.KIND_GET_OK, 43, 17, b"", "ex2")
        assert (r.kind, r.reply_code, r.reply_text, r.exchange, r.routing_key, r.body) == (
            F.Delivery.KIND_RETURN, 312, "NO_ROUTE", "ex3", "rk3", big)
        for it in items:
            assert it.properties.to_dict() == props_dict(all_props())


def test_confirms_methods_heartbeat_many_per_feed(F: ModuleType) -> None:
    data = (pframe.marshal(pc.Basic.Ack(5, True), 1) + pframe.marshal(pc.Basic.Nack(6, False, True), 2)
            + F.HEARTBEAT_FRAME + pframe.marshal(pc.Queue.DeclareOk("q", 3, 4), 1)
            + content(4, pc.Basic.Deliver("c", 1, False, "", "q"), pc.Basic.Properties(), b"x") * 50)
    for step in (0, 1, 3):
        items = feed_all(F, data, step)
        assert len(items) == 54
        a, n, h, m = items[:4]
        assert (a.channel, a.delivery_tag, a.multiple, a.nack) == (1, 5, True, False)
        assert (n.channel, n.delivery_tag, n.multiple, n.nack) == (2, 6, False, True)
        assert isinstance(h, F.Heartbeat) and h.channel == 0
        assert isinstance(m, F.MethodFrame) and isinstance(m.method, pc.Queue.DeclareOk)
        assert m.method.message_count == 3 and m.channel == 1
        assert all(d.body == b"x" and d.properties == F.BasicProperties() for d in items[4:])


def test_interleaved_channels(F: ModuleType) -> None:
    a = content(1, pc.Basic.Deliver("a", 1, False, "", "q"), pc.Basic.Properties(), b"A" * 10000, 4096)
    b = content(2, pc.Basic.Deliver("b", 1, False, "", "q"), pc.Basic.Properties(), b"B" * 10, 4096)
    # split a's frames and put b's whole delivery between a's header and body
    fa = []
    pos = 0
    while pos < len(a):
        used = pframe.unmarshal(a[pos:])[0]
        fa.append(a[pos:pos + used])
        pos += used
    data = fa[0] + fa[1] + b + b"".join(fa[2:])
    items = feed_all(F, data, 5, 4096)
    assert [(d.consumer_tag, len(d.body)) for d in items] == [("b", 10), ("a", 10000)]


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.rsplit("/", 1)[-1][:30])
def test_golden_mmate_go_headers(F: ModuleType, path: str) -> None:
    with open(path) as fh:
        vec = json.load(fh)
    payload = bytes.fromhex(vec["wire"]["content_header_payload_hex"])
    assert payload[:4] == b"\x00\x3c\x00\x00"
    assert struct.unpack(">Q", payload[4:12])[0] == vec["body_length"]
    props, end = F.decode_properties(payload, 12)
    assert end == len(payload)
    want = vec["properties"]
    headers = want["headers"]
    assert props.content_type == want.get("content_type")
    assert props.delivery_mode == want.get("delivery_mode")
    assert list(props.headers) == list(headers)
    assert props.headers == {k: v["v"] for k, v in headers.items()}
    typed = F.BasicProperties(content_type=props.content_type, delivery_mode=props.delivery_mode,
                              headers={k: F.Typed(v["T"], v["v"]) for k, v in headers.items()})
    assert F.encode_properties(typed) == payload[12:]


# --------------------------------------------------------------------------- errors
def frame(ftype: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


DELIVER = pframe.marshal(pc.Basic.Deliver("c", 1, False, "e", "r"), 1)
HEADER5 = pframe.marshal(pheader.ContentHeader(0, 5, pc.Basic.Properties()), 1)


# undecodable properties in a content header that frames are per-message: test_poison_properties.py
@pytest.mark.parametrize(("data", "code"), [
    (frame(1, 1, b"\x00\x3c\x00\x50" + b"\x00" * 9, end=0xCD), 501),
    (frame(9, 0, b""), 501),
    (frame(8, 1, b""), 501),
    (frame(8, 0, b"x"), 501),
    (struct.pack(">BHI", 3, 1, 200000), 501),
    (frame(1, 1, b"\x00\x3c"), 502),
    (frame(1, 1, b"\x00\x3c\x00\x3c\x05ab"), 502),
    (frame(1, 1, b"\x00\x63\x00\x01"), 502),
    (frame(1, 1, b"\x00\x32\x00\x0b"), 502),
    (frame(1, 1, b"\x00\x3c\x00\x3c\x02\xff\xfe" + b"\x00" * 11), 502),
    (DELIVER + frame(2, 1, b"\x00\x3c"), 502),
    (HEADER5, 505),
    (frame(3, 1, b"abc"), 505),
    (DELIVER + frame(3, 1, b"abc"), 505),
    (DELIVER + DELIVER, 505),
    (DELIVER + HEADER5 + HEADER5, 505),
    (DELIVER + HEADER5 + frame(3, 1, b"abcdef"), 505),
    (DELIVER + HEADER5 + pframe.marshal(pc.Basic.Ack(1), 1), 505),
])
def test_error_codes(F: ModuleType, data: bytes, code: int) -> None:
    for step in (len(data), 1):
        r = F.FrameReader(131072)
        with pytest.raises(FrameError) as ei:
            for i in range(0, len(data), step):
                r.feed(data[i:i + step])
        assert ei.value.reply_code == code
        with pytest.raises(FrameError):  # unusable afterwards
            r.feed(F.HEARTBEAT_FRAME)


def test_frame_max_limit(F: ModuleType) -> None:
    data = frame(3, 1, b"x" * 5000)
    with pytest.raises(FrameError) as ei:
        F.FrameReader(4096).feed(data[:7])
    assert ei.value.reply_code == 501
    with pytest.raises(FrameError) as ei2:  # within the limit: then the frame is unexpected content
        F.FrameReader(8192).feed(data)
    assert ei2.value.reply_code == 505
    # there is no "0 = no limit": tests/unit/test_frames_bounds.py


def test_decode_helpers_raise_frame_error(F: ModuleType) -> None:
    for bad in [b"\x00\x00\x00\x05\x01a", b"\x00\x00\x00\x03\x01aQ", b"\x00\x00", b"\x00\x00\x00\x0a\x01aT" + b"\xff" * 8]:
        with pytest.raises(FrameError) as ei:
            F.decode_table(bad)
        assert ei.value.reply_code == 502
    deep = b"\x00\x00\x00\x00"
    for _ in range(100):
        deep = struct.pack(">I", len(deep) + 3) + b"\x01kF" + deep
    with pytest.raises(FrameError):
        F.decode_table(deep)
    with pytest.raises(FrameError):
        F.decode_properties(b"\x80\x00\x05ab")


def test_data_classes(F: ModuleType) -> None:
    assert (F.Delivery.KIND_DELIVER, F.Delivery.KIND_GET_OK, F.Delivery.KIND_RETURN) == (0, 1, 2)
    d = F.Delivery()
    assert (d.kind, d.consumer_tag, d.delivery_tag, d.redelivered, d.body) == (0, "", 0, False, b"")
    assert d.properties == F.BasicProperties()
    assert "Delivery(" in repr(d)
    assert F.Typed("B", 1) == F.Typed("B", 1) != F.Typed("b", 1)
    assert repr(F.Typed("B", 1)) == "Typed('B', 1)"
    assert F.BasicProperties(headers={"a": 1}) != F.BasicProperties()
    assert F.HEARTBEAT_FRAME == b"\x08\x00\x00\x00\x00\x00\x00\xce"
    c = F.Confirm(1, 2, True, False)
    assert (c.channel, c.delivery_tag, c.multiple, c.nack) == (1, 2, True, False)


def test_pending_counts_buffered_and_partial_body_bytes(F: ModuleType) -> None:
    r = F.FrameReader(131072)
    head = DELIVER + HEADER5
    assert r.feed(head + frame(3, 1, b"ab") + frame(3, 1, b"c")[:4]) == []
    assert r.pending() == 2 + 4
    (d,) = r.feed(frame(3, 1, b"c")[4:] + frame(3, 1, b"de"))
    assert d.body == b"abcde" and r.pending() == 0


@pytest.mark.parametrize(("tag", "values"), [
    ("b", [-(1 << 7), (1 << 7) - 1]), ("B", [0, 255]), ("s", [-(1 << 15), (1 << 15) - 1]),
    ("u", [0, (1 << 16) - 1]), ("I", [-(1 << 31), (1 << 31) - 1]), ("i", [0, (1 << 32) - 1]),
    ("l", [-(1 << 63), (1 << 63) - 1, (1 << 53) + 1]), ("L", [0, (1 << 64) - 1, (1 << 53) + 1]),
])
def test_integer_fields_decode_exactly(F: ModuleType, tag: str, values: list[int]) -> None:
    table = {str(i): F.Typed(tag, v, go_safe=tag not in F.GO_UNSAFE_TAGS) for i, v in enumerate(values)}
    decoded, _ = F.decode_table(F.encode_table(table))
    assert decoded == {str(i): v for i, v in enumerate(values)}
    assert all(type(v) is int for v in decoded.values())


def test_decimals_are_exact_whatever_the_decimal_context(F: ModuleType) -> None:
    values = [decimal.Decimal("123.45"), decimal.Decimal("-2147483.648"), decimal.Decimal("2147483647"),
              decimal.Decimal("0.000000001")]
    table = {str(i): v for i, v in enumerate(values)}
    wire = F.encode_table(table)
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.traps[decimal.Inexact] = True
        ctx.traps[decimal.Rounded] = True
        assert F.encode_table(table) == wire
        decoded, _ = F.decode_table(wire)
        items = F.FrameReader().feed(DELIVER + frame(2, 1, b"\x00\x3c\x00\x00" + b"\x00" * 8
                                                     + F.encode_properties(F.BasicProperties(headers=table))))
    assert decoded == table and [str(v) for v in decoded.values()] == [str(v) for v in values]
    assert items[0].properties.headers == table and items[0].undecodable is None
