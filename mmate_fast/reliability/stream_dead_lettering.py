"""Dead-lettering for stream consumers: a record that failed is copied to ``dlq.{stream}.{group}``.

A stream is a log: a failed record cannot be rejected back, and retrying it in place would stall its
group behind it. The stream consumer (mmate_fast.messaging.streams) skips it and hands it here; this
copies it over AMQP to the durable queue ``dlq.{stream}.{group}`` (declared on the first failure) with
the envelope body, its properties and headers, and the usual dead-letter headers (``x-mmate-reason``,
``x-mmate-error``, ``x-mmate-original-queue`` = the stream, ``x-mmate-failed-at``) plus
``x-mmate-stream-offset``, persistent and confirmed, so ``mmate dlq`` lists, peeks and replays them
like any dead letter.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from mmate_fast._ext import load
from mmate_fast.messaging import topology
from mmate_fast.messaging._channels import close_quietly
from mmate_fast.reliability._declared import Declarations
from mmate_fast.reliability.dead_lettering import (
    ERROR_HEADER,
    MAX_ERROR_TEXT,
    QUEUE_HEADER,
    REASON_HEADER,
    TIME_HEADER,
)

_env = load("envelope")
_frames = load("frames")

log = logging.getLogger("mmate_fast.dead_lettering")

OFFSET_HEADER = "x-mmate-stream-offset"
_HEADER_TYPES = (str, int, float, bool, bytes)


def dead_letter_queue(stream: str, group: str | None) -> str:
    """``dlq.{stream}.{group}`` (``dlq.{stream}`` for a consumer without a group)."""
    return topology.dead_letter_queue(f"{stream}.{group}" if group else stream)


class StreamDeadLettering:
    """Copies failed stream records to their ``dlq.{stream}.{group}`` over ``connection`` (AMQP)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._declared = Declarations()
        self._channel: Any = None
        self._lock = asyncio.Lock()

    async def __call__(self, failure: Any) -> None:
        consumer = failure.consumer
        base = f"{consumer.stream}.{consumer.group}" if consumer.group else consumer.stream
        dlq = topology.dead_letter_queue(base)
        await self._declared.ensure(base, functools.partial(self._declare, base))
        channel = self._channel
        if channel is None or not channel.is_open:
            channel = await self._confirm_channel()
        delivery = failure.delivery
        headers: dict[str, Any] = {}
        props: Any = None
        if failure.reason != "not-amqp":
            try:
                props = delivery.properties
                headers = {k: v for k, v in props.headers.items() if isinstance(v, _HEADER_TYPES)}
            except ValueError:
                props = None
        headers.update(
            {
                REASON_HEADER: failure.reason,
                ERROR_HEADER: failure.text[:MAX_ERROR_TEXT],
                QUEUE_HEADER: consumer.stream,
                TIME_HEADER: _env.utc_timestamp(time.time()),
                OFFSET_HEADER: delivery.offset,
            }
        )
        body = delivery.raw if failure.reason == "not-amqp" else delivery.body
        await channel.publish(
            body,
            "",
            dlq,
            _frames.BasicProperties(
                content_type=getattr(props, "content_type", None),
                delivery_mode=2,
                message_id=getattr(props, "message_id", None),
                correlation_id=getattr(props, "correlation_id", None),
                type=getattr(props, "type", None),
                timestamp=getattr(props, "timestamp", None),
                headers=headers,
            ),
        )

    async def _confirm_channel(self) -> Any:
        """The channel in confirm mode, opened once however many failures arrive together (one
        published on before its confirm.select-ok would never be confirmed)."""
        async with self._lock:
            channel = self._channel
            if channel is None or not channel.is_open:
                channel = await self.connection.channel()
                await channel.confirm_select()
                self._channel = channel
            return channel

    async def _declare(self, name: str) -> None:
        channel = await self.connection.channel()
        try:
            await topology.declare_dead_letter_queue(channel, name)
        finally:
            await close_quietly(channel)

    async def close(self) -> None:
        if self._channel is not None:
            await close_quietly(self._channel)
            self._channel = None


__all__ = ["OFFSET_HEADER", "StreamDeadLettering", "dead_letter_queue"]
