"""Answers ``ContractDiscoveryRequest`` (the intended protocol of wire-protocol.md §9.3): matching
contracts go back as one ``ContractDiscoveryResponse`` to the request's reply address through the
default exchange, ``correlationId`` = the request's envelope id. As Go would, nothing is sent when
nothing matches. ``contract.discover`` is one queue shared by every service (competing consumers:
each request reaches one responder), so ours answers with what it knows of everyone — its own
contracts and the live registry — not only its own."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast.discovery._contract import (
    ContractDiscoveryRequest,
    ContractDiscoveryResponse,
    EndpointContract,
)

log = logging.getLogger("mmate_fast.discovery")

Find = Callable[[str, str], list[EndpointContract]]
#: (response, reply address, correlation id) -> published
Reply = Callable[[ContractDiscoveryResponse, str, str], Awaitable[Any]]


class Responder:
    """The handler of discovery requests."""

    def __init__(self, find: Find, reply: Reply) -> None:
        self._find = find
        self._reply = reply
        self.answered = 0
        self.unanswerable = 0

    async def handle(self, request: ContractDiscoveryRequest, ctx: Any) -> None:
        reply_to = ctx.reply_to
        if not reply_to:
            self.unanswerable += 1
            log.warning("ContractDiscoveryRequest %s has no reply address; not answered", ctx.message_id)
            return
        found = self._find(request.pattern, request.version)
        if not found:
            return
        await self._reply(ContractDiscoveryResponse(contracts=found), reply_to, ctx.message_id)
        self.answered += 1


__all__ = ["Responder"]
