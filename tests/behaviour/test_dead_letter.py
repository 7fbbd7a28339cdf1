"""Dead-lettering (rejected, expired, maxlen), TTLs, length limits and reject-publish."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmate_fast.errors import PublishNackedError
from mmate_fast.transports import Connection
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import drain_queue


async def _dlx(ch: Any, names: Any) -> tuple[str, str]:
    dlx, dlq = names.exchange("dlx"), names.queue("dlq")
    await ch.exchange_declare(dlx, "fanout")
    await ch.queue_declare(dlq)
    await ch.queue_bind(dlq, dlx)
    return dlx, dlq


async def test_reject_dead_letters_with_x_death(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    dlx, dlq = await _dlx(ch, names)
    q = names.queue()
    await ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    await ch.publish(b"bad", "", q, BasicProperties(headers={"app": "h"}, message_id="id1"))
    d = await ch.basic_get(q)
    assert d is not None
    ch.basic_reject(d.delivery_tag, requeue=False)
    [dead] = await drain_queue(ch, dlq, expect=1)
    assert dead.body == b"bad"
    assert (dead.exchange, dead.routing_key) == (dlx, q)
    h = dead.properties.headers
    assert h["app"] == "h"
    assert dead.properties.message_id == "id1"
    [death] = h["x-death"]
    assert death["reason"] == "rejected"
    assert death["queue"] == q
    assert death["count"] == 1
    assert death["exchange"] == ""
    assert death["routing-keys"] == [q]
    assert death["time"] is not None
    assert (h["x-first-death-reason"], h["x-first-death-queue"], h["x-first-death-exchange"]) == (
        "rejected", q, "")
    # the same queue and reason again: count goes up, still one entry
    await ch.publish(dead.body, "", q, dead.properties)
    d = await ch.basic_get(q)
    assert d is not None
    ch.basic_nack(d.delivery_tag, requeue=False)
    [dead2] = await drain_queue(ch, dlq, expect=1)
    [death2] = dead2.properties.headers["x-death"]
    assert (death2["count"], death2["reason"]) == (2, "rejected")


async def test_queue_ttl_and_message_expiration_dead_letter_as_expired(conn: Connection,
                                                                       names: Any) -> None:
    ch = await conn.channel()
    dlx, dlq = await _dlx(ch, names)
    q = names.queue()
    await ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx, "x-message-ttl": 150,
                                         "x-dead-letter-routing-key": "dead"})
    await ch.publish(b"queue-ttl", "", q)
    await ch.publish(b"msg-ttl", "", q, BasicProperties(expiration="100"))
    dead = await drain_queue(ch, dlq, expect=2)
    assert [d.body for d in dead] == [b"queue-ttl", b"msg-ttl"]
    for d in dead:
        assert d.routing_key == "dead"
        assert d.properties.expiration is None
        death = d.properties.headers["x-death"][0]
        assert (death["reason"], death["queue"], death["routing-keys"]) == ("expired", q, [q])
    assert "original-expiration" not in dead[0].properties.headers["x-death"][0]
    assert dead[1].properties.headers["x-death"][0]["original-expiration"] == "100"
    ok = await ch.queue_declare(q, passive=True)
    assert ok.message_count == 0


async def test_per_message_expiration_without_queue_ttl(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    await ch.publish(b"short", "", q, BasicProperties(expiration="100"))
    await ch.publish(b"long", "", q, BasicProperties(expiration="60000"))
    await asyncio.sleep(0.3)
    got = await drain_queue(ch, q)
    assert [d.body for d in got] == [b"long"]


async def test_max_length_drop_head_dead_letters_maxlen(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    dlx, dlq = await _dlx(ch, names)
    q = names.queue()
    await ch.queue_declare(q, arguments={"x-max-length": 2, "x-dead-letter-exchange": dlx})
    for i in range(4):
        await ch.publish(f"m{i}".encode(), "", q)
    dead = await drain_queue(ch, dlq, expect=2)
    assert [d.body for d in dead] == [b"m0", b"m1"]
    assert all(d.properties.headers["x-death"][0]["reason"] == "maxlen" for d in dead)
    kept = await drain_queue(ch, q, expect=2)
    assert [d.body for d in kept] == [b"m2", b"m3"]


async def test_reject_publish_overflow_nacks_confirms(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    q = names.queue()
    await ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    await ch.publish(b"fits", "", q, timeout=3)
    with pytest.raises(PublishNackedError):
        await ch.publish(b"refused", "", q, timeout=3)
    assert ch.is_open
    got = await drain_queue(ch, q)
    assert [d.body for d in got] == [b"fits"]


async def test_wait_for_confirms_reports_nacks_once(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    q = names.queue()
    await ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    futs = [ch.publish_nowait(b"m%d" % i, "", q) for i in range(3)]
    with pytest.raises(PublishNackedError):
        await ch.wait_for_confirms(timeout=3)
    results = []
    for f in futs:
        assert f is not None
        results.append(f.exception() is None)
    assert results == [True, False, False]
    await ch.wait_for_confirms(timeout=3)  # nothing new nacked: no error
    assert ch.is_open


async def test_dead_letter_to_default_exchange_reaches_named_queue(conn: Connection, names: Any) -> None:
    """Go's stage queues dead-letter to exchange "" with routing key dlq.{queue}."""
    ch = await conn.channel()
    dlq = names.queue("dlq")
    await ch.queue_declare(dlq)
    q = names.queue()
    await ch.queue_declare(q, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
                                         "x-message-ttl": 100})
    await ch.publish(b"stale", "", q)
    [dead] = await drain_queue(ch, dlq, expect=1)
    assert dead.body == b"stale"
    assert (dead.exchange, dead.routing_key) == ("", dlq)
    assert dead.properties.headers["x-death"][0]["reason"] == "expired"
