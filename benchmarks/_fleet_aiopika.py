"""One worker of the hand-written aio-pika fleet: ``python benchmarks/_fleet_aiopika.py QUEUE``.

What a good aio-pika user writes for N worker processes: each process connects (connect_robust),
sets the same prefetch, consumes the queue with a callback that decodes the Mmate envelope
(_aiopika_mmate.from_body: orjson and an explicit dataclass), runs the handler and acks; SIGTERM
cancels the consumer, lets the callbacks in flight finish and closes. The parent starts N of them.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from _aiopika_mmate import from_body
from _common import AMQP_URL
from _fleet_common import DEFAULT_PREFETCH, tally_from_env, workload


async def main(queue_name: str) -> None:
    import aio_pika

    tally = tally_from_env()
    body = workload(os.environ.get("BENCH_FLEET_HANDLER", "light"))
    hit = tally.hit
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conn = await aio_pika.connect_robust(AMQP_URL)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=int(os.environ.get("BENCH_FLEET_PREFETCH", DEFAULT_PREFETCH)))
    queue = await ch.get_queue(queue_name, ensure=False)

    async def on_message(message: Any) -> None:
        from_body(message.body)
        body()
        hit()
        await message.ack()

    tag = await queue.consume(on_message)
    await stop.wait()
    await queue.cancel(tag)
    await conn.close()
    tally.write()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1]))
