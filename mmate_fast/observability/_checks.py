"""The built-in health checks of a Client: connection, channels, consumers, queue depth, consumer lag
and dead-letter queue depth.

They read what the client already knows (connection state, subscription counters) and ask the broker
only through the transport interface: a passive ``queue.declare`` on a channel of their own (Go's
``QueueInspect``), reopened when a 404 closed it, gives a queue's message and consumer counts.
The client is duck-typed (``connection``, ``subscriber.subscriptions``, ``service_queue``,
``channel_states()``): this layer never imports the front door.

Statuses follow mmate-go's ``monitor`` package: a queue over 1000 messages is degraded
("Elevated"), over 10000 degraded ("High"), and unhealthy with messages but no consumer. While the
broker blocks the connection (a resource alarm: it reads nothing from it) the queue checks say
degraded "not inspected" at once instead of timing out.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmate_fast import errors
from mmate_fast.messaging._channels import close_quietly
from mmate_fast.observability._health import CheckResult, HealthChecker, HealthStatus, worst

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY


@dataclass(frozen=True)
class Thresholds:
    """When the broker-side checks stop saying healthy.

    ``elevated``/``high``: queue depth (ready messages) above which a queue is degraded (Go's 1000 and
    10000); ``dlq``: dead letters from which a dead-letter queue is degraded (1: any); ``lag_seconds``:
    estimated seconds to drain a queue at the measured consume rate above which consumer lag is
    degraded.
    """

    elevated: int = 1000
    high: int = 10000
    dlq: int = 1
    lag_seconds: float = 60.0


class QueueInspector:
    """Passive ``queue.declare`` of queues on a channel of its own: ``(messages, consumers)``, or None
    when the queue does not exist (the 404 closed the channel: the next call opens a new one). A call
    cut short (timeout) leaves its channel to be replaced, so a late answer can never be taken for
    the next call's."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection
        self._channel: Any = None
        self._dirty = False
        self._lock = asyncio.Lock()

    async def inspect(self, queue: str) -> tuple[int, int] | None:
        async with self._lock:  # one synchronous call at a time on the channel
            conn = self._connection()
            if conn is None or conn.is_closed or getattr(conn, "is_connected", True) is False:
                # a recovering connection would hold the call until it is back: say so at once
                raise errors.ConnectionClosedError("not connected to the broker")
            if getattr(conn, "blocked", False):  # the broker reads nothing from it until the alarm clears
                reason = getattr(conn, "blocked_reason", None) or "resource alarm"
                raise errors.ConnectionBlockedError(f"the broker blocks this connection ({reason})",
                                                    reason=reason)
            ch = self._channel
            if ch is None or not ch.is_open or self._dirty:
                await close_quietly(ch)
                self._channel = None
                # a plain channel of the current connection, not a robust one: a passive declare of a
                # missing queue (a DLQ nobody needed yet) closes it with 404, which a robust channel
                # would log as a channel error and reopen at every health check
                plain = getattr(conn, "connection", None)
                self._channel = ch = await (plain if plain is not None else conn).channel()
                self._dirty = False
            self._dirty = True  # until the answer is in
            try:
                ok = await ch.queue_declare(queue, passive=True)
            except errors.NotFoundError:
                self._dirty = False
                return None
            self._dirty = False
            return ok.message_count, ok.consumer_count

    async def close(self) -> None:
        ch, self._channel = self._channel, None
        await close_quietly(ch)


def _subscriptions(client: Any) -> list[Any]:
    sub = getattr(client, "subscriber", None)
    return list(getattr(sub, "subscriptions", ()) or ())


def consumed_queues(client: Any) -> list[str]:
    """The queues ``client`` consumes, in subscription order, without repeats."""
    return list(dict.fromkeys(s.queue for s in _subscriptions(client)))


def _checked_queues(client: Any) -> list[str]:
    queues = consumed_queues(client)
    if getattr(client, "declare_topology", False) and client.service_queue not in queues:
        queues.insert(0, client.service_queue)
    return queues


