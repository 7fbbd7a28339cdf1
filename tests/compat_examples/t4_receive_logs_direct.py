"""Tutorial 4, routing: bind one queue for each severity given, consume with an iterator."""
import asyncio
import sys

from mmate_fast.compat.aio_pika import ExchangeType, connect


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        severities = sys.argv[1:]
        if not severities:
            sys.stderr.write(f"Usage: {sys.argv[0]} [info] [warning] [error]\n")
            sys.exit(1)
        direct_logs_exchange = await channel.declare_exchange("direct_logs", ExchangeType.DIRECT)
        queue = await channel.declare_queue(exclusive=True)
        for severity in severities:
            await queue.bind(direct_logs_exchange, routing_key=severity)
        print(" [*] Waiting for messages. To exit press CTRL+C")
        async with queue.iterator() as iterator:
            async for message in iterator:
                async with message.process():
                    print(f" [x] {message.routing_key!r}:{message.body!r}")


if __name__ == "__main__":
    asyncio.run(main())
