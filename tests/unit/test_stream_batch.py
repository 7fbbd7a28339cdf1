"""The compiled batch builder of stream publishing (``streamwire.TypedAppender``, both impls): the
bytes it appends equal the general path's (``Publisher.prepare`` + ``append_message``) for every
message kind and route; what the template cannot build goes through the general path; errors leave
the messages before them appended; a frame ends before the message that would pass its limit."""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._py import streamwire as pywire
from mmate_fast.contracts import Command, Event, GenericMessage, Message, Query, Reply
from mmate_fast.messaging import streams as mstreams
from mmate_fast.messaging.publisher import _NO_PLAN, Publisher
from mmate_fast.transports.streams.producer import StreamProducer
from tests.unit._impls import impl_params

IMPLS = impl_params("streamwire")


@dataclass
class BatchPlaced(Event):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class BatchShip(Command):
    order_id: str = ""


@dataclass
class BatchLookup(Query):
    order_id: str = ""


@dataclass
class BatchAnswer(Reply):
    order_id: str = ""


@dataclass
class BatchNote(Message):
    text: str = ""


def _messages() -> list[Any]:
    out: list[Any] = []
    for i in range(6):
        out += [
            BatchPlaced(order_id=f"o-{i}", amount=i + 0.5, aggregate_id=f"agg-{i}"),
            BatchPlaced(order_id="none", aggregate_id=None),  # type: ignore[arg-type]
            BatchPlaced(order_id="empty"),
            BatchShip(order_id=f"s-{i}", target_service="shipping"),
            BatchLookup(order_id=f"q-{i}"),
            BatchAnswer(order_id=f"r-{i}"),
            BatchNote(text=f"note <{i}> é"),
            GenericMessage(type="GenericThing", payload={"n": i}),
        ]
    for j, m in enumerate(out):
        m.id = f"00000000-0000-4000-8000-{j:012d}"
    return out


def _general(msgs: list[Any], persistent: bool) -> tuple[bytes, list[Any]]:
    """The frame entries the general path builds (prepare + append_message)."""
    core = Publisher(None)
    buf = bytearray()
    ids = []
    for i, m in enumerate(msgs):
        ex, rk, out = core.prepare(m, persistent=persistent)
        pywire.append_message(buf, 100 + i, out.properties, out.body, ex, rk)
        ids.append(out.message_id)
    return bytes(buf), ids


def _appender(w: Any, persistent: bool) -> Any:
    core = Publisher(None)

    def fallback(msg: Any) -> tuple[str, str, bytes, bytes, Any]:
        ex, rk, out = core.prepare(msg, persistent=persistent)
        if msg.__class__ not in app.plans:
            plan = core._new_plan((msg.__class__, None, None, None, persistent, False), msg)
            if plan is not _NO_PLAN:
                app.add_plan(msg.__class__, plan)
        return ex, rk, out.properties, out.body, out.message_id

    app = w.TypedAppender(fallback)
    return app


@pytest.mark.parametrize("w", IMPLS)
@pytest.mark.parametrize("persistent", [True, False])
def test_batch_bytes_equal_the_general_path(w: Any, persistent: bool) -> None:
    msgs = _messages()
    for _ in range(3):  # the envelope timestamp is "now" (seconds): retry across a second boundary
        app = _appender(w, persistent)
        buf, ids = bytearray(), []
        n, done, carry = app.fill(buf, 100, iter(msgs), 1000, 1 << 30, 0, ids)
        ref, ref_ids = _general(msgs, persistent)
        if bytes(buf) == ref:
            break
    assert (n, done, carry) == (len(msgs), True, None)
    assert bytes(buf) == ref
    assert ids == ref_ids
    assert set(app.plans) == {BatchPlaced, BatchShip, BatchLookup, BatchAnswer, BatchNote}


