"""Contract discovery between two processes on the real RabbitMQ: a service in a subprocess announces
its handlers; this process sees them in its registry, asks for them over the broker, and sees them
go when the service stops."""
from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest

from mmate_fast.client import Client
from mmate_fast.discovery import DiscoveryOptions
from mmate_fast.messaging import topology
from mmate_fast.transports import connect
from tests.behaviour.behaviour_helpers import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import asyncio, sys
from dataclasses import dataclass
from mmate_fast.client import Client
from mmate_fast.contracts import Query, Reply, register
from mmate_fast.discovery import DiscoveryOptions


@dataclass
class PeerPriceQuery(Query):
    sku: str = ""


@dataclass
class PeerPriceReply(Reply):
    price: float = 0.0


register(PeerPriceQuery, reply=PeerPriceReply)


async def main():
    url, service = sys.argv[1], sys.argv[2]
    async with Client(url, service_name=service, discovery=DiscoveryOptions(interval=0.5)) as c:
        c.add_handler(PeerPriceQuery, lambda q: PeerPriceReply(price=1.5))
        await c.start_consuming()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print("stopped", flush=True)


asyncio.run(main())
'''


async def test_discovery_between_two_processes(rabbitmq_url: str, tmp_path: Path) -> None:
    service = f"disc-peer-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "peer.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), rabbitmq_url, service,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async with Client(rabbitmq_url, service_name=f"{service}-watcher",
                          discovery=DiscoveryOptions(interval=0.5, announce=False, respond=False)) as me:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"ready", (line, await proc.stderr.read() if proc.stderr else b"")
            pattern = f"{service}.*"
            await wait_until(lambda: len(me.discovery.registry.find(pattern)) == 1, timeout=10)
            [c] = me.discovery.registry.find(pattern, "^1")
            assert (c.endpoint_id, c.queue, c.output_type) == (
                f"{service}.PeerPriceQuery", f"{service}-queue", "PeerPriceReply")
            # the same over the broker (our request answered by the peer, or by any of our responders)
            asked = await me.discovery.discover(pattern, remote=True, expect=1, window=10)
            assert [a.endpoint_id for a in asked] == [c.endpoint_id]
            proc.stdin.write(b"stop\n")
            await proc.stdin.drain()
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"stopped"
            await wait_until(lambda: me.discovery.registry.find(pattern) == [], timeout=1)  # unregistered
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        conn = await connect(rabbitmq_url)
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(service))
        await conn.close()
