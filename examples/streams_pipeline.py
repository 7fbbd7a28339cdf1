"""The event pipeline of the README's "Streams" section (kept identical to it by
tests/integration/test_streams.py::test_the_documented_pipeline_runs). Needs RabbitMQ with the
rabbitmq_stream plugin on 127.0.0.1."""
import asyncio
from dataclasses import dataclass

from mmate_fast import Client
from mmate_fast.contracts import Event

URL = "amqp://guest:guest@127.0.0.1:5672/"  # the stream port (5552) of the same broker is used


@dataclass
class OrderPlaced(Event):
    order_id: str = ""
    amount: float = 0.0


async def main() -> None:
    # the producer: typed events, confirmed batches
    async with Client(URL, service_name="shop") as shop:
        await shop.create_stream("orders", max_length_bytes=1_000_000_000, max_age="7D")
        await shop.publish_to_stream("orders", OrderPlaced(order_id="o-1", amount=9.5, aggregate_id="o-1"))
        more = [OrderPlaced(order_id=f"o-{i}", amount=i, aggregate_id=f"o-{i}") for i in range(2, 101)]
        await shop.publish_batch_to_stream("orders", more)

    # two consumer groups on the same log, each with its own offset on the broker
    async with Client(URL, service_name="billing") as billing, \
               Client(URL, service_name="shipping") as shipping:
        billed: list[str] = []
        shipped: list[str] = []

        @billing.handler(OrderPlaced)
        def bill(order: OrderPlaced) -> None:
            billed.append(order.order_id)

        @shipping.handler(OrderPlaced)
        async def ship(order: OrderPlaced, ctx) -> None:  # async + context, as on queues
            shipped.append(f"{order.order_id}@{ctx.delivery.offset}")

        b = await billing.subscribe_stream("orders", group="billing", offset="first")
        s = await shipping.subscribe_stream("orders", group="shipping", offset="first")
        while len(billed) < 100 or len(shipped) < 100:
            await asyncio.sleep(0.05)
        print("billing", len(billed), "shipping", len(shipped), b.stats, s.stats)
    # closing the clients stored each group's offset: started again, each group goes on after it

    async with Client(URL, service_name="shop") as shop:
        await shop.delete_stream("orders")


asyncio.run(main())
