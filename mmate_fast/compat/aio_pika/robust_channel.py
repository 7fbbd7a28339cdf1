"""``RobustChannel``: a channel on a robust connection. The mmate_fast RobustChannel under it reopens
itself after a reconnect or a channel error and restores its exchanges, queues, bindings, QoS and
consumers (same consumer tags and callbacks), as aio-pika's does."""
from __future__ import annotations

from mmate_fast.compat.aio_pika.abc import AbstractRobustChannel
from mmate_fast.compat.aio_pika.channel import Channel
from mmate_fast.compat.aio_pika.robust_exchange import RobustExchange
from mmate_fast.compat.aio_pika.robust_queue import RobustQueue


class RobustChannel(Channel, AbstractRobustChannel):
    """aio-pika's ``RobustChannel``."""

    QUEUE_CLASS = RobustQueue
    EXCHANGE_CLASS = RobustExchange

    async def ready(self) -> None:
        """Wait until the connection is up (a reconnect is in progress otherwise)."""
        await self._connection.ready()

    async def restore(self, channel: object = None) -> None:
        """Kept for aio-pika compatibility: restoring is done by the client itself."""

    async def reopen(self) -> None:
        """Kept for aio-pika compatibility: the channel reopens itself."""


__all__ = ("RobustChannel",)
