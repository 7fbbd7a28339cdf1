"""connect() / Connection of the aio-pika facade side by side with real aio-pika: the errors a
failed connect raises, URL and keyword forms, close callbacks, states, and channel() on a closed
connection."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import URL, exc_shape, same

pytestmark = pytest.mark.integration


async def test_failed_connects_raise_the_same_errors() -> None:
    async def refused(ap: ModuleType) -> Any:
        try:
            await ap.connect("amqp://guest:guest@127.0.0.1:1/")
        except Exception as e:
            return type(e).__name__, isinstance(e, ap.exceptions.AMQPConnectionError), isinstance(e, ConnectionError)

    assert await same(refused) == ("AMQPConnectionError", True, True)

    async def bad_password(ap: ModuleType) -> Any:
        try:
            await ap.connect("amqp://guest:wrong@127.0.0.1/")
        except ap.exceptions.AMQPConnectionError as e:
            return exc_shape(e)

    name, args = await same(bad_password)
    assert name == "ProbableAuthenticationError" and "ACCESS_REFUSED" in args[0]


async def test_connection_states_and_callbacks() -> None:
    async def scenario(ap: ModuleType) -> Any:
        conn = await ap.connect(host="127.0.0.1", port=5672, login="guest", password="guest", virtualhost="/")
        seen: list[Any] = []
        conn.close_callbacks.add(lambda sender, exc: seen.append((sender is conn, exc)))
        out = [str(conn), conn.is_closed, isinstance(conn, ap.abc.AbstractConnection)]
        async with conn.channel() as ch:
            out.append(ch.is_closed)
        out.append(ch.is_closed)
        await conn.close()
        await asyncio.wait_for(conn.closed(), 5)
        async with asyncio.timeout(5):
            while not seen:  # aio-pika calls close callbacks from a task: a loop turn or more later
                await asyncio.sleep(0.01)
        out += [conn.is_closed, len(seen), seen[0][0]]
        try:
            conn.channel()
        except RuntimeError as e:
            out.append(exc_shape(e))
        return out

    out = await same(scenario)
    assert out[0] == "amqp://guest:******@127.0.0.1:5672//"


async def test_url_options_and_async_with() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL + "?heartbeat=15&name=compat-test", timeout=5) as conn:
            ch = await conn.channel()
            return [conn.is_closed, ch.is_initialized, ch.publisher_confirms]

    assert await same(scenario) == [False, True, True]


async def test_broker_closing_the_connection_fails_calls_with_connection_errors() -> None:
    async def scenario(ap: ModuleType) -> Any:
        conn = await ap.connect(URL)
        ch = await conn.channel()
        closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        conn.close_callbacks.add(lambda _, exc: closed.done() or closed.set_result(exc))
        # force the broker to close the connection: an unknown exchange type closes it with 503
        try:
            await ch.declare_exchange("compat-test-bad", type="no-such-type")
        except Exception as e:
            first = type(e).__name__
        exc = await asyncio.wait_for(closed, 5)
        await conn.close()
        return first, type(exc).__name__, conn.is_closed

    assert await same(scenario) == ("ConnectionCommandInvalid", "ConnectionCommandInvalid", True)
