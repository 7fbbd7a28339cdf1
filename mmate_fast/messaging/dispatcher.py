"""Dispatcher: wire type -> handlers (compiled dispatch table), envelope decode, message context.

A handler is ``fn(message)`` or ``fn(message, context)``, plain or ``async``; several handlers may
share a type. Patterns: the exact wire type, ``"*"`` for every type (unknown types arrive as
GenericMessage), or one-``*`` globs such as ``"Order*"``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mmate_fast._ext import load
from mmate_fast.contracts import GenericMessage, TypeRegistry, default_registry, from_envelope, message_type

_dispatch = load("dispatch")
_env = load("envelope")
_decode_envelope = _env.decode_envelope

Handler = Callable[..., Any]


class MessageContext:
    """What a handler may want besides the message: the raw delivery, envelope and addresses."""

    __slots__ = ("delivery", "envelope", "message", "queue", "services")

    def __init__(self, delivery: Any, envelope: Any, message: Any, queue: str,
                 services: Any = None) -> None:
        self.delivery = delivery
        self.envelope = envelope
        self.message = message
        self.queue = queue
        #: the Client (or None): lets a handler publish, e.g. ``ctx.services.publish_event(...)``
        self.services = services

    @property
    def headers(self) -> dict[str, Any]:
        """Envelope headers (the same set as the AMQP headers on Go and mmate_fast publishes)."""
        h = self.envelope.headers
        if h:
            return h
        return self.delivery.properties.headers or {}

    @property
    def message_id(self) -> str:
        return self.envelope.id

    @property
    def correlation_id(self) -> str | None:
        """Envelope ``correlationId``, then AMQP ``correlation_id``, then the correlation headers."""
        env = self.envelope
        if env.correlation_id:
            return env.correlation_id
        props = self.delivery.properties
        if props.correlation_id:
            return props.correlation_id
        h = self.headers
        value = h.get("x-correlation-id") or h.get("correlation-id")
        return str(value) if value else None

    @property
    def reply_to(self) -> str | None:
        """Payload ``replyTo`` (where Go puts it), envelope ``replyTo``, AMQP ``reply_to``, then the
        ``x-reply-to``/``reply-to``/``replyTo`` headers."""
        msg = self.message
        value = getattr(msg, "reply_to", None)
        if not value and isinstance(msg, GenericMessage):
            value = msg.payload.get("replyTo") if isinstance(msg.payload, dict) else None
        if value:
            return str(value)
        if self.envelope.reply_to:
            return self.envelope.reply_to
        props = self.delivery.properties
        if props.reply_to:
            return props.reply_to
        h = self.headers
        value = h.get("x-reply-to") or h.get("reply-to") or h.get("replyTo")
        return str(value) if value else None

    @property
    def redelivered(self) -> bool:
        return bool(self.delivery.redelivered)


class HandlerSpec:
    """A registered handler with what is known about it up front (so dispatch does no inspection)."""

    __slots__ = ("fn", "is_async", "name", "wants_context")

    def __init__(self, fn: Handler) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None))  # noqa: B004 - callable objects with async __call__
        self.wants_context = _positional_arity(fn) >= 2
        self.name = getattr(fn, "__qualname__", repr(fn))

    def __repr__(self) -> str:
        return f"<handler {self.name}>"


def _positional_arity(fn: Handler) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    count = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
        elif p.kind is p.VAR_POSITIONAL:
            return 2
    return count


class Dispatcher:
    """Maps wire types to handlers and decodes deliveries into typed messages."""

    def __init__(self, registry: TypeRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry
        self.table = _dispatch.DispatchTable()
        self._specs: dict[tuple[str, int], HandlerSpec] = {}

    def add_handler(self, message: type | str, fn: Handler) -> HandlerSpec:
        """Register ``fn`` for a message class (its wire type) or a type pattern string."""
        pattern = message if isinstance(message, str) else message_type(message)
        if not isinstance(message, str) and self.registry.resolve(pattern) is None:
            self.registry.register(message)
        key = (pattern, id(fn))
        spec = self._specs.get(key)
        if spec is None:
            spec = HandlerSpec(fn)
            self._specs[key] = spec
        self.table.add(pattern, spec)
        return spec

    def remove_handler(self, message: type | str, fn: Handler) -> bool:
        pattern = message if isinstance(message, str) else message_type(message)
        spec = self._specs.pop((pattern, id(fn)), None)
        return spec is not None and bool(self.table.remove(pattern, spec))

    def lookup(self, type_name: str) -> tuple[HandlerSpec, ...]:
        return self.table.lookup(type_name)

    def patterns(self) -> list[str]:
        return list(self.table.patterns())

    def decode(self, body: bytes) -> tuple[Any, Any]:
        """Body -> (envelope, message). Raises EnvelopeError / ContractError."""
        env = _decode_envelope(body)
        return env, from_envelope(env, self.registry)
