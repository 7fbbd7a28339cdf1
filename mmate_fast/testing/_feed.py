"""``await feed(client, message)``: deliver a message to a service's handlers and wait until they ran.

The message travels the real way: published (encoded into its Mmate envelope) straight to the
client's service queue through the default exchange, consumed, decoded and dispatched to every
handler of its type, with the client's interceptors, acks, replies and dead-lettering. A probe
interceptor on the client records, by message id, when each handler finished, with its result or
error: ``feed`` returns the (last) handler's result, or raises the error a handler (or an interceptor
before it) raised — the message went to the DLQ then, as in production.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

from mmate_fast import errors
from mmate_fast.contracts import message_type
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor


class _Outcome:
    """What became of one delivery: handlers finished, the last result, the first error."""

    __slots__ = ("changed", "done", "error", "result")

    def __init__(self) -> None:
        self.done = 0
        self.result: Any = None
        self.error: BaseException | None = None
        self.changed = asyncio.Event()


class _FeedProbe(Interceptor):
    """Records the outcome of every delivery of its client while a ``feed`` is waiting (deliveries
    are keyed by envelope id: one may be handled before ``publish`` returns its id)."""

    def __init__(self) -> None:
        self.active = 0
        self.outcomes: dict[str, _Outcome] = {}
        #: ``id()`` of the messages being fed: their publish is not the service's (captures skip it)
        self.feeding: set[int] = set()

    def _outcome(self, ctx: ConsumeContext) -> _Outcome:
        key = str(ctx.envelope.id)
        found = self.outcomes.get(key)
        if found is None:
            found = self.outcomes[key] = _Outcome()
        return found

    async def around_handler(self, ctx: ConsumeContext, call_next: Any) -> Any:
        result = await call_next()
        if self.active:
            self._outcome(ctx).result = result
        return result

    async def after_consume(self, ctx: ConsumeContext, error: BaseException | None) -> None:
        if not self.active:
            return
        outcome = self._outcome(ctx)
        outcome.done += 1
        if error is not None and outcome.error is None:
            outcome.error = error
        outcome.changed.set()


_PROBES: weakref.WeakKeyDictionary[Any, _FeedProbe] = weakref.WeakKeyDictionary()


def is_fed(client: Any, message: Any) -> bool:
    """True while ``message`` is being fed to ``client`` (its publish is the test's, not the service's)."""
    probe = _PROBES.get(client)
    return probe is not None and id(message) in probe.feeding


def _probe_of(client: Any) -> _FeedProbe:
    probe = _PROBES.get(client)
    if probe is None:
        probe = _PROBES[client] = _FeedProbe()
        client.use(probe)
    return probe


async def feed(client: Any, message: Any, *, timeout: float = 5.0, **options: Any) -> Any:
    """Deliver ``message`` to ``client``'s handlers through its service queue (consuming starts if it
    had not) and wait until every handler of its type ran; returns the last handler's result (a
    reply, for a request handler), raises what a handler raised. ``options`` are publish options
    (``headers``, ``correlation_id``, ...).

    Raises UnknownMessageTypeError when the client has no handler for the message's type, and
    ObservationTimeout (an AssertionError) when it was not handled within ``timeout`` seconds."""
    type_name = message_type(message)
    expected = len(client.dispatcher.lookup(type_name))
    if not expected:
        raise errors.UnknownMessageTypeError(
            f"service {client.service_name!r} has no handler for {type_name}: register one (e.g. "
            f"@client.handler({type(message).__name__})) before feeding it one")
    probe = _probe_of(client)
    probe.active += 1
    message_id = ""
    try:
        await client.start_consuming()
        probe.feeding.add(id(message))
        try:
            message_id = await client.publish(message, exchange="", routing_key=client.service_queue,
                                              **options)
        finally:
            probe.feeding.discard(id(message))
        outcome = probe.outcomes.get(message_id)
        if outcome is None:
            outcome = probe.outcomes[message_id] = _Outcome()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while outcome.error is None and outcome.done < expected:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise errors.ObservationTimeout(
                    f"{type_name} (id {message_id}) was not handled by service {client.service_name!r} "
                    f"within {timeout:g} s ({outcome.done} of {expected} handlers finished): a slow handler, "
                    f"or it was refused before any handler ran (see dlq.{client.service_queue})")
            outcome.changed.clear()
            try:
                await asyncio.wait_for(outcome.changed.wait(), remaining)
            except TimeoutError:
                continue  # the loop condition decides
        if outcome.error is not None:
            raise outcome.error
        return outcome.result
    finally:
        probe.outcomes.pop(message_id, None)
        probe.active -= 1
        if not probe.active:
            probe.outcomes.clear()


__all__ = ["feed", "is_fed"]
