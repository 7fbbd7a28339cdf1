"""MemoryConnection: the Connection interface (mmate_fast._transport) to an in-memory Broker."""
from __future__ import annotations

import asyncio

from mmate_fast.errors import ChannelClosedError, ConnectionClosedError, NoChannelsAvailableError
from mmate_fast.transports.memory._broker import Broker
from mmate_fast.transports.memory._channel import MemoryChannel

CHANNEL_MAX = 2047  # RabbitMQ's default channel_max


class MemoryConnection:
    """A connection to an in-memory broker; closing it closes its channels and exclusive queues."""

    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self._broker = broker
        self._loop = loop
        self._closed = False
        self._channels: dict[int, MemoryChannel] = {}

    @property
    def broker(self) -> Broker:
        """The broker this connection talks to."""
        return self._broker

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def channel(self, *, publisher_confirms: bool = False,
                      timeout: float | None = None) -> MemoryChannel:
        """Open a channel (lowest free id, like a channel pool)."""
        if self._closed:
            raise ConnectionClosedError("connection is closed: open a new one", 200, "Normal shutdown")
        for channel_id in range(1, CHANNEL_MAX + 1):
            if channel_id not in self._channels:
                break
        else:
            raise NoChannelsAvailableError(f"all {CHANNEL_MAX} channels are open: close channels you do "
                                           "not use")
        ch = MemoryChannel(self, channel_id, publisher_confirms)
        self._channels[channel_id] = ch
        return ch

    async def close(self, timeout: float | None = None) -> None:
        """Close every channel (requeueing unacked messages) and delete exclusive queues."""
        if self._closed:
            return
        for ch in list(self._channels.values()):
            ch._shutdown(ChannelClosedError("connection closed by the application", 200,
                                            "Normal shutdown"))
        self._closed = True
        self._broker.connection_closed(self)

    async def __aenter__(self) -> MemoryConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["MemoryConnection"]
