"""Tutorial 5, topics: publish with a dotted routing key to the topic exchange."""
import asyncio
import sys

from mmate_fast.compat.aio_pika import DeliveryMode, ExchangeType, Message, connect


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        topic_logs_exchange = await channel.declare_exchange("topic_logs", ExchangeType.TOPIC)
        routing_key = sys.argv[1] if len(sys.argv) > 2 else "anonymous.info"
        message_body = b" ".join(arg.encode() for arg in sys.argv[2:]) or b"Hello World!"
        message = Message(message_body, delivery_mode=DeliveryMode.PERSISTENT)
        await topic_logs_exchange.publish(message, routing_key=routing_key)
        print(f" [x] Sent {message.body!r}")


if __name__ == "__main__":
    asyncio.run(main())
