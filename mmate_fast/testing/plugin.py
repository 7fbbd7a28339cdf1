"""The pytest plugin of mmate_fast (entry point ``mmate`` in ``pytest11``: active wherever
mmate-fast is installed; ``-p no:mmate`` turns it off).

Fixtures:

- ``mmate_names``: unique names for the test (:class:`~mmate_fast.testing.UniqueNames`);
- ``mmate_memory_client``: a connected ``Client`` on an embedded broker of its own
  (``memory://{tag}``: other clients of the test reach it with ``Client(mmate_memory_client.url, ...)``),
  dropped after the test;
- ``mmate_rabbit_client``: a connected ``Client`` on RabbitMQ (``--mmate-url``, else the
  ``MMATE_TEST_URL`` environment variable, else ``amqp://guest:guest@127.0.0.1:5672/``) with a
  throw-away service name; its queues and every queue and exchange named with ``mmate_names`` are
  deleted after the test. The test is skipped, saying why, when nothing answers at that address.

The async fixtures are pytest-asyncio fixtures (install ``pytest-asyncio``; any ``asyncio_mode``).
Everything of the library is imported when a fixture runs, not when pytest loads the plugin.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from mmate_fast.testing._names import UniqueNames

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
ENV_URL = "MMATE_TEST_URL"
#: seconds a TCP connection to the broker may take before the RabbitMQ fixture skips
PROBE_TIMEOUT = 3.0

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mmate", "mmate_fast test fixtures")
    group.addoption("--mmate-url", default=None, metavar="URL",
                    help=f"RabbitMQ for the mmate_rabbit_client fixture (default: ${ENV_URL}, else "
                         f"{DEFAULT_URL})")


def rabbit_url(config: pytest.Config) -> str:
    """The RabbitMQ URL of ``mmate_rabbit_client``: ``--mmate-url``, ``$MMATE_TEST_URL``, the default."""
    return str(config.getoption("--mmate-url") or os.environ.get(ENV_URL) or DEFAULT_URL)


def _safe(url: str) -> str:
    """``url`` without its password (for skip reasons)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}{parts.path}"


async def _answers(url: str) -> str | None:
    """None when a TCP connection to the broker of ``url`` opens, else why not."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _delete_named(url: str, names: UniqueNames) -> None:
    """Delete the queues and exchanges of ``names`` on ``url`` (missing ones are fine)."""
    from mmate_fast import errors
    from mmate_fast.transports import connect

    conn = await connect(url)
    try:
        for delete, items in (("queue_delete", names.queues), ("exchange_delete", names.exchanges)):
            for name in items:
                ch = await conn.channel()
                try:
                    await getattr(ch, delete)(name)
                except errors.ChannelClosedError:
                    pass
                finally:
                    if ch.is_open:
                        await ch.close()
    finally:
        await conn.close()


@pytest.fixture
def mmate_names() -> UniqueNames:
    """Unique queue, service and exchange names for this test."""
    return UniqueNames()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def mmate_memory_client(mmate_names: UniqueNames) -> AsyncIterator[Any]:
        """A connected Client on an embedded broker of this test's own (``memory://{tag}``)."""
        from mmate_fast.client import Client
        from mmate_fast.transports.memory import reset_broker

        client = Client(f"memory://{mmate_names.tag}", service_name=mmate_names.service())
        await client.connect()
        try:
            yield client
        finally:
            await client.close()
            reset_broker(mmate_names.tag)

    @pytest_asyncio.fixture
    async def mmate_rabbit_client(request: pytest.FixtureRequest,
                                  mmate_names: UniqueNames) -> AsyncIterator[Any]:
        """A connected Client on RabbitMQ with a throw-away service name (its queues, and those named
        with ``mmate_names``, deleted after the test); skipped when no broker answers."""
        from mmate_fast.client import Client

        url = rabbit_url(request.config)
        problem = await _answers(url)
        if problem is not None:
            pytest.skip(f"no RabbitMQ answers at {_safe(url)} ({problem}): start one, or point --mmate-url "
                        f"or ${ENV_URL} at one")
        client = Client(url, service_name=mmate_names.service())
        await client.connect()  # a broker that answers but refuses (login, vhost) fails the test
        try:
            yield client
        finally:
            try:
                await client.close()
            finally:
                await _delete_named(url, mmate_names)

else:  # pragma: no cover - exercised only without pytest-asyncio
    _NEEDS = "the mmate_fast client fixtures are async: install pytest-asyncio (pip install pytest-asyncio)"

    @pytest.fixture
    def mmate_memory_client() -> Any:
        pytest.fail(_NEEDS, pytrace=False)

    @pytest.fixture
    def mmate_rabbit_client() -> Any:
        pytest.fail(_NEEDS, pytrace=False)


__all__ = ["DEFAULT_URL", "ENV_URL", "mmate_memory_client", "mmate_names", "mmate_rabbit_client",
           "pytest_addoption", "rabbit_url"]
