"""aio-pika docs, tutorial 7 "publisher confirms": individually, in batches, asynchronously."""
import asyncio

from mmate_fast.compat.aio_pika import Message, connect
from mmate_fast.compat.aio_pika.exceptions import DeliveryError


async def main() -> None:
    async with await connect("amqp://guest:guest@localhost/") as connection:
        channel = await connection.channel()  # publisher confirms are on by default
        queue = await channel.declare_queue(exclusive=True)
        for i in range(10):  # one at a time: wait for each confirmation
            await channel.default_exchange.publish(Message(f"Hello {i}".encode()), routing_key=queue.name)
        batch = [channel.default_exchange.publish(Message(f"Batch {i}".encode()), routing_key=queue.name)
                 for i in range(100)]
        await asyncio.gather(*batch)  # a batch: wait for all of them together
        confirmed = 0
        for outcome in asyncio.as_completed([
                channel.default_exchange.publish(Message(f"Async {i}".encode()), routing_key=queue.name)
                for i in range(100)]):
            try:
                await outcome
                confirmed += 1
            except DeliveryError as e:
                print(f"nacked: {e}")
        declared = await channel.declare_queue(queue.name, passive=True)
        print("confirmed", confirmed, "in queue", declared.declaration_result.message_count)


if __name__ == "__main__":
    asyncio.run(main())
