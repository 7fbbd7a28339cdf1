"""The service the fleet tests run with ``mmate run tests.integration.fleet_app:make``.

Configured by the environment (the workers inherit the test's): ``FLEET_URL``, ``FLEET_SERVICE``,
``FLEET_SECONDS`` (what one handler call takes: an async sleep), ``FLEET_PREFETCH`` and
``FLEET_JOURNAL`` (a file each handler call appends ``started ID PID`` / ``done ID PID`` to, one
line written at once, so concurrent workers do not interleave). ``crashing`` is a factory that fails
(a crash loop); ``not_a_client`` returns something else.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from mmate_fast.client import Client
from mmate_fast.contracts import Command


@dataclass
class FleetJob(Command):
    job: str = ""


def _journal(word: str, job: str) -> None:
    path = os.environ.get("FLEET_JOURNAL")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{word} {job} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


def make() -> Client:
    """The recommended form: a factory, called in each worker."""
    client = Client(os.environ.get("FLEET_URL", "memory://"),
                    service_name=os.environ.get("FLEET_SERVICE", "wt7-fleet-app"),
                    prefetch=int(os.environ.get("FLEET_PREFETCH", "5")))
    seconds = float(os.environ.get("FLEET_SECONDS", "0"))

    @client.handler(FleetJob)
    async def handle(job: FleetJob) -> None:
        _journal("started", job.job)
        if seconds:
            await asyncio.sleep(seconds)
        _journal("done", job.job)

    return client


def crashing() -> Client:
    raise RuntimeError("this factory always fails (a crash loop)")


def not_a_client() -> object:
    return object()
