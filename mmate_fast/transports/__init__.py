"""Transports: RabbitMQ over AMQP 0-9-1 (``amqp://``, ``amqps://``) and the embedded in-memory
broker (``memory://[name]``), behind one interface (:mod:`mmate_fast._transport`, re-exported here)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmate_fast._transport import Channel, Connection, QueueDeclareOk
from mmate_fast.errors import InvalidURLError


def scheme_of(url: str | Sequence[str]) -> str:
    """The scheme of ``url`` (of the first of several RabbitMQ node URLs), lower case."""
    first = url if isinstance(url, str) else (url[0] if url else "")
    return first.split(":", 1)[0].lower() if isinstance(first, str) else ""


async def connect(url: str | Sequence[str], **kwargs: Any) -> Connection:
    """Open a connection for ``url``: ``amqp://``/``amqps://`` -> RabbitMQ (one node, or several:
    ``amqp://u:p@h1,h2/`` or a list of URLs), ``memory://`` -> embedded."""
    scheme = scheme_of(url)
    if scheme in ("amqp", "amqps"):
        from mmate_fast.amqp import connect as amqp_connect

        return await amqp_connect(url, **kwargs)
    if scheme == "memory":
        from mmate_fast.transports.memory import connect as memory_connect

        if not isinstance(url, str):
            raise InvalidURLError("memory:// takes one URL, not a list")
        return await memory_connect(url, **kwargs)
    raise InvalidURLError(f"unsupported URL scheme {scheme!r}: use amqp://, amqps:// or memory://")


__all__ = ["Channel", "Connection", "QueueDeclareOk", "connect", "scheme_of"]
