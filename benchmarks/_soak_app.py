"""The soak test's service: ``mmate run _soak_app:make --app-dir benchmarks`` (started by soak.py).

Each worker is a Client on ``$SOAK_URL`` (``memory://``: its own embedded broker; ``amqp://``: the
fleet shares the service queue) that both produces and consumes: a background task publishes
``$SOAK_RATE`` commands per second to its own service (and one event in ten), the handlers decode
them and do a little work; so a worker's memory and file descriptors see the whole publish and
consume path for as long as the soak runs. An async factory: it connects, starts the producer and
returns the connected Client (``mmate run`` then starts consuming).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass, field

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Command, Event

log = logging.getLogger("soak")
_tasks: set[asyncio.Task[None]] = set()


@dataclass
class SoakWork(Command):
    seq: int = 0
    blob: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass
class SoakDone(Event):
    seq: int = 0
    digest: str = ""


async def _produce(client: Client, service: str, rate: float) -> None:
    period, seq = 1.0 / rate, 0
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        while True:
            seq += 1
            await client.publish_command(SoakWork(seq=seq, blob="x" * (seq % 512), tags=[str(seq % 7)] * 3,
                                                  target_service=service))
            if seq % 10 == 0:
                digest = hashlib.sha1(str(seq).encode()).hexdigest()
                await client.publish_event(SoakDone(seq=seq, digest=digest, aggregate_id=f"soak-{seq % 100}"))
            next_at += period
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = loop.time()  # behind: do not burst to catch up
    except errors.MmateError as exc:  # the client is closing (drain): stop producing
        log.info("producer stopped: %s", exc)
    except Exception:  # a bug: the worker must not go on idle (the soak would call that flat)
        log.critical("the soak producer failed: exiting the worker", exc_info=True)
        os._exit(70)


async def make() -> Client:
    service = os.environ.get("SOAK_SERVICE", "soak")
    client = Client(os.environ.get("SOAK_URL", "memory://"), service_name=service, prefetch=50)

    @client.handler(SoakWork)
    async def work(cmd: SoakWork) -> None:
        hashlib.sha1(cmd.blob.encode()).hexdigest()

    @client.handler(SoakDone)
    def done(evt: SoakDone) -> None:
        pass

    await client.connect()
    task = asyncio.get_running_loop().create_task(_produce(client, service, float(os.environ.get("SOAK_RATE",
                                                                                                 "200"))))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return client
