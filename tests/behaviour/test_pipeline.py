"""Interceptor pipeline through the Client on both transports: order, enrichment, short-circuit,
failure, around-handler wrapping."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import ConsumeContext, Interceptor, PublishContext, topology
from mmate_fast.transports import connect


@dataclass
class PipeEvt(Event):
    n: int = 0


class Recorder(Interceptor):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def before_publish(self, ctx: PublishContext) -> bool | None:
        self.log.append(f"{self.name}.before_publish")
        ctx.headers[f"x-{self.name}"] = "seen"
        return None

    async def before_send(self, ctx: PublishContext) -> None:
        self.log.append(f"{self.name}.before_send")
        ctx.amqp_headers[f"x-{self.name}-body-len"] = str(len(ctx.outgoing.body))

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        self.log.append(f"{self.name}.after_publish:{error is None}")

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        self.log.append(f"{self.name}.before_consume")
        return None

    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        self.log.append(f"{self.name}.around>")
        try:
            return await call_next()
        finally:
            self.log.append(f"{self.name}.around<")

    async def after_consume(self, ctx: ConsumeContext, error: BaseException | None) -> None:
        self.log.append(f"{self.name}.after_consume:{error is None}")


class DropOdd(Interceptor):
    async def before_publish(self, ctx: PublishContext) -> bool | None:
        return ctx.message.n % 2 == 0


class SkipBig(Interceptor):
    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        if ctx.message.n >= 100:
            return False
        if ctx.message.n == 66:
            raise PermissionError("66 is not allowed")
        return None


async def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def service(url: str) -> AsyncIterator[str]:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    yield name
    conn = await connect(url)
    ch = await conn.channel()
    await ch.queue_delete(topology.service_queue(name))
    await ch.queue_delete(topology.dead_letter_queue(topology.service_queue(name)))
    await conn.close()


async def test_hooks_run_in_order_and_enrich_headers(url: str, service: str) -> None:
    log: list[str] = []
    got: list[Any] = []
    async with Client(url, service_name=service, interceptors=[Recorder("a", log), Recorder("b", log)]) as c:

        @c.handler(PipeEvt)
        def handle(evt: PipeEvt, ctx: Any) -> None:
            log.append("handler")
            got.append((evt.n, dict(ctx.envelope.headers), dict(ctx.delivery.properties.headers),
                        dict(ctx.headers)))

        await c.start_consuming()
        await c.publish_event(PipeEvt(n=1, aggregate_id="p"))
        await _wait(lambda: len(got) == 1 and "a.after_consume:True" in log)
    # the consumer may see the message before the publisher sees the broker's confirm: check each
    # side's order on its own
    publish_side = [e for e in log if "publish" in e or "send" in e]
    consume_side = [e for e in log if e not in publish_side]
    assert publish_side == [
        "a.before_publish", "b.before_publish", "a.before_send", "b.before_send",
        "b.after_publish:True", "a.after_publish:True",
    ]
    assert consume_side == [
        "a.before_consume", "b.before_consume", "a.around>", "b.around>", "handler", "b.around<",
        "a.around<", "b.after_consume:True", "a.after_consume:True",
    ]
    n, env_headers, amqp_headers, view = got[0]
    assert n == 1
    assert env_headers["x-a"] == "seen" and env_headers["x-b"] == "seen"  # in the body too
    assert "x-a-body-len" in amqp_headers and "x-a-body-len" not in env_headers  # AMQP only
    assert view == {**env_headers, **amqp_headers}  # ctx.headers: both, the AMQP value winning


async def test_short_circuit_publish_and_consume_and_failing_interceptor(url: str, service: str) -> None:
    got: list[int] = []
    async with Client(url, service_name=service, interceptors=[DropOdd(), SkipBig()]) as c:
        c.add_handler(PipeEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        ids = [await c.publish_event(PipeEvt(n=n, aggregate_id="p")) for n in (1, 2, 66, 100, 4)]
        assert ids[0] == "" and all(ids[1:])  # odd one dropped before encoding
        await _wait(lambda: got == [2, 4] and sub.stats.dead_lettered == 1 and sub.stats.acked == 3)
        assert sub.stats.reasons["handler-error"] == 1  # 66: interceptor raised -> to the DLQ
        with pytest.raises(Exception, match="publish_nowait"):
            c.publisher.publish_nowait(PipeEvt(n=2, aggregate_id="p"))  # type: ignore[union-attr]
