"""``Exchange``: declare, bind/unbind (exchange to exchange), publish, delete (aio-pika's API)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from mmate_fast import errors
from mmate_fast.amqp.channel import _EAGER_FLUSH_BYTES
from mmate_fast.amqp.channel import Channel as _PlainChannel
from mmate_fast.compat.aio_pika._errors import raise_translated
from mmate_fast.compat.aio_pika._frames import basic_ack, spec
from mmate_fast.compat.aio_pika.abc import (
    AbstractExchange,
    Arguments,
    ExchangeParamType,
    ExchangeType,
    TimeoutType,
    get_exchange_name,
)
from mmate_fast.compat.aio_pika.exceptions import ChannelInvalidStateError, DeliveryError, PublishError

log = logging.getLogger("mmate_fast.compat.aio_pika")


class Exchange(AbstractExchange):
    """An exchange on a channel (aio-pika's ``Exchange``)."""

    def __init__(self, channel: Any, name: str, type: ExchangeType | str = ExchangeType.DIRECT, *,
                 auto_delete: bool = False, durable: bool = False, internal: bool = False,
                 passive: bool = False, arguments: Arguments = None) -> None:
        self._type = type.value if isinstance(type, ExchangeType) else type
        self.channel = channel
        self.name = name
        self.auto_delete = auto_delete
        self.durable = durable
        self.internal = internal
        self.passive = passive
        self.arguments = arguments or {}

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}({self}): auto_delete={self.auto_delete}, durable={self.durable}, "
                f"arguments={self.arguments!r})>")

    async def declare(self, timeout: TimeoutType = None) -> Any:
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.exchange_declare(self.name, self._type, passive=self.passive, durable=self.durable,
                                      auto_delete=self.auto_delete, internal=self.internal,
                                      arguments=self.arguments, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return spec.Exchange.DeclareOk()

    async def bind(self, exchange: ExchangeParamType, routing_key: str = "", *, arguments: Arguments = None,
                   timeout: TimeoutType = None) -> Any:
        """Route messages of ``exchange`` (the source) to this exchange."""
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.exchange_bind(self.name, get_exchange_name(exchange), routing_key, arguments, timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return spec.Exchange.BindOk()

    async def unbind(self, exchange: ExchangeParamType, routing_key: str = "", arguments: Arguments = None,
                     timeout: TimeoutType = None) -> Any:
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.exchange_unbind(self.name, get_exchange_name(exchange), routing_key, arguments, timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        return spec.Exchange.UnbindOk()

    async def publish(self, message: Any, routing_key: str, *, mandatory: bool = True,
                      immediate: bool = False, timeout: TimeoutType = None) -> Any:
        """Publish ``message``. Without publisher confirms: None once queued for the socket. With
        them (the default): the broker's ``Basic.Ack``; a nack raises DeliveryError; an unroutable
        mandatory message raises PublishError (``on_return_raises=True``) or is returned (the
        ``ReturnedMessage``, also given to ``channel.return_callbacks``)."""
        if self.internal:
            raise ValueError(f"Can not publish to internal exchange: '{self.name}'!")
        channel = self.channel
        raw = channel._channel
        if raw is None or not raw.is_open:
            raise ChannelInvalidStateError(f"{channel!r} closed")
        props = message._wire_properties()
        if not channel.publisher_confirms:
            try:
                if type(raw) is _PlainChannel:  # inlined Channel.publish: no coroutine per message
                    conn = raw._conn
                    if len(conn._wbuf) > _EAGER_FLUSH_BYTES or not conn._writable.is_set():
                        await conn.drain()
                    raw.publish_nowait(message.body, self.name, routing_key, props, mandatory=mandatory)
                else:
                    await raw.publish(message.body, self.name, routing_key, props, mandatory=mandatory)
            except errors.MmateError as error:
                raise_translated(error, channel)
            return None
        tag = 0
        try:
            if type(raw) is _PlainChannel:
                conn = raw._conn
                if len(conn._wbuf) > _EAGER_FLUSH_BYTES or not conn._writable.is_set():
                    await conn.drain()
            # queued for this loop turn's single socket write (a gather of publishes shares it)
            fut = raw.publish_nowait(message.body, self.name, routing_key, props, mandatory=mandatory)
            tag = channel._next_publish_tag()  # the broker's delivery tag of this publish
            if timeout is None:
                await fut  # aio-pika waits for the confirm without a time limit by default
            else:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
        except errors.PublishReturnedError as error:
            returned = channel._take_returned()
            if channel.on_return_raises:
                frame = spec.Basic.Return(reply_code=error.reply_code, reply_text=error.reply_text,
                                          exchange=self.name, routing_key=routing_key)
                raise PublishError(returned, frame) from None
            return returned
        except errors.PublishNackedError:
            raise DeliveryError(None, spec.Basic.Nack(delivery_tag=tag)) from None
        except errors.MmateError as error:
            raise_translated(error, channel)
        return basic_ack(tag)

    async def delete(self, if_unused: bool = False, timeout: TimeoutType = None) -> Any:
        log.info("Deleting %r", self)
        ch = await self.channel.get_underlay_channel()
        try:
            await ch.exchange_delete(self.name, if_unused=if_unused, timeout=timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)
        del self.channel
        return spec.Exchange.DeleteOk()


__all__ = ("Exchange", "ExchangeParamType", "ExchangeType")
