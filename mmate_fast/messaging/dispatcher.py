"""Dispatcher: wire type -> handlers (compiled dispatch table), envelope decode, message context.

A handler is ``fn(message)`` or ``fn(message, context)``, plain or ``async``; several handlers may
share a type. Patterns: the exact wire type, ``"*"`` for every type (unknown types arrive as
GenericMessage), or one-``*`` globs such as ``"Order*"``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import GenericMessage, TypeRegistry, default_registry, from_envelope, message_type
from mmate_fast.messaging._headers import header_view

_dispatch = load("dispatch")
_env = load("envelope")
_decode_envelope = _env.decode_envelope

Handler = Callable[..., Any]


class MessageContext:
    """What a handler may want besides the message: the raw delivery, envelope and addresses."""

    __slots__ = ("_headers", "delivery", "envelope", "message", "queue", "services")

    def __init__(self, delivery: Any, envelope: Any, message: Any, queue: str,
                 services: Any = None) -> None:
        self.delivery = delivery
        self.envelope = envelope
        self.message = message
        self.queue = queue
        #: the Client (or None): lets a handler publish, e.g. ``ctx.services.publish_event(...)``
        self.services = services
        self._headers: dict[str, Any] | None = None

    @property
    def headers(self) -> dict[str, Any]:
        """Every AMQP header of the delivery plus the envelope headers; the AMQP value wins when both
        carry a key (see ``mmate_fast.messaging._headers``). Built once, on first use."""
        h = self._headers
        if h is None:
            h = self._headers = header_view(self.delivery.properties.headers, self.envelope.headers)
        return h

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
    """A registered handler with what is known about it up front (so dispatch does no inspection).

    Raises HandlerRegistrationError for what could never be called as ``fn(message)`` or
    ``fn(message, context)``: not callable, no positional parameter, more than two required
    positional parameters, or a required keyword-only parameter.
    """

    __slots__ = ("fn", "is_async", "name", "wants_context")

    def __init__(self, fn: Handler) -> None:
        self.name = getattr(fn, "__qualname__", None) or repr(fn)
        if not callable(fn):
            raise errors.HandlerRegistrationError(
                f"handler {fn!r} is not callable: pass a function (or an object with __call__) that "
                "takes (message) or (message, context)")
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None))  # noqa: B004 - callable objects with async __call__
        self.wants_context = _positional_capacity(fn, self.name) >= 2

    def __repr__(self) -> str:
        return f"<handler {self.name}>"


def _positional_capacity(fn: Handler, name: str) -> int:
    """How many positional arguments ``fn`` takes (2 stands for "two or more"); refuses a handler
    that can take no message, needs more than two, or needs a keyword-only argument."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature (some builtins): cannot check, call with the message
        return 1
    capacity = required = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            capacity += 1
            required += p.default is p.empty
        elif p.kind is p.VAR_POSITIONAL:
            capacity = 2 if capacity < 2 else capacity
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            raise errors.HandlerRegistrationError(
                f"handler {name}{sig} has a required keyword-only parameter {p.name!r}: a handler is "
                "called as fn(message) or fn(message, context); give it a default")
    if capacity == 0:
        raise errors.HandlerRegistrationError(
            f"handler {name}{sig} takes no positional parameter: a handler is called as fn(message) "
            "or fn(message, context)")
    if required > 2:
        raise errors.HandlerRegistrationError(
            f"handler {name}{sig} has {required} required parameters: a handler is called as "
            "fn(message) or fn(message, context); give the others defaults")
    return capacity


def _same_handler(a: Handler, b: Handler) -> bool:
    """Identity, or equality for handlers that compare equal (bound methods of one object)."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # an object with a strange __eq__ is only itself
        return False


def _pattern_of(message: type | str) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, type):
        return message_type(message)
    raise errors.HandlerRegistrationError(
        f"handlers are registered for a message class or a type pattern (str), not {message!r}")


class Dispatcher:
    """Maps wire types to handlers and decodes deliveries into typed messages."""

    def __init__(self, registry: TypeRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry
        self.table = _dispatch.DispatchTable()
        self._specs: dict[str, list[HandlerSpec]] = {}

    def add_handler(self, message: type | str, fn: Handler) -> HandlerSpec:
        """Register ``fn`` for a message class (its wire type) or a type pattern string.

        Checked here, so a handler that could never run fails now rather than once per message:
        HandlerRegistrationError for a handler that is not callable or takes the wrong arguments
        (see HandlerSpec), or that is already registered for this type (a second registration would
        run it twice per message). A refused call registers nothing.
        """
        pattern = _pattern_of(message)
        spec = HandlerSpec(fn)
        specs = self._specs.get(pattern, [])
        if any(_same_handler(s.fn, fn) for s in specs):
            raise errors.HandlerRegistrationError(
                f"handler {spec.name} is already registered for {pattern!r}; remove_handler() it first")
        if not isinstance(message, str) and self.registry.resolve(pattern) is None:
            self.registry.register(message)
        self.table.add(pattern, spec)
        self._specs.setdefault(pattern, specs).append(spec)
        return spec

    def remove_handler(self, message: type | str, fn: Handler) -> bool:
        """Unregister ``fn`` (the same function, or an equal bound method) for that type; False if absent."""
        pattern = _pattern_of(message)
        specs = self._specs.get(pattern, [])
        for spec in specs:
            if _same_handler(spec.fn, fn):
                specs.remove(spec)
                if not specs:
                    del self._specs[pattern]
                return bool(self.table.remove(pattern, spec))
        return False

    def lookup(self, type_name: str) -> tuple[HandlerSpec, ...]:
        return self.table.lookup(type_name)

    def patterns(self) -> list[str]:
        return list(self.table.patterns())

    def decode(self, body: bytes) -> tuple[Any, Any]:
        """Body -> (envelope, message). Raises EnvelopeError / ContractError."""
        env = _decode_envelope(body)
        return env, from_envelope(env, self.registry)
