"""Pure-Python twin of the compiled message templates (src_cy/wire.pyx); contract:
mmate_fast/_cy/wire.pyi.

The twin is the reference semantics: ``encode`` merges the static and variable headers and calls
envelope.encode_envelope + frames.encode_properties, which is exactly what the compiled template must
reproduce byte for byte (tests compare the two).
"""
from __future__ import annotations

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

__all__ = ["MessageTemplate", "PayloadWriter"]
