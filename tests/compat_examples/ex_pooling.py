"""aio-pika docs, "connection pooling": a pool of connections, a pool of channels on them."""
import asyncio

import mmate_fast.compat.aio_pika as aio_pika
from mmate_fast.compat.aio_pika.abc import AbstractRobustConnection
from mmate_fast.compat.aio_pika.pool import Pool


async def main() -> None:
    async def get_connection() -> AbstractRobustConnection:
        return await aio_pika.connect_robust("amqp://guest:guest@localhost/")

    connection_pool: Pool = Pool(get_connection, max_size=2)

    async def get_channel() -> aio_pika.Channel:
        async with connection_pool.acquire() as connection:
            return await connection.channel()

    channel_pool: Pool = Pool(get_channel, max_size=10)
    queue_name = "pool_queue"
    received: list = []

    async def consume() -> None:
        async with channel_pool.acquire() as channel:
            await channel.set_qos(10)
            queue = await channel.declare_queue(queue_name, durable=False, auto_delete=False)
            async with queue.iterator() as queue_iter:
                async for message in queue_iter:
                    received.append(message.body)
                    await message.ack()
                    if len(received) == 50:
                        return

    async def publish() -> None:
        async with channel_pool.acquire() as channel:
            await channel.default_exchange.publish(aio_pika.Message(b"Channel: %d" % id(channel)), queue_name)

    async with connection_pool, channel_pool:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        await asyncio.wait([asyncio.create_task(publish()) for _ in range(50)])
        await task
        async with channel_pool.acquire() as channel:
            await channel.queue_delete(queue_name)
    print("received", len(received))


if __name__ == "__main__":
    asyncio.run(main())
