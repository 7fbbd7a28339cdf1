"""Delayed / scheduled publish without the delayed-message plugin (TTL + dead-lettering).

mmate-go's ``Schedule*``/``WithDelay`` only add an ``x-delay`` header to a publish on a plain topic
exchange, so the broker delivers at once (wire spec §7.4). Here the message really waits:

* per (target exchange, delay) a durable fanout exchange and a durable queue, both named
  ``mmate.delay.{exchange}.{ms}ms`` (``_default`` for the default exchange), bound together; the queue
  has ``x-message-ttl`` = ms, ``x-dead-letter-exchange`` = the target exchange and NO
  ``x-dead-letter-routing-key``, so RabbitMQ dead-letters each message with its own routing key;
  ``x-expires`` = ms + ``expires_margin`` lets idle ones vanish;
* the message is published (through the publisher's interceptors, with its normal routing key and
  the ``x-delay`` header Go writes, int64 ms) to that fanout exchange, ``mandatory`` so a vanished
  queue is noticed (then re-declared and published again) instead of losing the message.

A fanout exchange per delay is what keeps the routing key intact: publishing through the default
exchange would make the delay queue's name the routing key. Delays are rounded UP to 3 significant
digits (at most 1 % late, never early) so ``at=`` times share a bounded set of queues. A per-message
``ttl`` cannot be combined (it would run out inside the delay queue).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import weakref
from datetime import datetime, timedelta
from typing import Any

from mmate_fast import _checks, errors
from mmate_fast.contracts import kind_of, message_type
from mmate_fast.messaging.publisher import Publisher, default_route
from mmate_fast.reliability._declared import Declarations

log = logging.getLogger("mmate_fast.scheduling")

DELAY_PREFIX = "mmate.delay."


def ceil_significant(ms: int, digits: int = 3) -> int:
    """Round ``ms`` up to ``digits`` significant digits: 12345 -> 12400, 300 -> 300."""
    if ms <= 0:
        return 0
    scale = 10 ** max(0, len(str(ms)) - digits)
    return math.ceil(ms / scale) * scale


def delay_name(exchange: str, delay_ms: int) -> str:
    """``mmate.delay.{exchange}.{ms}ms`` — the delay exchange and queue for ``exchange``
    (InvalidArgumentError when RabbitMQ would refuse that name, e.g. longer than 255 bytes)."""
    return _checks.name(f"{DELAY_PREFIX}{exchange or '_default'}.{delay_ms}ms", "exchange",
                        "delay queue name")


def seconds_until(at: datetime, now: float | None = None) -> float:
    """Seconds from now until ``at`` (naive datetimes are UTC), floored at 0 like Go."""
    if at.tzinfo is None:
        from datetime import UTC
        at = at.replace(tzinfo=UTC)
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


class Scheduler:
    """Schedules publishes of one publisher; declares delay topology on its own channel."""

    def __init__(self, publisher: Publisher, connection: Any = None, *, channel: Any = None,
                 expires_margin: float = 300.0, precision: int | None = 3) -> None:
        if connection is None and channel is None:
            raise errors.MmateError("Scheduler needs a connection or a channel to declare delay queues")
        self.publisher = publisher
        self._connection = connection
        self._channel = channel
        self.expires_margin_ms = max(1000, int(expires_margin * 1000))
        self.precision = precision
        #: delay topology declared, again before ``x-expires`` could run out
        self._declared = Declarations(refresh=self.expires_margin_ms / 2000)

    async def _admin(self) -> Any:
        ch = self._channel
        if ch is None or not ch.is_open:
            if self._connection is None:
                raise errors.ChannelClosedError("the scheduler's channel is closed")
            ch = self._channel = await self._connection.channel()
        return ch

    def delay_ms(self, seconds: float) -> int:
        ms = max(0, math.ceil(seconds * 1000 - 1e-6))
        return ceil_significant(ms, self.precision) if self.precision else ms

    async def ensure(self, exchange: str, delay_ms: int, *, force: bool = False) -> str:
        """Declare the delay exchange + queue for (``exchange``, ``delay_ms``) unless recently done."""
        name = delay_name(exchange, delay_ms)
        await self._declared.ensure(name, functools.partial(self._declare, name, exchange, delay_ms),
                                    force=force)
        return name

    async def _declare(self, name: str, exchange: str, delay_ms: int) -> None:
        ch = await self._admin()
        await ch.exchange_declare(name, "fanout", durable=True, auto_delete=False)
        await ch.queue_declare(name, durable=True, arguments={
            "x-message-ttl": delay_ms, "x-dead-letter-exchange": exchange,
            "x-expires": delay_ms + self.expires_margin_ms})
        await ch.queue_bind(name, name, "")

    async def schedule(self, msg: Any, *, delay: float | timedelta | None = None, at: datetime | None = None,
                       exchange: str | None = None, routing_key: str | None = None, **options: Any) -> str:
        """Publish ``msg`` so that it reaches its route ``delay`` seconds from now (or at ``at``);
        returns its message id. The route is the message kind's unless given explicitly."""
        seconds = _resolve(delay, at)
        if options.get("ttl"):
            raise errors.SchedulingError("a scheduled message cannot have a ttl: it would expire in the "
                                         "delay queue and arrive early")
        options.pop("ttl", None)
        options.pop("mandatory", None)
        if exchange is None or routing_key is None:
            ex, rk = default_route(msg, options.get("kind") or kind_of(msg), message_type(msg))
            exchange = ex if exchange is None else exchange
            routing_key = rk if routing_key is None else routing_key
        ms = self.delay_ms(seconds)
        if ms == 0:
            return await self.publisher.publish(msg, exchange=exchange, routing_key=routing_key, delay=0.0,
                                                **options)
        for tries in (1, 2):
            name = await self.ensure(exchange, ms, force=tries > 1)
            try:
                return await self.publisher.publish(msg, exchange=name, routing_key=routing_key,
                                                    delay=seconds, mandatory=True, **options)
            except errors.PublishReturnedError:
                if tries > 1:
                    raise
                log.warning("delay queue %r vanished; declaring it again", name)
                self._declared.forget(name)
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close the declaring channel if this scheduler opened it."""
        ch = self._channel
        if ch is not None and self._connection is not None and ch.is_open:
            self._channel = None
            with contextlib.suppress(errors.MmateError):
                await ch.close()


def _resolve(delay: float | timedelta | None, at: datetime | None) -> float:
    if (delay is None) == (at is None):
        raise errors.SchedulingError("give exactly one of delay= (seconds) or at= (datetime)")
    if at is not None:
        if not isinstance(at, datetime):
            raise errors.SchedulingError(f"at must be a datetime, not {type(at).__qualname__}")
        return seconds_until(at)
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    return _checks.duration(seconds, "delay", error=errors.SchedulingError)


_SCHEDULERS: weakref.WeakKeyDictionary[Any, Scheduler] = weakref.WeakKeyDictionary()


def scheduler_for(target: Any, *, channel: Any = None) -> Scheduler:
    """The Scheduler of a Client (cached per client), a Publisher (needs ``channel``) or itself."""
    if isinstance(target, Scheduler):
        return target
    cached = _SCHEDULERS.get(target)
    if cached is not None:
        return cached
    if isinstance(target, Publisher):
        if channel is None:
            raise errors.MmateError("schedule(publisher, ...) needs channel= to declare delay queues")
        sched = Scheduler(target, channel=channel)
    else:
        publisher = getattr(target, "publisher", None)
        connection = getattr(target, "connection", None)
        if not isinstance(publisher, Publisher) or connection is None:
            raise errors.MmateError("schedule() needs a connected Client, a Publisher or a Scheduler")
        sched = Scheduler(publisher, connection)
    _SCHEDULERS[target] = sched
    return sched


async def schedule(target: Any, msg: Any, *, delay: float | timedelta | None = None,
                   at: datetime | None = None, channel: Any = None, **options: Any) -> str:
    """``await schedule(client, msg, delay=0.3)`` or ``at=datetime``: publish ``msg`` to its normal
    route so that it arrives no earlier than that. See the module docstring for the topology."""
    return await scheduler_for(target, channel=channel).schedule(msg, delay=delay, at=at, **options)


__all__ = ["DELAY_PREFIX", "Scheduler", "ceil_significant", "delay_name", "schedule", "scheduler_for",
           "seconds_until"]
