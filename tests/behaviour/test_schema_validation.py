"""SchemaValidationInterceptor through the Client on both transports: an invalid payload is refused on
publish (named error, nothing sent) and dead-lettered on consume (reason ``schema-invalid`` with the
validator's message), and the consumer goes on."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Event, GenericMessage
from mmate_fast.interceptors import SchemaValidationInterceptor
from mmate_fast.messaging import topology
from mmate_fast.reliability.dead_lettering import ERROR_HEADER, REASON_HEADER
from mmate_fast.transports import connect
from tests.behaviour.behaviour_helpers import drain_queue, queue_depth, wait_until


@dataclass
class SvEvt(Event):
    n: int = 0
    label: str = ""


@pytest.fixture
async def service(url: str) -> AsyncIterator[str]:
    name = f"schema-{uuid.uuid4().hex[:8]}"
    yield name
    conn = await connect(url)
    try:
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(name))
        await ch.queue_delete(topology.dead_letter_queue(topology.service_queue(name)))
    finally:
        await conn.close()


async def test_invalid_payload_is_not_published(url: str, service: str) -> None:
    got: list[Any] = []
    async with Client(url, service_name=service, interceptors=[SchemaValidationInterceptor()]) as c:
        c.add_handler(SvEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        with pytest.raises(errors.SchemaValidationError) as info:
            await c.publish_event(SvEvt(n="seven", aggregate_id="a"))  # type: ignore[arg-type]
        assert info.value.reason == "schema-invalid"
        assert info.value.detail == "/n: 'seven' is not of type 'integer'"
        assert "SvEvt" in str(info.value)
        await c.publish_event(SvEvt(n=7, aggregate_id="a"))
        await wait_until(lambda: got == [7])
        await wait_until(lambda: sub.stats.acked == 1)
        assert sub.stats.dead_lettered == 0  # the invalid one never reached the broker


async def test_invalid_payload_is_dead_lettered_on_consume_and_the_consumer_goes_on(url: str,
                                                                                  service: str) -> None:
    got: list[int] = []
    async with Client(url, service_name=service,
                      interceptors=[SchemaValidationInterceptor(on_publish=False)]) as consumer, \
            Client(url, service_name=f"{service}-pub", declare_topology=False) as unchecked:
        consumer.add_handler(SvEvt, lambda e: got.append(e.n))
        sub = await consumer.start_consuming()
        # decodes fine (a missing key takes the default, as Go decodes), but the schema requires "n"
        bad = GenericMessage(type="SvEvt", payload={"aggregateId": "a", "sequence": 0, "label": "x"})
        await unchecked.publish(bad, exchange=topology.EVENTS, routing_key="evt.a.SvEvt")
        await unchecked.publish_event(SvEvt(n=4, aggregate_id="a"))
        await wait_until(lambda: got == [4] and sub.stats.reasons["schema-invalid"] == 1)
        await wait_until(lambda: sub.stats.dead_lettered == 1)
        ch = await consumer.connection.channel()
        dlq = topology.dead_letter_queue(consumer.service_queue)
        [dead] = await drain_queue(ch, dlq, expect=1)
        headers = dead.properties.headers
        assert headers[REASON_HEADER] == "schema-invalid"
        assert "'n' is a required property" in headers[ERROR_HEADER]
        assert await queue_depth(consumer.connection, consumer.service_queue) == 0
        await ch.close()