# --------------------------------------------------------------------------- checks
def check_connection(client: Any) -> CheckResult:
    """Connected and not blocked by the broker; a recovering RabbitMQ connection is unhealthy until
    it is back (its reconnect counters are in the details)."""
    conn = client.connection
    if conn is None:
        return CheckResult("connection", UNHEALTHY, "not connected")
    details: dict[str, Any] = {}
    stats = getattr(conn, "stats", None)
    if stats is not None and hasattr(stats, "reconnects"):
        details.update(reconnects=stats.reconnects, disconnects=stats.disconnects,
                       failed_attempts=stats.failed_attempts)
        if stats.last_error:
            details["last_error"] = stats.last_error
    if conn.is_closed:
        return CheckResult("connection", UNHEALTHY, "connection closed", details)
    if getattr(conn, "is_connected", True) is False:
        return CheckResult("connection", UNHEALTHY, "connection lost; reconnecting", details)
    blocked = bool(getattr(conn, "blocked", False))
    details["blocked"] = blocked
    if blocked:
        reason = getattr(conn, "blocked_reason", None) or "no reason given"
        return CheckResult("connection", DEGRADED, f"the broker blocked publishing ({reason})", details)
    return CheckResult("connection", HEALTHY, "connected", details)


def check_channels(client: Any) -> CheckResult:
    """The client's channels are open (a channel a refused call closed is being reopened: degraded)."""
    states: dict[str, bool] = client.channel_states()
    closed = sorted(name for name, is_open in states.items() if not is_open)
    details = {"open_channels": len(states) - len(closed), "closed_channels": closed}
    if not states:
        return CheckResult("channels", UNHEALTHY, "no channels (not connected)", details)
    if closed:
        publishing = [n for n in states if n.startswith("publish")]
        if publishing and all(n in closed for n in publishing):
            return CheckResult("channels", UNHEALTHY, "every publishing channel is closed", details)
        return CheckResult("channels", DEGRADED, f"{len(closed)} channel(s) closed: {', '.join(closed)}",
                           details)
    return CheckResult("channels", HEALTHY, f"{len(states)} channel(s) open", details)


def check_consumers(client: Any) -> CheckResult:
    """Every subscription has a live consumer (one the broker cancelled is being restarted: unhealthy
    until it consumes again)."""
    subs = _subscriptions(client)
    consumers = [{"queue_name": s.queue, "consuming": bool(s.consumer_tag) and s.channel.is_open,
                  "consumer_restarts": s.stats.consumer_restarts} for s in subs]
    idle = [c["queue_name"] for c in consumers if not c["consuming"]]
    details = {"consumers": consumers}
    if idle:
        return CheckResult("consumers", UNHEALTHY, f"not consuming: {', '.join(idle)} (restarting)", details)
    if not subs:
        return CheckResult("consumers", HEALTHY, "no subscriptions", details)
    return CheckResult("consumers", HEALTHY, f"{len(subs)} consumer(s) consuming", details)


def queue_status(messages: int, consumers: int, thresholds: Thresholds) -> tuple[HealthStatus, str]:
    """Go's QueueInspector verdict for one queue."""
    if consumers == 0 and messages > 0:
        return UNHEALTHY, f"{messages} message(s) and no consumer"
    if messages > thresholds.high:
        return DEGRADED, f"High: {messages} messages"
    if messages > thresholds.elevated:
        return DEGRADED, f"Elevated: {messages} messages"
    return HEALTHY, f"{messages} message(s), {consumers} consumer(s)"


def _not_inspected(name: str, exc: errors.ConnectionBlockedError) -> CheckResult:
    return CheckResult(name, DEGRADED, f"not inspected: {exc}")


async def check_queues(client: Any, inspector: QueueInspector, thresholds: Thresholds) -> CheckResult:
    """Depth and consumer count of the service queue and every consumed queue (passive declare)."""
    try:
        return await _check_queues(client, inspector, thresholds)
    except errors.ConnectionBlockedError as exc:
        return _not_inspected("queues", exc)


async def _check_queues(client: Any, inspector: QueueInspector, thresholds: Thresholds) -> CheckResult:
    rows: list[dict[str, Any]] = []
    statuses: list[HealthStatus] = []
    notes: list[str] = []
    for queue in _checked_queues(client):
        counts = await inspector.inspect(queue)
        if counts is None:
            statuses.append(UNHEALTHY)
            notes.append(f"{queue}: does not exist")
            rows.append({"queue_name": queue, "exists": False})
            continue
        messages, consumers = counts
        status, text = queue_status(messages, consumers, thresholds)
        statuses.append(status)
        if status is not HEALTHY:
            notes.append(f"{queue}: {text}")
        rows.append({"queue_name": queue, "message_count": messages, "consumer_count": consumers,
                     "status": status.value})
    status = worst(statuses)
    message = "; ".join(notes) if notes else f"{len(rows)} queue(s) within limits"
    return CheckResult("queues", status, message, {"queues": rows})


