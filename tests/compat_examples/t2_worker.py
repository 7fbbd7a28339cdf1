"""Tutorial 2, work queues: a worker taking one task at a time (prefetch 1), acking when done."""
import asyncio

from mmate_fast.compat.aio_pika import connect
from mmate_fast.compat.aio_pika.abc import AbstractIncomingMessage


async def on_message(message: AbstractIncomingMessage) -> None:
    async with message.process():
        print(f" [x] Received {message.body!r} persistent={message.delivery_mode == 2}")
        await asyncio.sleep(message.body.count(b".") * 0.01)
        print(" [x] Done")


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue("task_queue", durable=True)
        await queue.consume(on_message)
        print(" [*] Waiting for messages. To exit press CTRL+C")
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