@pytest.mark.parametrize("w", IMPLS)
def test_max_count_stops_without_taking_more(w: Any) -> None:
    msgs = _messages()
    it = iter(msgs)
    app, buf, ids = _appender(w, False), bytearray(), []
    assert app.fill(buf, 1, it, 3, 1 << 30, 0, ids) == (3, False, None)
    assert next(it) is msgs[3]
    assert app.fill(buf, 4, iter([]), 3, 1 << 30, 0, ids) == (0, True, None)


@pytest.mark.parametrize("w", IMPLS)
def test_an_error_leaves_the_messages_before_it(w: Any) -> None:
    msgs = _messages()[:4]
    bad = BatchPlaced(order_id="x", aggregate_id="a" * 300)  # routing key over 255 bytes
    app, buf, ids = _appender(w, False), bytearray(), []
    with pytest.raises(errors.InvalidArgumentError):
        app.fill(buf, 1, iter([*msgs, bad, *msgs]), 100, 1 << 30, 0, ids)
    assert len(ids) == 4
    entries = _entries(bytes(buf))
    assert [pid for pid, _ in entries] == [1, 2, 3, 4]
    also = BatchPlaced(order_id="x", aggregate_id=42)  # type: ignore[arg-type]  # not a str: general path
    ids2: list[Any] = []
    app.fill(bytearray(), 1, iter([also]), 1, 1 << 30, 0, ids2)
    assert len(ids2) == 1


@pytest.mark.parametrize("w", IMPLS)
def test_a_message_past_the_limit_is_carried_to_the_next_frame(w: Any) -> None:
    msgs = _messages()[:3]
    app, buf, ids = _appender(w, False), bytearray(), []
    n, done, carry = app.fill(buf, 1, iter(msgs), 10, 1500, 0, ids)  # each entry is ~1 kB
    assert (n, done) == (1, False) and carry is not None
    _props, _body, ex, rk, mid = carry
    assert (ex, rk) == ("mmate.events", "evt..BatchPlaced")
    assert mid == msgs[1].id and len(ids) == 1
    # an empty frame takes a message of any size
    buf2: bytearray = bytearray()
    assert app.fill(buf2, 2, iter(msgs[2:]), 10, 10, 0, ids)[:2] == (1, True)


def _entries(buf: bytes, pos: int = 0) -> list[tuple[int, bytes]]:
    out = []
    while pos < len(buf):
        pid, size = struct.unpack_from(">QI", buf, pos)
        out.append((pid, buf[pos + 12:pos + 12 + size]))
        pos += 12 + size
    return out


class _Conn:
    """What a StreamProducer needs of its connection, writes kept."""

    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max
        self.loop = asyncio.get_running_loop()
        self.timeout = 5.0
        self.frames: list[bytes] = []

    def _write(self, frame: bytes | bytearray) -> None:
        self.frames.append(bytes(frame))


async def test_publish_many_splits_frames_and_numbers_every_message() -> None:
    conn = _Conn(frame_max=4096)
    producer = StreamProducer(conn, 3, "s", "", 1, 20_000)
    pub = mstreams.StreamPublisher(producer, batch_size=10)
    msgs = [BatchPlaced(order_id=f"o-{i}", aggregate_id=f"a{i}") for i in range(25)]
    task = asyncio.ensure_future(pub.publish_many(msgs, persistent=False))
    await asyncio.sleep(0)
    assert producer.next_id == 26 and pub.published == 25
    pids = []
    for frame in conn.frames:
        size, key, _, pub_id, count = struct.unpack_from(">IHHBI", frame)
        assert (size + 4, key, pub_id) == (len(frame), 2, 3) and size + 4 <= 4096
        entries = _entries(frame, 13)
        assert len(entries) == count
        pids += [pid for pid, _ in entries]
    assert pids == list(range(1, 26))
    producer._on_confirm(0, 25, b"".join(struct.pack(">Q", i) for i in range(1, 26)))
    ids = await task
    assert len(ids) == 25 and len(set(ids)) == 25


