"""Dead-letter queue tools: list ``dlq.*`` queues, show, replay and purge their messages.

A DLQ ``dlq.{queue}`` holds deliveries a consumer of ``queue`` gave up on, with the failure in
headers (``x-mmate-reason``, ``x-mmate-error``, ``x-mmate-original-queue``, ``x-mmate-failed-at``,
``x-mmate-attempt``). Showing never consumes (basic.get, then nack with requeue); replaying moves
a message back with a broker confirm and acks it from the DLQ only afterwards, so nothing is lost.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.reliability.dead_lettering import ERROR_HEADER, QUEUE_HEADER, REASON_HEADER, TIME_HEADER
from mmate_fast.reliability.ttl_retry import ATTEMPT_HEADER, LAST_ERROR_HEADER

_frames = load("frames")

DLQ_PREFIX = "dlq."
REPLAYED_HEADER = "x-mmate-replayed"
#: failure headers removed on replay (the message starts afresh, with a new retry budget)
FAILURE_HEADERS = frozenset({REASON_HEADER, ERROR_HEADER, QUEUE_HEADER, TIME_HEADER, ATTEMPT_HEADER,
                             LAST_ERROR_HEADER, "x-death", "x-first-death-exchange", "x-first-death-queue",
                             "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                             "x-last-death-reason"})


@dataclass
class DeadLetter:
    """One message seen in a DLQ."""

    queue: str
    body: bytes
    headers: dict[str, Any]
    properties: Any
    reason: str = ""
    error: str = ""
    original_queue: str = ""
    failed_at: str = ""
    attempt: int | None = None
    message_type: str = ""
    message_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def preview(self, width: int = 200) -> str:
        text = self.body.decode("utf-8", "replace")
        return text if len(text) <= width else text[:width] + "…"


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(getattr(value, "value", value))


def original_queue(dlq: str, headers: Mapping[str, Any] | None) -> str:
    """Where a DLQ message came from: ``x-mmate-original-queue``, else the DLQ name minus ``dlq.``."""
    q = _s((headers or {}).get(QUEUE_HEADER))
    if q:
        return q
    if dlq.startswith(DLQ_PREFIX) and len(dlq) > len(DLQ_PREFIX):
        return dlq[len(DLQ_PREFIX):]
    raise errors.MmateError(f"cannot tell where messages of {dlq!r} came from: pass a target queue")


def to_dead_letter(queue: str, delivery: Any) -> DeadLetter:
    props = delivery.properties
    headers = dict(props.headers or {}) if props is not None else {}
    attempt_raw = headers.get(ATTEMPT_HEADER)
    attempt = getattr(attempt_raw, "value", attempt_raw)
    try:
        orig = original_queue(queue, headers)
    except errors.MmateError:
        orig = ""
    return DeadLetter(
        queue=queue, body=bytes(delivery.body), headers=headers, properties=props,
        reason=_s(headers.get(REASON_HEADER)), error=_s(headers.get(ERROR_HEADER)), original_queue=orig,
        failed_at=_s(headers.get(TIME_HEADER)),
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        message_type=_s(headers.get("x-message-type") or headers.get("message-type")
                        or (props.type if props is not None else None))
        or _envelope_str(delivery.body, "type"),
        message_id=_s(headers.get("x-message-id") or headers.get("message-id")
                      or (props.message_id if props is not None else None))
        or _envelope_str(delivery.body, "id"))


def _envelope_str(body: Any, key: str) -> str:
    """A string field of the envelope in ``body`` ("" if it is not a JSON object with one): a message
    sent with ``wire_profile="lean"`` carries its type and id only there, as Go reads them."""
    try:
        value = orjson.loads(bytes(body)).get(key)
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ""
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------------- list
async def list_dlqs(connection: Any, *, names: Iterable[str] = (),
                    listed: Iterable[tuple[str, int | None]] | None = None,
                    prefix: str = DLQ_PREFIX) -> list[tuple[str, int]]:
    """``(queue, messages)`` of every queue named ``dlq.*``, sorted by name.

    RabbitMQ has no AMQP method to list queues: pass the queues someone listed as ``listed``
    (``mmate dlq list`` gets them from the management API); a count of None there, and every queue
    in ``names``, is counted with a passive declare on ``connection`` (missing ones are left out).
    Without ``listed`` the embedded broker is read directly; for RabbitMQ only ``names`` are counted.
    """
    found: dict[str, int] = {}
    to_count = list(names)
    broker = getattr(connection, "broker", None)
    if listed is None and broker is not None and hasattr(broker, "queues"):
        # ready messages, as queue.declare counts them
        listed = [(name, len(q.messages)) for name, q in list(broker.queues.items())]
    elif listed is None and not to_count:
        raise errors.InvalidArgumentError("RabbitMQ has no AMQP method to list queues: pass listed= (the "
                                          "management API lists them, as `mmate dlq list` does) or names=",
                                          argument="listed")
    for name, count in listed or ():
        if not name.startswith(prefix):
            continue
        if count is None:
            to_count.append(name)
        else:
            found[name] = count
    for name in to_count:
        ch = await connection.channel()
        try:
            ok = await ch.queue_declare(name, passive=True)
            found[name] = ok.message_count
        except errors.NotFoundError:
            found.pop(name, None)
        finally:
            if ch.is_open:
                await ch.close()
    return sorted(found.items())


# ---------------------------------------------------------------------------------------- show
async def peek(connection: Any, queue: str, limit: int = 10) -> list[DeadLetter]:
    """Up to ``limit`` messages of ``queue``, left in the queue (got unacked, then requeued)."""
    ch = await connection.channel()
    out: list[DeadLetter] = []
    last_tag = 0
    try:
        await ch.queue_declare(queue, passive=True)
        while len(out) < limit:
            d = await ch.basic_get(queue, no_ack=False)
            if d is None:
                break
            last_tag = d.delivery_tag
            out.append(to_dead_letter(queue, d))
        if last_tag:
            ch.basic_nack(last_tag, multiple=True, requeue=True)
    finally:
        if ch.is_open:
            await ch.close()  # closing also requeues anything still unacked
    return out


# ---------------------------------------------------------------------------------------- replay
def replay_properties(properties: Any) -> Any:
    """Properties for a replayed copy: failure headers removed, ``x-mmate-replayed`` + 1."""
    fields = properties.to_dict() if properties is not None else {}
    headers = {k: v for k, v in (fields.pop("headers", None) or {}).items() if k not in FAILURE_HEADERS}
    prev = headers.get(REPLAYED_HEADER)
    prev = getattr(prev, "value", prev)
    headers[REPLAYED_HEADER] = (prev if isinstance(prev, int) and not isinstance(prev, bool) else 0) + 1
    return _frames.BasicProperties(headers=headers, **fields)


async def replay(connection: Any, queue: str, *, limit: int | None = None, to: str | None = None,
                 timeout: float | None = 30.0) -> int:
    """Move up to ``limit`` messages (default: all there now) from DLQ ``queue`` back to their
    original queue (or ``to``), each confirmed by the broker before it is acked from the DLQ.
    Returns how many moved. Messages that fail again meanwhile are not replayed twice."""
    ch = await connection.channel(publisher_confirms=True)
    moved = 0
    try:
        ok = await ch.queue_declare(queue, passive=True)
        budget = ok.message_count if limit is None else min(limit, ok.message_count)
        while moved < budget:
            d = await ch.basic_get(queue, no_ack=False)
            if d is None:
                break
            try:
                dest = to or original_queue(queue, d.properties.headers if d.properties else None)
                await ch.publish(d.body, "", dest, replay_properties(d.properties), mandatory=True,
                                 timeout=timeout)
            except BaseException:
                if ch.is_open:
                    ch.basic_nack(d.delivery_tag, False, True)
                raise
            ch.basic_ack(d.delivery_tag)
            moved += 1
    except errors.PublishReturnedError as exc:
        raise errors.NotFoundError(f"replay from {queue!r} stopped after {moved} message(s): the target "
                                   f"queue does not exist ({exc})", 404, "NOT_FOUND") from exc
    finally:
        if ch.is_open:
            await ch.close()
    return moved


# ---------------------------------------------------------------------------------------- purge
async def purge(connection: Any, queue: str) -> int:
    """Drop every ready message of ``queue``; returns how many."""
    ch = await connection.channel()
    try:
        await ch.queue_declare(queue, passive=True)
        return int(await ch.queue_purge(queue))
    finally:
        if ch.is_open:
            await ch.close()


__all__ = ["DLQ_PREFIX", "FAILURE_HEADERS", "REPLAYED_HEADER", "DeadLetter", "list_dlqs", "original_queue",
           "peek", "purge", "replay", "replay_properties", "to_dead_letter"]
