"""``RobustQueue``: what the robust channel declares. Bindings and consumers made through it are
restored after a reconnect by the client (``robust=`` is accepted as in aio-pika)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast.compat.aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustQueue,
    Arguments,
    ConsumerTag,
    ExchangeParamType,
    TimeoutType,
)
from mmate_fast.compat.aio_pika.queue import Queue


class RobustQueue(Queue, AbstractRobustQueue):
    """aio-pika's ``RobustQueue``."""

    __slots__ = ()

    async def bind(self, exchange: ExchangeParamType, routing_key: str | None = None, *,
                   arguments: Arguments = None, timeout: TimeoutType = None, robust: bool = True) -> Any:
        return await super().bind(exchange, routing_key, arguments=arguments, timeout=timeout)

    async def unbind(self, exchange: ExchangeParamType, routing_key: str | None = None,
                     arguments: Arguments = None, timeout: TimeoutType = None) -> Any:
        return await super().unbind(exchange, routing_key, arguments, timeout)

    async def consume(self, callback: Callable[[AbstractIncomingMessage], Awaitable[Any]],
                      no_ack: bool = False, exclusive: bool = False, arguments: Arguments = None,
                      consumer_tag: ConsumerTag | None = None, timeout: TimeoutType = None,
                      robust: bool = True) -> ConsumerTag:
        return await super().consume(callback, no_ack, exclusive, arguments, consumer_tag, timeout)


__all__ = ("RobustQueue",)
