"""``Message`` (what you publish), ``IncomingMessage`` (what you consume, with ack/nack/reject and
``process()``) and ``ReturnedMessage``, with aio-pika's attributes, defaults and conversions:
``expiration`` in seconds (number, timedelta or datetime) on the way out, a float of seconds on the
way in; ``timestamp`` a timezone-aware UTC ``datetime``; ``delivery_mode`` a ``DeliveryMode``;
``priority`` 0 and ``headers`` ``{}`` when absent. A publish without ``message_id`` gets a random
UUID4 hex one, as aio-pika (aiormq) does.

An ``IncomingMessage`` decodes its properties lazily: only the attributes a handler reads cost
anything (``body`` and the delivery fields are there from the start).
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pprint import pformat
from random import getrandbits
from types import TracebackType
from typing import Any

from mmate_fast._ext import load
from mmate_fast.amqp.channel import Channel as _PlainChannel
from mmate_fast.compat.aio_pika._errors import raise_translated
from mmate_fast.compat.aio_pika.abc import (
    MILLISECONDS,
    AbstractIncomingMessage,
    AbstractMessage,
    AbstractProcessContext,
    DateType,
    DeliveryMode,
    HeadersType,
    MessageInfo,
)
from mmate_fast.compat.aio_pika.exceptions import ChannelInvalidStateError, MessageProcessError

_frames = load("frames")
_BasicProperties = _frames.BasicProperties
_encode_properties = _frames.encode_properties
_Typed = _frames.Typed

log = logging.getLogger("mmate_fast.compat.aio_pika")

_NOT_PERSISTENT = DeliveryMode.NOT_PERSISTENT
_MODES: dict[Any, DeliveryMode] = {1: DeliveryMode.NOT_PERSISTENT, 2: DeliveryMode.PERSISTENT}
#: version 4, RFC 4122 variant bits of a random 128-bit number (what aiormq puts in message_id)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_setattr = object.__setattr__


def _table_integer(value: int) -> Any:
    """The smallest AMQP integer type for ``value``, as pamqp (aio-pika's encoder) picks it."""
    if -128 <= value <= 127:
        return _Typed("b", value)
    if -32768 <= value <= 32767:
        return _Typed("s", value)
    if 0 <= value <= 65535:
        return _Typed("u", value, go_safe=False)
    if -2147483648 <= value <= 2147483647:
        return _Typed("I", value)
    if 0 <= value <= 4294967295:
        return _Typed("i", value, go_safe=False)
    return value  # "l" (a 64-bit integer), our encoder's choice too


def as_pamqp_types(value: Any) -> Any:
    """Header values typed as aio-pika (pamqp) sends them: integers in the smallest integer type,
    floats as 32-bit floats ("f"), tables with their keys sorted; so a consumer in any language sees
    the same bytes from the facade as from aio-pika."""
    if isinstance(value, dict):
        return {k: as_pamqp_types(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [as_pamqp_types(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _table_integer(value)
    if isinstance(value, float):
        return _Typed("f", value)
    return value


def _random_message_id() -> str:
    return f"{(getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


def encode_expiration(value: Any) -> str | None:
    """Seconds (number), a timedelta or a datetime (until then) -> the AMQP milliseconds string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return str(int((value - datetime.now(tz=value.tzinfo)).total_seconds() * MILLISECONDS))
    if isinstance(value, timedelta):
        return str(int(value.total_seconds() * MILLISECONDS))
    if isinstance(value, int | float):
        return str(int(value * MILLISECONDS))
    raise ValueError(f"Invalid timestamp type: {type(value)!r}", value)


def decode_expiration(value: str | None) -> float | None:
    return None if value is None else float(value) / MILLISECONDS


def encode_timestamp(value: Any) -> datetime | None:
    """A datetime as is; POSIX seconds -> UTC datetime; a timedelta -> now + it."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, timedelta):
        return datetime.now(tz=UTC) + value
    raise ValueError(f"Invalid timestamp type: {type(value)!r}", value)


def _decode_timestamp(seconds: int | None) -> datetime | None:
    if seconds is None:
        return None
    if seconds > 0xFFFFFFFF:  # past 2106: milliseconds written as seconds (read as pamqp does)
        return datetime.fromtimestamp(seconds / 1000.0, tz=UTC)
    return datetime.fromtimestamp(seconds, tz=UTC)


class Message(AbstractMessage):
    """An AMQP message to publish (aio-pika's ``Message``)."""

    _locked: bool
    app_id: str | None
    body: bytes
    body_size: int
    content_encoding: str | None
    content_type: str | None
    correlation_id: str | None
    delivery_mode: DeliveryMode
    expiration: DateType
    headers: HeadersType
    message_id: str | None
    priority: int | None
    reply_to: str | None
    timestamp: datetime | None
    type: str | None
    user_id: str | None

    def __init__(self, body: bytes, *, headers: HeadersType | None = None, content_type: str | None = None,
                 content_encoding: str | None = None, delivery_mode: DeliveryMode | int | None = None,
                 priority: int | None = None, correlation_id: str | None = None,
                 reply_to: str | None = None, expiration: DateType = None, message_id: str | None = None,
                 timestamp: DateType = None, type: str | None = None, user_id: str | None = None,
                 app_id: str | None = None) -> None:
        if not isinstance(body, bytes):
            body = bytes(body)
        if not delivery_mode:
            mode = _NOT_PERSISTENT
        else:
            mode = _MODES.get(delivery_mode) or DeliveryMode(int(delivery_mode))
        # one dict update instead of 16 calls through the locking __setattr__ (the publish hot path)
        self.__dict__.update({
            "_locked": False, "body": body, "body_size": len(body), "headers": headers or {},
            "content_type": content_type, "content_encoding": content_encoding, "delivery_mode": mode,
            "priority": int(priority) if priority else 0,
            "correlation_id": str(correlation_id) if correlation_id else None,
            "reply_to": str(reply_to) if reply_to else None, "expiration": expiration,
            "message_id": str(message_id) if message_id else None,
            "timestamp": encode_timestamp(timestamp) if timestamp is not None else None,
            "type": str(type) if type else None, "user_id": str(user_id) if user_id else None,
            "app_id": str(app_id) if app_id else None})

    def __setattr__(self, key: str, value: Any) -> None:
        if not key.startswith("_") and self._locked:
            raise ValueError("Message is locked")
        _setattr(self, key, value)

    @property
    def locked(self) -> bool:
        return bool(self._locked)

    def lock(self) -> None:
        _setattr(self, "_locked", True)

    def __iter__(self) -> Any:
        return iter(self.body)

    @property
    def headers_raw(self) -> HeadersType:
        return self.headers

    def info(self) -> MessageInfo:
        return MessageInfo(
            app_id=self.app_id, body_size=self.body_size, cluster_id=None, consumer_tag=None,
            content_encoding=self.content_encoding, content_type=self.content_type,
            correlation_id=self.correlation_id, delivery_mode=self.delivery_mode, delivery_tag=None,
            exchange=None, expiration=self.expiration, headers=self.headers, message_id=self.message_id,
            priority=self.priority, redelivered=None, reply_to=self.reply_to, routing_key=None,
            timestamp=self.timestamp, type=str(self.type), user_id=self.user_id)

    @property
    def properties(self) -> Any:
        """The properties as a pamqp ``Basic.Properties`` (what ``aio_pika.Message.properties`` gives)."""
        from pamqp.commands import Basic

        return Basic.Properties(
            app_id=self.app_id, content_encoding=self.content_encoding, content_type=self.content_type,
            correlation_id=self.correlation_id, delivery_mode=self.delivery_mode,
            expiration=encode_expiration(self.expiration), headers=self.headers,
            message_id=self.message_id, message_type=self.type, priority=self.priority,
            reply_to=self.reply_to, timestamp=self.timestamp, user_id=self.user_id)

    def _wire_properties(self) -> bytes:
        """The encoded content-header properties for a publish (a random message_id when unset)."""
        ts = self.timestamp
        expiration = self.expiration
        headers = self.headers
        return _encode_properties(_BasicProperties(
            self.content_type, self.content_encoding, as_pamqp_types(headers) if headers else headers,
            int(self.delivery_mode),
            self.priority, self.correlation_id, self.reply_to,
            None if expiration is None else encode_expiration(expiration),
            self.message_id or _random_message_id(), None if ts is None else int(ts.timestamp()),
            self.type, self.user_id, self.app_id))

    def __repr__(self) -> str:
        return f"{type(self).__name__}:{pformat(self.info())}"

    def __copy__(self) -> Message:
        return Message(body=self.body, headers=self.headers, content_encoding=self.content_encoding,
                       content_type=self.content_type, delivery_mode=self.delivery_mode,
                       priority=self.priority, correlation_id=self.correlation_id, reply_to=self.reply_to,
                       expiration=self.expiration, message_id=self.message_id, timestamp=self.timestamp,
                       type=self.type, user_id=self.user_id, app_id=self.app_id)


def _lazy_properties() -> dict[str, Any]:
    """attribute -> how to compute it from the Delivery's BasicProperties."""
    return {
        "content_type": lambda p: p.content_type,
        "content_encoding": lambda p: p.content_encoding,
        "headers": lambda p: p.headers or {},
        "delivery_mode": lambda p: _MODES.get(p.delivery_mode) or (
            DeliveryMode(int(p.delivery_mode)) if p.delivery_mode else _NOT_PERSISTENT),
        "priority": lambda p: int(p.priority) if p.priority else 0,
        "correlation_id": lambda p: p.correlation_id or None,
        "reply_to": lambda p: p.reply_to or None,
        "expiration": lambda p: decode_expiration(p.expiration),
        "message_id": lambda p: p.message_id or None,
        "timestamp": lambda p: _decode_timestamp(p.timestamp),
        "type": lambda p: p.type or None,
        "user_id": lambda p: p.user_id or None,
        "app_id": lambda p: p.app_id or None,
        "cluster_id": lambda p: p.cluster_id if p.cluster_id is not None else "",
    }


_LAZY = _lazy_properties()
#: the delivery's own fields, read on first use too
_DELIVERY_FIELDS: dict[str, Any] = {
    "body_size": lambda d: len(d.body),
    "consumer_tag": lambda d: d.consumer_tag or None,
    "delivery_tag": lambda d: d.delivery_tag,
    "exchange": lambda d: d.exchange,
    "routing_key": lambda d: d.routing_key,
    "redelivered": lambda d: d.redelivered,
    "message_count": lambda d: d.message_count if d.kind == 1 else None,
}


class IncomingMessage(Message, AbstractIncomingMessage):
    """A consumed (or got) message: acknowledge it with ``ack``/``nack``/``reject`` or ``process()``."""

    _channel: Any
    _delivery: Any
    _facade_channel: Any
    _no_ack: bool
    _processed: bool
    cluster_id: str | None
    consumer_tag: str | None
    delivery_tag: int | None
    exchange: str | None
    message_count: int | None
    redelivered: bool | None
    routing_key: str | None

    def __init__(self, delivery: Any, no_ack: bool = False, channel: Any = None,
                 facade_channel: Any = None) -> None:
        done = no_ack or not delivery.delivery_tag
        self.__dict__.update({"_delivery": delivery, "_channel": channel, "_facade_channel": facade_channel,
                              "_no_ack": no_ack, "body": delivery.body, "_locked": done, "_processed": done})

    def __getattr__(self, name: str) -> Any:
        # a slot not filled yet: read it from the delivery once (properties decoded on first use)
        delivery = self._delivery
        decode = _LAZY.get(name)
        if decode is not None:
            value = decode(delivery.properties)
        elif name in _DELIVERY_FIELDS:
            value = _DELIVERY_FIELDS[name](delivery)
        else:
            raise AttributeError(name)
        _setattr(self, name, value)
        return value

    @property
    def channel(self) -> Any:
        """The AMQP channel the message came on (ChannelInvalidStateError once it is closed)."""
        ch = self._channel
        if ch is None or not ch.is_open:
            raise ChannelInvalidStateError("channel closed")
        return ch

    @property
    def processed(self) -> bool:
        return bool(self._processed)

    def _settle(self, how: str, *args: Any) -> None:
        ch = self.channel
        try:
            ok = getattr(ch, how)(self._delivery.delivery_tag, *args)
        except Exception as error:
            raise_translated(error, self._facade_channel)
        if ok is False:  # a robust channel reconnected since: the broker redelivers this message
            raise ChannelInvalidStateError("the channel this message came on was closed (reconnected since)")
        _setattr(self, "_processed", True)
        _setattr(self, "_locked", True)

    async def ack(self, multiple: bool = False) -> None:
        """basic.ack (written with this loop turn's other frames; nothing to wait for)."""
        if self._no_ack:
            raise TypeError('Can\'t ack message with "no_ack" flag')
        if self._processed:
            raise MessageProcessError("Message already processed", self)
        ch = self._channel
        if ch is not None and type(ch) is _PlainChannel and ch._closed_exc is None and ch._open:
            ch.basic_ack(self._delivery.delivery_tag, multiple)  # the common case, inlined
            _setattr(self, "_processed", True)
            _setattr(self, "_locked", True)
            return
        self._settle("basic_ack", multiple)

    async def reject(self, requeue: bool = False) -> None:
        """basic.reject: dropped (or dead-lettered), or back to the queue with ``requeue=True``."""
        if self._no_ack:
            raise TypeError('This message has "no_ack" flag.')
        if self._processed:
            raise MessageProcessError("Message already processed", self)
        self._settle("basic_reject", requeue)

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        """basic.nack (requeued by default)."""
        if self._no_ack:
            raise TypeError('Can\'t nack message with "no_ack" flag')
        if self._processed:
            raise MessageProcessError("Message already processed", self)
        self._settle("basic_nack", multiple, requeue)

    def process(self, requeue: bool = False, reject_on_redelivered: bool = False,
                ignore_processed: bool = False) -> ProcessContext:
        """``async with message.process():`` acks on success, rejects on an exception (requeued
        with ``requeue=True``; never requeued when redelivered with ``reject_on_redelivered``)."""
        return ProcessContext(self, requeue=requeue, reject_on_redelivered=reject_on_redelivered,
                              ignore_processed=ignore_processed)

    def info(self) -> MessageInfo:
        info = super().info()
        info["cluster_id"] = self.cluster_id
        info["consumer_tag"] = self.consumer_tag
        info["delivery_tag"] = self.delivery_tag
        info["exchange"] = self.exchange
        info["redelivered"] = self.redelivered
        info["routing_key"] = self.routing_key
        return info


_new = object.__new__


def incoming(delivery: Any, no_ack: bool, channel: Any, facade_channel: Any) -> IncomingMessage:
    """``IncomingMessage(delivery, no_ack, channel, facade_channel)`` without the call through
    ``__init__`` (once per consumed message)."""
    message = _new(IncomingMessage)
    done = no_ack or not delivery.delivery_tag
    _setattr(message, "__dict__", {
        "_delivery": delivery, "_channel": channel, "_facade_channel": facade_channel, "_no_ack": no_ack,
        "body": delivery.body, "_locked": done, "_processed": done})
    return message


class ReturnedMessage(IncomingMessage):
    """A mandatory publish the broker could not route (given to ``channel.return_callbacks``)."""


class ProcessContext(AbstractProcessContext):
    """What ``IncomingMessage.process()`` returns."""

    def __init__(self, message: IncomingMessage, *, requeue: bool, reject_on_redelivered: bool,
                 ignore_processed: bool) -> None:
        self.message = message
        self.requeue = requeue
        self.reject_on_redelivered = reject_on_redelivered
        self.ignore_processed = ignore_processed

    async def __aenter__(self) -> IncomingMessage:
        return self.message

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        message = self.message
        if not exc_type:
            if not self.ignore_processed or not message.processed:
                await message.ack()
            return
        if not self.ignore_processed or not message.processed:
            try:
                if self.reject_on_redelivered and message.redelivered:
                    log.info("Message %r was redelivered and will be rejected", message)
                    await message.reject(requeue=False)
                else:
                    await message.reject(requeue=self.requeue)
            except ChannelInvalidStateError:
                log.warning("Reject is not sent since channel is closed")


__all__ = ("IncomingMessage", "Message", "ProcessContext", "ReturnedMessage", "incoming")
