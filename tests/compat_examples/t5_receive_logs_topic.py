"""Tutorial 5, topics: bind with patterns ("*.critical", "kern.#") and print what matches."""
import asyncio
import sys

from mmate_fast.compat.aio_pika import ExchangeType, connect


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        topic_logs_exchange = await channel.declare_exchange("topic_logs", ExchangeType.TOPIC)
        queue = await channel.declare_queue("task_queue_topic", durable=True)
        binding_keys = sys.argv[1:]
        if not binding_keys:
            sys.stderr.write(f"Usage: {sys.argv[0]} [binding_key]...\n")
            sys.exit(1)
        for binding_key in binding_keys:
            await queue.bind(topic_logs_exchange, routing_key=binding_key)
        print(" [*] Waiting for messages. To exit press CTRL+C")
        async with queue.iterator(no_ack=True) as iterator:
            async for message in iterator:
                print(f" [x] {message.routing_key!r}:{message.body!r}")


if __name__ == "__main__":
    asyncio.run(main())
