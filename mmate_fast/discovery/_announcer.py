"""Publishes ``ContractAnnouncement`` to ``mmate.contracts`` / ``contract.announce`` exactly as Go does
(wire-protocol.md §9.2: type ``ContractAnnouncement``, no kind header, payload ``{action, contracts}``),
and re-announces every local contract every ``interval`` seconds (Go: 30 s) while running."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast.discovery._contract import REGISTERED, ContractAnnouncement, EndpointContract
from mmate_fast.errors import MmateError

log = logging.getLogger("mmate_fast.discovery")

CONTRACTS_EXCHANGE = "mmate.contracts"
ANNOUNCE_KEY = "contract.announce"

#: publish(message, **options) -> awaitable (the Client's ``publish``)
Publish = Callable[..., Awaitable[Any]]


class Announcer:
    """Announcements of one service, and the periodic re-announcement."""

    def __init__(self, publish: Publish, interval: float = 30.0) -> None:
        self._publish = publish
        self.interval = interval
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def announce(self, action: str, contracts: list[EndpointContract], **options: Any) -> bool:
        """Publish one announcement of ``contracts`` (nothing when there are none); True if sent.
        ``options`` go to the publish (e.g. ``timeout``)."""
        if not contracts:
            return False
        await self._publish(ContractAnnouncement(action=action, contracts=list(contracts)),
                            exchange=CONTRACTS_EXCHANGE, routing_key=ANNOUNCE_KEY, **options)
        self.sent += 1
        return True

    def start(self, contracts: Callable[[], list[EndpointContract]], on_tick: Callable[[], Any]) -> None:
        """Every ``interval`` seconds: ``on_tick()`` then announce ``contracts()`` (``registered``)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._every(contracts, on_tick))

    async def _every(self, contracts: Callable[[], list[EndpointContract]],
                     on_tick: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            on_tick()
            try:
                await self.announce(REGISTERED, contracts())
            except MmateError as exc:  # the broker is away: the next tick tries again
                log.warning("periodic contract announcement failed: %s", exc)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["ANNOUNCE_KEY", "CONTRACTS_EXCHANGE", "Announcer"]
