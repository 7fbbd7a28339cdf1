"""aio-pika docs, the README example: declare, publish, get, ack, unbind, delete."""
import asyncio

from mmate_fast.compat.aio_pika import Message, connect_robust


async def main() -> None:
    connection = await connect_robust("amqp://guest:guest@127.0.0.1/?name=aio-pika%20example")
    queue_name = "test_queue_main"
    routing_key = "test_queue_main"
    channel = await connection.channel()
    exchange = await channel.declare_exchange("direct", auto_delete=True)
    queue = await channel.declare_queue(queue_name, auto_delete=True)
    await queue.bind(exchange, routing_key)
    await exchange.publish(
        Message(bytes("Hello", "utf-8"), content_type="text/plain", headers={"foo": "bar"}), routing_key)
    incoming_message = await queue.get(timeout=5)
    if incoming_message:
        print(incoming_message.body, incoming_message.headers, incoming_message.content_type)
        await incoming_message.ack()
    else:
        raise RuntimeError("Queue empty")
    await queue.unbind(exchange, routing_key)
    await queue.delete()
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
