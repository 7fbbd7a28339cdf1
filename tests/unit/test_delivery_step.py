"""dispatch.DeliveryStep (both impls): what it handles it handles as Subscription.on_delivery would
(decode, plain handlers, ack after they return, counters); handlers it does not run get the decoded
envelope (``_on_envelope``); everything else reaches on_delivery untouched."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import Event, TypeRegistry
from mmate_fast.contracts._plan import _PLANS, plan_for
from mmate_fast.messaging.dispatcher import HandlerSpec
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.subscriber import SubscriptionStats, settles_later

from ._impls import impl_params

_frames = load("frames")
_decode_envelope = load("envelope").decode_envelope


@dataclass
class StepEvent(Event):
    """A message class of these tests only."""

    order_id: str = ""
    amount: float = 0.0


@pytest.fixture(params=impl_params("dispatch"))
def D(request: pytest.FixtureRequest) -> ModuleType:
    mod: ModuleType = request.param
    return mod


class Channel:
    def __init__(self, stale: bool = False) -> None:
        self.acks: list[int] = []
        self.nacks: list[tuple[int, bool, bool]] = []
        self.stale = stale

    def basic_ack(self, tag: int, multiple: bool = False) -> bool | None:
        self.acks.append(tag)
        return False if self.stale else None

    def basic_nack(self, tag: int, multiple: bool = False, requeue: bool = True) -> bool | None:
        self.nacks.append((tag, multiple, requeue))
        return None


class Owner:
    """What the step reads of a Subscription, recording what it is asked to do."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.queue = "q"
        self.stats = SubscriptionStats()
        self._pipeline = SimpleNamespace(has_wire=False, has_consume=False)
        self.subscriber = SimpleNamespace(observer=None, tracer=None, result_hook=None)
        self._stopping = False
        self.general: list[Any] = []
        self.envelopes: list[Any] = []
        self.results: list[Any] = []
        self.failed: list[Any] = []
        # what the settle-later path reads and counts (as a Subscription)
        self.concurrency = 2
        self._in_flight = 0
        self._backlog: list[Any] = []
        self._tasks: set[Any] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.nexts = 0

    def _settle(self, settle: Any, *args: Any) -> bool:
        return settle(*args) is not False

    def _next(self) -> None:
        self.nexts += 1
        if self._in_flight == 0 and not self._backlog:
            self._idle.set()

    def on_delivery(self, delivery: Any) -> None:
        self.general.append(delivery)

    def _on_envelope(self, ch: Any, delivery: Any, env: Any, handlers: tuple[Any, ...]) -> None:
        self.envelopes.append((ch, delivery, env, handlers))

    def _on_result(self, result: Any, msg: Any, ctx: Any, delivery: Any, env: Any) -> None:
        self.results.append((result, msg, ctx, delivery, env))

    def _handler_failed(self, ch: Any, delivery: Any, env: Any, msg: Any, ctx: Any,
                        exc: BaseException) -> tuple[Any, ...]:
        return (ch, delivery, env, msg, ctx, exc)

    def _spawn(self, work: Any) -> None:
        self.failed.append(work)


def delivery(body: bytes | None = None, tag: int = 7) -> Any:
    if body is None:
        body = build(StepEvent(order_id="o-1", amount=2.5)).body
    return _frames.Delivery(0, 1, "ctag", tag, False, "", "q", body=body)


def make(D: ModuleType, *handlers: Any, stale: bool = False) -> tuple[Any, Owner, Any]:
    registry = TypeRegistry()
    registry.register(StepEvent)
    table = D.DispatchTable()
    for fn in handlers:
        table.add("StepEvent", HandlerSpec(fn))
    owner = Owner(Channel(stale))
    return D.DeliveryStep(owner, table, registry._by_name, _decode_envelope, _PLANS, plan_for), owner, table


def test_handles_a_plain_handler_then_acks(D: ModuleType) -> None:
    seen: list[Any] = []
    order: list[str] = []
    step, owner, _ = make(D, lambda m: seen.append(m) or order.append("handler"))
    owner.channel.basic_ack = lambda tag, multiple=False: order.append(f"ack {tag}")  # type: ignore[method-assign]
    step(delivery())
    assert [m.order_id for m in seen] == ["o-1"] and isinstance(seen[0], StepEvent)
    assert seen[0].amount == 2.5 and seen[0].id
    assert order == ["handler", "ack 7"]
    assert (owner.stats.received, owner.stats.acked, owner.general) == (1, 1, [])


def test_every_plain_handler_runs_once_before_the_ack(D: ModuleType) -> None:
    calls: list[str] = []
    step, owner, _ = make(D, lambda m: calls.append("a"), lambda m: calls.append("b"))
    step(delivery())
    assert calls == ["a", "b"] and owner.channel.acks == [7]


