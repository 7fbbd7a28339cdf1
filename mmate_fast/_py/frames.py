"""Pure-Python twin of the compiled frame codec (src_cy/frames.pyx). Same API; see
mmate_fast/_cy/frames.pyi for the contract.

NOTE: data classes are final; the codec functions are being filled in.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_MIN_SIZE = 4096
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

_PROP_NAMES = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
    "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id",
)


class Typed:
    """A field-table value with an explicit AMQP type tag, e.g. ``Typed("B", 5)`` for a Go uint8."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Typed):
            return self.tag == other.tag and self.value == other.value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.tag, self.value))

    def __repr__(self) -> str:
        return f"Typed({self.tag!r}, {self.value!r})"


class BasicProperties:
    """The 14 basic content-header properties; ``None`` means absent. ``timestamp`` is POSIX seconds."""

    __slots__ = _PROP_NAMES

    def __init__(
        self,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: Mapping[str, Any] | None = None,
        delivery_mode: int | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        type: str | None = None,  # noqa: A002 - AMQP's name
        user_id: str | None = None,
        app_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self.content_type = content_type
        self.content_encoding = content_encoding
        self.headers = dict(headers) if headers is not None else None
        self.delivery_mode = delivery_mode
        self.priority = priority
        self.correlation_id = correlation_id
        self.reply_to = reply_to
        self.expiration = expiration
        self.message_id = message_id
        self.timestamp = timestamp
        self.type = type
        self.user_id = user_id
        self.app_id = app_id
        self.cluster_id = cluster_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BasicProperties):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _PROP_NAMES)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """Only the properties that are set."""
        return {n: v for n in _PROP_NAMES if (v := getattr(self, n)) is not None}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"BasicProperties({inner})"


class Delivery:
    """A complete message from the broker: basic.deliver (kind 0), basic.get-ok (1), basic.return (2)."""

    KIND_DELIVER = 0
    KIND_GET_OK = 1
    KIND_RETURN = 2

    __slots__ = ("body", "channel", "consumer_tag", "delivery_tag", "exchange", "kind", "message_count",
                 "properties", "redelivered", "reply_code", "reply_text", "routing_key")

    def __init__(self, kind: int = 0, channel: int = 0, consumer_tag: str = "", delivery_tag: int = 0,
                 redelivered: bool = False, exchange: str = "", routing_key: str = "",
                 message_count: int = 0, reply_code: int = 0, reply_text: str = "",
                 properties: BasicProperties | None = None, body: bytes = b"") -> None:
        self.kind = kind
        self.channel = channel
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.message_count = message_count
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.properties = properties if properties is not None else BasicProperties()
        self.body = body

    def __repr__(self) -> str:
        return (f"Delivery(kind={self.kind}, channel={self.channel}, delivery_tag={self.delivery_tag}, "
                f"exchange={self.exchange!r}, routing_key={self.routing_key!r}, "
                f"redelivered={self.redelivered}, body={len(self.body)} bytes)")


class Confirm:
    """basic.ack (nack=False) or basic.nack (nack=True) from the broker (publisher confirms)."""

    __slots__ = ("channel", "delivery_tag", "multiple", "nack")

    def __init__(self, channel: int, delivery_tag: int, multiple: bool, nack: bool) -> None:
        self.channel = channel
        self.delivery_tag = delivery_tag
        self.multiple = multiple
        self.nack = nack

    def __repr__(self) -> str:
        return (f"Confirm(channel={self.channel}, delivery_tag={self.delivery_tag}, "
                f"multiple={self.multiple}, nack={self.nack})")


class MethodFrame:
    """Any other method frame, decoded by pamqp."""

    __slots__ = ("channel", "method")

    def __init__(self, channel: int, method: Any) -> None:
        self.channel = channel
        self.method = method

    def __repr__(self) -> str:
        return f"MethodFrame(channel={self.channel}, method={self.method!r})"


class Heartbeat:
    """A heartbeat frame (channel 0)."""

    __slots__ = ("channel",)

    def __init__(self, channel: int = 0) -> None:
        self.channel = channel

    def __repr__(self) -> str:
        return "Heartbeat()"
