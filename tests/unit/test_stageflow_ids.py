"""Time-ordered instance ids (``mmate_fast.stageflow._ids``): format, order, uniqueness."""
from __future__ import annotations

import multiprocessing
import os
import re
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from mmate_fast.stageflow import _ids, engine
from mmate_fast.stageflow._ids import id_time_ms, new_id

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_the_engine_makes_its_instance_ids_here() -> None:
    assert engine._new_id is new_id


def test_an_id_is_a_canonical_version_7_uuid_string() -> None:
    for _ in range(2000):
        iid = new_id()
        assert _CANONICAL.fullmatch(iid), iid
        u = uuid.UUID(iid)
        assert str(u) == iid  # canonical: lowercase, hyphens where Go's uuid.Parse wants them
        assert u.version == 7
        assert u.variant == uuid.RFC_4122


def test_the_time_field_is_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    iid = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= id_time_ms(iid) <= after + 1  # +1: the counter may have run ahead a millisecond


def test_ids_increase_across_calls_within_a_millisecond_and_across_them() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert [uuid.UUID(i).int for i in ids] == sorted(uuid.UUID(i).int for i in ids)
    by_ms: dict[int, int] = {}
    for iid in ids:
        by_ms[id_time_ms(iid)] = by_ms.get(id_time_ms(iid), 0) + 1
    assert max(by_ms.values()) > 1  # several ids did share a millisecond (their counter ordered them)


def test_a_millisecond_with_more_ids_than_the_counter_holds_moves_on(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.time_ns()
    monkeypatch.setattr(_ids, "_time_ns", lambda: frozen)
    ids = [new_id() for _ in range(10_000)]  # 10,000 ids in one "millisecond": the counter runs out
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert id_time_ms(ids[-1]) > frozen // 1_000_000


def test_a_clock_stepping_back_does_not_reorder(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time_ns()
    first = new_id()
    monkeypatch.setattr(_ids, "_time_ns", lambda: now - 5_000_000_000)  # 5 s back
    later = [new_id() for _ in range(100)]
    assert [first, *later] == sorted([first, *later])


def test_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def make(k: int) -> None:
        start.wait()
        out[k].extend(new_id() for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(k,)) for k in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch inside new_id as often as they can
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    every = [i for ids in out for i in ids]
    assert len(set(every)) == len(every) == 160_000
    for ids in out:
        assert ids == sorted(ids)  # each thread's ids still increase


def _child_ids(q: Any) -> None:
    q.put([new_id() for _ in range(5000)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_unique_across_forked_processes() -> None:
    new_id()  # the parent has random digits buffered: a child must not reuse them
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child_ids, args=(q,)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    mine = [new_id() for _ in range(5000)]
    every = [i for ids in got for i in ids] + mine
    assert len(set(every)) == len(every)
    # the random tails too (a shared buffer would repeat them with another counter)
    tails = [i[19:] for i in every]
    assert len(set(tails)) == len(tails)