def test_a_result_goes_to_on_result_and_the_delivery_is_acked(D: ModuleType) -> None:
    step, owner, _ = make(D, lambda m: "reply")
    d = delivery()
    step(d)
    result, msg, ctx, got, env = owner.results[0]
    assert (result, ctx, got, env.type) == ("reply", None, d, "StepEvent") and isinstance(msg, StepEvent)
    assert owner.channel.acks == [7]


class DirectHook:
    """A result hook with the context-free entry (as the Client's ReplyHook): records what it is
    given and answers ``dealt``."""

    def __init__(self, dealt: bool) -> None:
        self.dealt = dealt
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, result: Any, msg: Any, ctx: Any) -> None:
        raise AssertionError("the step calls direct(), never the hook with a context")

    def direct(self, result: Any, msg: Any, delivery: Any, env: Any) -> bool:
        self.calls.append((result, msg, delivery, env))
        return self.dealt


@pytest.mark.parametrize("dealt", [True, False])
def test_a_result_hooks_direct_entry_is_asked_first(D: ModuleType, dealt: bool) -> None:
    step, owner, _ = make(D, lambda m: "reply")
    hook = DirectHook(dealt)
    owner.subscriber.result_hook = hook
    d = delivery()
    step(d)
    assert [(r, g, e.type) for r, _m, g, e in hook.calls] == [("reply", d, "StepEvent")]
    # dealt with: on_result is skipped; declined: on_result builds the context and decides
    assert [r[0] for r in owner.results] == ([] if dealt else ["reply"])
    assert owner.channel.acks == [7] and owner.failed == []


def test_a_new_result_hook_is_seen_at_the_next_delivery(D: ModuleType) -> None:
    step, owner, _ = make(D, lambda m: "reply")
    first, second = DirectHook(True), DirectHook(True)
    owner.subscriber.result_hook = first
    step(delivery(tag=1))
    owner.subscriber.result_hook = second
    step(delivery(tag=2))
    owner.subscriber.result_hook = None
    step(delivery(tag=3))
    assert (len(first.calls), len(second.calls)) == (1, 1)
    assert [r[3].delivery_tag for r in owner.results] == [3]


def test_a_raising_direct_entry_is_a_handler_failure(D: ModuleType) -> None:
    step, owner, _ = make(D, lambda m: "reply")
    boom = RuntimeError("no reply publisher")

    class Raising(DirectHook):
        def direct(self, result: Any, msg: Any, delivery: Any, env: Any) -> bool:
            raise boom

    owner.subscriber.result_hook = Raising(True)
    step(delivery())
    assert owner.channel.acks == [] and owner.failed[0][-1] is boom


def test_a_failing_handler_is_not_acked_and_goes_to_handler_failed(D: ModuleType) -> None:
    boom = ValueError("boom")

    def fail(m: Any) -> None:
        raise boom

    step, owner, _ = make(D, fail)
    d = delivery()
    step(d)
    assert owner.channel.acks == [] and owner.stats.acked == 0 and owner.stats.received == 1
    ch, got, env, msg, ctx, exc = owner.failed[0]
    assert (ch, got, env.type, ctx, exc) == (owner.channel, d, "StepEvent", None, boom)
    assert isinstance(msg, StepEvent)


def test_a_stale_ack_is_counted_as_such(D: ModuleType) -> None:
    step, owner, _ = make(D, lambda m: None, stale=True)
    step(delivery())
    assert (owner.stats.acked, owner.stats.stale_settles) == (0, 1)


async def _async_handler(m: Any) -> None:
    return None


@pytest.mark.parametrize("case", ["wire", "consume", "observer", "tracer", "stopping", "undecodable",
                                  "not-json", "unknown-type", "unregistered", "bad-payload",
                                  "payload-not-object"])
def test_what_it_does_not_handle_reaches_on_delivery_untouched(D: ModuleType, case: str) -> None:
    calls: list[Any] = []
    step, owner, table = make(D, lambda m: calls.append(m))
    d = delivery()
    if case == "wire":
        owner._pipeline.has_wire = True
    elif case == "consume":
        owner._pipeline.has_consume = True
    elif case == "observer":
        owner.subscriber.observer = object()
    elif case == "tracer":
        owner.subscriber.tracer = object()
    elif case == "stopping":
        owner._stopping = True
    elif case == "undecodable":
        d.undecodable = "bad header"
    elif case == "not-json":
        d = delivery(b"{not json")
    elif case == "unknown-type":
        d = delivery(b'{"id":"1","type":"NoSuchType","payload":{}}')
    elif case == "unregistered":  # a handler for the type, but no class: a GenericMessage
        table.add("Unregistered", HandlerSpec(lambda m: calls.append(m)))
        d = delivery(b'{"id":"1","type":"Unregistered","payload":{}}')
    elif case == "bad-payload":
        d = delivery(b'{"id":"1","type":"StepEvent","payload":{"amount":"lots"}}')
    elif case == "payload-not-object":
        d = delivery(b'{"id":"1","type":"StepEvent","payload":[1]}')
    step(d)
    assert owner.general == [d] and owner.envelopes == []
    assert calls == [] and owner.channel.acks == [] and owner.results == [] and owner.failed == []
    assert owner.stats == SubscriptionStats()


