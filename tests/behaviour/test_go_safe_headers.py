"""Go-unsafe header types (issue 8 item 4), end to end on memory and RabbitMQ: a ``Typed('u'|'i'|'L')``
header is refused before anything is sent (the publish fails alone, the next works); opted in with
``go_safe=False`` it travels; plain ints travel as Go-readable types."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.amqp import Typed
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.errors import InvalidArgumentError
from mmate_fast.messaging import MessageContext

from .behaviour_helpers import wait_until


@dataclass
class GsPing(Event):
    n: int = 0


async def test_go_unsafe_header_is_refused_and_the_opt_in_travels(url: str, names: Any) -> None:
    seen: list[tuple[int, Any, Any]] = []
    async with Client(url, service_name=names.service()) as client:

        @client.handler(GsPing)
        def on_ping(msg: GsPing, ctx: MessageContext) -> None:
            seen.append((msg.n, ctx.headers.get("big"), ctx.headers.get("port")))

        sub = await client.start_consuming()
        with pytest.raises(InvalidArgumentError, match="amqp091-go"):
            await client.publish_event(GsPing(n=1, aggregate_id="a"), headers={"big": Typed("L", 2**63)})
        await client.publish_event(GsPing(n=2, aggregate_id="a"),
                                   headers={"big": Typed("L", 2**63, go_safe=False), "port": 40000})
        await wait_until(lambda: sub.stats.acked >= 1)
        assert seen == [(2, 2**63, 40000)]