@pytest.mark.parametrize("w", IMPLS)
def test_what_the_template_refuses_gets_the_general_paths_error(w: Any) -> None:
    app, buf, ids = _appender(w, False), bytearray(), []
    good = _messages()[:2]
    app.fill(buf, 1, iter(good), 10, 1 << 30, 0, ids)  # plans learnt
    bad = BatchPlaced(order_id="x")
    bad.id = "i" * 300  # longer than a short string
    with pytest.raises(errors.InvalidArgumentError):
        app.fill(buf, 3, iter([bad]), 10, 1 << 30, 2, ids)
    assert len(ids) == 2 and len(_entries(bytes(buf))) == 2


class _Spec:
    def __init__(self, fn: Any, *, is_async: bool = False, wants_context: bool = False) -> None:
        self.fn, self.is_async, self.wants_context = fn, is_async, wants_context


def _record(msg: Any) -> bytes:
    ex, rk, out = Publisher(None).prepare(msg, persistent=False)
    return pywire.encode_message(out.properties, out.body, ex, rk)


@pytest.mark.parametrize("w", IMPLS)
def test_dispatch_records_runs_plain_handlers_and_stops_before_the_rest(w: Any) -> None:
    from mmate_fast._ext import load
    from mmate_fast.contracts import default_registry, from_envelope

    decode = load("envelope").decode_envelope
    got: list[Any] = []

    def boom(msg: Any) -> None:
        raise RuntimeError("boom")

    table: dict[str, tuple[Any, ...]] = {
        "BatchPlaced": (_Spec(got.append),),
        "BatchShip": (_Spec(boom),),
        "BatchLookup": (_Spec(got.append, is_async=True),),
        "BatchAnswer": (_Spec(got.append, wants_context=True),),
        "BatchNote": (_Spec(got.append), _Spec(got.append)),
    }
    placed = [BatchPlaced(order_id=f"o-{i}", aggregate_id="a") for i in range(3)]
    records = [_record(placed[0]), _record(GenericMessage(type="Other", payload={})), _record(placed[1]),
               b"not amqp", _record(placed[2]), _record(BatchShip(order_id="s", target_service="x")),
               _record(BatchLookup()), _record(BatchAnswer()), _record(BatchNote())]

    def run(start: int) -> tuple[int, int, int, Any]:
        return w.dispatch_records(records, start, decode, lambda t: table.get(t, ()), from_envelope,
                                  default_registry)

    assert run(0) == (3, 2, 1, None)  # two handled, "Other" ignored, stops before the bad record
    assert [m.order_id for m in got] == ["o-0", "o-1"]
    i, handled, ignored, failure = run(4)
    assert (i, handled, ignored) == (5, 1, 0)  # o-2 handled, BatchShip's handler raised
    exc, body, env, msg = failure
    assert isinstance(exc, RuntimeError) and env.type == "BatchShip" and msg.order_id == "s"
    assert body == w.message_body(records[5])
    for start in (6, 7, 8):  # async, context, two handlers: the general path's
        assert run(start) == (start, 0, 0, None)
    assert len(got) == 3
    assert run(len(records)) == (len(records), 0, 0, None)


