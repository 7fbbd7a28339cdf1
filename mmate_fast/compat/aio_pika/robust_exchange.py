"""``RobustExchange``: what the robust channel declares; its exchange-to-exchange bindings are
restored after a reconnect by the client (``robust=`` accepted as in aio-pika)."""
from __future__ import annotations

from typing import Any

from mmate_fast.compat.aio_pika.abc import AbstractRobustExchange, Arguments, ExchangeParamType, TimeoutType
from mmate_fast.compat.aio_pika.exchange import Exchange


class RobustExchange(Exchange, AbstractRobustExchange):
    """aio-pika's ``RobustExchange``."""

    async def bind(self, exchange: ExchangeParamType, routing_key: str = "", *, arguments: Arguments = None,
                   timeout: TimeoutType = None, robust: bool = True) -> Any:
        return await super().bind(exchange, routing_key, arguments=arguments, timeout=timeout)


__all__ = ("RobustExchange",)
