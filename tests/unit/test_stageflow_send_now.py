"""Runtime.send_now's join of several publishes (``_all_of``): done when every publish is, failing
with the first one's error in publish order, with no Task for futures."""
from __future__ import annotations

import asyncio

import pytest

from mmate_fast.stageflow._runtime import _all_of


async def test_done_only_when_every_publish_is() -> None:
    loop = asyncio.get_running_loop()
    a, b = loop.create_future(), loop.create_future()
    joined = _all_of([a, b])
    tasks_before = len(asyncio.all_tasks())
    a.set_result(True)
    await asyncio.sleep(0)
    assert not joined.done()
    b.set_result(True)
    assert await joined is None
    assert len(asyncio.all_tasks()) <= tasks_before


async def test_waits_for_all_then_fails_with_the_first_error_in_order() -> None:
    loop = asyncio.get_running_loop()
    a, b, c = loop.create_future(), loop.create_future(), loop.create_future()
    joined = _all_of([a, b, c])
    c.set_exception(RuntimeError("third"))
    b.set_exception(ValueError("second"))
    await asyncio.sleep(0)
    assert not joined.done()  # a is still pending: nothing is settled before every publish is
    a.set_result(True)
    with pytest.raises(ValueError, match="second"):
        await joined


async def test_a_cancelled_publish_cancels_the_join_and_coroutines_are_run() -> None:
    loop = asyncio.get_running_loop()
    ran: list[int] = []

    async def publish() -> None:
        ran.append(1)

    a = loop.create_future()
    joined = _all_of([publish(), a])
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joined
    assert ran == [1]


async def test_a_plain_hop_goes_to_the_live_publisher_as_client_publish_would() -> None:
    """The one-hop path calls the live publisher directly when the client's publish is Client's own:
    same options, same result; a publish set on the instance (a spy) or a subclass's is still called,
    and a client with no live publisher raises Client.publish's error."""
    from typing import Any

    from mmate_fast.client import Client
    from mmate_fast.contracts import MessageKind
    from mmate_fast.stageflow._envelopes import FlowMessageEnvelope
    from mmate_fast.stageflow._runtime import Runtime
    from mmate_fast.stageflow.store import open_store

    seen: list[tuple[str, Any, dict[str, Any]]] = []

    class Publisher:
        def publish(self, msg: Any, **options: Any) -> str:
            seen.append(("publisher", msg, options))
            return "sent"

    client = Client("memory://")
    client._live_publisher = Publisher()  # type: ignore[assignment]
    rt = Runtime(client, open_store("memory://"), events=(), prefix="p", worker="w", finished=lambda s: None)
    env = FlowMessageEnvelope(instance_id="i")
    options = {"exchange": "", "routing_key": "q1", "persistent": True}
    assert rt.send_now([("q1", env)]) == "sent"
    assert seen == [("publisher", env, options)]

    class StageCompletedEvent:
        pass

    event = StageCompletedEvent()
    rt.events = ("StageCompletedEvent",)
    assert rt.send_now([], [event, FlowMessageEnvelope()]) == "sent"  # the one selected event
    assert seen[-1] == ("publisher", event, {"kind": MessageKind.EVENT, "persistent": True})

    def spy(msg: Any, **opts: Any) -> str:
        seen.append(("spy", msg, opts))
        return "spied"

    client.publish = spy  # type: ignore[method-assign]
    assert rt.send_now([("q1", env)]) == "spied"
    assert seen[-1] == ("spy", env, options)
    del client.publish

    class Wrapped(Client):
        def publish(self, message: Any, **opts: Any) -> Any:
            seen.append(("subclass", message, opts))
            return super().publish(message, **opts)

    sub = Wrapped("memory://")
    sub._live_publisher = Publisher()  # type: ignore[assignment]
    rt.client = sub
    assert rt.send_now([("q1", env)]) == "sent"
    assert seen[-2:] == [("subclass", env, options), ("publisher", env, options)]

    client._live_publisher = None
    rt.client = client
    with pytest.raises(Exception) as direct:
        rt.send_now([("q1", env)])
    with pytest.raises(Exception) as general:
        client.publish(env, exchange="", routing_key="q1", persistent=True)
    assert type(direct.value) is type(general.value) and str(direct.value) == str(general.value)