@pytest.mark.parametrize("w", IMPLS)
@pytest.mark.parametrize("sub_batch", [False, True])
def test_dispatch_chunk_handles_records_in_place_and_hands_on_the_rest(w: Any, sub_batch: bool) -> None:
    from mmate_fast._ext import load
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.errors import StreamProtocolError
    from tests.unit.test_streamwire import _chunk

    decode = load("envelope").decode_envelope
    got: list[Any] = []

    def boom(msg: Any) -> None:
        raise RuntimeError("boom")

    table: dict[str, tuple[Any, ...]] = {"BatchPlaced": (_Spec(got.append),), "BatchShip": (_Spec(boom),),
                                         "BatchLookup": (_Spec(got.append, is_async=True),)}

    def run(chunk: bytes, min_offset: int) -> tuple[Any, ...]:
        return tuple(w.dispatch_chunk(chunk, 1, len(chunk), min_offset, decode, lambda t: table.get(t, ()),
                                      from_envelope, default_registry))

    placed = [_record(BatchPlaced(order_id=f"o-{i}", aggregate_id="a")) for i in range(4)]
    other = _record(GenericMessage(type="Other", payload={}))
    ship = _record(BatchShip(order_id="s", target_service="x"))
    chunk = _chunk([placed[0], other, placed[1], ship, placed[2], placed[3]], 100, sub_batch=sub_batch)
    first, ts, done, handled, ignored, failure, rest = run(chunk, 101)  # record 100 is below the start
    assert (first, ts, done, handled, ignored) == (101, 1234, 3, 1, 1)  # Other ignored, o-1, BatchShip failed
    exc, raw, body, env, msg = failure
    assert isinstance(exc, RuntimeError) and raw == ship and body == w.message_body(ship)
    assert (env.type, msg.order_id) == ("BatchShip", "s")
    assert rest == [placed[2], placed[3]]  # after a failure: the general path's, in order
    assert [m.order_id for m in got] == ["o-1"]
    assert run(chunk, 200) == (106, 1234, 0, 0, 0, None, [])  # nothing at or after the start
    lookup = _record(BatchLookup(order_id="q"))
    chunk = _chunk([placed[0], b"not amqp", lookup], 7, sub_batch=sub_batch)
    assert run(chunk, 0) == (7, 1234, 1, 1, 0, None, [b"not amqp", lookup])  # stops before the bad one
    assert run(_chunk([placed[0]], 9, chunk_type=1), 0)[:3] == (10, 1234, 0)  # not a user chunk
    bad = _chunk([placed[0], placed[1]], 7, sub_batch=sub_batch)[:-5]  # the last record cut short
    with pytest.raises(StreamProtocolError):
        w.dispatch_chunk(bad, 1, len(bad), 0, decode, lambda t: table.get(t, ()), from_envelope,
                         default_registry)
    assert len(got) == 2  # nothing of a chunk that does not parse was handled


async def test_publish_nowait_and_publish_many_build_the_same_frames_as_the_general_path() -> None:
    conn = _Conn(frame_max=1 << 20)
    producer = StreamProducer(conn, 1, "s", "", 1, 20_000)
    pub = mstreams.StreamPublisher(producer)
    msgs = _messages()
    for _ in range(3):  # the envelope timestamp is "now" (seconds): retry across a second boundary
        before = producer.next_id
        ids = [pub.publish_nowait(m, persistent=False) for m in msgs[:20]]
        many = asyncio.ensure_future(pub.publish_many(msgs[20:], persistent=False))
        await asyncio.sleep(0)
        producer.send()
        frames, conn.frames = conn.frames, []
        ref, ref_ids = _general(msgs, False)
        got = b"".join(f[13:] for f in frames)
        pids = [pid for pid, _ in _entries(got)]
        assert pids == list(range(before, before + len(msgs)))
        producer._on_confirm(0, 1, struct.pack(">Q", producer.next_id - 1))
        ids += await many
        assert ids == ref_ids
        renumbered = b"".join(struct.pack(">QI", 100 + i, len(m)) + m for i, (_, m) in enumerate(_entries(got)))
        if renumbered == ref:
            break
    assert renumbered == ref
    assert pub.published >= len(msgs)


@pytest.mark.parametrize("w", IMPLS)
def test_dispatch_chunk_runs_no_handler_of_a_chunk_that_does_not_parse(w: Any) -> None:
    from mmate_fast._ext import load
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.errors import StreamProtocolError
    from tests.unit.test_streamwire import _chunk

    got: list[Any] = []
    table = {"BatchPlaced": (_Spec(got.append),)}
    placed = [_record(BatchPlaced(order_id=f"o-{i}", aggregate_id="a")) for i in range(3)]
    chunk = bytearray(_chunk(placed, 0))
    second = 1 + 48 + 4 + len(placed[0])  # the size field of the second record
    struct.pack_into(">I", chunk, second, len(chunk))  # overruns the chunk
    with pytest.raises(StreamProtocolError):
        w.dispatch_chunk(chunk, 1, len(chunk), 0, load("envelope").decode_envelope, lambda t: table.get(t, ()),
                         from_envelope, default_registry)
    assert got == []  # the first record, which is fine, was not handled either


