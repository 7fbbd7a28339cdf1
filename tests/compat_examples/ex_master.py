"""aio-pika docs, Master/Worker: the master publishes tasks through the proxy."""
import asyncio

from mmate_fast.compat.aio_pika import connect_robust
from mmate_fast.compat.aio_pika.patterns import Master


async def main() -> None:
    connection = await connect_robust("amqp://guest:guest@127.0.0.1/?name=aio-pika%20master")
    async with connection:
        channel = await connection.channel()
        master = Master(channel)
        for task_id in range(10):
            await master.proxy.my_task_name(task_id=task_id)
        print("sent 10 tasks")


if __name__ == "__main__":
    asyncio.run(main())
