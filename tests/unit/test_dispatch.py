"""Dispatch table: exact, "*", prefix/suffix globs, ordering, duplicates, remove, cache (both impls)."""
from __future__ import annotations

import functools
from enum import StrEnum
from types import ModuleType
from typing import Any

import pytest

from mmate_fast.errors import InvalidPatternError, MmateError

from ._impls import impl_params


@pytest.fixture(params=impl_params("dispatch"))
def D(request: pytest.FixtureRequest) -> ModuleType:
    mod: ModuleType = request.param
    return mod


def h(name: str) -> Any:
    """A distinct, named handler (functions compare by identity)."""
    def handler(_msg: object) -> str:
        return name
    handler.__name__ = name
    return handler


def test_empty_table(D: ModuleType) -> None:
    t = D.DispatchTable()
    assert t.lookup("OrderCreatedEvent") == ()
    assert len(t) == 0 and t.patterns() == []


def test_exact(D: ModuleType) -> None:
    t = D.DispatchTable()
    a, b, c = h("a"), h("b"), h("c")
    t.add("OrderCreatedEvent", a)
    t.add("OrderCreatedEvent", b)
    t.add("OrderShippedEvent", c)
    assert t.lookup("OrderCreatedEvent") == (a, b)
    assert t.lookup("OrderShippedEvent") == (c,)
    assert t.lookup("OrderCreated") == ()  # exact means exact
    assert t.lookup("orderCreatedEvent") == ()  # case-sensitive
    assert type(t.lookup("OrderCreatedEvent")) is tuple


def test_star_matches_everything(D: ModuleType) -> None:
    t = D.DispatchTable()
    s = h("s")
    t.add("*", s)
    assert t.lookup("Anything") == (s,)
    assert t.lookup("") == (s,)


def test_prefix_and_suffix_globs(D: ModuleType) -> None:
    t = D.DispatchTable()
    pre, suf = h("pre"), h("suf")
    t.add("Order*", pre)
    t.add("*Event", suf)
    assert t.lookup("OrderCreatedEvent") == (pre, suf)
    assert t.lookup("OrderCreatedCommand") == (pre,)
    assert t.lookup("PaymentEvent") == (suf,)
    assert t.lookup("Order") == (pre,)  # '*' matches the empty string
    assert t.lookup("Event") == (suf,)
    assert t.lookup("XOrder") == () and t.lookup("EventX") == ()
    assert t.lookup("PaymentCommand") == ()


def test_ordering_exact_then_globs_in_registration_order_then_star(D: ModuleType) -> None:
    t = D.DispatchTable()
    star, suf, pre, ex1, ex2, pre2 = h("star"), h("suf"), h("pre"), h("ex1"), h("ex2"), h("pre2")
    # registered in an order unlike the result order
    t.add("*", star)
    t.add("*Event", suf)
    t.add("Order*", pre)
    t.add("OrderCreatedEvent", ex1)
    t.add("*Event", pre2)
    t.add("OrderCreatedEvent", ex2)
    assert t.lookup("OrderCreatedEvent") == (ex1, ex2, suf, pre, pre2, star)
    assert t.lookup("OrderDeleted") == (pre, star)
    assert t.lookup("Nope") == (star,)
    assert t.patterns() == ["*", "*Event", "Order*", "OrderCreatedEvent"]
    assert len(t) == 6


def test_duplicates_kept_once(D: ModuleType) -> None:
    t = D.DispatchTable()
    a = h("a")
    t.add("T", a)
    t.add("T", a)
    assert len(t) == 1 and t.lookup("T") == (a,)
    # bound methods are equal, not identical: still the same handler
    class C:
        def on(self, _m: object) -> None: ...
    obj = C()
    t.add("U", obj.on)
    t.add("U", obj.on)
    assert len(t) == 2 and t.lookup("U") == (obj.on,)
    # one handler under several matching patterns appears once, at its first position
    t.add("*", a)
    t.add("T*", a)
    assert len(t) == 4
    assert t.lookup("T") == (a,)
    assert t.lookup("U") == (obj.on, a)


def test_remove(D: ModuleType) -> None:
    t = D.DispatchTable()
    a, b, g, s = h("a"), h("b"), h("g"), h("s")
    t.add("T", a)
    t.add("T", b)
    t.add("T*", g)
    t.add("*", s)
    assert t.remove("T", a) is True
    assert t.remove("T", a) is False
    assert t.remove("Other", a) is False
    assert t.remove("T*", a) is False  # registered under another pattern only
    assert t.remove("bad**", a) is False  # never registrable, so not registered
    assert t.lookup("T") == (b, g, s)
    assert t.remove("T*", g) is True and t.remove("*", s) is True
    assert t.lookup("T") == (b,) and t.lookup("Tx") == ()
    assert t.remove("T", b) is True
    assert t.lookup("T") == () and len(t) == 0 and t.patterns() == []


def test_remove_one_glob_keeps_the_same_handler_elsewhere(D: ModuleType) -> None:
    t = D.DispatchTable()
    a, b = h("a"), h("b")
    t.add("*Event", a)
    t.add("Order*", b)
    t.add("Order*", a)
    assert t.lookup("OrderEvent") == (a, b)
    assert t.remove("*Event", a) is True
    assert t.lookup("OrderEvent") == (b, a)
    assert t.patterns() == ["Order*"]


