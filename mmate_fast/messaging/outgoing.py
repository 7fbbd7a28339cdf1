"""Turn a typed message into what goes on the wire: envelope body, AMQP headers and properties.

Headers are the set mmate-go writes (wire spec §4.2) with Go-readable field types (``S`` strings,
``B`` for ``priority``/``delivery-mode``, ``l`` for ``x-delay``), plus the AMQP properties
``message_id``, ``correlation_id``, ``type``, ``timestamp``, ``reply_to`` of the .NET mapping.
``content_type`` is ``application/json`` and ``delivery_mode`` 2 unless the caller opts out of
persistence. TTL and priority become real AMQP properties only when asked for (Go's informational
``expiration: "300000"`` header never makes messages expire).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mmate_fast import _checks, errors
from mmate_fast._ext import load
from mmate_fast.contracts import MessageKind, kind_of, message_type, payload_json, to_payload
from mmate_fast.contracts._convert import payload_writer
from mmate_fast.messaging._diagnose import wire_error

_env = load("envelope")
_frames = load("frames")
_wire = load("wire")

_BasicProperties = _frames.BasicProperties
_Typed = _frames.Typed
_encode_properties = _frames.encode_properties
_encode_envelope = _env.encode_envelope
_utc_timestamp = _env.utc_timestamp
_format_timestamp = _env.format_timestamp

_MAX_EXPIRATION_MS = _checks.MAX_EXPIRATION_MS

SOURCE = "mmate-python"
VERSION = "1.0"
CONTENT_TYPE = "application/json"
#: Go's default informational TTL header (ms, as a string); never applied by the broker
DEFAULT_EXPIRATION_HEADER = "300000"

#: MessageTemplate.encode_message's kind codes
_KIND_CODE = {MessageKind.MESSAGE: 0, MessageKind.COMMAND: 1, MessageKind.EVENT: 2, MessageKind.QUERY: 3,
              MessageKind.REPLY: 4}

_KIND_HEADER = {
    MessageKind.COMMAND: "command",
    MessageKind.EVENT: "event",
    MessageKind.QUERY: "query",
    MessageKind.REPLY: "reply",
}


class Outgoing:
    """A message ready to publish.

    ``headers`` are the AMQP headers as a dict (Go field types as ``Typed``); on the template path
    they are merged on first access from the template's static part and the per-message part.
    """

    __slots__ = ("_base", "_extra", "_headers", "body", "correlation_id", "kind", "message_id",
                 "properties", "reply_to", "type_name")

    def __init__(self, message_id: str, type_name: str, kind: MessageKind, body: bytes,
                 properties: bytes, headers: dict[str, Any] | None, correlation_id: str | None,
                 reply_to: str | None, *, base: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.message_id = message_id
        self.type_name = type_name
        self.kind = kind
        self.body = body
        self.properties = properties  # pre-encoded AMQP basic properties
        self._headers = headers
        self._base = base
        self._extra = extra
        self.correlation_id = correlation_id
        self.reply_to = reply_to

    @property
    def headers(self) -> dict[str, Any]:
        h = self._headers
        if h is None:
            h = self._headers = {**(self._base or {}), **(self._extra or {})}
        return h

    @headers.setter
    def headers(self, value: dict[str, Any]) -> None:
        self._headers = value

    def _fields(self) -> tuple[Any, ...]:
        return (self.message_id, self.type_name, self.kind, self.body, self.properties, self.headers,
                self.correlation_id, self.reply_to)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outgoing):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Outgoing(message_id={self.message_id!r}, type_name={self.type_name!r}, "
                f"kind={self.kind!r}, body={len(self.body)} bytes, headers={self.headers!r}, "
                f"correlation_id={self.correlation_id!r}, reply_to={self.reply_to!r})")


_STATIC: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
_STATIC_MAX = 4096


def _static_headers(tname: str, kind: MessageKind, source: str, ttl_ms: int | None, priority: int | None,
                    persistent: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The headers that are the same for every message of a type and option set (cached), and the
    AMQP-typed values of the numeric ones (Go reads ``priority``/``delivery-mode`` as uint8 ``B``)."""
    key = (tname, kind, source, ttl_ms, priority, persistent)
    cached = _STATIC.get(key)
    if cached is not None:
        return cached
    if len(_STATIC) >= _STATIC_MAX:
        _STATIC.clear()
    mode = 2 if persistent else 1
    static: dict[str, Any] = {
        "x-message-type": tname,
        "x-source": source,
        "x-version": VERSION,
        "message-type": tname,
        "source": source,
        "expiration": str(ttl_ms) if ttl_ms else DEFAULT_EXPIRATION_HEADER,
        "priority": priority or 0,
        "delivery-mode": mode,
    }
    kind_header = _KIND_HEADER.get(kind)
    if kind_header is not None:
        static["x-message-kind"] = kind_header
    typed = {"priority": _Typed("B", priority or 0), "delivery-mode": _Typed("B", mode)}
    _STATIC[key] = (static, typed)
    return static, typed


