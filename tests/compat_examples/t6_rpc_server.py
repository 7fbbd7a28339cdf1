"""Tutorial 6, RPC: a server computing Fibonacci numbers for requests on rpc_queue."""
import asyncio
import logging

from mmate_fast.compat.aio_pika import Message, connect
from mmate_fast.compat.aio_pika.abc import AbstractIncomingMessage


def fib(n: int) -> int:
    if n == 0:
        return 0
    if n == 1:
        return 1
    return fib(n - 1) + fib(n - 2)


async def main() -> None:
    connection = await connect("amqp://guest:guest@localhost/")
    channel = await connection.channel()
    exchange = channel.default_exchange
    queue = await channel.declare_queue("rpc_queue")
    print(" [x] Awaiting RPC requests")
    async with queue.iterator() as qiterator:
        message: AbstractIncomingMessage
        async for message in qiterator:
            try:
                async with message.process(requeue=False):
                    assert message.reply_to is not None
                    n = int(message.body.decode())
                    print(f" [.] fib({n})")
                    response = str(fib(n)).encode()
                    await exchange.publish(
                        Message(body=response, correlation_id=message.correlation_id),
                        routing_key=message.reply_to)
                    print("Request complete")
            except Exception:
                logging.exception("Processing error for message %r", message)


if __name__ == "__main__":
    asyncio.run(main())
