"""Tutorial 6, RPC: a client sending fib(n) requests and waiting for the matching replies."""
import asyncio
import uuid
from collections.abc import MutableMapping

from mmate_fast.compat.aio_pika import Message, connect
from mmate_fast.compat.aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)


class FibonacciRpcClient:
    connection: AbstractConnection
    channel: AbstractChannel
    callback_queue: AbstractQueue

    def __init__(self) -> None:
        self.futures: MutableMapping[str, asyncio.Future] = {}

    async def connect(self) -> "FibonacciRpcClient":
        self.connection = await connect("amqp://guest:guest@localhost/")
        self.channel = await self.connection.channel()
        self.callback_queue = await self.channel.declare_queue(exclusive=True)
        await self.callback_queue.consume(self.on_response, no_ack=True)
        return self

    async def on_response(self, message: AbstractIncomingMessage) -> None:
        if message.correlation_id is None:
            print(f"Bad message {message!r}")
            return
        future: asyncio.Future = self.futures.pop(message.correlation_id)
        future.set_result(message.body)

    async def call(self, n: int) -> int:
        correlation_id = str(uuid.uuid4())
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.futures[correlation_id] = future
        await self.channel.default_exchange.publish(
            Message(str(n).encode(), content_type="text/plain", correlation_id=correlation_id,
                    reply_to=self.callback_queue.name),
            routing_key="rpc_queue")
        return int(await future)


async def main() -> None:
    fibonacci_rpc = await FibonacciRpcClient().connect()
    print(" [x] Requesting fib(20)")
    response = await fibonacci_rpc.call(20)
    print(f" [.] Got {response!r}")
    await fibonacci_rpc.connection.close()


if __name__ == "__main__":
    asyncio.run(main())