_TEMPLATES: dict[tuple[Any, ...], Any] = {}


def _template(tname: str, kind: MessageKind, source: str, ttl_ms: int | None, priority: int | None,
              persistent: bool) -> Any:
    """The pre-encoded MessageTemplate of a type and option set (cached like ``_static_headers``)."""
    key = (tname, kind, source, ttl_ms, priority, persistent)
    tpl = _TEMPLATES.get(key)
    if tpl is not None:
        return tpl
    if len(_TEMPLATES) >= _STATIC_MAX:
        _TEMPLATES.clear()
    static, typed = _static_headers(tname, kind, source, ttl_ms, priority, persistent)
    tpl = _wire.MessageTemplate(
        static, typed, type_name=tname, content_type=CONTENT_TYPE,
        delivery_mode=2 if persistent else 1, expiration=str(int(ttl_ms)) if ttl_ms else None,
        priority=priority if priority else None)
    _TEMPLATES[key] = tpl
    return tpl


def publish_plan(cls: type, kind: MessageKind, type_name: str, exchange: str, routing_key: str | None,
                 route: tuple[str, str, str] | None, *, persistent: bool, mandatory: bool, source: str,
                 lean_properties: bytes | None) -> Any:
    """The compiled one-call publish of ``cls`` with these options (wire.PublishPlan): the same
    frames as ``build`` + the transport's publish for a message without extra headers, TTL,
    priority or delay. ``route``: (attribute, prefix, suffix) of a routing key taken from each
    message (``evt.{aggregate_id}.Type``) when ``routing_key`` is None."""
    tpl = _template(type_name, kind, source, None, None, persistent)
    attr, prefix, suffix = route if route is not None else (None, "", "")
    return _wire.PublishPlan(tpl, _KIND_CODE[kind], exchange, routing_key, route_attr=attr,
                             route_prefix=prefix, route_suffix=suffix, mandatory=mandatory,
                             writer=payload_writer(cls), to_payload=to_payload,
                             lean_properties=lean_properties)


def _variable_headers(msg: Any, kind: MessageKind, msg_id: str, ts_str: str, corr: str | None,
                      reply_to_header: str | None) -> dict[str, Any]:
    """The per-message Mmate headers (all strings), as mmate-go writes them (wire spec §4.2)."""
    var: dict[str, Any] = {"x-message-id": msg_id, "message-id": msg_id, "timestamp": ts_str}
    if corr:
        var["x-correlation-id"] = corr
        var["correlation-id"] = corr
    if kind is MessageKind.EVENT:
        var["x-aggregate-id"] = str(getattr(msg, "aggregate_id", "") or "")
        var["x-sequence"] = str(getattr(msg, "sequence", 0) or 0)
    elif kind is MessageKind.REPLY:
        success = getattr(msg, "success", None)
        if success is None:  # a GenericMessage: its payload says
            payload = getattr(msg, "payload", None)
            success = payload.get("success", True) if isinstance(payload, dict) else True
        var["x-success"] = "true" if success else "false"
    if reply_to_header:
        var["x-reply-to"] = reply_to_header
    return var


def _reply_address(msg: Any, kind: MessageKind) -> str:
    if kind is MessageKind.COMMAND or kind is MessageKind.QUERY:
        return getattr(msg, "reply_to", "") or ""
    return ""


