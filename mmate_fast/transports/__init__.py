"""Transports: RabbitMQ over AMQP 0-9-1 (``amqp://``, ``amqps://``) and the embedded in-memory
broker (``memory://[name]``), behind one interface (:mod:`mmate_fast._transport`, re-exported here)."""
from __future__ import annotations

from typing import Any

from mmate_fast._transport import Channel, Connection, QueueDeclareOk
from mmate_fast.errors import InvalidURLError


async def connect(url: str, **kwargs: Any) -> Connection:
    """Open a connection for ``url``: ``amqp://``/``amqps://`` -> RabbitMQ, ``memory://`` -> embedded."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("amqp", "amqps"):
        from mmate_fast.amqp import connect as amqp_connect

        return await amqp_connect(url, **kwargs)
    if scheme == "memory":
        from mmate_fast.transports.memory import connect as memory_connect

        return await memory_connect(url, **kwargs)
    raise InvalidURLError(f"unsupported URL scheme {scheme!r}: use amqp://, amqps:// or memory://")


__all__ = ["Channel", "Connection", "QueueDeclareOk", "connect"]
