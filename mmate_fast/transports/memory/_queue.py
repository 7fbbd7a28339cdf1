"""Queues of the in-memory broker: ready messages, consumers, TTL, length limits, dead-lettering.

A queue never calls a consumer inside a publish: ``enqueue`` schedules ``_dispatch`` on the loop
(once per loop turn), which hands messages round-robin to consumers that have prefetch room.
"""
from __future__ import annotations

import asyncio
import datetime
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mmate_fast._ext import load
from mmate_fast.transports.memory._errors import broker_error

if TYPE_CHECKING:
    from mmate_fast.transports.memory._broker import Broker
    from mmate_fast.transports.memory._channel import MemoryChannel

_frames = load("frames")

_DISPATCH_BUDGET = 4096  # deliveries per loop turn and queue before yielding to the loop

#: queue arguments RabbitMQ compares when a queue is re-declared
EQUIVALENCE_ARGS = ("x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
                    "x-max-length", "x-max-length-bytes", "x-max-in-memory-length",
                    "x-max-in-memory-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
                    "x-single-active-consumer", "x-queue-type", "x-delivery-limit")

_OVERFLOW = ("drop-head", "reject-publish", "reject-publish-dlx")


class Message:
    """One message as stored in one queue (each queue gets its own, for ``redelivered``/expiry)."""

    __slots__ = ("body", "exchange", "expires_at", "properties", "redelivered", "returns", "routing_key",
                 "seq")

    def __init__(self, body: bytes, exchange: str, routing_key: str, properties: Any,
                 expires_at: float | None) -> None:
        self.body = body
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.expires_at = expires_at
        self.redelivered = False
        #: times given back (nack/reject with requeue, channel closed): counted against x-delivery-limit
        self.returns = 0
        self.seq = 0


class Consumer:
    """A basic.consume subscription: its channel, callback and prefetch accounting."""

    __slots__ = ("callback", "channel", "exclusive", "is_coro", "no_ack", "on_cancel", "prefetch", "queue",
                 "tag", "unacked")

    def __init__(self, tag: str, channel: MemoryChannel, queue: Queue, callback: Callable[[Any], Any],
                 is_coro: bool, no_ack: bool, exclusive: bool, prefetch: int,
                 on_cancel: Callable[[str], None] | None) -> None:
        self.tag = tag
        self.channel = channel
        self.queue = queue
        self.callback = callback
        self.is_coro = is_coro
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch
        self.on_cancel = on_cancel
        self.unacked = 0


def _int_arg(name: str, queue: str, args: Mapping[str, Any], key: str, minimum: int) -> int | None:
    if key not in args:
        return None
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise broker_error(406, f"invalid arg '{key}' for queue '{queue}' in vhost '/': {value!r}", name)
    return value


def _check_queue_type(name: str, durable: bool, exclusive: bool, auto_delete: bool,
                      arguments: Mapping[str, Any]) -> None:
    """406 as RabbitMQ 3.10 answers for a quorum queue it cannot have, or an unknown queue type."""
    kind = arguments.get("x-queue-type")
    if kind == "quorum":
        bad = ("non-durable" if not durable else "exclusive-owner" if exclusive
               else "auto-delete" if auto_delete else None)
        if bad is not None:
            raise broker_error(406, f"invalid property '{bad}' for queue '{name}' in vhost '/'",
                               "queue.declare")
        if "x-max-priority" in arguments:
            raise broker_error(406, f"invalid arg 'x-max-priority' for queue '{name}' in vhost '/' of queue "
                                    "type rabbit_quorum_queue", "queue.declare")
    elif kind is not None and kind not in ("classic", "stream"):
        raise broker_error(406, f"invalid arg 'x-queue-type' for queue '{name}' in vhost '/': "
                                f"\"unsupported queue type '{kind}'\"", "queue.declare")


