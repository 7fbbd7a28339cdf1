"""Pure-Python twin of the compiled message templates (src_cy/wire.pyx); contract:
mmate_fast/_cy/wire.pyi.

The twin is the reference semantics: ``encode`` merges the static and variable headers and calls
envelope.encode_envelope + frames.encode_properties, which is exactly what the compiled template must
reproduce byte for byte (tests compare the two).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mmate_fast._py import envelope as _env
from mmate_fast._py import frames as _frames
from mmate_fast.errors import ContractError


def _own_typed(value: Any) -> Any:
    """A Typed of the twin frame codec (the compiled one's Typed is re-wrapped)."""
    if isinstance(value, _frames.Typed) or not hasattr(value, "tag") or not hasattr(value, "value"):
        return value
    return _frames.Typed(value.tag, value.value, go_safe=getattr(value, "go_safe", True))


def _sstr(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"property {name} must be str, got {type(value).__name__}")
    if len(value.encode()) > 255:
        raise ValueError(f"property {name} is longer than 255 bytes")


def _octet(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"property {name} must be int, got {type(value).__name__}")
    if not 0 <= value <= 255:
        raise ValueError(f"property {name} {value} outside 0..255")


class MessageTemplate:
    """The constant parts of one message shape (type, static headers, property options)."""

    __slots__ = ("amqp_headers", "content_type", "delivery_mode", "expiration", "priority",
                 "static_headers", "type_name")

    def __init__(self, static_headers: Mapping[str, Any], typed: Mapping[str, Any], *,
                 type_name: str, content_type: str = "application/json", delivery_mode: int = 2,
                 expiration: str | None = None, priority: int | None = None) -> None:
        if not isinstance(static_headers, Mapping) or not isinstance(typed, Mapping):
            raise ContractError("static_headers and typed must be mappings")
        if not isinstance(type_name, str):
            raise ContractError(f"envelope type must be a str, not {type(type_name).__qualname__}")
        self.type_name = type_name
        self.content_type = content_type
        self.delivery_mode = delivery_mode
        self.expiration = expiration
        self.priority = priority
        self.static_headers: dict[str, Any] = dict(static_headers)
        self.amqp_headers: dict[str, Any] = dict(self.static_headers)
        for k, v in typed.items():
            self.amqp_headers[k] = _own_typed(v)
        for k in self.amqp_headers:
            if not isinstance(k, str):
                raise ContractError(f"header names must be str, not {type(k).__qualname__}")
        # the same up-front checks (and errors) as the compiled template's pre-encoding
        _env.encode_json(self.static_headers)
        _frames.encode_table(self.amqp_headers)
        _env.encode_json(type_name)
        _sstr("content_type", content_type)
        _octet("delivery_mode", delivery_mode)
        if priority is not None:
            _octet("priority", priority)
        if expiration is not None:
            _sstr("expiration", expiration)
        _sstr("type", type_name)

    def __repr__(self) -> str:
        return f"MessageTemplate(type_name={self.type_name!r}, static={len(self.static_headers)} headers)"

    def general(self, msg_id: str, timestamp: str, unix: int, correlation_id: str | None,
                reply_to: str | None, envelope_reply_to: bool, variable: Mapping[str, str],
                payload: Any, payload_json: bytes | None = None) -> tuple[bytes, bytes]:
        """Same result as ``encode`` by way of encode_envelope + encode_properties."""
        h = dict(self.static_headers)
        h.update(variable)
        body = _env.encode_envelope(msg_id, self.type_name, timestamp, correlation_id,
                                    reply_to if envelope_reply_to else None, h,
                                    payload if payload_json is None else {})
        if payload_json is not None:  # the payload is the last member: splice its JSON in
            body = body[:-3] + _json_bytes(payload_json) + b"}"
        a = dict(self.amqp_headers)
        a.update(variable)
        props = _frames.encode_properties(_frames.BasicProperties(
            content_type=self.content_type, delivery_mode=self.delivery_mode, headers=a,
            message_id=msg_id, correlation_id=correlation_id, type=self.type_name, timestamp=unix,
            reply_to=reply_to, expiration=self.expiration, priority=self.priority))
        return body, props

    def encode(self, msg_id: str, timestamp: str, unix: int, correlation_id: str | None,
               reply_to: str | None, envelope_reply_to: bool, variable: Mapping[str, str],
               payload: Any, payload_json: bytes | None = None) -> tuple[bytes, bytes]:
        """(body, encoded AMQP properties) of one message; see mmate_fast/_cy/wire.pyi."""
        if not isinstance(variable, Mapping):
            raise ContractError(f"headers must be a mapping, not {type(variable).__qualname__}")
        collides = False
        for k, v in variable.items():
            if not isinstance(k, str):
                raise ContractError(f"header names must be str, not {type(k).__qualname__}")
            if not isinstance(v, str):
                raise ContractError(f"header {k!r} must be a str here, not {type(v).__qualname__}")
            collides = collides or k in self.static_headers
        # a collision (variable wins) is the compiled template's general path; the result is the same
        if payload_json is not None:
            _json_bytes(payload_json)
        return self.general(msg_id, timestamp, unix, correlation_id, reply_to, envelope_reply_to,
                            variable, payload, payload_json)


    def encode_message(self, msg: Any, kind: int, correlation_id: str | None, reply_to: str | None,
                       envelope_reply_to: bool, reply_to_header: bool,
                       writer_for: Callable[[type], PayloadWriter | None],
                       to_payload: Callable[[Any], Any]) -> tuple[str, bytes, bytes, str | None, str | None,
                                                                  dict[str, str]] | None:
        """Always None here: the caller's general path (mmate_fast.messaging.outgoing.build) is the
        reference the compiled one-call path reproduces."""
        return None


def _json_bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise ContractError(f"payload_json must be bytes, not {type(value).__qualname__}")
    return value


class PayloadWriter:
    """A dataclass's top-level payload as Go JSON from its attributes (the compiled module writes it
    in one C pass; this twin builds the dict the contract plan builds and encodes it)."""

    __slots__ = ("_fields", "_general", "disabled")

    def __init__(self, fields: Iterable[tuple[str, str, bool, str | None, bool]],
                 general: Callable[[Any], Any]) -> None:
        self._fields = sorted(fields, key=lambda f: f[1])
        _env.encode_json([f[1] for f in self._fields])  # the same up-front check of the wire names
        self._general = general
        #: set when the class gets a hand-written codec: ``encode`` answers None from then on
        self.disabled = False

    def __repr__(self) -> str:
        return f"PayloadWriter({len(self._fields)} fields)"

    def encode(self, msg: Any) -> bytes | None:
        """The payload JSON, or None when a value needs the general path (see the .pyi)."""
        if self.disabled:
            return None
        try:
            d: dict[str, Any] = {}
            for attr, wire, omitempty, fallback, leaf in self._fields:
                v = getattr(msg, attr)
                if omitempty:
                    if not v:
                        continue
                elif not v and fallback is not None:
                    v = getattr(msg, fallback)
                d[wire] = v if leaf else self._general(v)
            return _env.encode_json(d)
        except Exception:
            return None



#: the per-message Mmate headers in their insertion order (the AMQP table's order)
_SLOT_KEYS = ("x-message-id", "message-id", "timestamp", "x-correlation-id", "correlation-id",
              "x-aggregate-id", "x-sequence", "x-success", "x-reply-to")


class PublishPlan:
    """One message class published with one set of options: the twin of the compiled one-call
    publish (see mmate_fast/_cy/wire.pyi), built from MessageTemplate.encode + frames.append_publish."""

    __slots__ = (
        "_lean",
        "_rk_pre",
        "_rk_suf",
        "_route_attr",
        "_to_payload",
        "_tpl",
        "_usable",
        "_writer",
        "exchange",
        "kind",
        "mandatory",
        "routing_key",
    )

    def __init__(self, template: MessageTemplate, kind: int, exchange: str, routing_key: str | None = None, *,
                 route_attr: str | None = None, route_prefix: str = "", route_suffix: str = "",
                 mandatory: bool = False, writer: Any = None, to_payload: Callable[[Any], Any] | None = None,
                 lean_properties: bytes | None = None) -> None:
        if not isinstance(template, MessageTemplate):
            raise TypeError("template must be a MessageTemplate of this implementation")
        if not 0 <= kind <= 4:
            raise ValueError(f"kind {kind} outside 0..4")
        if not isinstance(exchange, str):
            raise TypeError(f"exchange must be str, got {type(exchange).__name__}")
        if len(exchange.encode()) > 255:
            raise ValueError("exchange name is longer than 255 bytes (UTF-8)")
        if routing_key is not None:
            if not isinstance(routing_key, str):
                raise TypeError(f"routing_key must be str, got {type(routing_key).__name__}")
            if len(routing_key.encode()) > 255:
                raise ValueError("routing key is longer than 255 bytes (UTF-8)")
        elif not isinstance(route_attr, str):
            raise TypeError("a plan without a routing key needs route_attr (str)")
        if lean_properties is not None and type(lean_properties) is not bytes:
            raise TypeError("lean_properties must be bytes")
        self._tpl = template
        self.kind = kind
        self.exchange = exchange
        self.routing_key = routing_key
        self._route_attr = route_attr
        self._rk_pre = route_prefix
        self._rk_suf = route_suffix
        self.mandatory = mandatory
        self._writer = writer if isinstance(writer, PayloadWriter) else None
        self._to_payload = to_payload
        self._lean = lean_properties
        self._usable = not any(k in template.static_headers for k in _SLOT_KEYS)

    def __repr__(self) -> str:
        return (f"PublishPlan(type={self._tpl.type_name!r}, kind={self.kind}, exchange={self.exchange!r}, "
                f"routing_key={self.routing_key!r})")

    def write(self, out: bytearray, channel: int, frame_max: int, msg: Any, correlation_id: str | None = None,
              reply_to: str | None = None, routing_key: str | None = None) -> str | None:
        """Append the publish frames of ``msg`` to ``out``; its message id, or None (see the .pyi)."""
        if frame_max < _frames.FRAME_MIN_SIZE:
            raise ValueError(f"frame_max {frame_max} is below the AMQP minimum {_frames.FRAME_MIN_SIZE}")
        if not 0 <= channel <= 0xFFFF:
            raise ValueError(f"channel {channel} outside 0..65535")
        r = self.encode(msg, correlation_id, reply_to, routing_key)
        if r is None:
            return None
        msg_id, rk, body, props = r
        _frames.append_publish(out, channel, self.exchange, rk, body, props, self.mandatory, frame_max)
        return msg_id

    def encode(self, msg: Any, correlation_id: str | None = None, reply_to: str | None = None,
               routing_key: str | None = None) -> tuple[str, str, bytes, bytes] | None:
        """(message id, routing key, body, properties) of ``msg``, or None (see the .pyi)."""
        if not self._usable:
            return None
        try:
            return self._encode(msg, correlation_id, reply_to, routing_key)
        except Exception:
            return None

    def _encode(self, msg: Any, corr_in: str | None, rt_in: str | None,
                rk_in: str | None) -> tuple[str, str, bytes, bytes] | None:
        if getattr(msg, "timestamp", None) is not None:
            return None
        msg_id = getattr(msg, "id", None) or _env.new_id()
        unix = int(time.time())
        ts_str = _env.utc_timestamp(unix)
        # the per-call correlation id / reply address win over the message's (as build's options)
        corr = corr_in or getattr(msg, "correlation_id", None) or None
        kind = self.kind
        address = rt_in or ((getattr(msg, "reply_to", "") or None) if kind in (1, 3) else None)
        var: dict[str, str] = {"x-message-id": msg_id, "message-id": msg_id, "timestamp": ts_str}
        if corr is not None:
            var["x-correlation-id"] = corr
            var["correlation-id"] = corr
        agg = None
        if kind == 2:
            agg = getattr(msg, "aggregate_id", "") or ""
            if not isinstance(agg, str):
                return None
            var["x-aggregate-id"] = agg
            var["x-sequence"] = str(getattr(msg, "sequence", 0) or 0)
        elif kind == 4:
            success = getattr(msg, "success", None)
            if success is None:
                return None
            var["x-success"] = "true" if success else "false"
        if address is not None:
            var["x-reply-to"] = address
        if rk_in is not None:
            if not isinstance(rk_in, str):
                return None
            rk = rk_in
        elif self.routing_key is not None:
            rk = self.routing_key
        else:
            value = agg if self._route_attr == "aggregate_id" and agg is not None else \
                (getattr(msg, self._route_attr, "") or "")  # type: ignore[arg-type]
            if not isinstance(value, str):
                return None
            rk = self._rk_pre + value + self._rk_suf
        if len(rk.encode()) > 255:
            return None
        pj = self._writer.encode(msg) if self._writer is not None else None
        payload = self._to_payload(msg) if pj is None else None  # type: ignore[misc]
        body, props = self._tpl.encode(msg_id, ts_str, unix, corr, address, True, var, payload, pj)
        if self._lean is not None:
            props = self._lean
        return msg_id, rk, body, props


class PublishSink:
    """One open channel's place in its connection's write buffer (see mmate_fast/_cy/wire.pyi)."""

    __slots__ = ("_conn", "channel_id", "frame_max", "open")

    def __init__(self, conn: Any, channel_id: int, frame_max: int) -> None:
        if frame_max < _frames.FRAME_MIN_SIZE:
            raise ValueError(f"frame_max {frame_max} is below the AMQP minimum {_frames.FRAME_MIN_SIZE}")
        if not 0 <= channel_id <= 0xFFFF:
            raise ValueError(f"channel {channel_id} outside 0..65535")
        self._conn = conn
        self.channel_id = channel_id
        self.frame_max = frame_max
        self.open = True

    def __repr__(self) -> str:
        return f"PublishSink(channel={self.channel_id}, open={self.open})"

    def write(self, plan: PublishPlan, msg: Any, correlation_id: str | None = None,
              reply_to: str | None = None, routing_key: str | None = None) -> str | None:
        """``plan.write`` into the connection's write buffer, a flush scheduled; or None."""
        if not self.open:
            return None
        conn = self._conn
        r = plan.write(conn._wbuf, self.channel_id, self.frame_max, msg, correlation_id, reply_to,
                       routing_key)
        if r is not None and not conn._flush_pending:
            conn._schedule_flush()
        return r


__all__ = ["MessageTemplate", "PayloadWriter", "PublishPlan", "PublishSink"]