async def check_dead_letters(client: Any, inspector: QueueInspector, thresholds: Thresholds) -> CheckResult:
    """Messages waiting in ``dlq.{queue}`` for each consumed queue with dead-lettering on (a DLQ not
    declared yet holds none)."""
    try:
        return await _check_dead_letters(client, inspector, thresholds)
    except errors.ConnectionBlockedError as exc:
        return _not_inspected("dead_letters", exc)


async def _check_dead_letters(client: Any, inspector: QueueInspector, thresholds: Thresholds) -> CheckResult:
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for sub in _subscriptions(client):
        dlq = getattr(sub, "dead_letter_queue", None)  # None: dead-lettering is off for it
        if dlq is None or any(r["queue_name"] == dlq for r in rows):
            continue
        counts = await inspector.inspect(dlq)
        messages = counts[0] if counts is not None else 0
        rows.append({"queue_name": dlq, "source_queue": sub.queue, "message_count": messages})
        if messages >= thresholds.dlq:
            notes.append(f"{dlq}: {messages} dead letter(s)")
    if notes:
        return CheckResult("dead_letters", DEGRADED, "; ".join(notes) + " (see 'mmate dlq')",
                           {"queues": rows})
    return CheckResult("dead_letters", HEALTHY, "no dead letters", {"queues": rows})


class ConsumerLag:
    """Consumer lag per subscription: deliveries taken but not settled yet (handlers in flight, waiting
    for a handler), the queue's ready messages, and the consume rate measured between two runs of
    this check, from which the seconds to drain the queue are estimated."""

    def __init__(self, inspector: QueueInspector, thresholds: Thresholds) -> None:
        self.inspector = inspector
        self.thresholds = thresholds
        self._last: dict[int, tuple[float, int]] = {}

    async def __call__(self, client: Any) -> CheckResult:
        try:
            return await self._check(client)
        except errors.ConnectionBlockedError as exc:
            return _not_inspected("consumer_lag", exc)

    async def _check(self, client: Any) -> CheckResult:
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        status = HEALTHY
        now = time.monotonic()
        seen: dict[int, tuple[float, int]] = {}
        for sub in _subscriptions(client):
            st = sub.stats
            settled = st.acked + st.rejected + st.dead_lettered + st.stale_settles
            counts = await self.inspector.inspect(sub.queue)
            ready = counts[0] if counts is not None else 0
            row: dict[str, Any] = {"queue_name": sub.queue, "unsettled": max(0, st.received - settled),
                                   "in_flight": sub.in_flight, "waiting": sub.waiting,
                                   "messages_ready": ready}
            seen[id(sub)] = (now, settled)
            last = self._last.get(id(sub))
            if last is not None and now > last[0]:
                rate = (settled - last[1]) / (now - last[0])
                row["consume_rate"] = round(rate, 3)
                if ready:
                    if rate > 0:
                        drain = ready / rate
                        row["estimated_drain_seconds"] = round(drain, 3)
                        if drain > self.thresholds.lag_seconds:
                            status = DEGRADED
                            notes.append(f"{sub.queue}: {ready} ready, ~{drain:.0f} s to drain")
                    else:
                        status = DEGRADED
                        notes.append(f"{sub.queue}: {ready} ready and none consumed since the last check")
            rows.append(row)
        self._last = seen
        message = "; ".join(notes) if notes else "consumers keep up"
        return CheckResult("consumer_lag", status, message, {"subscriptions": rows})


def add_client_checks(checker: HealthChecker, client: Any, *, thresholds: Thresholds | None = None,
                      inspector: QueueInspector | None = None) -> QueueInspector:
    """Register the built-in checks of ``client`` on ``checker`` (names: ``connection``,
    ``channels``, ``consumers``, ``queues``, ``consumer_lag``, ``dead_letters``); returns the
    QueueInspector they share (close it with the client)."""
    t = thresholds or Thresholds()
    insp = inspector or QueueInspector(lambda: client.connection)
    lag = ConsumerLag(insp, t)
    checker.add("connection", lambda: check_connection(client))
    checker.add("channels", lambda: check_channels(client))
    checker.add("consumers", lambda: check_consumers(client))
    checker.add("queues", lambda: check_queues(client, insp, t))
    checker.add("consumer_lag", lambda: lag(client))
    checker.add("dead_letters", lambda: check_dead_letters(client, insp, t))
    return insp


__all__ = ["ConsumerLag", "QueueInspector", "Thresholds", "add_client_checks", "check_channels",
           "check_connection", "check_consumers", "check_dead_letters", "check_queues", "consumed_queues",
           "queue_status"]
