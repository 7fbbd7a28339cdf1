"""A delivery whose AMQP properties could not be decoded (the frame reader marks it ``undecodable``
and keeps ``raw_properties``, issue 7 item 1) goes to ``dlq.{queue}`` with reason ``bad-properties``
and the raw bytes in ``x-mmate-raw-properties``; the handler never sees it, the consumer goes on.

The mark is put on one delivery by a thin wrapper around the channel's consumer callback (the real
poison frames from RabbitMQ are in tests/integration/test_poison_dead_letters.py). Memory and
RabbitMQ."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging.subscriber import Failure

from .behaviour_helpers import drain_queue, wait_until

RAW = b"\x20\x00\x00\x00\x00\x07\x02k\xff\xfeS\x00"  # anything: kept byte for byte


@dataclass
class BpEvt(Event):
    n: int = 0


class _MarkingChannel:
    """Passes everything through; the consumer sees delivery number ``mark`` as undecodable."""

    def __init__(self, ch: Any, mark: int) -> None:
        self._ch = ch
        self._mark = mark
        self._seen = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    async def basic_consume(self, queue: str, callback: Any, **kw: Any) -> str:
        def marking(d: Any) -> Any:
            self._seen += 1
            if self._seen == self._mark:
                d = SimpleNamespace(body=d.body, delivery_tag=d.delivery_tag, redelivered=d.redelivered,
                                    exchange=d.exchange, routing_key=d.routing_key,
                                    properties=load("frames").BasicProperties(),
                                    undecodable="header key is not UTF-8", raw_properties=RAW, oversized=0)
            return callback(d)

        return await self._ch.basic_consume(queue, marking, **kw)


@pytest.mark.parametrize("with_handler", [False, True], ids=["default", "failure-handler"])
async def test_undecodable_properties_go_to_the_dlq_with_their_raw_bytes(
        url: str, names: Any, with_handler: bool) -> None:
    """Also with a failure handler (e.g. TtlRetry): a delivery whose properties cannot be sent again
    cannot be retried, so it goes to the DLQ straight away; the handler never sees it."""
    got: list[int] = []
    handled: list[str] = []

    async def failure_handler(failure: Failure) -> None:
        handled.append(failure.reason)
        await failure.subscription.give_up(failure)

    async with Client(url, service_name=names.service(),
                      failure_handler=failure_handler if with_handler else None) as client:
        real_channel = client.connection.channel

        async def channel(**kw: Any) -> Any:
            return _MarkingChannel(await real_channel(**kw), mark=2)

        client.add_handler(BpEvt, lambda e: got.append(e.n))
        client.connection.channel = channel
        try:
            sub = await client.start_consuming()
        finally:
            del client.connection.channel
        for n in range(1, 4):
            await client.publish_event(BpEvt(n=n, aggregate_id="a"))
        await wait_until(lambda: got == [1, 3] and sub.stats.dead_lettered == 1, timeout=5)
        assert sub.stats.reasons == {"bad-properties": 1}
        assert handled == []
        ch = await client.connection.channel()
        [dead] = await drain_queue(ch, f"dlq.{client.service_queue}", expect=1)
        await ch.close()
    h = dead.properties.headers
    assert h["x-mmate-reason"] == "bad-properties"
    assert "header key is not UTF-8" in h["x-mmate-error"]
    assert h["x-mmate-raw-properties"] == RAW
    assert dead.properties.delivery_mode == 2  # persistent, though the original's properties were lost
    assert b'"n":2' in dead.body
