"""Dispatch table: message type -> handlers (compiled: src_cy/dispatch.pyx; twin:
mmate_fast/_py/dispatch.py). Lookups allocate nothing: each type's handlers are kept as a tuple,
rebuilt only when registrations change."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Most types whose handler tuples are cached at once.
CACHE_MAX: int
#: the attribute of a settle-later handler taking a context that is its context-free entry,
#: ``(message, delivery, queue) -> awaitable | None``: what the step calls instead of the handler
#: (no MessageContext is made); the handler itself is what the general path calls
SETTLE_DIRECT: str

class DispatchTable:
    """Handlers per wire type string, plus wildcard handlers.

    Patterns: an exact type (``"OrderCreatedEvent"``), ``"*"`` (every type), or a prefix/suffix
    glob with one ``*`` (``"Order*"``, ``"*Event"``). ``lookup`` returns exact handlers first, then
    matching globs in registration order, then ``"*"`` handlers; the result for a type is cached
    until the table changes.
    """

    def __init__(self) -> None: ...
    def add(self, pattern: str, handler: Any) -> None:
        """Register ``handler`` (any object) for ``pattern``; the same handler twice is kept once."""
    def remove(self, pattern: str, handler: Any) -> bool:
        """Unregister; returns False when it was not registered."""
    def lookup(self, type_name: str) -> tuple[Any, ...]:
        """Handlers for a type, () when none. O(1) after the first lookup of that type."""
    def patterns(self) -> list[str]:
        """Every registered pattern, in registration order."""
    def __len__(self) -> int:
        """Number of (pattern, handler) registrations."""
    def clear(self) -> None: ...

class DeliveryStep:
    """The per-delivery step of one subscription, in one call: envelope (``decode_envelope``), dispatch
    (``table``), payload decode (the class's ContractPlan from ``plans`` / ``plan_for``, the class
    from ``by_name``), the handlers and the ack. It takes only what the general path would run
    inline with nothing around it: a delivery whose properties decoded, no wire-stage or consume
    interceptor, no observer or tracer, not stopping, a registered class with a dict payload, and
    either every handler plain and taking the message alone, or settle-later handlers
    (``__mmate_settles_later__``) with a free handler slot (``owner._in_flight < owner.concurrency``),
    each handler of the tuple not async and either plain taking the message alone (its result is a
    reply, as below), settle-later taking the message alone, or settle-later taking a context with a
    context-free entry (``SETTLE_DIRECT``: called with (message, delivery, ``owner.queue``) instead).
    Anything else (and any envelope or payload that does not decode) goes, with nothing done yet, to
    ``owner.on_delivery``, which decides as always; except a delivery whose envelope decoded and
    whose handlers the step does not run (async, with a context, a settle-later one taking a
    context without a context-free entry) or that finds no free slot: it is counted in
    ``stats.received`` and handed, envelope decoded, to ``owner._on_envelope(channel, delivery,
    envelope, handlers)`` (the rest of ``on_delivery``), so its body is not decoded twice.

    ``owner`` is the Subscription: the step reads its ``on_delivery``, ``stats``, ``_pipeline``,
    ``subscriber`` (``observer``, ``tracer``), ``queue`` once, and ``channel`` and ``_stopping`` per
    delivery; it counts ``stats.received`` / ``acked`` / ``stale_settles`` as ``on_delivery`` does,
    hands a handler's result to the subscriber's ``result_hook``'s context-free entry
    ``direct(result, msg, delivery, envelope)`` when it has one (looked up once per hook object;
    the compiled ``replystep.ReplyHook`` itself, exactly that class, through its C entry: the same
    answer without the Python call), else / when that declines to ``owner._on_result``, and a handler error to
    ``owner._spawn(owner._handler_failed(...))``, and acks with ``channel.basic_ack`` after every
    handler returned.

    Settle-later handlers run as ``Subscription._run_later`` runs them: none returned an awaitable:
    acked at once (``owner._settle``); else the awaitable (several: ``asyncio.gather``; a coroutine:
    a Task kept in ``owner._tasks``) settles the delivery from its done-callback, the delivery in
    flight until then (``owner._in_flight``, ``owner._idle`` cleared): done: acked on that channel
    (stale counted, a settle error logged as ``owner._settle`` does); failed: handler failure
    (context None); cancelled: nack with requeue (``owner._settle``); then ``owner._in_flight`` - 1
    and ``owner._next()`` when something waits in ``owner._backlog`` or nothing is in flight.
    """

    def __init__(self, owner: Any, table: DispatchTable, by_name: dict[str, type],
                 decode_envelope: Callable[[Any], Any], plans: dict[type, Any],
                 plan_for: Callable[[type], Any]) -> None: ...
    def __call__(self, delivery: Any) -> None:
        """Handle one delivery exactly as ``owner.on_delivery`` would (a channel callback)."""
    def channel_hook(self, ack: Callable[[int], Any]) -> Callable[[Any], None]:
        """The same step for the frame reader of the AMQP channel the subscription consumes on
        (``FrameReader.set_hook``; the channel registers it in ``basic_consume``): it acks with
        ``ack`` (that channel's own ``basic_ack``) rather than through ``owner.channel`` (a
        RobustChannel wrapper would add its stale-tag check on a delivery that just arrived on the
        live channel); if ``ack`` raises (that channel closed under the handler), it settles through
        ``owner.channel`` as the general path would."""
