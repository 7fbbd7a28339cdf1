"""Embedded in-memory AMQP 0-9-1 broker (``memory://`` default broker, ``memory://NAME`` named ones).

It behaves like RabbitMQ 3.10 as an AMQP client sees it (exchanges, bindings, queue arguments,
dead-lettering, prefetch, confirms, returns, error codes), so code and tests run without a broker.
"""
from __future__ import annotations

import asyncio
from typing import Any

from mmate_fast.errors import InvalidURLError
from mmate_fast.transports.memory._broker import Broker
from mmate_fast.transports.memory._channel import MemoryChannel
from mmate_fast.transports.memory._connection import MemoryConnection

_BROKERS: dict[str, Broker] = {}


def broker_name(url: str) -> str:
    """The broker name in ``memory://NAME`` (``""`` for the default broker)."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "memory" or not sep:
        raise InvalidURLError(f"not a memory URL: {url!r} (use memory:// or memory://NAME)")
    return rest.split("?", 1)[0].split("#", 1)[0].strip("/")


def get_broker(name: str = "") -> Broker:
    """The broker ``name``, created on first use."""
    broker = _BROKERS.get(name)
    if broker is None:
        broker = _BROKERS[name] = Broker(name)
    return broker


def reset_broker(name: str = "") -> None:
    """Forget broker ``name``: the next connection gets an empty one (open connections keep the old)."""
    _BROKERS.pop(name, None)


async def connect(url: str, **kwargs: Any) -> MemoryConnection:
    """Connect to the in-memory broker named by ``url``; other keyword options are accepted and ignored."""
    return MemoryConnection(get_broker(broker_name(url)), asyncio.get_running_loop())


__all__ = ["Broker", "MemoryChannel", "MemoryConnection", "broker_name", "connect", "get_broker",
           "reset_broker"]
