"""Interceptor pipeline: ordered before/after hooks on publish and consume.

An interceptor overrides any of the hooks of :class:`Interceptor` (all ``async``):

- ``before_publish(ctx)`` before the message is encoded: may change ``ctx.headers``/route, return
  False to drop the publish (short-circuit), or raise to fail it;
- ``before_send(ctx)`` after encoding (``ctx.outgoing.body`` is final): may add AMQP-only headers
  (``ctx.amqp_headers``, e.g. a signature over the body);
- ``after_publish(ctx, error)`` after the broker took it (or the publish failed);
- ``before_consume(ctx)`` after decoding, before the handler: return False to skip the handler
  (the message is acked: filtered), raise to fail it (rejected / dead-lettered with the reason);
- ``around_handler(ctx, call_next)`` wraps the handler call (timeouts, retries, tracing spans);
- ``after_consume(ctx, error)`` after the handler (with its exception or None).

``before_*`` hooks run in registration order, ``after_*`` hooks in reverse order, ``around``
wrappers nest with the first registered outermost. Only hooks an interceptor overrides are called,
and with no interceptors the publish and consume paths skip the pipeline entirely.

The wire stage (plain, synchronous hooks: they run inline in the frame reader, on every delivery
of a subscription and on every reply of the bridge) protects the bytes themselves:

- ``seal(ctx)`` after every ``before_send``: the last change to what goes on the wire (encrypt the
  body, sign body and headers); it reads the final properties with ``ctx.properties()``;
- ``verify_delivery(delivery, body, queue)`` on the raw delivery, **before anything decodes the
  body** and before every other consume hook, whatever the registration order: raise an
  InterceptorError to refuse the delivery (its ``reason`` becomes the dead-letter reason), return
  None to pass ``body`` on, or new bytes to decode instead (e.g. decrypted); the delivery itself is
  never changed, so a dead letter keeps what came;
- ``release_delivery(delivery, queue)``: a delivery that passed ``verify_delivery`` was not handled
  after all (it failed and goes to retry or to the DLQ): forget what was recorded for it (a replay
  window lets its retry in).

Wire layers nest by ``wire_layer`` (lower is outer), not by registration order: ``verify_delivery``
runs outer to inner (signature 100, then decryption 200), ``seal`` inner to outer (encrypt, then
sign). With no interceptor overriding them the stage costs one attribute test per delivery.
"""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from mmate_fast._ext import load
from mmate_fast.messaging._headers import header_view

_frames = load("frames")


class PublishContext:
    """One publish travelling through the pipeline."""

    __slots__ = ("amqp_headers", "dropped", "exchange", "headers", "items", "message", "options",
                 "outgoing", "routing_key")

    def __init__(self, message: Any, exchange: str | None, routing_key: str | None,
                 options: dict[str, Any]) -> None:
        self.message = message
        self.exchange = exchange
        self.routing_key = routing_key
        #: extra headers, written both into the envelope headers and the AMQP headers
        self.headers: dict[str, Any] = dict(options.pop("headers", None) or {})
        #: publish options (correlation_id, ttl, priority, persistent, mandatory, ...)
        self.options = options
        #: headers added to the AMQP properties only (after encoding; e.g. x-signature)
        self.amqp_headers: dict[str, Any] = {}
        #: the encoded message (set before ``before_send``)
        self.outgoing: Any = None
        self.dropped = False
        #: free slots for interceptors to pass data from before to after hooks
        self.items: dict[str, Any] = {}

    def properties(self) -> Any:
        """The AMQP properties as they will be sent (decoded): the encoded ones with ``amqp_headers``
        merged in, as the publisher merges them. For a ``seal`` that signs them."""
        decoded, _ = _frames.decode_properties(self.outgoing.properties)
        if self.amqp_headers:
            decoded.headers = {**(decoded.headers or {}), **self.amqp_headers}
        return decoded


class ConsumeContext:
    """One handler invocation for one delivery."""

    __slots__ = ("delivery", "envelope", "handler", "items", "message", "message_context", "queue",
                 "skipped")

    def __init__(self, delivery: Any, envelope: Any, message: Any, queue: str, handler: Any,
                 message_context: Any) -> None:
        self.delivery = delivery
        self.envelope = envelope
        self.message = message
        self.queue = queue
        #: the HandlerSpec about to run (``.fn``, ``.name``)
        self.handler = handler
        #: the MessageContext the handler gets (reply address, correlation id, ...)
        self.message_context = message_context
        self.skipped = False
        self.items: dict[str, Any] = {}

    @property
    def amqp_headers(self) -> dict[str, Any]:
        """Only the AMQP headers of the delivery (what a security check must read: the envelope
        headers are inside the body and controlled by whoever wrote it)."""
        return self.delivery.properties.headers or {}

    @property
    def headers(self) -> dict[str, Any]:
        """The same view as the handler's ``ctx.headers``: every AMQP header of the delivery plus the
        envelope headers, the AMQP value winning (see ``mmate_fast.messaging._headers``)."""
        mctx = self.message_context
        if mctx is not None:
            return mctx.headers
        return header_view(self.delivery.properties.headers, self.envelope.headers)


