"""Tutorial 2, work queues: publish a persistent task to the durable task_queue."""
import asyncio
import sys

from mmate_fast.compat.aio_pika import DeliveryMode, Message, connect


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        text = " ".join(sys.argv[1:]) or "Hello World!"
        message = Message(text.encode(), delivery_mode=DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key="task_queue")
        print(f" [x] Sent {message.body!r}")


if __name__ == "__main__":
    asyncio.run(main())
