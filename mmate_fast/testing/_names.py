"""Unique broker names for one test, and the list of what to delete after it."""
from __future__ import annotations

import uuid

from mmate_fast.messaging import topology
from mmate_fast.reliability.dlq import DLQ_PREFIX


class UniqueNames:
    """Makes names no other test or run uses: ``mmate-test-{what}-{tag}-{n}``.

    Every queue named here (and its ``dlq.`` queue), every service's queue (and its ``dlq.``) and
    every exchange is in :attr:`queues` / :attr:`exchanges`: what the RabbitMQ fixture deletes after
    the test."""

    def __init__(self, prefix: str = "mmate-test") -> None:
        self.prefix = prefix
        #: unique to this object: also the name of the test's embedded broker
        self.tag = uuid.uuid4().hex[:12]
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self._n = 0

    def _next(self, what: str) -> str:
        self._n += 1
        return f"{self.prefix}-{what}-{self.tag}-{self._n}"

    def service(self, what: str = "svc") -> str:
        """A service name; its service queue and that queue's dead-letter queue are to be deleted."""
        name = self._next(what)
        queue = topology.service_queue(name)
        self.queues += [queue, DLQ_PREFIX + queue]
        return name

    def queue(self, what: str = "q") -> str:
        """A queue name (it and its dead-letter queue are to be deleted)."""
        name = self._next(what)
        self.queues += [name, DLQ_PREFIX + name]
        return name

    def exchange(self, what: str = "x") -> str:
        """An exchange name (to be deleted)."""
        name = self._next(what)
        self.exchanges.append(name)
        return name


__all__ = ["UniqueNames"]