def _later(m: Any) -> None:
    return None


def _later_with_context(m: Any, ctx: Any) -> None:
    return None


@pytest.mark.parametrize("case", ["async", "context", "later-and-async", "later-with-context",
                                  "later-and-context", "no-free-slot"])
def test_handlers_it_does_not_run_get_the_decoded_envelope(D: ModuleType, case: str) -> None:
    """Async and context-taking handlers (a settle-later one without a context-free entry too), and
    a settle-later delivery with no free handler slot: counted as received, then the rest of the
    general path (``_on_envelope``) with the envelope decoded once, nothing run or acked here."""
    calls: list[Any] = []
    handlers: list[Any] = [lambda m: calls.append(m)]
    if case == "async":
        handlers.append(_async_handler)
    elif case == "context":
        handlers = [lambda m, ctx: calls.append(m)]
    elif case == "later-and-async":
        handlers = [settles_later(_later), _async_handler]
    elif case == "later-with-context":
        handlers = [settles_later(_later_with_context)]
    elif case == "later-and-context":
        handlers = [settles_later(_later), lambda m, ctx: calls.append(m)]
    else:
        handlers = [settles_later(_later)]
    step, owner, table = make(D, *handlers)
    if case == "no-free-slot":
        owner._in_flight = owner.concurrency
    d = delivery()
    step(d)
    [(ch, got, env, specs)] = owner.envelopes
    assert (ch, got, env.type) == (owner.channel, d, "StepEvent")
    assert specs == table.lookup("StepEvent")
    assert owner.general == [] and calls == [] and owner.channel.acks == [] and owner.results == []
    assert owner.stats == SubscriptionStats(received=1)


def test_the_table_needs_to_be_a_dispatch_table(D: ModuleType) -> None:
    with pytest.raises(TypeError):
        D.DeliveryStep(Owner(Channel()), {}, {}, _decode_envelope, _PLANS, plan_for)