@pytest.mark.parametrize("w", IMPLS)
def test_sub_batch_turns_a_frames_messages_into_one_entry(w: Any) -> None:
    records = [b"a", b"bb" * 100, b""]
    frame = bytearray(b"H" * 13)
    for i, r in enumerate(records):
        frame += struct.pack(">QI", 40 + i, len(r)) + r
    out, first, last, count = w.sub_batch(frame, 13)
    assert (first, last, count) == (40, 42, 3)
    inner = b"".join(struct.pack(">I", len(r)) + r for r in records)
    assert bytes(out) == b"H" * 13 + struct.pack(">QBHII", 40, 0x80, 3, len(inner), len(inner)) + inner
    for bad in (frame[:-1], frame[:13] + b"\x00" * 5):
        with pytest.raises(ValueError):
            w.sub_batch(bad, 13)
    with pytest.raises(ValueError):
        w.sub_batch(frame[:13], 13)


async def test_sub_entries_send_each_frame_as_one_batch_confirmed_by_its_first_id() -> None:
    conn = _Conn(frame_max=1 << 20)
    producer = StreamProducer(conn, 2, "s", "", 1, 20_000, sub_entries=True)
    pub = mstreams.StreamPublisher(producer, batch_size=10)
    msgs = [BatchPlaced(order_id=f"o-{i}", aggregate_id="a") for i in range(25)]
    task = asyncio.ensure_future(pub.publish_many(msgs, persistent=False))
    await asyncio.sleep(0)
    firsts = []
    for frame in conn.frames:
        size, key, _, pub_id, count = struct.unpack_from(">IHHBI", frame)
        first, head, n, inner, _ = struct.unpack_from(">QBHII", frame, 13)
        assert (size + 4, key, pub_id, count, head) == (len(frame), 2, 2, 1, 0x80)
        assert inner == len(frame) - 32
        firsts.append((first, n))
    assert firsts == [(1, 10), (11, 10), (21, 5)]
    assert producer.in_flight == 25
    producer._on_confirm(0, 2, struct.pack(">QQ", 1, 11))
    assert producer.confirmed == 20 and not task.done()
    producer._on_confirm(0, 1, struct.pack(">Q", 21))
    assert len(await task) == 25 and producer.confirmed == 25 and producer.in_flight == 0


def _raw_record(body: bytes) -> bytes:
    """A stored record of a hand-written envelope body (properties of a real publish)."""
    ex, rk, out = Publisher(None).prepare(BatchPlaced(order_id="p"), persistent=False)
    return pywire.encode_message(out.properties, body, ex, rk)


_TS = b'"timestamp":"2026-11-30T00:00:00Z"'


