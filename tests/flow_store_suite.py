"""One behaviour suite for every StageFlow state store backend (memory, SQLite, PostgreSQL).

A test module subclasses ``FlowStoreSuite`` (not collected itself: its name does not start with
``Test``) and provides two fixtures: ``store_url`` (a URL of a fresh, empty store for this test) and
``store`` (that store opened; closed after the test). ``cross_process`` says whether two OS processes
can share the store (not ``memory://``).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mmate_fast.errors import FlowStoreClosedError, InvalidArgumentError
from mmate_fast.stageflow.store import FlowRecord, FlowStore, open_store

CLAIMER = Path(__file__).resolve().parent / "flow_store_claimer.py"
#: the checkout under test (a subprocess must import mmate_fast from here, not from an installed copy)
ROOT = Path(__file__).resolve().parents[1]


def record(iid: str = "i-1", *, version: int = 1, status: str = "running", workflow: str = "wf",
           updated: int = 1_000, stage: str | None = "s1", error: str | None = None,
           state: str | None = None, worker: str = "") -> FlowRecord:
    return FlowRecord(instance_id=iid, workflow_id=workflow, status=status, version=version,
                      current_stage=stage, error=error, started_ns=500, updated_ns=updated,
                      state_json=state if state is not None else json.dumps({"instanceId": iid, "version": version}),
                      worker=worker)


class FlowStoreSuite:
    cross_process = True
    #: False when a second open_store(store_url) is another, empty store (sqlite:///:memory:)
    shared_by_url = True
    #: keys two processes race for (each claim of a networked store waits for a commit to disk)
    race_keys = 1000

    # ------------------------------------------------------------------ save / get
    async def test_get_of_an_unknown_instance_is_none(self, store: FlowStore) -> None:
        assert await store.get("nope") is None

    async def test_save_then_get_returns_every_field(self, store: FlowStore) -> None:
        rec = record("i-\u00e9", stage=None, error="boom: ünïcode ✓", worker="svc-a/42",
                     state=json.dumps({"globalData": {"k": "é" * 5000}}), updated=2**62, version=7)
        await store.save(rec)
        got = await store.get("i-\u00e9")
        assert got == rec and got is not rec

    async def test_the_stored_record_is_a_copy(self, store: FlowStore) -> None:
        rec = record()
        await store.save(rec)
        rec.status = "changed-after-save"
        got = await store.get("i-1")
        assert got is not None and got.status == "running"
        got.status = "changed-after-get"
        again = await store.get("i-1")
        assert again is not None and again.status == "running"

    async def test_a_higher_or_equal_version_replaces_the_record(self, store: FlowStore) -> None:
        await store.save(record(version=1, status="running"))
        await store.save(record(version=2, status="completed", stage=None))
        got = await store.get("i-1")
        assert got is not None and (got.version, got.status, got.current_stage) == (2, "completed", None)
        await store.save(record(version=2, status="failed", error="x"))
        got = await store.get("i-1")
        assert got is not None and (got.status, got.error) == ("failed", "x")

    async def test_the_version_never_goes_back(self, store: FlowStore) -> None:
        await store.save(record(version=5, status="completed"))
        await store.save(record(version=4, status="running"))
        got = await store.get("i-1")
        assert got is not None and (got.version, got.status) == (5, "completed")

    async def test_concurrent_saves_keep_the_highest_version(self, store: FlowStore) -> None:
        versions = list(range(1, 61))
        random.Random(9).shuffle(versions)
        await asyncio.gather(*(store.save(record(version=v, status=f"s{v}")) for v in versions))
        got = await store.get("i-1")
        assert got is not None and (got.version, got.status) == (60, "s60")

    async def test_save_refuses_what_is_not_a_record(self, store: FlowStore) -> None:
        with pytest.raises(InvalidArgumentError):
            await store.save({"instance_id": "x"})  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="instance_id"):
            await store.save(record(""))
        with pytest.raises(InvalidArgumentError, match="version"):
            await store.save(record(version=2**64))
        with pytest.raises(InvalidArgumentError, match="state_json"):
            await store.save(replace(record(), state_json=None))  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="NUL"):
            await store.save(record(error="a\x00b"))
        assert await store.list() == []

    # ------------------------------------------------------------------ list
    async def _fill(self, store: FlowStore) -> list[FlowRecord]:
        recs = [record(f"i-{n:02}", status=("failed" if n % 3 == 0 else "running" if n % 5 == 1 else "completed"),
                       workflow=("a" if n % 2 else "b"), updated=10_000 + n * 7 % 23 * 100 + n)
                for n in range(30)]
        for rec in recs:
            await store.save(rec)
        return sorted(recs, key=lambda r: (-r.updated_ns, r.instance_id))

    async def test_list_is_newest_first(self, store: FlowStore) -> None:
        expected = await self._fill(store)
        assert [r.instance_id for r in await store.list()] == [r.instance_id for r in expected]
        assert await store.list() == expected

    async def test_list_breaks_ties_by_instance_id(self, store: FlowStore) -> None:
        for iid in ("c", "a", "b"):
            await store.save(record(iid, updated=5))
        assert [r.instance_id for r in await store.list()] == ["a", "b", "c"]

    async def test_list_filters_by_status_and_workflow(self, store: FlowStore) -> None:
        expected = await self._fill(store)
        for status in (None, "failed", "completed", "running", "nope"):
            for workflow in (None, "a", "b", "nope"):
                want = [r.instance_id for r in expected
                        if status in (None, r.status) and workflow in (None, r.workflow_id)]
                got = await store.list(status=status, workflow=workflow)
                assert [r.instance_id for r in got] == want, (status, workflow)

    async def test_list_pages_with_limit_and_offset(self, store: FlowStore) -> None:
        expected = [r.instance_id for r in await self._fill(store)]
        pages = []
        for offset in range(0, 35, 7):
            pages.extend(r.instance_id for r in await store.list(limit=7, offset=offset))
        assert pages == expected
        assert [r.instance_id for r in await store.list(status="failed", limit=3, offset=2)] == \
            [i for i in expected if int(i[2:]) % 3 == 0][2:5]
        assert await store.list(offset=30) == []

    async def test_list_follows_updates(self, store: FlowStore) -> None:
        await store.save(record("old", updated=1))
        await store.save(record("new", updated=2))
        await store.save(record("old", updated=3, version=2, status="completed"))
        assert [r.instance_id for r in await store.list()] == ["old", "new"]
        assert [r.instance_id for r in await store.list(status="running")] == ["new"]

    async def test_list_refuses_bad_pages(self, store: FlowStore) -> None:
        for kwargs in ({"limit": 0}, {"limit": -1}, {"limit": 10**9}, {"offset": -1}, {"limit": "5"}):
            with pytest.raises(InvalidArgumentError):
                await store.list(**kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ claim_stage
    async def test_claim_stage_first_writer_wins(self, store: FlowStore) -> None:
        assert await store.stage_result("i-1", "0:validate") is None
        assert await store.claim_stage("i-1", "0:validate", '{"r":1}') == '{"r":1}'
        assert await store.claim_stage("i-1", "0:validate", '{"r":2}') == '{"r":1}'
        assert await store.stage_result("i-1", "0:validate") == '{"r":1}'

    async def test_claims_of_other_keys_and_instances_are_independent(self, store: FlowStore) -> None:
        await store.claim_stage("i-1", "a", "1a")
        assert await store.claim_stage("i-1", "b", "1b") == "1b"
        assert await store.claim_stage("i-2", "a", "2a") == "2a"
        assert await store.stage_result("i-2", "b") is None
        assert await store.get("i-1") is None  # claims are not records

    async def test_100_concurrent_claims_have_exactly_one_winner(self, store: FlowStore,
                                                                 store_url: str) -> None:
        other = open_store(store_url)
        try:
            handles = [store, other] if self.shared_by_url else [store]
            values = [f'{{"claimer":{n}}}' for n in range(100)]
            got = await asyncio.gather(*(handles[n % len(handles)].claim_stage("i-c", "3:charge", v)
                                         for n, v in enumerate(values)))
            assert len(set(got)) == 1 and got[0] in values
            assert await handles[-1].stage_result("i-c", "3:charge") == got[0]
        finally:
            await other.close()

    async def test_claim_stage_refuses_bad_keys(self, store: FlowStore) -> None:
        for args in (("", "k", "v"), ("i", "", "v"), ("i", "k", None), (None, "k", "v"), ("i", "k", "\x00"),
                     ("i\x00", "k", "v")):
            with pytest.raises(InvalidArgumentError):
                await store.claim_stage(*args)  # type: ignore[arg-type]

    async def test_an_empty_result_is_a_claim(self, store: FlowStore) -> None:
        assert await store.claim_stage("i", "k", "") == ""
        assert await store.claim_stage("i", "k", "later") == ""
        assert await store.stage_result("i", "k") == ""

    # ------------------------------------------------------------------ claim_stage_and_save (the last stage)
    async def test_claim_stage_and_save_saves_only_when_it_wins(self, store: Any) -> None:
        if not hasattr(store, "claim_stage_and_save"):
            pytest.skip("this store has no claim_stage_and_save (the engine claims, then saves)")
        await store.save(record(version=3))
        assert await store.claim_stage_and_save("i-1", "stage2", "mine", record(version=4)) == "mine"
        got = await store.get("i-1")
        assert got is not None and got.version == 4
        lost = record(version=5, status="completed")
        assert await store.claim_stage_and_save("i-1", "stage2", "theirs", lost) == "mine"
        got = await store.get("i-1")
        assert got is not None and got.version == 4  # the loser saved nothing
        assert await store.claim_stage_and_save("i-1", "stage3", "x", record(version=2)) == "x"
        got = await store.get("i-1")
        assert got is not None and got.version == 4  # a won claim never moves the version back

    async def test_claim_stage_and_save_refuses_bad_input(self, store: Any) -> None:
        if not hasattr(store, "claim_stage_and_save"):
            pytest.skip("this store has no claim_stage_and_save")
        with pytest.raises(InvalidArgumentError):
            await store.claim_stage_and_save("", "k", "v", record())
        with pytest.raises(InvalidArgumentError):
            await store.claim_stage_and_save("i-1", "k", "v", record(""))
        assert await store.stage_result("i-1", "k") is None

    # ------------------------------------------------------------------ save_nowait (the engine's saves after a hop)
    async def test_save_nowait_is_written_in_order_with_the_calls_after_it(self, store: Any) -> None:
        store.save_nowait(record(version=2))
        store.save_nowait(record(version=1, status="older"))  # never moves the version back
        await store.claim_stage("i-1", "k", "v")  # queued after the saves: they are in by its answer
        got = await store.get("i-1")
        assert got is not None and got.version == 2 and got.status == "running"

    async def test_save_nowait_refuses_a_bad_record_at_once(self, store: Any) -> None:
        with pytest.raises(InvalidArgumentError, match="instance_id"):
            store.save_nowait(record(""))

    async def test_save_nowait_queued_before_close_is_written(self, store: Any, store_url: str) -> None:
        if not self.shared_by_url:
            pytest.skip("each open of this URL is a new store")
        await store.get("warm-up")
        for n in range(20):
            store.save_nowait(record(f"i-{n}"))
        await store.close()
        with pytest.raises(FlowStoreClosedError):
            store.save_nowait(record())
        again = open_store(store_url)
        try:
            assert len(await again.list()) == 20
        finally:
            await again.close()

    # ------------------------------------------------------------------ sharing, close
    async def test_a_second_handle_sees_the_same_store(self, store: FlowStore, store_url: str) -> None:
        if not self.shared_by_url:
            pytest.skip("each open of this URL is a new store")
        other = open_store(store_url)
        try:
            await store.save(record(version=3))
            got = await other.get("i-1")
            assert got is not None and got.version == 3
            await other.save(record(version=2, status="older"))
            got = await store.get("i-1")
            assert got is not None and got.status == "running"
        finally:
            await other.close()

    async def test_close_is_idempotent_and_later_calls_raise_the_named_error(
            self, store: FlowStore, store_url: str) -> None:
        await store.save(record())
        await store.claim_stage("i-1", "k", "v")
        await store.close()
        await store.close()
        calls = (store.save(record()), store.get("i-1"), store.list(), store.claim_stage("i-1", "k", "w"),
                 store.stage_result("i-1", "k"), store.get_ended(["i-1"]), store.get_ended([]))
        for call in calls:
            with pytest.raises(FlowStoreClosedError, match="open a new one"):
                await call
        reopened = open_store(store_url)  # closing a handle loses nothing (but :memory: databases)
        try:
            if store_url.endswith(":memory:"):
                assert await reopened.get("i-1") is None
            else:
                assert await reopened.get("i-1") == record()
                assert await reopened.stage_result("i-1", "k") == "v"
        finally:
            await reopened.close()

    async def test_writes_queued_before_close_are_written(self, store: FlowStore, store_url: str) -> None:
        await store.get("warm-up")  # opened / connected
        saves = [asyncio.ensure_future(store.save(record(f"i-{n}"))) for n in range(50)]
        claims = [asyncio.ensure_future(store.claim_stage(f"i-{n}", "k", "v")) for n in range(50)]
        await asyncio.sleep(0)  # all queued
        await store.close()
        assert await asyncio.gather(*saves) == [None] * 50
        assert await asyncio.gather(*claims) == ["v"] * 50
        if self.shared_by_url:
            again = open_store(store_url)
            try:
                assert len(await again.list()) == 50
                assert await again.stage_result("i-49", "k") == "v"
            finally:
                await again.close()

    # ------------------------------------------------------------------ get_ended (wait()'s store look)
    async def test_get_ended_returns_the_ended_records_of_the_ids_asked(self, store: Any) -> None:
        statuses = ("running", "completed", "compensated", "failed", "cancelled", "pending")
        for n, status in enumerate(statuses):
            await store.save(record(f"e-{n}", status=status, version=2))
        await store.save(record("not-asked", status="completed"))
        asked = [f"e-{n}" for n in range(len(statuses))] + ["unknown", "e-1"]  # e-1 twice
        got = await store.get_ended(asked)
        assert sorted(r.instance_id for r in got) == ["e-1", "e-2", "e-3", "e-4"]
        assert {r.instance_id: r for r in got}["e-2"] == record("e-2", status="compensated", version=2)
        assert await store.get_ended([]) == []
        assert await store.get_ended(("e-0", "unknown")) == []

    async def test_get_ended_of_more_ids_than_one_statement_takes(self, store: Any) -> None:
        await asyncio.gather(*(store.save(record(f"m-{n}", status="completed" if n % 3 else "running"))
                               for n in range(1200)))
        got = await store.get_ended([f"m-{n}" for n in range(1200)] + [f"x-{n}" for n in range(300)])
        assert sorted(r.instance_id for r in got) == sorted(f"m-{n}" for n in range(1200) if n % 3)

    async def test_get_ended_refuses_bad_ids(self, store: Any) -> None:
        for bad in ("e-1", ["e-1", ""], ["e-1", 3], ["e-\x00"], None):
            with pytest.raises(InvalidArgumentError):
                await store.get_ended(bad)
        assert await store.get_ended(["e-1"]) == []  # the store lives on

    # ------------------------------------------------------------------ across OS processes
    def test_two_processes_agree_on_every_claim(self, store_url: str, tmp_path: Path) -> None:
        """Two processes claim the same keys in opposite orders: they meet in the middle and contend
        there; every key has one winner, which both saw."""
        if not self.cross_process:
            pytest.skip("this store lives in one process")
        keys = self.race_keys
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                         os.environ.get("PYTHONPATH")]))}
        procs = [subprocess.Popen([sys.executable, str(CLAIMER), store_url, f"p{n}", str(keys), order,
                                   str(tmp_path), "2"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for n, order in enumerate(("fwd", "rev"))]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.splitlines()[-1]))
        first, second = results
        assert len(first) == len(second) == keys
        assert first == second  # both processes saw the same winner for every key
        assert set(first.values()) == {"p0", "p1"}  # both started before the other finished: a race
