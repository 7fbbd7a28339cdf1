"""Handlers are checked when registered (issue 7 item 8): a handler that cannot be called as
``fn(message)`` or ``fn(message, context)``, or the same handler twice for one type, is refused at
``add_handler`` / ``@client.handler`` with HandlerRegistrationError, and nothing is registered.
Every accepted shape is then really called with the right arguments (memory broker)."""
from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import Dispatcher, MessageContext


@dataclass
class RegEvt(Event):
    n: int = 0


def _none(): ...


def _three(msg, ctx, extra): ...


def _kw_only(msg, *, needed): ...


def _only_kw(*, msg): ...


@pytest.mark.parametrize("fn, what", [
    (42, "not callable"),
    ("handler", "not callable"),
    (_none, "takes no"),
    (_three, "3 required"),
    (_kw_only, "keyword-only"),
    (_only_kw, "keyword-only"),
    (lambda: None, "takes no"),
    (functools.partial(_three, 1, 2, 3), "takes no"),
], ids=["int", "str", "no-params", "three", "kw-only", "only-kw", "lambda0", "partial-full"])
def test_wrong_handlers_are_refused_at_registration(fn: Any, what: str) -> None:
    d = Dispatcher()
    with pytest.raises(errors.HandlerRegistrationError, match=what):
        d.add_handler(RegEvt, fn)
    assert d.lookup("RegEvt") == ()


def test_decorator_refuses_too() -> None:
    client = Client("memory://reg", service_name="reg")
    with pytest.raises(errors.HandlerRegistrationError):
        @client.handler(RegEvt)
        def bad(msg: RegEvt, ctx: MessageContext, extra: int) -> None: ...
    assert client.dispatcher.lookup("RegEvt") == ()
    assert client._bindings_todo == []  # a refused handler binds nothing


def test_same_handler_twice_for_one_type_is_refused() -> None:
    d = Dispatcher()

    def handle(msg: RegEvt) -> None: ...

    d.add_handler(RegEvt, handle)
    with pytest.raises(errors.HandlerRegistrationError, match="already registered"):
        d.add_handler(RegEvt, handle)
    with pytest.raises(errors.HandlerRegistrationError, match="already registered"):
        d.add_handler("RegEvt", handle)  # the same wire type, spelled as a pattern
    d.add_handler("Reg*", handle)  # another pattern is another registration
    assert len(d.lookup("RegEvt")) == 2


def test_same_bound_method_twice_is_refused_and_removable() -> None:
    class Service:
        def on_evt(self, msg: RegEvt) -> None: ...

    s = Service()
    d = Dispatcher()
    d.add_handler(RegEvt, s.on_evt)
    with pytest.raises(errors.HandlerRegistrationError):
        d.add_handler(RegEvt, s.on_evt)  # a new bound-method object, the same handler
    d.add_handler(RegEvt, Service().on_evt)  # another instance: another handler
    assert len(d.lookup("RegEvt")) == 2
    assert d.remove_handler(RegEvt, s.on_evt)
    assert len(d.lookup("RegEvt")) == 1


def test_message_must_be_a_class_or_a_pattern() -> None:
    d = Dispatcher()
    for bad in (RegEvt(n=1), None, 3, b"RegEvt"):
        with pytest.raises(errors.HandlerRegistrationError, match="class or a type pattern"):
            d.add_handler(bad, print)  # type: ignore[arg-type]


async def test_every_accepted_shape_is_called_with_the_right_arguments() -> None:
    got: list[tuple[str, Any]] = []

    class Obj:
        def __call__(self, msg: RegEvt) -> None:
            got.append(("callable-object", msg.n))

    class AsyncObj:
        async def __call__(self, msg: RegEvt, ctx: MessageContext) -> None:
            got.append(("async-callable-object", type(ctx).__name__))

    class Service:
        def on_evt(self, msg: RegEvt, ctx: MessageContext) -> None:
            got.append(("bound-method", type(ctx).__name__))

        @staticmethod
        def static(msg: RegEvt) -> None:
            got.append(("staticmethod", msg.n))

        @classmethod
        async def klass(cls, msg: RegEvt) -> None:
            got.append(("async-classmethod", msg.n))

    def tagged(tag: str, msg: RegEvt, ctx: MessageContext | None = None) -> None:
        got.append((tag, type(ctx).__name__))

    async def atagged(tag: str, msg: RegEvt) -> None:
        got.append((tag, msg.n))

    def defaults(msg: RegEvt = None, ctx: Any = None, *rest: Any, flag: bool = True) -> None:  # type: ignore[assignment]
        got.append(("defaults", type(ctx).__name__))

    def var_args(*args: Any) -> None:
        got.append(("var-args", len(args)))

    handlers: list[Any] = [
        Obj(), AsyncObj(), Service().on_evt, Service.static, Service.klass,
        functools.partial(tagged, "partial"), functools.partial(atagged, "async-partial"),
        defaults, var_args, lambda m: got.append(("lambda", m.n)),
    ]
    service = f"reg-{uuid.uuid4().hex[:8]}"
    async with Client(f"memory://{service}", service_name=service) as client:
        for fn in handlers:
            client.add_handler(RegEvt, fn)
        sub = await client.start_consuming()
        await client.publish_event(RegEvt(n=7, aggregate_id="a"))
        for _ in range(300):
            if sub.stats.acked + sub.stats.rejected + sub.stats.dead_lettered:
                break
            await asyncio.sleep(0.01)
    assert sub.stats.acked == 1 and sub.stats.handler_errors == 0
    assert sorted(got) == sorted([
        ("callable-object", 7), ("async-callable-object", "MessageContext"),
        ("bound-method", "MessageContext"), ("staticmethod", 7), ("async-classmethod", 7),
        ("partial", "MessageContext"), ("async-partial", 7), ("defaults", "MessageContext"),
        ("var-args", 2), ("lambda", 7),
    ])
