"""Exchange types and bindings: default, direct, topic, fanout, headers, exchange-to-exchange."""
from __future__ import annotations

from typing import Any

from mmate_fast.transports import Connection
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import drain_queue


async def _bodies(ch: Any, queue: str, expect: int | None = None) -> list[bytes]:
    return [d.body for d in await drain_queue(ch, queue, expect=expect)]


async def test_default_exchange_routes_by_queue_name(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    ok = await ch.queue_declare(q)
    assert (ok.queue, ok.message_count, ok.consumer_count) == (q, 0, 0)
    await ch.publish(b"hello", "", q, BasicProperties(content_type="text/plain", headers={"k": "v"}))
    [d] = await drain_queue(ch, q, expect=1)
    assert d.body == b"hello"
    assert d.exchange == ""
    assert d.routing_key == q
    assert d.properties.content_type == "text/plain"
    assert d.properties.headers == {"k": "v"}
    assert d.redelivered is False


async def test_direct_exchange(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    x, qa, qb = names.exchange(), names.queue("a"), names.queue("b")
    await ch.exchange_declare(x, "direct")
    for q, key in ((qa, "a"), (qb, "b")):
        await ch.queue_declare(q)
        await ch.queue_bind(q, x, key)
    await ch.queue_bind(qb, x, "both")
    await ch.queue_bind(qa, x, "both")
    for key in ("a", "b", "both", "none"):
        await ch.publish(key.encode(), x, key)
    assert await _bodies(ch, qa, 2) == [b"a", b"both"]
    assert await _bodies(ch, qb, 2) == [b"b", b"both"]


TOPIC_CASES = {
    "#": ["", "a", "a.b", "a..b", "a.x.y.b", "b", "a."],
    "*": ["a", "b"],
    "a.#": ["a", "a.b", "a..b", "a.x.y.b", "a."],
    "#.b": ["a.b", "a..b", "a.x.y.b", "b"],
    "a.#.b": ["a.b", "a..b", "a.x.y.b"],
    "a.*": ["a.b", "a."],
    "a.*.b": ["a..b"],
    "": [""],
}
TOPIC_KEYS = ["", "a", "a.b", "a..b", "a.x.y.b", "b", "a."]


async def test_topic_wildcards(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    x = names.exchange()
    await ch.exchange_declare(x, "topic")
    queues = {}
    for pattern in TOPIC_CASES:
        q = names.queue("t")
        await ch.queue_declare(q)
        await ch.queue_bind(q, x, pattern)
        queues[pattern] = q
    for key in TOPIC_KEYS:
        await ch.publish(key.encode() or b"<empty>", x, key)
    for pattern, expected in TOPIC_CASES.items():
        want = [k.encode() or b"<empty>" for k in expected]
        assert await _bodies(ch, queues[pattern], len(want)) == want, pattern


async def test_fanout_ignores_routing_key(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    x = names.exchange()
    await ch.exchange_declare(x, "fanout")
    qs = [names.queue("f") for _ in range(3)]
    for q in qs:
        await ch.queue_declare(q)
        await ch.queue_bind(q, x, "ignored")
    await ch.publish(b"all", x, "whatever")
    for q in qs:
        assert await _bodies(ch, q, 1) == [b"all"]


async def test_headers_any_and_all(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    x = names.exchange()
    await ch.exchange_declare(x, "headers")
    binds = {"all": {"x-match": "all", "a": 1, "b": "s"}, "any": {"x-match": "any", "a": 1, "b": "s"},
             "empty": {}, "xkey": {"x-match": "all", "x-k": 1}}
    queues = {}
    for name, args in binds.items():
        q = names.queue("h")
        await ch.queue_declare(q)
        await ch.queue_bind(q, x, "", args)
        queues[name] = q
    msgs: dict[str, dict[str, Any] | None] = {
        "both": {"a": 1, "b": "s"}, "a_only": {"a": 1}, "none": None, "extra": {"a": 1, "b": "s", "c": 3},
        "wrong": {"a": 2, "b": "t"}}
    for body, headers in msgs.items():
        await ch.publish(body.encode(), x, "", BasicProperties(headers=headers))
    expected = {"all": [b"both", b"extra"], "any": [b"both", b"a_only", b"extra"],
                "empty": [b"both", b"a_only", b"none", b"extra", b"wrong"],
                "xkey": [b"both", b"a_only", b"none", b"extra", b"wrong"]}
    for name, want in expected.items():
        assert await _bodies(ch, queues[name], len(want)) == want, name


async def test_exchange_to_exchange_binding_and_unbind(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    src, dst = names.exchange("src"), names.exchange("dst")
    await ch.exchange_declare(src, "topic")
    await ch.exchange_declare(dst, "fanout")
    q = names.queue()
    await ch.queue_declare(q)
    await ch.queue_bind(q, dst)
    await ch.exchange_bind(dst, src, "order.*")
    await ch.publish(b"routed", src, "order.created")
    await ch.publish(b"filtered", src, "user.created")
    assert await _bodies(ch, q, 1) == [b"routed"]
    await ch.exchange_unbind(dst, src, "order.*")
    await ch.publish(b"after-unbind", src, "order.created")
    await ch.publish(b"direct-to-dst", dst, "")
    assert await _bodies(ch, q, 1) == [b"direct-to-dst"]


async def test_queue_unbind_stops_routing(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    x = names.exchange()
    await ch.exchange_declare(x, "direct")
    q = names.queue()
    await ch.queue_declare(q)
    await ch.queue_bind(q, x, "k")
    await ch.publish(b"1", x, "k")
    await ch.queue_unbind(q, x, "k")
    await ch.publish(b"2", x, "k")
    await ch.queue_bind(q, x, "k2")
    await ch.publish(b"3", x, "k2")
    assert await _bodies(ch, q, 2) == [b"1", b"3"]


async def test_predeclared_exchanges_exist(conn: Connection) -> None:
    ch = await conn.channel()
    for name, kind in (("amq.direct", "direct"), ("amq.topic", "topic"), ("amq.fanout", "fanout"),
                       ("amq.headers", "headers"), ("amq.match", "headers")):
        await ch.exchange_declare(name, kind, passive=True)
        await ch.exchange_declare(name, kind, durable=True)  # equivalent re-declare is allowed
    assert ch.is_open