class Interceptor:
    """Base class: override the hooks you need (every hook is optional)."""

    #: where ``seal``/``verify_delivery`` sit among the wire layers (lower is outer; see the module
    #: docstring): signatures 100, encryption 200, anything else 1000
    wire_layer: ClassVar[int] = 1000

    async def before_publish(self, ctx: PublishContext) -> bool | None:
        return None

    async def before_send(self, ctx: PublishContext) -> None:
        return None

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        return None

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        return None

    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        return await call_next()

    async def after_consume(self, ctx: ConsumeContext, error: BaseException | None) -> None:
        return None

    def seal(self, ctx: PublishContext) -> None:
        return None

    def verify_delivery(self, delivery: Any, body: bytes, queue: str) -> bytes | None:
        return None

    def release_delivery(self, delivery: Any, queue: str) -> None:
        return None


_HOOKS = ("before_publish", "before_send", "after_publish", "before_consume", "around_handler",
          "after_consume", "seal", "verify_delivery", "release_delivery")


class Pipeline:
    """An ordered list of interceptors, with the per-hook lists precomputed."""

    def __init__(self, interceptors: Iterable[Interceptor] = ()) -> None:
        self._items: list[Interceptor] = list(interceptors)
        self._by_hook: dict[str, list[Interceptor]] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        for hook in _HOOKS:
            base = getattr(Interceptor, hook)
            self._by_hook[hook] = [i for i in self._items if getattr(type(i), hook, base) is not base]
        by_layer = functools.partial(sorted, key=lambda i: i.wire_layer)
        #: the wire stage: verified outer to inner (registration order within a layer), sealed in
        #: exactly the reverse order
        self._verifiers = tuple(by_layer(self._by_hook["verify_delivery"]))
        self._sealers = tuple(reversed(by_layer(self._by_hook["seal"])))
        self._releasers = tuple(self._by_hook["release_delivery"])
        self.has_publish = bool(self._by_hook["before_publish"] or self._by_hook["before_send"]
                                or self._by_hook["after_publish"] or self._sealers)
        self.has_consume = bool(self._by_hook["before_consume"] or self._by_hook["around_handler"]
                                or self._by_hook["after_consume"])
        #: a ``verify_delivery`` hook exists: every delivery goes through :meth:`verify` first
        self.has_wire = bool(self._verifiers)

    def add(self, interceptor: Interceptor) -> None:
        self._items.append(interceptor)
        self._rebuild()

    def remove(self, interceptor: Interceptor) -> None:
        self._items.remove(interceptor)
        self._rebuild()

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    async def publish(self, ctx: PublishContext, build: Callable[[PublishContext], None],
                      send: Callable[[PublishContext], Awaitable[None]]) -> None:
        """Run the publish hooks around ``build`` (encode) and ``send`` (to the broker).

        ``after_publish`` runs for every interceptor whose turn came (those before one that raised
        or dropped the message too), with the error or None and ``ctx.dropped`` set.
        """
        entered = len(self._items)
        error: BaseException | None = None
        try:
            for i in self._by_hook["before_publish"]:
                try:
                    outcome = await i.before_publish(ctx)
                except BaseException:
                    entered = self._items.index(i) + 1
                    raise
                if outcome is False:
                    entered = self._items.index(i) + 1
                    ctx.dropped = True
                    return
            build(ctx)
            for i in self._by_hook["before_send"]:
                await i.before_send(ctx)
            for s in self._sealers:
                s.seal(ctx)
            await send(ctx)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for i in reversed(self._by_hook["after_publish"]):
                if self._items.index(i) < entered:
                    await i.after_publish(ctx, error)

    def verify(self, delivery: Any, queue: str) -> bytes:
        """Run the ``verify_delivery`` hooks on a raw delivery of ``queue`` (outer layer first);
        returns the body to decode. Raises what a hook raised (the delivery is refused)."""
        body = delivery.body
        for i in self._verifiers:
            out = i.verify_delivery(delivery, body, queue)
            if out is not None:
                body = out
        return body

    def release(self, delivery: Any, queue: str) -> None:
        """A verified delivery of ``queue`` failed after all: the ``release_delivery`` hooks forget it."""
        for i in self._releasers:
            i.release_delivery(delivery, queue)

    async def consume(self, ctx: ConsumeContext, call_handler: Callable[[], Awaitable[Any]]) -> Any:
        """Run the consume hooks around one handler call; returns the handler's result.

        ``after_consume`` runs for every interceptor whose turn came (those before one that raised
        or skipped the message too), with the error or None and ``ctx.skipped`` set.
        """
        entered = len(self._items)
        error: BaseException | None = None
        try:
            for i in self._by_hook["before_consume"]:
                try:
                    outcome = await i.before_consume(ctx)
                except BaseException:
                    entered = self._items.index(i) + 1
                    raise
                if outcome is False:
                    entered = self._items.index(i) + 1
                    ctx.skipped = True
                    return None
            chain = call_handler
            for i in reversed(self._by_hook["around_handler"]):
                chain = _wrap(i, ctx, chain)
            return await chain()
        except BaseException as exc:
            error = exc
            raise
        finally:
            for i in reversed(self._by_hook["after_consume"]):
                if self._items.index(i) < entered:
                    await i.after_consume(ctx, error)


def _wrap(interceptor: Interceptor, ctx: ConsumeContext,
          inner: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await interceptor.around_handler(ctx, inner)

    return call
