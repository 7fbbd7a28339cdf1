"""Tutorial 3, publish/subscribe: every subscriber gets its own exclusive queue bound to "logs"."""
import asyncio

from mmate_fast.compat.aio_pika import ExchangeType, connect
from mmate_fast.compat.aio_pika.abc import AbstractIncomingMessage


async def on_message(message: AbstractIncomingMessage) -> None:
    async with message.process():
        print(f"[x] {message.body!r}")


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        logs_exchange = await channel.declare_exchange("logs", ExchangeType.FANOUT)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(logs_exchange)
        await queue.consume(on_message)
        print(" [*] Waiting for logs. To exit press CTRL+C")
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
