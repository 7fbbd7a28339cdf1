"""Asks the fleet over the broker (the intended protocol of wire-protocol.md §9.3, which Go's own
requester never completes): declare ``rpl.{request id}`` (non-durable, exclusive, auto-delete)
ourselves, consume it, publish a ``ContractDiscoveryRequest`` to queue ``contract.discover``
through the default exchange with the reply address as envelope ``replyTo``, ``x-reply-to`` and Go's
``replyTo`` header, collect ``ContractDiscoveryResponse`` answers (``correlationId`` = request id)
for ``window`` seconds (or until ``expect`` answers came; the request expires after the window),
and aggregate them (one contract per service and endpoint id, the latest ``updatedAt`` wins).
Replies that do not decode are ignored.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast._ext import load
from mmate_fast.contracts import TypeRegistry, from_envelope
from mmate_fast.discovery._contract import (
    ContractDiscoveryRequest,
    ContractDiscoveryResponse,
    EndpointContract,
)
from mmate_fast.errors import ContractError, EnvelopeError

_decode_envelope = load("envelope").decode_envelope

log = logging.getLogger("mmate_fast.discovery")

DISCOVER_QUEUE = "contract.discover"

#: publish(message, **options) -> awaitable (the Client's ``publish``)
Publish = Callable[..., Awaitable[Any]]


def aggregate(contracts: list[EndpointContract]) -> list[EndpointContract]:
    """One contract per (service, endpoint id): the latest ``updated_at``; sorted by service and id."""
    best: dict[tuple[str, str], EndpointContract] = {}
    for c in contracts:
        key = (c.service_name, c.endpoint_id)
        old = best.get(key)
        if old is None or c.updated_at > old.updated_at:
            best[key] = c
    return [best[k] for k in sorted(best)]


async def ask(connection: Any, publish: Publish, registry: TypeRegistry, pattern: str, version: str, *,
              window: float, expect: int | None = None) -> list[EndpointContract]:
    """Send one discovery request and collect the answers (see the module docstring)."""
    request = ContractDiscoveryRequest(pattern=pattern, version=version)
    reply_queue = f"rpl.{request.id}"
    answers: list[ContractDiscoveryResponse] = []
    enough = asyncio.Event()

    def on_delivery(delivery: Any) -> None:
        try:
            env = _decode_envelope(delivery.body)
            msg = from_envelope(env, registry)
        except (EnvelopeError, ContractError) as exc:
            log.warning("ignored a discovery reply on %s that does not decode: %s", reply_queue, exc)
            return
        if not isinstance(msg, ContractDiscoveryResponse):
            log.warning("ignored a %s on discovery reply queue %s", env.type, reply_queue)
            return
        if env.correlation_id and env.correlation_id != request.id:
            return  # an answer to another request
        answers.append(msg)
        if expect is not None and len(answers) >= expect:
            enough.set()

    channel = await connection.channel()
    try:
        await channel.queue_declare(reply_queue, durable=False, exclusive=True, auto_delete=True)
        tag = await channel.basic_consume(reply_queue, on_delivery, no_ack=True, exclusive=True)
        # expires when nobody takes it within the window (contract.discover is durable and shared)
        await publish(request, exchange="", routing_key=DISCOVER_QUEUE, reply_to=reply_queue,
                      headers={"replyTo": reply_queue}, ttl=max(window, 1.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), window)
        if channel.is_open:
            await channel.basic_cancel(tag)
            await channel.queue_delete(reply_queue)
    finally:
        if channel.is_open:
            await channel.close()
    return aggregate([c for a in answers for c in a.contracts])


__all__ = ["DISCOVER_QUEUE", "aggregate", "ask"]
