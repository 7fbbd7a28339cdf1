"""Mmate topology: the exchanges, queues, bindings and routing keys mmate-go uses (wire spec §2).

Every declaration carries exactly Go's flags and arguments, so a mixed Go/Python fleet never hits
406 PRECONDITION_FAILED on a shared exchange or queue.

Queues are classic (no ``x-queue-type``, as Go declares them) unless ``queue_type="quorum"``: then
``x-queue-type: quorum`` and, with ``delivery_limit``, ``x-delivery-limit`` (the poison-message
guard: a message delivered more often is dead-lettered to ``dlq.{queue}`` through the default
exchange). A Go peer sharing such a queue must declare it with the same arguments (see
:func:`queue_arguments`), durable, not exclusive, not auto-delete.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mmate_fast import _checks, errors
from mmate_fast.contracts import MessageKind

COMMANDS = "mmate.commands"
EVENTS = "mmate.events"
QUERIES = "mmate.queries"
MESSAGES = "mmate.messages"
CONTRACTS = "mmate.contracts"
DLX = "mmate.dlx"

#: declared by every client, in Go's order; all topic, durable, not auto-delete, not internal
EXCHANGES: tuple[str, ...] = (COMMANDS, EVENTS, QUERIES, MESSAGES, CONTRACTS, DLX)

EXCHANGE_FOR_KIND: dict[MessageKind, str] = {
    MessageKind.COMMAND: COMMANDS,
    MessageKind.EVENT: EVENTS,
    MessageKind.QUERY: QUERIES,
    MessageKind.REPLY: MESSAGES,
    MessageKind.MESSAGE: MESSAGES,
}


def service_queue(service_name: str) -> str:
    """A service's own durable queue: ``{service}-queue`` (InvalidArgumentError for a service name
    RabbitMQ would refuse in a queue name)."""
    if not isinstance(service_name, str):
        raise errors.InvalidArgumentError(
            f"service_name must be a str, not {type(service_name).__qualname__}", "service_name")
    return _checks.name(f"{service_name}-queue", "service_name", "service queue name")


def dead_letter_queue(queue: str) -> str:
    """Where mmate_fast keeps messages a consumer of ``queue`` could not process: ``dlq.{queue}``."""
    if not isinstance(queue, str):
        raise errors.InvalidArgumentError(f"queue must be a str, not {type(queue).__qualname__}", "queue")
    return _checks.name(f"dlq.{queue}", "queue", "dead-letter queue name")


#: the queue types a Client declares (``classic`` = RabbitMQ's default: no ``x-queue-type`` argument)
QUEUE_TYPES = ("classic", "quorum")


def queue_arguments(queue: str, queue_type: str | None = None, delivery_limit: int | None = None,
                    arguments: Mapping[str, Any] | None = None, *, durable: bool = True,
                    exclusive: bool = False, auto_delete: bool = False) -> dict[str, Any] | None:
    """The arguments to declare ``queue`` with: ``arguments`` plus, for ``queue_type="quorum"``,
    ``x-queue-type: quorum`` and, with ``delivery_limit``, ``x-delivery-limit`` and (unless
    ``arguments`` name a dead-letter exchange) ``x-dead-letter-exchange: ""`` +
    ``x-dead-letter-routing-key: dlq.{queue}``, so a poison message ends in the queue's DLQ.
    None for no arguments. InvalidArgumentError before anything is sent for a combination RabbitMQ
    would refuse or silently ignore (a quorum queue that is not durable or is exclusive /
    auto-delete; a delivery limit on a classic queue; an unknown queue type)."""
    args = dict(arguments) if arguments else {}
    if queue_type is None or queue_type == "classic":
        if delivery_limit is not None:
            raise errors.InvalidArgumentError(
                f"delivery_limit needs a quorum queue: {queue!r} is classic (RabbitMQ would ignore "
                "x-delivery-limit); declare it with queue_type='quorum'", "delivery_limit")
        return args or None
    if queue_type != "quorum":
        raise errors.InvalidArgumentError(
            f"queue_type {queue_type!r} is not one of {', '.join(QUEUE_TYPES)}", "queue_type")
    if not durable or exclusive or auto_delete:
        raise errors.InvalidArgumentError(
            f"queue {queue!r}: a quorum queue must be durable, not exclusive and not auto-delete "
            "(RabbitMQ refuses anything else); use queue_type='classic' for it", "queue_type")
    args["x-queue-type"] = "quorum"
    if delivery_limit is not None:
        if type(delivery_limit) is not int or delivery_limit < 1:
            raise errors.InvalidArgumentError(
                f"delivery_limit must be a whole number of at least 1, got {delivery_limit!r}",
                "delivery_limit")
        args["x-delivery-limit"] = delivery_limit
        if "x-dead-letter-exchange" not in args:
            args["x-dead-letter-exchange"] = ""
            args["x-dead-letter-routing-key"] = dead_letter_queue(queue)
    return args


def event_routing_key(aggregate_id: str, type_name: str) -> str:
    return f"evt.{aggregate_id}.{type_name}"


def command_routing_key(target_service: str, type_name: str) -> str:
    return f"cmd.{target_service}.{type_name}"


def query_routing_key(type_name: str) -> str:
    return f"qry.{type_name}"


def message_routing_key(type_name: str) -> str:
    return f"msg.{type_name}"


def reply_routing_key(type_name: str) -> str:
    """Generic ``publish`` of a reply without an address (Go's ``rpl.{type}``)."""
    return f"rpl.{type_name}"


@dataclass(frozen=True, slots=True)
class Binding:
    """Bind a queue to ``exchange`` with ``routing_key`` (empty binding arguments, as Go)."""

    exchange: str
    routing_key: str


def binding_for(kind: MessageKind, type_name: str, service_name: str) -> Binding | None:
    """The binding that brings messages of ``type_name`` to ``service_name``'s queue.

    Commands addressed to this service, events of that type from any aggregate (``evt.#.{type}``:
    aggregate ids may contain dots), queries of that type. Replies and plain messages are not bound.
    """
    if kind is MessageKind.COMMAND:
        return Binding(COMMANDS, command_routing_key(service_name, type_name))
    if kind is MessageKind.EVENT:
        return Binding(EVENTS, f"evt.#.{type_name}")
    if kind is MessageKind.QUERY:
        return Binding(QUERIES, query_routing_key(type_name))
    if kind is MessageKind.MESSAGE:
        return Binding(MESSAGES, message_routing_key(type_name))
    return None


async def declare_exchanges(channel: Any, names: Iterable[str] = EXCHANGES) -> None:
    """Declare the Mmate exchanges exactly as mmate-go does (topic, durable)."""
    names = [_checks.name(name, "names", "exchange name") for name in names]
    for name in names:
        await channel.exchange_declare(name, "topic", durable=True, auto_delete=False, internal=False)


async def declare_service_queue(channel: Any, service_name: str, *, fifo: bool = False,
                                queue_type: str | None = None, delivery_limit: int | None = None) -> str:
    """Declare ``{service}-queue`` (durable, no arguments; FIFO mode: single active consumer; a
    quorum queue: see :func:`queue_arguments`); InvalidArgumentError before anything is sent when
    RabbitMQ would refuse the name or the arguments."""
    queue = service_queue(service_name)
    args = queue_arguments(queue, queue_type, delivery_limit,
                           {"x-single-active-consumer": True} if fifo else None)
    await channel.queue_declare(queue, durable=True, exclusive=False, auto_delete=False, arguments=args)
    return queue


async def declare_dead_letter_queue(channel: Any, queue: str, *, queue_type: str | None = None) -> str:
    """Declare ``dlq.{queue}`` (durable, no arguments but the queue type: a DLQ has no delivery
    limit); InvalidArgumentError before anything is sent when RabbitMQ would refuse the name."""
    name = dead_letter_queue(queue)
    await channel.queue_declare(name, durable=True, arguments=queue_arguments(name, queue_type))
    return name
