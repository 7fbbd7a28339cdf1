"""Broker-held retry with TTL delay queues and dead-lettering: no plugin needed (wire spec §7.2).

Use as a subscription's failure handler::

    retry = TtlRetry(ExponentialBackoff(initial=1, max_retries=5))
    await client.subscriber.subscribe(queue, dead_letter=True, failure_handler=retry)

For a retryable failure (reason ``handler-error``/``circuit-open``/``handler-timeout``, error not
opted out) the ORIGINAL body and properties are republished unchanged — only headers are added:
``x-mmate-attempt`` (retries so far, 1 on the first retry), ``x-mmate-original-queue``,
``x-mmate-last-error`` — to the delay queue ``{queue}.retry.{ms}ms`` through the default exchange.
The original delivery is acked only after the broker confirmed that copy. The delay queue (durable,
``x-message-ttl`` = ms, ``x-dead-letter-exchange`` = ``""``, ``x-dead-letter-routing-key`` = queue,
``x-expires`` = ms + ``expires_margin``) hands the message back to ``queue`` after the TTL.

So a handler sees the header absent on the first delivery, then 1, 2, ... ``max_retries``. When the
policy gives up — or for failures that cannot heal (malformed body, unknown type, contract error) —
the delivery goes to ``subscription.give_up`` (``dlq.{queue}`` with ``x-mmate-reason`` when
dead-lettering is on), still carrying ``x-mmate-attempt``.

Unlike Go's scheduler this keeps the envelope (Go publishes a RetryMessage no consumer can decode),
routes back to the queue (Go's default client dead-letters to an unbound routing key) and counts
attempts (Go's counter is always 0). Delays are rounded UP to the next step of the R10 series
(1, 1.25, 1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8 x 10^k ms) so jittered delays share a few queues.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mmate_fast import _checks, errors
from mmate_fast.messaging import topology
from mmate_fast.messaging.subscriber import Failure, Subscription
from mmate_fast.reliability._declared import Declarations
from mmate_fast.reliability.dead_lettering import MAX_ERROR_TEXT, QUEUE_HEADER
from mmate_fast.reliability.retry import ExponentialBackoff, RetryPolicy, policy_allows

log = logging.getLogger("mmate_fast.ttl_retry")

ATTEMPT_HEADER = "x-mmate-attempt"
LAST_ERROR_HEADER = "x-mmate-last-error"
ORIGINAL_QUEUE_HEADER = QUEUE_HEADER
#: failure reasons a later attempt may cure; the others (bad body, unknown type, ...) never retry
RETRYABLE_REASONS = frozenset({"handler-error", "circuit-open", "handler-timeout"})
_R10 = (100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000)


def ceil_r10(ms: int) -> int:
    """Round ``ms`` up to the next step of the R10 preferred-number series (values up to 10 ms are
    kept): 50 -> 50, 100 -> 100, 101 -> 125, 4999 -> 5000, 5001 -> 6300."""
    if ms <= 10:
        return max(1, ms)
    decade = 10
    while True:
        for step in _R10:
            value = math.ceil(step * decade / 100)
            if value >= ms:
                return value
        decade *= 10


def delay_queue_name(queue: str, delay_ms: int) -> str:
    """``{queue}.retry.{ms}ms``: the delay queue feeding ``queue`` after ``delay_ms``
    (InvalidArgumentError when RabbitMQ would refuse that name, e.g. longer than 255 bytes)."""
    return _checks.name(f"{queue}.retry.{delay_ms}ms", "queue", "retry delay queue name")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    inner = getattr(value, "value", None)  # Typed(tag, value)
    if isinstance(inner, int) and not isinstance(inner, bool):
        return inner
    if isinstance(value, str | bytes) and value.strip().isdigit():
        return int(value)
    return 0


def attempts_done(headers: Mapping[str, Any] | None, queue: str) -> int:
    """Retries already made for a delivery of ``queue``: the ``x-mmate-attempt`` header, or (if
    larger) the ``expired`` counts of ``x-death`` entries from ``{queue}.retry.*`` delay queues."""
    if not headers:
        return 0
    done = _as_int(headers.get(ATTEMPT_HEADER))
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple):
        prefix = f"{queue}.retry."
        counted = 0
        for d in deaths:
            if isinstance(d, Mapping) and d.get("reason") == "expired" and \
                    str(d.get("queue", "")).startswith(prefix):
                counted += max(1, _as_int(d.get("count")))
        done = max(done, counted)
    return max(0, done)


def _connection_of(sub: Subscription) -> Any:
    owner = getattr(sub, "subscriber", None) or getattr(sub, "_sub", None)
    conn = getattr(owner, "connection", None)
    if conn is None:
        raise errors.MmateError("TtlRetry needs a connection: pass TtlRetry(connection=...)")
    return conn


def _queue_type_of(sub: Subscription) -> str | None:
    """The ``queue_type`` of the Client consuming ``sub`` (None: classic)."""
    owner = getattr(sub, "subscriber", None) or getattr(sub, "_sub", None)
    queue_type = getattr(getattr(owner, "services", None), "queue_type", None)
    return queue_type if isinstance(queue_type, str) else None


class TtlRetry:
    """A FailureHandler: retry later through a TTL delay queue, give up into the DLQ."""

    def __init__(self, policy: RetryPolicy | None = None, *, connection: Any = None,
                 reasons: Iterable[str] = RETRYABLE_REASONS, expires_margin: float = 300.0,
                 quantize: Callable[[int], int] | None = ceil_r10, queue_type: str | None = None) -> None:
        self.policy: RetryPolicy = policy if policy is not None else ExponentialBackoff(
            0.1, 30.0, 2.0, 5, 0.0)  # Go's WithTTLRetry default (it applies no jitter there)
        self.reasons = frozenset(reasons)
        self.expires_margin_ms = max(1000, int(expires_margin * 1000))
        self.quantize = quantize
        self._connection = connection
        #: type of the delay queues (None: the consuming Client's ``queue_type``, else classic)
        self.queue_type = queue_type
        self._channel: Any = None
        #: delay queues declared, again before ``x-expires`` could run out
        self._declared = Declarations(refresh=self.expires_margin_ms / 2000)
        #: counters: retried (republished to a delay queue), gave_up (handed to give_up)
        self.retried = 0
        self.gave_up = 0

    def delay_ms(self, attempt: int) -> int | None:
        """Delay before retry ``attempt`` in whole ms as used for the queue name (None: give up)."""
        wait = self.policy.delay(attempt)
        if wait is None:
            return None
        ms = max(1, math.ceil(wait * 1000))
        return self.quantize(ms) if self.quantize is not None else ms

    async def __call__(self, failure: Failure) -> None:
        sub = failure.subscription
        if failure.reason not in self.reasons or (
                failure.exception is not None and not policy_allows(self.policy, failure.exception)):
            await self._give_up(failure)
            return
        headers = failure.delivery.properties.headers if failure.delivery.properties is not None else None
        attempt = attempts_done(headers, sub.queue) + 1
        ms = self.delay_ms(attempt)
        if ms is None:
            await self._give_up(failure)
            return
        try:
            target = await self.ensure_delay_queue(sub.queue, ms, _connection_of(sub)
                                                   if self._connection is None else self._connection,
                                                   self.queue_type or _queue_type_of(sub))
            await sub.republish(failure.delivery, "", target, {
                ATTEMPT_HEADER: attempt,
                ORIGINAL_QUEUE_HEADER: sub.queue,
                LAST_ERROR_HEADER: failure.text[:MAX_ERROR_TEXT],
            }, {"expiration": None})
        except Exception as exc:
            log.error("could not schedule retry %d of delivery %d on %r (%r); giving up on it", attempt,
                      failure.delivery.delivery_tag, sub.queue, exc)
            await self._give_up(failure)
            return
        if not sub.ack(failure):  # channel gone: the broker redelivers the original too
            log.warning("retry copy of delivery %d stored but the original could not be acked",
                        failure.delivery.delivery_tag)
            return
        self.retried += 1

    async def _give_up(self, failure: Failure) -> None:
        self.gave_up += 1
        await failure.subscription.give_up(failure)

    async def _admin(self, connection: Any) -> Any:
        ch = self._channel
        if ch is None or not ch.is_open:
            ch = self._channel = await connection.channel()
        return ch

    async def ensure_delay_queue(self, queue: str, delay_ms: int, connection: Any,
                                 queue_type: str | None = None) -> str:
        """Declare ``{queue}.retry.{ms}ms`` unless declared recently; returns its name.

        Declared again before ``x-expires`` could run out (a publish does not reset RabbitMQ's
        idle timer, a declare does), so a cached queue never expires under a message just sent.
        """
        name = delay_queue_name(queue, delay_ms)
        await self._declared.ensure(name, functools.partial(self._declare, name, queue, delay_ms, connection,
                                                            queue_type))
        return name

    async def _declare(self, name: str, queue: str, delay_ms: int, connection: Any,
                       queue_type: str | None = None) -> None:
        args = topology.queue_arguments(name, queue_type, None, {
            "x-message-ttl": delay_ms, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue,
            "x-expires": delay_ms + self.expires_margin_ms})
        ch = await self._admin(connection)
        try:
            await ch.queue_declare(name, durable=True, arguments=args)
        except errors.PreconditionFailedError:
            # declared elsewhere with another x-expires: same name = same TTL and target; use it
            log.warning("delay queue %r exists with other arguments; using it as it is", name)
            ch = await self._admin(connection)
            await ch.queue_declare(name, passive=True)

    async def close(self) -> None:
        """Close the declaring channel (the client's connection stays open)."""
        ch, self._channel = self._channel, None
        if ch is not None and ch.is_open:
            with contextlib.suppress(errors.MmateError):
                await ch.close()


__all__ = ["ATTEMPT_HEADER", "LAST_ERROR_HEADER", "ORIGINAL_QUEUE_HEADER", "RETRYABLE_REASONS", "TtlRetry",
           "attempts_done", "ceil_r10", "delay_queue_name"]
