"""Pre-encoded message templates: the publisher's hot path (compiled: src_cy/wire.pyx; twin:
mmate_fast/_py/wire.py). Load with ``mmate_fast._ext.load("wire")``.

A template holds what is the same for every message of one shape (type name, the static Mmate
headers, content type, delivery mode, expiration, priority) already encoded: the static headers as
sorted ``"key":value`` JSON fragments and as AMQP field-table entries (with the caller's ``typed``
field types, e.g. ``Typed("B", 2)`` for Go's uint8 ``delivery-mode``). ``encode`` adds the per-message
parts in one C pass each.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

class MessageTemplate:
    """Constant parts of one message shape.

    ``static_headers`` are the headers as they appear in the body's JSON (plain numbers); ``typed``
    overrides AMQP field values (Typed of either frame codec). Bad names/values raise
    mmate_fast.errors.ContractError (JSON side) or TypeError/ValueError (AMQP side), as the encoders.
    """

    type_name: str
    content_type: str
    delivery_mode: int
    expiration: str | None
    priority: int | None
    static_headers: dict[str, Any]  # as given (body JSON values)
    amqp_headers: dict[str, Any]  # static_headers with the ``typed`` overrides (AMQP table values)
    def __init__(self, static_headers: Mapping[str, Any], typed: Mapping[str, Any], *,
                 type_name: str, content_type: str = "application/json", delivery_mode: int = 2,
                 expiration: str | None = None, priority: int | None = None) -> None: ...
    def encode(self, msg_id: str, timestamp: str, unix: int, correlation_id: str | None,
               reply_to: str | None, envelope_reply_to: bool, variable: Mapping[str, str],
               payload: Any, payload_json: bytes | None = None) -> tuple[bytes, bytes]:
        """(body, encoded AMQP properties) of one message.

        ``payload_json``: the payload already encoded (PayloadWriter.encode, bytes): written as it is
        in place of ``payload``.

        The body equals, byte for byte, ``encode_envelope(msg_id, type_name, timestamp,
        correlation_id, reply_to if envelope_reply_to else None, {**static_headers, **variable},
        payload)``; the properties equal ``encode_properties(BasicProperties(content_type=...,
        delivery_mode=..., headers={**amqp_headers, **variable}, message_id=msg_id,
        correlation_id=correlation_id, type=type_name, timestamp=unix, reply_to=reply_to,
        expiration=expiration, priority=priority))`` byte for byte (table order: static entries,
        then ``variable`` in its own order). ``variable`` values must be str and names str
        (ContractError otherwise). A variable name equal to a static one wins (the compiled module
        then takes the general path, as with more than 32 variable headers).
        """
    def general(self, msg_id: str, timestamp: str, unix: int, correlation_id: str | None,
                reply_to: str | None, envelope_reply_to: bool, variable: Mapping[str, Any],
                payload: Any, payload_json: bytes | None = None) -> tuple[bytes, bytes]:
        """The reference: the same result via encode_envelope + encode_properties on merged dicts
        (no type check of ``variable``)."""

    def encode_message(self, msg: Any, kind: int, correlation_id: str | None, reply_to: str | None,
                       envelope_reply_to: bool, reply_to_header: bool,
                       writer_for: Callable[[type], PayloadWriter | None],
                       to_payload: Callable[[Any], Any]) -> tuple[str, bytes, bytes, str | None, str | None,
                                                                  dict[str, str]] | None:
        """The whole hot path of ``outgoing.build`` for a message without extra headers or delay, in
        one call: ``(message id, body, properties, correlation id, reply address, variable headers)``
        with the same bytes as build's general path (id from ``msg.id`` or a new one, now as the
        timestamp, the per-message Mmate headers of ``kind``: 0 message, 1 command, 2 event, 3 query,
        4 reply; the payload from the class's ``writer_for(cls)`` (asked once per class; None: no
        writer), else ``to_payload(msg)``). None when the
        message needs that general path (a ``timestamp`` set on it, a reply without ``success``);
        the twin always answers None."""

class PayloadWriter:
    """A dataclass's top-level payload written as Go JSON straight from its attributes (the compiled
    contract encode plan): no payload dict, one pass.

    ``fields``: ``(attr, wire name, omitempty, fallback attr or None, leaf)`` per payload field (any
    order: the JSON keys are sorted as encode_json sorts them); ``general``: the contract's value
    converter (nested dataclasses, enums, sets, ...), applied to the values of non-leaf fields.
    """

    #: set when the class gets a hand-written codec (ContractPlan.use_codec): ``encode`` answers
    #: None from then on, also for templates that cached this writer
    disabled: bool
    def __init__(self, fields: Iterable[tuple[str, str, bool, str | None, bool]],
                 general: Callable[[Any], Any]) -> None: ...
    def encode(self, msg: Any) -> bytes | None:
        """``encode_json`` of the payload dict the contract plan builds, byte for byte; or None when
        a value cannot be written (a string that is not UTF-8, a value encode_json refuses, any
        error): the caller then encodes the dict the general way and gets its exact error)."""

class PublishPlan:
    """Everything constant about publishing one message class with one set of options, and the
    one-call publish of an instance (the publisher's hot path): the same bytes as
    ``outgoing.build`` + ``frames.append_publish`` for a message without extra headers, TTL,
    priority or delay, with no Python object per message but the message id it returns.

    ``kind``: 0 message, 1 command, 2 event, 3 query, 4 reply (the per-message Mmate headers, as
    ``MessageTemplate.encode_message``); ``routing_key``: the constant routing key, or None: then
    ``route_prefix + getattr(msg, route_attr) + route_suffix`` (e.g. ``evt.{aggregate_id}.Type``);
    ``writer``: the class's PayloadWriter (None: ``to_payload`` + encode_json);
    ``lean_properties``: the lean wire profile's constant encoded properties (the body is the same).
    A name over 255 bytes raises ValueError here.
    """

    exchange: str
    routing_key: str | None
    mandatory: bool
    def __init__(self, template: MessageTemplate, kind: int, exchange: str, routing_key: str | None = None,
                 *, route_attr: str | None = None, route_prefix: str = "", route_suffix: str = "",
                 mandatory: bool = False, writer: PayloadWriter | None = None,
                 to_payload: Callable[[Any], Any] | None = None,
                 lean_properties: bytes | None = None) -> None: ...
    def write(self, out: bytearray, channel: int, frame_max: int, msg: Any, correlation_id: str | None = None,
              reply_to: str | None = None, routing_key: str | None = None) -> str | None:
        """Append basic.publish + content header + body frame(s) (split at ``frame_max``) of ``msg``
        on ``channel`` to ``out``: its message id (``msg.id`` or a new one). None, with nothing
        written, when the message needs the general path (a ``timestamp`` set on it, a reply without
        ``success``, a value that is not a str where one belongs, a string that is not UTF-8, an id
        or routing key over 255 bytes, a payload the encoders refuse): that path raises its error.

        The per-call values are ``outgoing.build``'s / ``Publisher.prepare``'s options of the same
        names (the request/reply hops): ``correlation_id`` (else ``msg.correlation_id``) and
        ``reply_to`` (else, for a command or query, ``msg.reply_to``) when not empty, and
        ``routing_key`` (not None) in place of the plan's route."""
    def encode(self, msg: Any, correlation_id: str | None = None, reply_to: str | None = None,
               routing_key: str | None = None) -> tuple[str, str, bytes, bytes] | None:
        """``(message id, routing key, body, encoded properties)`` of ``msg`` (for ``publish_nowait``
        with confirms or on another transport), or None as for ``write``."""

class PublishSink:
    """One open channel's place in its connection's write buffer, for the one-call publish. The
    AMQP Channel makes it (``Channel.publish_sink()``) and clears ``open`` when it closes or turns on
    publisher confirms. ``conn`` is the AMQP client's Connection, read on every write: ``_wbuf`` (the
    bytearray written at the end of this loop turn; replaced by each flush), ``_flush_pending``
    and ``_schedule_flush()``."""

    channel_id: int
    frame_max: int
    open: bool
    def __init__(self, conn: Any, channel_id: int, frame_max: int) -> None: ...
    def write(self, plan: PublishPlan, msg: Any, correlation_id: str | None = None,
              reply_to: str | None = None, routing_key: str | None = None) -> str | None:
        """``plan.write(conn._wbuf, channel_id, frame_max, msg, correlation_id, reply_to, routing_key)``
        and a flush scheduled unless one is; the message id, or None when nothing was written
        (``open`` is False, or the message needs the general path)."""

__all__ = ["MessageTemplate", "PayloadWriter", "PublishPlan", "PublishSink"]
