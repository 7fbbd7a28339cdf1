"""aio-pika docs, RPC pattern: the caller calls "multiply" through the proxy."""
import asyncio

from mmate_fast.compat.aio_pika import connect_robust
from mmate_fast.compat.aio_pika.patterns import RPC


async def main() -> None:
    connection = await connect_robust("amqp://guest:guest@127.0.0.1/?name=aio-pika%20caller")
    async with connection:
        channel = await connection.channel()
        rpc = await RPC.create(channel)
        for i in range(10):
            print(await rpc.proxy.multiply(x=100, y=i))


if __name__ == "__main__":
    asyncio.run(main())