# ---------------------------------------------------------------- settle-later handlers in the step
def _future_handler(futures: list[Any]) -> Any:
    @settles_later
    def handler(m: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        futures.append((m, fut))
        return fut

    return handler


async def test_a_settle_later_awaitable_settles_the_delivery_when_done(D: ModuleType) -> None:
    futures: list[Any] = []
    step, owner, _ = make(D, _future_handler(futures))
    d = delivery()
    step(d)
    [(msg, fut)] = futures
    assert isinstance(msg, StepEvent) and msg.order_id == "o-1"
    # in flight until done: counted, the subscription not idle, nothing acked
    assert owner.channel.acks == [] and owner._in_flight == 1 and not owner._idle.is_set()
    assert owner.stats == SubscriptionStats(received=1) and owner.envelopes == [] and owner.general == []
    fut.set_result("not a reply")
    await asyncio.sleep(0)
    assert owner.channel.acks == [7] and owner.stats.acked == 1 and owner._in_flight == 0
    assert owner._idle.is_set() and owner.nexts == 1 and owner.results == [] and owner.failed == []


async def test_a_settle_later_handler_returning_none_is_acked_at_once(D: ModuleType) -> None:
    step, owner, _ = make(D, settles_later(_later))
    step(delivery())
    assert owner.channel.acks == [7] and owner.stats == SubscriptionStats(received=1, acked=1)
    assert owner._in_flight == 0 and owner._idle.is_set() and owner.nexts == 0


async def test_a_settle_later_none_acks_through_the_channel_hook(D: ModuleType) -> None:
    step, owner, _ = make(D, settles_later(_later))
    acked: list[int] = []
    step.channel_hook(acked.append)(delivery(tag=3))
    assert acked == [3] and owner.channel.acks == [] and owner.stats.acked == 1

    def closed(tag: int) -> None:
        raise errors.ChannelClosedError("closed")

    step.channel_hook(closed)(delivery(tag=4))  # that channel closed: settled through owner.channel
    assert owner.channel.acks == [4] and owner.stats.acked == 2


async def test_a_failed_awaitable_is_a_handler_failure(D: ModuleType) -> None:
    futures: list[Any] = []
    step, owner, _ = make(D, _future_handler(futures))
    d = delivery()
    step(d)
    boom = RuntimeError("publish failed")
    futures[0][1].set_exception(boom)
    await asyncio.sleep(0)
    assert owner.channel.acks == [] and owner.stats.acked == 0 and owner._in_flight == 0
    ch, got, env, msg, ctx, exc = owner.failed[0]
    assert (ch, got, env.type, msg, ctx, exc) == (owner.channel, d, "StepEvent", futures[0][0], None, boom)


async def test_a_cancelled_awaitable_requeues_the_delivery(D: ModuleType) -> None:
    futures: list[Any] = []
    step, owner, _ = make(D, _future_handler(futures))
    step(delivery())
    futures[0][1].cancel()
    await asyncio.sleep(0)
    assert owner.channel.nacks == [(7, False, True)] and owner.channel.acks == []
    assert owner.stats == SubscriptionStats(received=1) and owner.failed == [] and owner._in_flight == 0


async def test_a_stale_or_failed_settle_later_ack(D: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    futures: list[Any] = []
    step, owner, _ = make(D, _future_handler(futures), stale=True)
    step(delivery(tag=1))
    step(delivery(tag=2))
    futures[0][1].set_result(None)
    await asyncio.sleep(0)
    assert (owner.stats.acked, owner.stats.stale_settles, owner._in_flight) == (0, 1, 1)

    def gone(tag: int, multiple: bool = False) -> None:
        raise errors.ChannelClosedError("channel closed")

    owner.channel.basic_ack = gone  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="mmate_fast.subscriber"):
        futures[1][1].set_result(None)
        await asyncio.sleep(0)
    assert (owner.stats.acked, owner.stats.stale_settles, owner._in_flight) == (0, 1, 0)
    assert "could not settle delivery on 'q'" in caplog.text and owner._idle.is_set()


async def test_a_freed_slot_with_a_backlog_calls_next(D: ModuleType) -> None:
    futures: list[Any] = []
    step, owner, _ = make(D, _future_handler(futures))
    step(delivery(tag=1))
    step(delivery(tag=2))
    assert owner._in_flight == 2
    owner._backlog.append("waiting")
    futures[0][1].set_result(None)
    await asyncio.sleep(0)
    assert owner.nexts == 1 and owner._in_flight == 1 and not owner._idle.is_set()
    owner._backlog.clear()
    futures[1][1].set_result(None)
    await asyncio.sleep(0)
    assert owner.nexts == 2 and owner._idle.is_set() and owner.channel.acks == [1, 2]


async def test_a_raising_settle_later_handler_closes_what_was_returned(D: ModuleType) -> None:
    boom = ValueError("boom")
    made: list[Any] = []

    async def work() -> None:
        return None

    @settles_later
    def first(m: Any) -> Any:
        coro = work()
        made.append(coro)
        return coro

    @settles_later
    def second(m: Any) -> Any:
        raise boom

    step, owner, _ = make(D, first, second)
    step(delivery())
    assert made[0].cr_frame is None  # closed: no "never awaited" warning
    assert owner.failed[0][-1] is boom and owner.channel.acks == [] and owner._in_flight == 0


async def test_a_returned_coroutine_runs_in_a_kept_task(D: ModuleType) -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    step, owner, _ = make(D, settles_later(lambda m: work()))
    step(delivery())
    assert len(owner._tasks) == 1 and owner._in_flight == 1
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ran == ["ran"] and owner.channel.acks == [7] and owner._tasks == set()


async def test_several_awaitables_are_all_joined_and_plain_results_are_replies(D: ModuleType) -> None:
    futures: list[Any] = []
    step, owner, _ = make(D, _future_handler(futures), lambda m: "reply", _future_handler(futures))
    d = delivery()
    step(d)
    assert [r[0] for r in owner.results] == ["reply"] and len(futures) == 2
    futures[1][1].set_result(None)
    await asyncio.sleep(0)
    assert owner.channel.acks == [] and owner._in_flight == 1
    futures[0][1].set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert owner.channel.acks == [7] and owner._in_flight == 0


class WithDirect:
    """A settle-later handler taking a context, with the context-free entry the step calls."""

    __mmate_settles_later__ = True

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.fut: Any = None

    def __call__(self, m: Any, ctx: Any) -> Any:
        raise AssertionError("the step calls the context-free entry")

    def __mmate_settle_direct__(self, m: Any, delivery: Any, queue: str) -> Any:
        self.calls.append((m, delivery, queue))
        self.fut = asyncio.get_running_loop().create_future()
        return self.fut


async def test_a_context_free_entry_is_called_with_the_delivery_and_queue(D: ModuleType) -> None:
    handler = WithDirect()
    step, owner, _ = make(D, handler)
    d = delivery()
    step(d)
    [(msg, got, queue)] = handler.calls
    assert isinstance(msg, StepEvent) and (got, queue) == (d, "q") and owner.envelopes == []
    handler.fut.set_result(None)
    await asyncio.sleep(0)
    assert owner.channel.acks == [7] and owner.stats.acked == 1
    assert D.SETTLE_DIRECT == "__mmate_settle_direct__"
