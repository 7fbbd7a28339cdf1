"""A failed publish_batch leaves no confirm future whose exception nobody retrieved.

``publish_batch`` waits for its window with ``wait_for_confirms`` instead of awaiting each confirm
future; when the broker closed the channel (here: 404, a missing exchange) every one of those
futures failed and asyncio logged "Future exception was never retrieved" once per message.
"""
from __future__ import annotations

import gc
import uuid
from dataclasses import dataclass

import pytest

from mmate_fast import Client, errors
from mmate_fast.contracts import Event
from mmate_fast.transports import connect


@dataclass
class NoEvent(Event):
    n: int = 0


async def test_failed_batch_leaves_no_unretrieved_confirm(url: str, caplog: pytest.LogCaptureFixture) -> None:
    client = Client(url, service_name=f"no-{uuid.uuid4().hex[:8]}", recovery=False)
    await client.connect()
    try:
        with pytest.raises(errors.ChannelClosedError):  # NotFoundError (404) on RabbitMQ and memory
            await client.publish_batch([NoEvent(n=i) for i in range(20)],
                                       exchange=f"no-missing-{uuid.uuid4().hex}", timeout=5)
    finally:
        queue = client.service_queue
        await client.close(timeout=2)
        conn = await connect(url)
        ch = await conn.channel()
        await ch.queue_delete(queue)
        await conn.close()
    del client
    gc.collect()
    assert [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()] == []
