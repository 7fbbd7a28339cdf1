"""The Client's admin calls and lifecycle (issue 7 items 4 and 7): a refused declare fails alone and
the next admin call works; misuse after ``close()`` raises ClientClosedError; nothing hangs.
Memory and RabbitMQ (with and without recovery)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Command, Event
from mmate_fast.messaging import topology
from mmate_fast.transports import connect

from .behaviour_helpers import queue_depth, wait_until


@dataclass
class LcEvt(Event):
    n: int = 0


@dataclass
class LcCmd(Command):
    n: int = 0


@pytest.fixture(params=[True, False], ids=["recovery", "no-recovery"])
def recovery(request: pytest.FixtureRequest, url: str) -> bool:
    if url.startswith("memory://") and not request.param:
        pytest.skip("recovery only applies to RabbitMQ")
    return bool(request.param)


@pytest.fixture
async def other(url: str) -> AsyncIterator[Any]:
    """A second connection, for what someone else does to the broker."""
    conn = await connect(url)
    yield conn
    await conn.close()


async def test_refused_declare_fails_alone_and_the_next_admin_calls_work(
        url: str, names: Any, recovery: bool, other: Any) -> None:
    service = names.service()
    taken, free = names.queue("taken"), names.queue("free")
    ch = await other.channel()
    await ch.queue_declare(taken, durable=True, arguments={"x-max-length": 10})
    got: list[int] = []
    async with Client(url, service_name=service, recovery=recovery) as client:
        client.add_handler(LcEvt, lambda e: got.append(e.n), bind=False)
        with pytest.raises(errors.PreconditionFailedError, match="x-max-length"):
            await client.subscribe(taken)  # exists with other arguments: 406
        # every later admin call works, for other queues and for the service queue
        sub = await client.subscribe(free, bindings=[(topology.EVENTS, "evt.lc.#")])
        await client.bind(topology.EVENTS, "evt.lc-svc.#")
        service_sub = await client.start_consuming()
        await client.publish_event(LcEvt(n=1, aggregate_id="lc"))
        await client.publish_event(LcEvt(n=2, aggregate_id="lc-svc"))
        await wait_until(lambda: sorted(got) == [1, 2], timeout=5)
        assert sub.stats.acked == 1 and service_sub.stats.acked == 1
        with pytest.raises(errors.PreconditionFailedError):
            await client.subscribe(taken)  # the same refusal again, not an old error
        with pytest.raises(errors.NotFoundError):
            await client.bind("no-such-exchange-" + taken, "k")
        with pytest.raises(errors.NotFoundError):
            await client.subscribe(names.queue("missing"), declare=False)  # 404 on basic.consume
        assert len(client._require_subscriber().subscriptions) == 2  # the refused ones left nothing
        await client.subscribe(names.queue("after"))
    await ch.close()


async def test_connect_after_close_raises(url: str, names: Any) -> None:
    client = Client(url, service_name=names.service())
    await client.connect()
    await client.close()
    with pytest.raises(errors.ClientClosedError, match="create a new Client"):
        await client.connect()
    with pytest.raises(errors.ClientClosedError):
        async with client:
            pass


async def test_calls_after_close_raise_client_closed(url: str, names: Any) -> None:
    service = names.service()
    client = Client(url, service_name=service)
    await client.connect()
    client.add_handler(LcEvt, lambda e: None)
    sub = await client.start_consuming()
    await client.close()
    await client.close()  # twice: harmless
    calls: list[Any] = [
        lambda: client.publish_event(LcEvt(n=1, aggregate_id="a")),
        lambda: client.publish(LcEvt(n=1, aggregate_id="a")),
        lambda: client.publish_batch([LcEvt(n=1, aggregate_id="a")]),
        lambda: client.publish_command(LcCmd(n=1, target_service=service)),
        lambda: client.request(LcCmd(n=1, target_service=service), timeout=1),
        lambda: client.start_consuming(),
        lambda: client.subscribe(names.queue()),
        lambda: client.bind(topology.EVENTS, "evt.x.#"),
        lambda: client.run(),
    ]
    for call in calls:
        with pytest.raises(errors.ClientClosedError):
            await asyncio.wait_for(call(), 5)
    assert client._service_sub is sub  # stats stay readable after close
    assert client.publisher is not None and client.publisher.published == 0


async def test_run_returns_when_the_client_is_closed(url: str, names: Any) -> None:
    client = Client(url, service_name=names.service())
    await client.connect()
    runner = asyncio.create_task(client.run())
    await asyncio.sleep(0.05)
    assert not runner.done()
    await client.close()
    await asyncio.wait_for(runner, 5)  # no hang on memory://


async def test_start_consuming_concurrently_makes_one_consumer(url: str, names: Any) -> None:
    got: list[int] = []
    async with Client(url, service_name=names.service()) as client:
        client.add_handler(LcEvt, lambda e: got.append(e.n))
        subs = await asyncio.gather(*(client.start_consuming() for _ in range(3)))
        assert subs[0] is subs[1] is subs[2]
        assert len(client._require_subscriber().subscriptions) == 1
        await client.publish_event(LcEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [1], timeout=5)
        assert await queue_depth(client.connection, client.service_queue) == 0


@pytest.mark.parametrize("kwargs, argument", [
    ({"prefetch": -1}, "prefetch"), ({"prefetch": 70000}, "prefetch"), ({"prefetch": "10"}, "prefetch"),
    ({"concurrency": 0}, "concurrency"), ({"publish_channels": 0}, "publish_channels"),
])
def test_bad_consumer_arguments_are_refused_when_the_client_is_made(kwargs: dict[str, Any],
                                                                    argument: str) -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:
        Client("memory://args", service_name="args", **kwargs)
    assert info.value.argument == argument


async def test_subscribe_with_a_bad_prefetch_fails_alone(url: str, names: Any) -> None:
    async with Client(url, service_name=names.service()) as client:
        queue = names.queue()
        with pytest.raises(errors.InvalidArgumentError, match="prefetch"):
            await client.subscribe(queue, prefetch=65536)
        assert client._require_subscriber().subscriptions == []
        await client.subscribe(queue, prefetch=65535)
