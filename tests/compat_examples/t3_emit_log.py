"""Tutorial 3, publish/subscribe: publish a log line to the fanout exchange "logs"."""
import asyncio
import sys

from mmate_fast.compat.aio_pika import DeliveryMode, ExchangeType, Message, connect


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        logs_exchange = await channel.declare_exchange("logs", ExchangeType.FANOUT)
        message_body = b" ".join(arg.encode() for arg in sys.argv[1:]) or b"info: Hello World!"
        message = Message(message_body, delivery_mode=DeliveryMode.PERSISTENT)
        await logs_exchange.publish(message, routing_key="info")
        print(f" [x] Sent {message.body!r}")


if __name__ == "__main__":
    asyncio.run(main())
