"""The live registry of announced contracts (everyone's, Go's included).

Keyed by (service name, endpoint id). ``registered`` announcements add or refresh contracts,
``unregistered`` ones remove them; a contract not announced again within ``expire_after`` seconds
is dropped (a service that stopped announcing disappears after that). Contracts Go would call
invalid (an empty endpoint id, queue, input/output type or service name) are ignored.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from mmate_fast.discovery._contract import REGISTERED, UNREGISTERED, ContractAnnouncement, EndpointContract
from mmate_fast.errors import ContractError


class ContractRegistry:
    """What other services (and this one) announced, with expiry."""

    def __init__(self, expire_after: float = 90.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.expire_after = expire_after
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[EndpointContract, float]] = {}
        #: announcements applied, contracts ignored as invalid, contracts expired
        self.applied = 0
        self.ignored = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, announcement: ContractAnnouncement) -> None:
        """Take one announcement in. Raises ContractError for an unknown ``action`` (nothing applied)."""
        if announcement.action not in (REGISTERED, UNREGISTERED):
            raise ContractError(f"ContractAnnouncement.action must be {REGISTERED!r} or {UNREGISTERED!r}, "
                                f"got {announcement.action!r}")
        now = self._clock()
        for c in announcement.contracts:
            if not c.is_valid:
                self.ignored += 1
                continue
            key = (c.service_name, c.endpoint_id)
            if announcement.action == REGISTERED:
                self._entries[key] = (c, now)
            else:
                self._entries.pop(key, None)
        self.applied += 1

    def expire(self) -> list[EndpointContract]:
        """Drop contracts not announced within ``expire_after`` seconds; returns them."""
        limit = self._clock() - self.expire_after
        gone = [k for k, (_, seen) in self._entries.items() if seen < limit]
        out = [self._entries.pop(k)[0] for k in gone]
        self.expired += len(out)
        return out

    def find(self, pattern: str = "", version: str = "") -> list[EndpointContract]:
        """Live contracts matching Go's pattern and version rules, sorted by service and id."""
        self.expire()
        return [c for _, (c, _) in sorted(self._entries.items()) if c.matches(pattern, version)]

    def services(self) -> dict[str, float]:
        """Service name -> seconds since its latest announcement."""
        now = self._clock()
        out: dict[str, float] = {}
        for (service, _), (_, seen) in self._entries.items():
            out[service] = min(out.get(service, float("inf")), now - seen)
        return out

    def forget(self, keys: Iterable[tuple[str, str]]) -> None:
        for k in keys:
            self._entries.pop(k, None)


__all__ = ["ContractRegistry"]