@pytest.mark.parametrize("w", IMPLS)
@pytest.mark.parametrize("sub_batch", [False, True])
def test_a_payload_decoder_gives_what_convert_gives(w: Any, sub_batch: bool) -> None:
    """With ``decoder`` (the consumer passes ``payload_decoder``), the messages, counts, failures and
    the rest handed on equal those of ``convert`` alone; the decoder is asked once per type per call;
    a payload that is not a dict, or a type it has no decoder for, still goes through ``convert``."""
    from mmate_fast._ext import load
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.contracts._convert import payload_decoder
    from tests.unit.test_streamwire import _chunk

    decode = load("envelope").decode_envelope
    got: list[Any] = []
    table: dict[str, tuple[Any, ...]] = {"BatchPlaced": (_Spec(got.append),), "BatchShip": (_Spec(got.append),),
                                         "Other": (_Spec(got.append),)}
    asked: list[str] = []

    def decoder(t: str) -> Any:
        asked.append(t)
        return payload_decoder(t, default_registry)

    placed = [_record(BatchPlaced(order_id=f"o-{i}", amount=i, aggregate_id="a")) for i in range(3)]
    ship = _record(BatchShip(order_id="s", target_service="x"))
    other = _record(GenericMessage(type="Other", payload={"n": 1}))
    cid = _raw_record(b'{"id":"x","type":"BatchPlaced",' + _TS + b',"correlationId":"c-1",'
                      b'"payload":{"orderId":"k","amount":3}}')
    listed = _raw_record(b'{"id":"y","type":"BatchPlaced",' + _TS + b',"payload":[1]}')
    wrong = _raw_record(b'{"id":"z","type":"BatchPlaced",' + _TS + b',"payload":{"orderId":5}}')
    runs = {
        "handled": [placed[0], ship, placed[1], other, cid, placed[2], ship],
        "not a dict": [placed[0], listed, placed[1]],
        "wrong field": [placed[0], ship, wrong, placed[1]],
    }
    for name, records in runs.items():
        chunk = _chunk(records, 40, sub_batch=sub_batch)
        results = []
        for dec in (None, decoder):
            got.clear()
            asked.clear()
            res = w.dispatch_chunk(chunk, 1, len(chunk), 0, decode, lambda t: table.get(t, ()), from_envelope,
                                   default_registry, dec)
            results.append((res, list(got)))
            assert sorted(asked) == sorted(set(asked)), name  # once per type and call
            again = w.dispatch_records(records, 0, decode, lambda t: table.get(t, ()), from_envelope,
                                       default_registry, dec)
            assert again[:3] == (res[2] if res[6] else len(records), res[3], res[4]), name
        assert results[0] == results[1], name


@pytest.mark.parametrize("w", IMPLS)
def test_payload_decoder_follows_the_registry_from_one_call_to_the_next(w: Any) -> None:
    """The decoder is kept for one call only: a class registered (or replaced) under the type's name
    between chunks decodes the next chunk."""
    from mmate_fast._ext import load
    from mmate_fast.contracts import TypeRegistry, from_envelope
    from mmate_fast.contracts._convert import payload_decoder
    from tests.unit.test_streamwire import _chunk

    @dataclass
    class Placed2(Event):
        order_id: str = ""

    registry = TypeRegistry()
    got: list[Any] = []
    table = {"BatchPlaced": (_Spec(got.append),)}
    chunk = _chunk([_record(BatchPlaced(order_id="o"))], 0)

    def run() -> Any:
        w.dispatch_chunk(chunk, 1, len(chunk), 0, load("envelope").decode_envelope, lambda t: table.get(t, ()),
                         from_envelope, registry, lambda t: payload_decoder(t, registry))
        return got.pop()

    assert isinstance(run(), GenericMessage)  # not registered: from_envelope's GenericMessage
    registry.register(BatchPlaced)
    assert isinstance(run(), BatchPlaced)
    registry.register(Placed2, "BatchPlaced")
    msg = run()
    assert isinstance(msg, Placed2) and msg.order_id == "o"


#: payloads for BatchPlaced that the raw reader reads, declines or refuses (each: the same message or
#: the same hand-on to the general path as ``convert``)
_EDGE_PAYLOADS = [
    b'{"orderId":"k","amount":3}', b'{"amount":2.5,"orderId":"k"}', b'{"orderId":"k"}', b"{}",
    b'{"orderId":null,"amount":null}', b'{"orderId":"k","unknown":1}', b'{"OrderID":"k"}',
    b'{"orderId":"a","orderId":"b"}', b'{"orderId":"k","amount":12345678901234567890}',
    b'{"orderId":"k","amount":1e3}', b'{"orderId":"k","amount":-0.125}', b'{"orderId":"k","amount":"x"}',
    b'{"orderId":5}', b'{"orderId":"caf\\u00e9"}', b'{"orderId":"x\\"y"}', b'{"orderId":"k","amount":true}',
    b'{"orderId":"k","aggregateId":{"a":[1,2]}}', b'{"orderId":"k","extra":[1,{"b":null}]}',
    b'{"orderId":"\xc3\xa9"}', b'{ "orderId" : "k" , "amount" : 7 }', b"[1]", b'"s"', b"null",
]


