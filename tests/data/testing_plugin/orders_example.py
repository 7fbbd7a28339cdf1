"""The example test of the README (mmate_fast.testing): run by tests/unit/test_testing_plugin.py with
pytester, as a user's project would run it (strict asyncio mode, the plugin from its entry point)."""
from dataclasses import dataclass

import pytest

from mmate_fast import Client, Command, Event
from mmate_fast.testing import feed, record_published


@dataclass
class PlaceOrder(Command):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class OrderPlaced(Event):
    order_id: str = ""


def orders_service(client: Client) -> None:
    """The service under test: places valid orders, refuses the others."""

    @client.handler(PlaceOrder)
    async def place(cmd: PlaceOrder) -> None:
        if cmd.amount <= 0:
            raise ValueError(f"order {cmd.order_id}: amount must be positive")
        await client.publish_event(OrderPlaced(order_id=cmd.order_id, aggregate_id=cmd.order_id))


@pytest.mark.asyncio
async def test_place_order_publishes_order_placed(mmate_memory_client: Client) -> None:
    orders_service(mmate_memory_client)
    published = record_published(mmate_memory_client)
    await feed(mmate_memory_client, PlaceOrder(order_id="o-1", amount=9.5))
    [placed] = await published.wait_for(OrderPlaced, count=1, timeout=5)
    assert placed.order_id == "o-1"


@pytest.mark.asyncio
async def test_invalid_order_fails_and_publishes_nothing(mmate_memory_client: Client) -> None:
    orders_service(mmate_memory_client)
    published = record_published(mmate_memory_client)
    with pytest.raises(ValueError, match="amount must be positive"):
        await feed(mmate_memory_client, PlaceOrder(order_id="o-2", amount=0))
    assert published.of(OrderPlaced) == []


@pytest.mark.asyncio
async def test_same_service_on_rabbitmq(mmate_rabbit_client: Client) -> None:
    orders_service(mmate_rabbit_client)
    published = record_published(mmate_rabbit_client)
    await feed(mmate_rabbit_client, PlaceOrder(order_id="o-3", amount=1.0))
    [placed] = await published.wait_for(OrderPlaced, timeout=5)
    assert placed.order_id == "o-3"
