"""What ``mmate monitor`` shows, gathered once per refresh: one :class:`Snapshot` of the vhost's queues.

Source 1 is the management HTTP API (counts, consumers and the broker's own publish / deliver / ack
rates, averaged over its last samples). When nothing answers there, source 2 is a passive
``queue.declare`` over AMQP of the queues named on the command line (and their ``dlq.`` queues):
counts and consumers only, no rates, and the snapshot says why. A queue's dead-letter queue
``dlq.{queue}`` is shown beside it (``dlq_messages``), not as a row of its own. Consumer lag is the
time the ready messages take at the current deliver rate: ``ready / deliver_rate`` seconds.
"""
from __future__ import annotations

import asyncio
import fnmatch
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mmate_fast import errors
from mmate_fast.amqp.url import ConnectionParameters

API, PASSIVE = "management-api", "amqp-passive"
DLQ_PREFIX = "dlq."
#: seconds a passive declare may take
DECLARE_TIMEOUT = 10.0


@dataclass(frozen=True)
class QueueStats:
    """One queue as the monitor shows it; None where the source has no figure."""

    name: str
    ready: int | None
    unacked: int | None
    consumers: int | None
    publish_rate: float | None = None
    deliver_rate: float | None = None
    ack_rate: float | None = None
    #: messages in ``dlq.{name}``; None when there is no such queue
    dlq_messages: int | None = None

    @property
    def lag_seconds(self) -> float | None:
        """Seconds the ready messages take at the current deliver rate: 0 when none is ready, None
        when messages wait and nothing is delivered (no rate, or a stalled consumer)."""
        if self.ready == 0:
            return 0.0
        if self.ready is None or not self.deliver_rate:
            return None
        return self.ready / self.deliver_rate

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "lag_seconds": self.lag_seconds}


@dataclass
class Snapshot:
    """The queues of one vhost at one moment, and where the figures came from."""

    source: str
    vhost: str
    #: the management API's URL (API) or ``host:port`` of the AMQP broker (PASSIVE)
    where: str
    queues: list[QueueStats]
    #: why the management API was not the source ("" when it was)
    fallback_reason: str = ""
    #: queues named on the command line that do not exist
    missing: list[str] = field(default_factory=list)
    taken_at: float = field(default_factory=time.time)

    @property
    def has_rates(self) -> bool:
        return self.source == API

    def describe(self) -> str:
        """One line for people: the source, and why not the API when it was not."""
        if self.source == API:
            return f"RabbitMQ management API at {self.where} (vhost {self.vhost})"
        return (f"passive queue.declare over AMQP at {self.where} (counts only, no rates); the "
                f"{self.fallback_reason}")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "vhost": self.vhost, "taken_at": self.taken_at}
        out["management_url" if self.source == API else "broker"] = self.where
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        if self.missing:
            out["missing"] = self.missing
        out["queues"] = [q.as_json() for q in self.queues]
        return out


def selected(name: str, names: list[str], patterns: list[str]) -> bool:
    """True when ``name`` is one of ``names`` or matches a shell-style pattern (``orders.*``);
    everything when neither is given."""
    if not names and not patterns:
        return True
    return name in names or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rate(row: dict[str, Any], key: str) -> float | None:
    stats = row.get("message_stats")
    details = stats.get(key) if isinstance(stats, dict) else None
    rate = details.get("rate") if isinstance(details, dict) else None
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        return float(rate)
    # the API leaves message_stats out until a queue has seen traffic: no traffic is a rate of 0
    return 0.0 if isinstance(row.get("messages"), int) else None