@pytest.mark.parametrize("w", IMPLS)
@pytest.mark.parametrize("sub_batch", [False, True])
def test_the_raw_payload_path_gives_what_convert_gives_on_every_edge(w: Any, sub_batch: bool) -> None:
    """Each edge payload, alone and among good records: the counts, the messages handled (values and
    types), the failure and the rest handed on (where ``convert`` raises: the general path's) equal
    those of ``convert`` alone, with either envelope implementation."""
    from mmate_fast._ext import load
    from mmate_fast._py import envelope as pyenvelope
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.contracts._convert import payload_decoder
    from tests.unit.test_streamwire import _chunk

    got: list[Any] = []

    def keep(msg: Any) -> None:
        got.append((type(msg), vars(msg)))
        if getattr(msg, "order_id", None) == "fail":
            raise RuntimeError("handler")

    table: dict[str, tuple[Any, ...]] = {"BatchPlaced": (_Spec(keep),)}
    good = _record(BatchPlaced(order_id="g", amount=1.5, aggregate_id="a"))
    failing = _record(BatchPlaced(order_id="fail"))
    for decode in {load("envelope").decode_envelope, pyenvelope.decode_envelope}:
        for payload in _EDGE_PAYLOADS:
            rec = _raw_record(b'{"id":"e","type":"BatchPlaced",' + _TS + b',"correlationId":"c",'
                              b'"payload":' + payload + b"}")
            for records in ([rec], [good, rec, good], [good, rec, failing, rec]):
                chunk = _chunk(records, 5, sub_batch=sub_batch)
                results = []
                for dec in (None, lambda t: payload_decoder(t, default_registry)):
                    got.clear()
                    res = w.dispatch_chunk(chunk, 1, len(chunk), 0, decode, lambda t: table.get(t, ()),
                                           from_envelope, default_registry, dec)
                    failure = res[5] and (type(res[5][0]), vars(res[5][4]))
                    results.append((res[:5], failure, res[6], list(got)))
                assert results[0] == results[1], payload


@pytest.mark.skipif(os.environ.get("MMATE_NO_EXTENSIONS") == "1", reason="the compiled envelope keeps raw payloads")
@pytest.mark.parametrize("w", IMPLS)
def test_a_typed_record_is_read_from_its_raw_payload(w: Any) -> None:
    """With the consumer's decoder, a record of a registered dataclass is read straight from the
    envelope's payload bytes: the envelope handed back with a handler's failure still holds its raw
    payload (no payload dict was made), and its message equals the general path's."""
    from mmate_fast._cy import envelope as cyenvelope
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.contracts._convert import payload_decoder
    from tests.unit.test_streamwire import _chunk

    def boom(msg: Any) -> None:
        raise RuntimeError("boom")

    table = {"BatchPlaced": (_Spec(boom),)}
    chunk = _chunk([_record(BatchPlaced(order_id="o", amount=2.5, aggregate_id="a"))], 0)
    res = w.dispatch_chunk(chunk, 1, len(chunk), 0, cyenvelope.decode_envelope, lambda t: table.get(t, ()),
                           from_envelope, default_registry, lambda t: payload_decoder(t, default_registry))
    exc, raw, body, env, msg = res[5]
    assert isinstance(exc, RuntimeError) and raw == w.split_chunk(chunk, 1, len(chunk), 0)[2][0]
    assert env.raw_payload is not None
    assert msg == from_envelope(cyenvelope.decode_envelope(body), default_registry)


def _sections(*parts: bytes) -> bytes:
    """An AMQP 1.0 message of the given sections (each: descriptor code byte + encoded value)."""
    return b"".join(b"\x00\x53" + p for p in parts)