def build(msg: Any, *, correlation_id: str | None = None, headers: Mapping[str, Any] | None = None,
          ttl_ms: int | None = None, priority: int | None = None, persistent: bool = True,
          delay_ms: int | None = None, reply_to: str | None = None,
          type_name: str | None = None, source: str = SOURCE, envelope_reply_to: bool = True,
          reply_to_header: bool = True, kind: MessageKind | None = None) -> Outgoing:
    """Envelope + headers + properties of ``msg`` (a registered dataclass or pydantic model).

    A request's reply address always travels in the payload (``replyTo``, where Go reads it); with
    ``envelope_reply_to``/``reply_to_header`` it is also written at envelope level and as
    ``x-reply-to`` so .NET-style responders find it (wire spec §14, SHOULD).
    """
    if priority is not None and not (priority.__class__ is int and 0 <= priority <= 255):
        _checks.priority(priority)  # raises
    if ttl_ms is not None and not (ttl_ms.__class__ is int and 0 <= ttl_ms <= _MAX_EXPIRATION_MS):
        _checks.duration(ttl_ms, "ttl_ms", "ms", _MAX_EXPIRATION_MS)
    if delay_ms is not None:
        _checks.delay_ms(delay_ms, "ms")
    if kind is None:
        kind = kind_of(msg)
    tname = type_name or message_type(msg)
    if not headers and delay_ms is None:
        # hot path: constant parts pre-encoded, only string-valued per-message headers vary; the
        # compiled template does it all in one call (None: take the general path below)
        try:
            tpl = _template(tname, kind, source, ttl_ms, priority, persistent)
            r = tpl.encode_message(msg, _KIND_CODE[kind], correlation_id, reply_to, envelope_reply_to,
                                   reply_to_header, payload_writer, to_payload)
        except Exception:  # the general path below raises it again, with its diagnosis
            r = None
        if r is not None:
            return Outgoing(r[0], tname, kind, r[1], r[2], None, r[3], r[4], base=tpl.amqp_headers,
                            extra=r[5])
    msg_id: str = getattr(msg, "id", None) or _env.new_id()
    ts = getattr(msg, "timestamp", None)
    if ts is None:
        unix = int(time.time())
        ts_str = _utc_timestamp(unix)
    elif isinstance(ts, datetime):
        ts_str = _format_timestamp(ts)
        unix = int((ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp())
    else:
        raise errors.ContractError(f"{tname}.timestamp must be a datetime or None, not {type(ts).__name__}")
    corr = correlation_id or getattr(msg, "correlation_id", None) or None
    address = reply_to or _reply_address(msg, kind) or None

    if not headers and delay_ms is None:
        var = _variable_headers(msg, kind, msg_id, ts_str, corr, address if reply_to_header else None)
        try:
            tpl = _template(tname, kind, source, ttl_ms, priority, persistent)
            pj = payload_json(msg)  # the compiled contract plan writes the payload JSON directly
            body, props = tpl.encode(msg_id, ts_str, unix, corr, address, envelope_reply_to, var,
                                     to_payload(msg) if pj is None else None, pj)
        except _ENCODE_ERRORS as exc:
            static = _static_headers(tname, kind, source, ttl_ms, priority, persistent)[0]
            raise wire_error(exc, msg, tname, _strings(msg_id, corr, address, tname), {**static, **var}) \
                from None
        return Outgoing(msg_id, tname, kind, body, props, None, corr, address,
                        base=tpl.amqp_headers, extra=var)

    static, typed = _static_headers(tname, kind, source, ttl_ms, priority, persistent)
    # JSON headers (body) hold plain numbers; the AMQP table gets Go's field types (``typed``)
    h = static.copy()
    h.update(_variable_headers(msg, kind, msg_id, ts_str, corr, address if reply_to_header else None))
    if delay_ms is not None:
        h["x-delay"] = int(delay_ms)
    if headers:
        h.update(headers)
    amqp = h.copy()
    for key, value in typed.items():
        if headers is None or key not in headers:
            amqp[key] = value
    if delay_ms is not None and (headers is None or "x-delay" not in headers):
        amqp["x-delay"] = _Typed("l", int(delay_ms))

    try:
        body = _encode_envelope(msg_id, tname, ts_str, corr, address if envelope_reply_to else None, h,
                                to_payload(msg))
        props = _encode_properties(_BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=2 if persistent else 1,
            headers=amqp,
            message_id=msg_id,
            correlation_id=corr,
            type=tname,
            timestamp=unix,
            reply_to=address,
            expiration=str(int(ttl_ms)) if ttl_ms else None,
            priority=priority if priority else None,
        ))
    except _ENCODE_ERRORS as exc:
        raise wire_error(exc, msg, tname, _strings(msg_id, corr, address, tname), amqp) from None
    return Outgoing(msg_id, tname, kind, body, props, amqp, corr, address)


#: what the encoders raise for a value they cannot carry (ContractError is a TypeError)
_ENCODE_ERRORS = (ValueError, TypeError, OverflowError, RecursionError)


def _strings(msg_id: Any, corr: Any, address: Any, tname: Any) -> dict[str, Any]:
    """The short-string properties of a message by argument name, for ``wire_error``."""
    return {"id": msg_id, "correlation_id": corr, "reply_to": address, "type": tname}
