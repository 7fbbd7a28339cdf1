"""``Client.subscribe(queue, registry=...)``: that queue's deliveries are decoded with the given registry,
the client's other queues with the client's (a pattern such as StageFlow consumes its own types on its
own queues, whatever the application registered under the same names). On memory:// and RabbitMQ."""
from __future__ import annotations

import dataclasses
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import TypeRegistry
from tests.behaviour.behaviour_helpers import wait_until
from tests.behaviour.conftest import Names

BODY = b'{"id":"i-1","type":"Twin","timestamp":"2025-01-02T03:04:05Z","payload":{"name":"n"}}'


@dataclasses.dataclass
class AppTwin:
    name: str = ""


@dataclasses.dataclass
class PatternTwin:
    name: str = ""


async def test_a_queue_decoded_with_its_own_registry(url: str, names: Names) -> None:
    app, pattern = TypeRegistry(), TypeRegistry()
    app.register(AppTwin, "Twin")
    pattern.register(PatternTwin, "Twin")
    got: list[tuple[str, Any]] = []
    own, other = names.queue("own"), names.queue("other")
    async with Client(url, service_name=names.service(), registry=app) as client:
        client.add_handler("Twin", lambda msg, ctx: got.append((ctx.queue, msg)))
        await client.subscribe(own, durable=False, registry=pattern)
        await client.subscribe(other, durable=False)
        ch = await client.connection.channel()
        await ch.publish(BODY, "", own)
        await ch.publish(BODY, "", other)
        await wait_until(lambda: len(got) == 2, timeout=10)
    assert {q: type(m) for q, m in got} == {own: PatternTwin, other: AppTwin}
    assert all(m.name == "n" for _, m in got)