@pytest.mark.skipif(os.environ.get("MMATE_NO_EXTENSIONS") == "1", reason="compares with the compiled one")
@pytest.mark.parametrize("sub_batch", [False, True])
def test_a_body_read_in_place_gives_what_the_twin_gives(sub_batch: bool) -> None:
    """The compiled pass reads a one-part body where it lies in the chunk (no bytes object) when it
    is handed the compiled envelope decoder: bodies of one data section (short and long form), of
    two, an amqp-value string, no data at all, bodies outside the plain form (escapes, non-ASCII,
    spaces, long digit runs), bodies that are no envelope or no message, and a handler failure (its
    body bytes) give the twin's results."""
    from mmate_fast._cy import envelope as cyenvelope
    from mmate_fast._cy import streamwire as cywire
    from mmate_fast.contracts import default_registry, from_envelope
    from mmate_fast.contracts._convert import payload_decoder
    from tests.unit.test_streamwire import _chunk

    got: list[Any] = []

    def keep(msg: Any) -> None:
        got.append((type(msg), vars(msg)))
        if getattr(msg, "order_id", None) == "fail":
            raise RuntimeError("handler")

    table: dict[str, tuple[Any, ...]] = {"BatchPlaced": (_Spec(keep),)}

    def env(payload: bytes, extra: bytes = b"") -> bytes:
        return b'{"id":"e","type":"BatchPlaced",' + _TS + extra + b',"payload":' + payload + b"}"

    plain = env(b'{"orderId":"k","amount":3}')
    long_body = env(b'{"orderId":"' + b"x" * 300 + b'"}')
    head = b"\x75\xa0" + bytes([len(plain)])
    bodies = [
        _sections(head + plain),
        _sections(b"\x75\xb0" + struct.pack(">I", len(long_body)) + long_body),
        _sections(b"\x75\xa0\x10" + plain[:16], b"\x75\xb0" + struct.pack(">I", len(plain) - 16) + plain[16:]),
        _sections(b"\x77\xa1" + bytes([len(plain)]) + plain),
        _sections(b"\x70\x45", head + plain),  # a header section before the data
        _sections(b"\x70\x45"),  # no data: an empty body
        _sections(b"\x75\xa0\x00"),
        _sections(b"\x75\xa0" + bytes([len(env(b'{"orderId":"a\\"b"}'))]) + env(b'{"orderId":"a\\"b"}')),
        _sections(b"\x75\xa0" + bytes([len(env(b'{"orderId":"\xc3\xa9"}'))]) + env(b'{"orderId":"\xc3\xa9"}')),
        _sections(b"\x75\xa0" + bytes([len(env(b'{ "orderId" : "k" }'))]) + env(b'{ "orderId" : "k" }')),
        _sections(b"\x75\xa0" + bytes([len(env(b'{"amount":123456789012345678901}'))])
                  + env(b'{"amount":123456789012345678901}')),
        _sections(b"\x75\xa0\x05[1,2]"), _sections(b"\x75\xa0\x04{}}{"), b"not amqp", _sections(b"\x75\xa0\x30ab"),
        _sections(b"\x75\xa0" + bytes([len(env(b'{"orderId":"fail"}'))]) + env(b'{"orderId":"fail"}')),
    ]
    for i, body in enumerate(bodies):
        for records in ([body], [bodies[0], body, bodies[1]]):
            chunk = _chunk(records, 3, sub_batch=sub_batch)
            results = []
            for w, decode in ((cywire, cyenvelope.decode_envelope), (pywire, cyenvelope.decode_envelope)):
                got.clear()
                res = w.dispatch_chunk(chunk, 1, len(chunk), 0, decode, lambda t: table.get(t, ()),
                                       from_envelope, default_registry,
                                       lambda t: payload_decoder(t, default_registry))
                failure = res[5] and (type(res[5][0]), res[5][1], res[5][2], res[5][3], vars(res[5][4]))
                results.append((res[:5], failure, res[6], list(got)))
            assert results[0] == results[1], i
