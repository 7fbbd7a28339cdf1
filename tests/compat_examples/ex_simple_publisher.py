"""aio-pika docs, "simple publisher": connect_robust, publish to a routing key."""
import asyncio

import mmate_fast.compat.aio_pika as aio_pika


async def main() -> None:
    connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1/")
    async with connection:
        routing_key = "test_queue"
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body=f"Hello {routing_key}".encode()), routing_key=routing_key)
        print("published")


if __name__ == "__main__":
    asyncio.run(main())