def _str_arg(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if isinstance(value, bytes):
        value = value.decode()
    return value if isinstance(value, str) else None


def x_death_headers(headers: dict[str, Any], reason: str, queue: str, exchange: str,
                    routing_key: str, expiration: str | None) -> None:
    """Update ``headers`` in place the way RabbitMQ 3.10 does when a message is dead-lettered."""
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    for i, death in enumerate(deaths):
        if death.get("queue") == queue and death.get("reason") == reason:
            death = dict(death)
            death["count"] = int(death.get("count", 0)) + 1
            del deaths[i]
            deaths.insert(0, death)
            break
    else:
        entry: dict[str, Any] = {
            "count": 1, "reason": reason, "queue": queue,
            "time": datetime.datetime.now(datetime.UTC).replace(microsecond=0),
            "exchange": exchange, "routing-keys": [routing_key]}
        if expiration is not None:
            entry["original-expiration"] = expiration
        deaths.insert(0, entry)
    headers["x-death"] = deaths
    headers.setdefault("x-first-death-exchange", exchange)
    headers.setdefault("x-first-death-queue", queue)
    headers.setdefault("x-first-death-reason", reason)


class Queue:
    """A classic queue: FIFO of ready messages plus its consumers."""

    def __init__(self, broker: Broker, name: str, durable: bool, owner: object | None, auto_delete: bool,
                 arguments: Mapping[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.name = name
        self.durable = durable
        self.owner = owner  # the exclusive connection, or None
        self.auto_delete = auto_delete
        self.arguments = dict(arguments)
        method = "queue.declare"
        _check_queue_type(name, durable, owner is not None, auto_delete, arguments)
        self.ttl = _int_arg(method, name, arguments, "x-message-ttl", 0)
        self.expires = _int_arg(method, name, arguments, "x-expires", 1)
        self.max_length = _int_arg(method, name, arguments, "x-max-length", 0)
        self.max_length_bytes = _int_arg(method, name, arguments, "x-max-length-bytes", 0)
        overflow = _str_arg(arguments, "x-overflow")
        if "x-overflow" in arguments and overflow not in _OVERFLOW:
            raise broker_error(406, f"invalid arg 'x-overflow' for queue '{name}' in vhost '/': "
                                    f"{arguments['x-overflow']!r}", method)
        self.overflow = overflow or "drop-head"
        self.dlx = _str_arg(arguments, "x-dead-letter-exchange")
        self.dlrk = _str_arg(arguments, "x-dead-letter-routing-key")
        self.single_active = bool(arguments.get("x-single-active-consumer", False))
        #: a quorum queue's x-delivery-limit: a message given back more often is dead-lettered
        self.delivery_limit = (_int_arg(method, name, arguments, "x-delivery-limit", 0)
                               if arguments.get("x-queue-type") == "quorum" else None)
        self.messages: deque[Message] = deque()
        self.bytes = 0
        self.consumers: list[Consumer] = []
        self.deleted = False
        self.had_consumer = False
        self.bindings: set[tuple[str, tuple[str, str, str, str]]] = set()  # (exchange, binding key) here
        self._loop = loop
        self._rr = 0
        self._seq = 0
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._last_used = loop.time()
        self._arm_queue_expiry()

    # -- storing ----------------------------------------------------------------------------
    def enqueue(self, msg: Message, loop: asyncio.AbstractEventLoop) -> bool:
        """Store ``msg``; False when refused by x-overflow=reject-publish(-dlx)."""
        self._loop = loop
        if self.max_length is not None or self.max_length_bytes is not None:
            size = len(msg.body)
            full = ((self.max_length is not None and len(self.messages) >= self.max_length)
                    or (self.max_length_bytes is not None and self.bytes + size > self.max_length_bytes))
            if full and self.overflow != "drop-head":
                if self.overflow == "reject-publish-dlx":
                    self.dead_letter(msg, "maxlen")
                return False
        msg.seq = self._seq
        self._seq += 1
        self.messages.append(msg)
        self.bytes += len(msg.body)
        if self.max_length is not None or self.max_length_bytes is not None:
            self._drop_overflow()
        if msg.expires_at is not None and self._timer is None:
            self._arm_timer()
        if self.consumers and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return True

    def _drop_overflow(self) -> None:
        msgs = self.messages
        while msgs and ((self.max_length is not None and len(msgs) > self.max_length)
                        or (self.max_length_bytes is not None and self.bytes > self.max_length_bytes)):
            head = msgs.popleft()
            self.bytes -= len(head.body)
            self.dead_letter(head, "maxlen")

    def requeue(self, batch: list[Message]) -> None:
        """Put messages back in their original position (near the head), marked redelivered."""
        if self.deleted:
            return
        if self.delivery_limit is not None:
            kept = []
            for msg in batch:
                msg.returns += 1
                if msg.returns > self.delivery_limit:
                    self.dead_letter(msg, "delivery_limit")
                else:
                    kept.append(msg)
            batch = kept
        msgs = self.messages
        for msg in sorted(batch, key=lambda m: m.seq, reverse=True):
            msg.redelivered = True
            i = 0
            n = len(msgs)
            while i < n and msgs[i].seq < msg.seq:
                i += 1
            msgs.insert(i, msg)
            self.bytes += len(msg.body)
        self._arm_timer()
        self.kick()

    def kick(self) -> None:
        """Schedule a dispatch when there is something to hand out."""
        if self.messages and self.consumers and not self._scheduled and not self.deleted:
            self._scheduled = True
            self._loop.call_soon(self._dispatch)

    # -- handing out ------------------------------------------------------------------------
    def _next_consumer(self) -> Consumer | None:
        consumers = self.consumers
        n = 1 if self.single_active else len(consumers)
        for _ in range(n):
            i = self._rr % n
            self._rr = i + 1
            c = consumers[i]
            if c.no_ack:
                return c
            ch = c.channel
            if (c.prefetch == 0 or c.unacked < c.prefetch) and (
                    ch.global_prefetch == 0 or ch.global_unacked < ch.global_prefetch):
                return c
        return None

    def _dispatch(self) -> None:
        msgs = self.messages
        budget = _DISPATCH_BUDGET
        now = -1.0
        while msgs and self.consumers and not self.deleted:
            c = self._next_consumer()
            if c is None:
                break
            msg = msgs.popleft()
            self.bytes -= len(msg.body)
            if msg.expires_at is not None:
                if now < 0:
                    now = self._loop.time()
                if msg.expires_at <= now:
                    self.dead_letter(msg, "expired")
                    continue
            c.channel._deliver(c, self, msg)
            budget -= 1
            if not budget:
                self._loop.call_soon(self._dispatch)
                return
        self._scheduled = False
        if msgs:
            self._arm_timer()

    def get(self) -> Message | None:
        """basic.get: the head message (expired ones dead-lettered first)."""
        self.touch()
        self.expire_head()
        if not self.messages:
            return None
        msg = self.messages.popleft()
        self.bytes -= len(msg.body)
        return msg

    # -- expiry -----------------------------------------------------------------------------
    def expire_head(self) -> None:
        """Dead-letter expired messages at the head (RabbitMQ only expires from the head)."""
        msgs = self.messages
        if not msgs:
            return
        now = self._loop.time()
        while msgs and msgs[0].expires_at is not None and msgs[0].expires_at <= now:
            head = msgs.popleft()
            self.bytes -= len(head.body)
            self.dead_letter(head, "expired")

    def _arm_timer(self) -> None:
        if self.deleted or not self.messages:
            return
        at = self.messages[0].expires_at
        if at is None:
            return
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.expire_head()
        self._arm_timer()

    def touch(self) -> None:
        """Mark the queue used (for x-expires)."""
        if self.expires is not None:
            self._last_used = self._loop.time()

    def _arm_queue_expiry(self) -> None:
        if self.expires is None or self.deleted or self._expiry_timer is not None:
            return
        self._expiry_timer = self._loop.call_at(self._last_used + self.expires / 1000, self._on_expires)

    def _on_expires(self) -> None:
        self._expiry_timer = None
        if self.deleted:
            return
        if not self.consumers and self._loop.time() >= self._last_used + self.expires / 1000:  # type: ignore[operator]
            self.broker.delete_queue(self)
        else:
            self._arm_queue_expiry()

    # -- consumers --------------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        """Attach a consumer and start handing it messages."""
        self.consumers.append(consumer)
        self.had_consumer = True
        self.touch()
        self.kick()

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detach a consumer; an auto-delete queue goes with its last consumer."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return
        if not self.consumers:
            if self.auto_delete and self.had_consumer:
                self.broker.delete_queue(self)
                return
            self.touch()
            self._arm_queue_expiry()
        else:
            self.kick()

    # -- dead-lettering ---------------------------------------------------------------------
    def dead_letter(self, msg: Message, reason: str) -> None:
        """Republish ``msg`` to x-dead-letter-exchange with the x-death header (or drop it)."""
        if self.dlx is None:
            return
        exchange = self.broker.exchanges.get(self.dlx) if self.dlx != "" else None
        if exchange is None and self.dlx != "":
            return
        old = msg.properties
        fields = old.to_dict() if old is not None else {}
        expiration = fields.pop("expiration", None)
        headers = dict(fields.pop("headers", None) or {})
        x_death_headers(headers, reason, self.name, msg.exchange, msg.routing_key, expiration)
        props = _frames.BasicProperties(headers=headers, **fields)
        routing_key = self.dlrk if self.dlrk is not None else msg.routing_key
        self.broker.route_internal(exchange, routing_key, msg.body, props, self._loop)

    def close(self) -> int:
        """Mark deleted, stop timers; returns the number of ready messages dropped."""
        self.deleted = True
        for timer in (self._timer, self._expiry_timer):
            if timer is not None:
                timer.cancel()
        count = len(self.messages)
        self.messages.clear()
        self.bytes = 0
        return count

    def purge(self) -> int:
        """Drop every ready message; returns how many."""
        count = len(self.messages)
        self.messages.clear()
        self.bytes = 0
        return count


__all__ = ["EQUIVALENCE_ARGS", "Consumer", "Message", "Queue", "x_death_headers"]