def test_patterns_registration_order_and_readd(D: ModuleType) -> None:
    t = D.DispatchTable()
    a = h("a")
    for p in ("B", "*", "A*", "*Z", "C"):
        t.add(p, a)
    assert t.patterns() == ["B", "*", "A*", "*Z", "C"]
    t.remove("B", a)
    t.add("B", a)
    assert t.patterns() == ["*", "A*", "*Z", "C", "B"]
    p = t.patterns()
    p.append("mutating the copy")
    assert "mutating the copy" not in t.patterns()


def test_cache_returns_same_tuple_and_is_invalidated(D: ModuleType) -> None:
    t = D.DispatchTable()
    a, b, c = h("a"), h("b"), h("c")
    t.add("T", a)
    first = t.lookup("T")
    assert t.lookup("T") is first  # cached: no new tuple
    t.add("T*", b)
    second = t.lookup("T")
    assert second == (a, b) and t.lookup("T") is second
    t.add("*", c)
    assert t.lookup("T") == (a, b, c)
    assert t.lookup("Unknown") == (c,)
    t.remove("*", c)
    assert t.lookup("T") == (a, b) and t.lookup("Unknown") == ()
    t.add("Unknown", c)  # a type cached as () must see a later exact registration
    assert t.lookup("Unknown") == (c,)
    t.clear()
    assert t.lookup("T") == () and t.lookup("Unknown") == ()
    assert len(t) == 0 and t.patterns() == []
    t.add("T", c)
    assert t.lookup("T") == (c,)


def test_failed_add_or_remove_keeps_cache_and_table(D: ModuleType) -> None:
    t = D.DispatchTable()
    a = h("a")
    t.add("T", a)
    first = t.lookup("T")
    t.add("T", a)  # duplicate: no change
    assert t.remove("T", h("other")) is False
    with pytest.raises(InvalidPatternError):
        t.add("a*b", a)
    assert t.lookup("T") is first and len(t) == 1


def test_cache_is_bounded(D: ModuleType) -> None:
    t = D.DispatchTable()
    a = h("a")
    t.add("T*", a)
    first = t.lookup("T")
    for i in range(D.CACHE_MAX + 1):
        assert t.lookup(f"T{i}") == (a,)
    again = t.lookup("T")
    assert again == (a,) and again is not first  # evicted once the cache filled up
    assert t.lookup("T") is again


@pytest.mark.parametrize("pattern", ["", "**", "A**", "**A", "*A*", "A*B", "Ord*er", "A*B*", "*A*B", "***"])
def test_invalid_patterns(D: ModuleType, pattern: str) -> None:
    t = D.DispatchTable()
    with pytest.raises(InvalidPatternError) as ei:
        t.add(pattern, h("a"))
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, MmateError)
    assert len(t) == 0 and t.patterns() == []


def test_non_str_rejected(D: ModuleType) -> None:
    t = D.DispatchTable()
    with pytest.raises(TypeError):
        t.add(b"T", h("a"))
    with pytest.raises(TypeError):
        t.lookup(None)
    with pytest.raises(TypeError):
        t.lookup(42)


def test_str_subclass_types(D: ModuleType) -> None:
    class Kind(StrEnum):
        ORDER = "OrderCreatedEvent"

    t = D.DispatchTable()
    a, b = h("a"), h("b")
    t.add(Kind.ORDER, a)
    t.add("*Event", b)
    assert t.lookup("OrderCreatedEvent") == (a, b)
    assert t.lookup(Kind.ORDER) == (a, b)


def test_any_object_is_a_handler(D: ModuleType) -> None:
    t = D.DispatchTable()
    p = functools.partial(print, "x")
    t.add("T", p)
    t.add("T", "a string handler")
    t.add("T", 7)
    assert t.lookup("T") == (p, "a string handler", 7)


def _reference(regs: list[tuple[str, Any]], name: str) -> tuple[Any, ...]:
    """The contract, written plainly: exact, then matching globs in registration order, then "*"."""
    exact = [hd for p, hd in regs if "*" not in p and p == name]
    globs = [hd for p, hd in regs if p != "*" and "*" in p
             and (name.startswith(p[:-1]) if p.endswith("*") else name.endswith(p[1:]))]
    star = [hd for p, hd in regs if p == "*"]
    out: list[Any] = []
    for hd in exact + globs + star:
        if hd not in out:
            out.append(hd)
    return tuple(out)


def test_random_operations_match_reference(D: ModuleType) -> None:
    import random

    rnd = random.Random(1234)
    words = ["Order", "Created", "Event", "Payment", "Cmd", "X"]
    types = ["".join(rnd.choice(words) for _ in range(rnd.randint(1, 3))) for _ in range(40)]
    pats = [*types[:10], "*", *(w + "*" for w in words), *("*" + w for w in words)]
    handlers = [h(f"h{i}") for i in range(8)]
    t = D.DispatchTable()
    regs: list[tuple[str, Any]] = []
    order: dict[str, None] = {}  # a pattern stays in place while it has at least one handler
    for step in range(2000):
        p, hd = rnd.choice(pats), rnd.choice(handlers)
        if rnd.random() < 0.6:
            t.add(p, hd)
            if (p, hd) not in regs:
                regs.append((p, hd))
                order.setdefault(p)
        else:
            assert t.remove(p, hd) is ((p, hd) in regs)
            if (p, hd) in regs:
                regs.remove((p, hd))
                if all(q != p for q, _ in regs):
                    del order[p]
        if step % 50 == 0 and rnd.random() < 0.1:
            t.clear()
            regs.clear()
            order.clear()
        for name in rnd.sample(types, 5):
            assert t.lookup(name) == _reference(regs, name), (name, regs)
        assert len(t) == len(regs)
        assert t.patterns() == list(order)
