"""Micro-benchmarks of the dispatch table: compiled vs pure-Python twin (run with --benchmark-only).

Hit = a type already looked up (one dict lookup, cached tuple); miss = the first lookup after the
table changed (exact + glob scan + "*"), measured by invalidating the cache each round.
"""
from __future__ import annotations

import importlib
from typing import Any

import pytest

IMPLS = {"cy": importlib.import_module("mmate_fast._cy.dispatch"),
         "py": importlib.import_module("mmate_fast._py.dispatch")}
TYPES = [f"Order{i}Event" for i in range(20)]


def _table(impl: str) -> Any:
    t = IMPLS[impl].DispatchTable()
    for i, name in enumerate(TYPES):
        t.add(name, f"exact-{i}")
    for i in range(5):
        t.add(f"Payment{i}*", f"prefix-{i}")
        t.add(f"*Command{i}", f"suffix-{i}")
    t.add("Order*", "orders")
    t.add("*Event", "events")
    t.add("*", "audit")
    return t


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_lookup_hit_1000(benchmark: Any, impl: str) -> None:
    t = _table(impl)
    lookup = t.lookup
    names = TYPES * 50
    for n in TYPES:
        lookup(n)

    def run() -> int:
        k = 0
        for n in names:
            k += len(lookup(n))
        return k

    assert benchmark(run) == 1000 * 4


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_lookup_unknown_hit_1000(benchmark: Any, impl: str) -> None:
    t = IMPLS[impl].DispatchTable()
    t.add("Order*", "orders")
    lookup = t.lookup
    lookup("Unknown")
    names = ["Unknown"] * 1000

    def run() -> int:
        k = 0
        for n in names:
            k += len(lookup(n))
        return k

    assert benchmark(run) == 0


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_lookup_miss(benchmark: Any, impl: str) -> None:
    t = _table(impl)
    marker = object()

    def run() -> int:
        t.add("Invalidate", marker)  # drops the cache
        t.remove("Invalidate", marker)  # drops it again
        return len(t.lookup("Order7Event"))

    assert benchmark(run) == 4
