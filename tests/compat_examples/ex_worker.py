"""aio-pika docs, Master/Worker: the worker serving my_task_name."""
import asyncio

from mmate_fast.compat.aio_pika import connect_robust
from mmate_fast.compat.aio_pika.patterns import Master, NackMessage, RejectMessage


async def worker(*, task_id: int) -> None:
    if task_id % 2 == 0:
        raise RejectMessage(requeue=False)
    if task_id % 3 == 0:
        raise NackMessage(requeue=False)
    print(f"task {task_id} done")


async def main() -> None:
    connection = await connect_robust("amqp://guest:guest@127.0.0.1/?name=aio-pika%20worker")
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1)
    master = Master(channel)
    await master.create_worker("my_task_name", worker, auto_delete=True)
    print("worker ready")
    try:
        await asyncio.Future()
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
