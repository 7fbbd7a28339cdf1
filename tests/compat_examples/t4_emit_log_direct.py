"""Tutorial 4, routing: publish with the severity as routing key to the direct exchange."""
import asyncio
import sys

from mmate_fast.compat.aio_pika import DeliveryMode, ExchangeType, Message, connect


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        direct_logs_exchange = await channel.declare_exchange("direct_logs", ExchangeType.DIRECT)
        severity = sys.argv[1] if len(sys.argv) > 2 else "info"
        message_body = b" ".join(arg.encode() for arg in sys.argv[2:]) or b"Hello World!"
        message = Message(message_body, delivery_mode=DeliveryMode.PERSISTENT)
        await direct_logs_exchange.publish(message, routing_key=severity)
        print(f" [x] Sent {message.body!r}")


if __name__ == "__main__":
    asyncio.run(main())