def from_api_rows(rows: list[dict[str, Any]], names: list[str], patterns: list[str]) -> list[QueueStats]:
    """The selected queues of an API queue list, each with the depth of its ``dlq.`` queue; a
    ``dlq.`` queue is a row of its own only when its queue is not in the list."""
    by_name = {str(r["name"]): r for r in rows}
    out = []
    for name, row in sorted(by_name.items()):
        if name.startswith(DLQ_PREFIX) and name[len(DLQ_PREFIX):] in by_name:
            continue  # shown beside its queue
        if not selected(name, names, patterns):
            continue
        dlq = by_name.get(DLQ_PREFIX + name)
        out.append(QueueStats(
            name, _int(row.get("messages_ready")), _int(row.get("messages_unacknowledged")),
            _int(row.get("consumers")), _rate(row, "publish_details"), _rate(row, "deliver_get_details"),
            _rate(row, "ack_details"), _int(dlq.get("messages")) if dlq is not None else None))
    return out


def from_api(amqp: ConnectionParameters, management_url: str | None, names: list[str],
             patterns: list[str]) -> Snapshot:
    """A snapshot from the management API (blocking: run it in a thread). Raises
    ManagementAPIUnreachableError when nothing answers, ManagementAPIError for an error answer."""
    from mmate_fast.cli._management import ManagementAPI, endpoint_for
    from mmate_fast.cli._queue_listing import check_same_broker

    api = ManagementAPI(endpoint_for(amqp, management_url))
    if api.endpoint.derived:
        check_same_broker(api, amqp)
    rows = api.queue_stats(amqp.virtual_host)
    listed = {str(r["name"]) for r in rows}
    return Snapshot(API, amqp.virtual_host, api.url, from_api_rows(rows, names, patterns),
                    missing=[n for n in names if n not in listed])


async def from_amqp(url: str, amqp: ConnectionParameters, names: list[str], reason: str) -> Snapshot:
    """A snapshot of the ``names`` queues by passive declares over AMQP (counts and consumers, no
    rates; ``unacked`` is unknown). Raises the AMQP errors of ``connect``."""
    from mmate_fast.transports import connect

    conn = await connect(url)
    try:
        found: dict[str, tuple[int, int] | None] = {}
        for name in dict.fromkeys([*names, *(DLQ_PREFIX + n for n in names)]):
            found[name] = await _declare_passive(conn, name)
    finally:
        await conn.close()
    rows = []
    for name in names:
        counts = found[name]
        if counts is None:
            continue
        dlq = found.get(DLQ_PREFIX + name)
        rows.append(QueueStats(name, counts[0], None, counts[1], dlq_messages=dlq[0] if dlq else None))
    missing = [n for n in names if found[n] is None]
    return Snapshot(PASSIVE, amqp.virtual_host, f"{amqp.host}:{amqp.port}", rows, reason, missing)


async def _declare_passive(conn: Any, queue: str) -> tuple[int, int] | None:
    """``(messages, consumers)`` of ``queue``; None when it does not exist (the broker closes the
    channel of a passive declare of a missing queue: one channel per queue)."""
    ch = await conn.channel()
    try:
        ok = await ch.queue_declare(queue, passive=True, timeout=DECLARE_TIMEOUT)
    except errors.NotFoundError:
        return None
    finally:
        if ch.is_open:
            await ch.close()
    return int(ok.message_count), int(ok.consumer_count)


async def take_snapshot(url: str, amqp: ConnectionParameters, management_url: str | None, names: list[str],
                        patterns: list[str]) -> Snapshot:
    """From the management API; when it does not answer, by passive declares of the ``names`` (an
    error saying what to do when none are named)."""
    try:
        return await asyncio.to_thread(from_api, amqp, management_url, names, patterns)
    except errors.ManagementAPIUnreachableError as exc:
        if not names:
            raise errors.ManagementAPIUnreachableError(
                f"{exc}; name the queues to watch on the command line (mmate monitor QUEUE...) to count "
                "them over AMQP instead, or enable the management plugin (rabbitmq-plugins enable "
                "rabbitmq_management) / pass --management-url", url=exc.url) from None
        reason = str(exc)
    return await from_amqp(url, amqp, names, reason)


__all__ = ["API", "PASSIVE", "QueueStats", "Snapshot", "from_amqp", "from_api", "from_api_rows", "selected",
           "take_snapshot"]
