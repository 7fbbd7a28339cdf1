"""The StageFlow state store's behaviour suite on the in-process backends: memory:// and SQLite."""
from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mmate_fast.errors import FlowStoreError, FlowStoreUnavailableError, InvalidArgumentError
from mmate_fast.stageflow.store import FlowStore, open_store
from tests.flow_store_suite import FlowStoreSuite, record


class TestMemoryStore(FlowStoreSuite):
    cross_process = False

    @pytest.fixture
    def store_url(self) -> str:
        return f"memory://suite-{uuid.uuid4().hex}"

    @pytest.fixture
    async def store(self, store_url: str) -> AsyncIterator[FlowStore]:
        opened = open_store(store_url)
        yield opened
        await opened.close()


async def test_each_plain_memory_url_is_a_private_store() -> None:
    one, two = open_store("memory://"), open_store("memory://")
    await one.save(record())
    assert await two.get("i-1") is None
    assert await one.get("i-1") == record()


@pytest.mark.parametrize("url", ["", "nothing", "redis://host/0", "memory://a/b", "memory://a?x=1",
                                 "mysql://u:secret@h/db"])
def test_a_bad_url_names_the_accepted_schemes(url: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        open_store(url)
    assert "memory://" in str(info.value) and "secret" not in str(info.value)


class TestSQLiteFileStore(FlowStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'flows.db'}"  # an absolute path: sqlite:////tmp/...

    @pytest.fixture
    async def store(self, store_url: str) -> AsyncIterator[FlowStore]:
        opened = open_store(store_url)
        yield opened
        await opened.close()


class TestSQLiteInMemoryStore(FlowStoreSuite):
    cross_process = False
    shared_by_url = False

    @pytest.fixture
    def store_url(self) -> str:
        return "sqlite:///:memory:"

    @pytest.fixture
    async def store(self, store_url: str) -> AsyncIterator[FlowStore]:
        opened = open_store(store_url)
        yield opened
        await opened.close()


# ---------------------------------------------------------------------------- SQLite specifics
async def test_a_relative_sqlite_path_is_relative_to_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///sub.db")
    try:
        await store.save(record())
    finally:
        await store.close()
    assert (tmp_path / "sub.db").is_file()
    with sqlite3.connect(tmp_path / "sub.db") as conn:
        assert conn.execute("SELECT instance_id, version FROM flows").fetchall() == [("i-1", 1)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_sqlite_file_in_a_missing_folder_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'flows.db'}"
    with pytest.raises(FlowStoreUnavailableError, match="folder exists") as info:
        open_store(url)
    assert info.value.url == url


def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(FlowStoreUnavailableError, match="StageFlow store"):
        open_store(f"sqlite:///{tmp_path / 'junk.db'}")


@pytest.mark.parametrize("url", ["sqlite://host/x.db", "sqlite://", "sqlite:///", "sqlite:///x.db?timeout=0",
                                 "sqlite:///x.db?timeout=abc", "sqlite:///x.db?mode=ro"])
def test_a_bad_sqlite_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="SQLite store URL"):
        open_store(url)


async def test_a_lock_held_too_long_by_another_process_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = open_store(f"sqlite:///{path}?timeout=0.2")
    try:
        await store.save(record())
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock, as a busy writer in another process
        try:
            with pytest.raises(FlowStoreError, match=r"held the database lock for more than 0\.2s"):
                await store.save(record(version=2))
            assert (await store.get("i-1")) == record()  # reads still work (WAL)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await store.save(record(version=2))  # and the store goes on once the lock is gone
        got = await store.get("i-1")
        assert got is not None and got.version == 2
    finally:
        await store.close()


async def test_one_failing_statement_fails_alone(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        results = await asyncio.gather(store.save(record("a")), store.list(status=object()),  # type: ignore[arg-type]
                                       store.save(record("b")), return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], FlowStoreError) and "list failed" in str(results[1])
        assert [r.instance_id for r in await store.list()] == ["a", "b"]
    finally:
        await store.close()


async def test_a_call_that_waited_longer_than_the_timeout_for_its_turn_fails(tmp_path: Path) -> None:
    """The writer thread is busy (here: an operation that takes longer than the timeout); a call
    queued behind it fails with the named error instead of waiting without bound, and the store goes on."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'slow.db'}?timeout=0.2")
    assert isinstance(store, SQLiteFlowStore)
    try:
        # a write on the writer thread: the writes after it queue there too (in order)
        slow = asyncio.ensure_future(store._call(lambda conn: time.sleep(0.5), (), True, "slow"))
        await asyncio.sleep(0.05)  # the thread is in it now
        with pytest.raises(FlowStoreError, match=r"claim_stage waited more than 0\.2s for its turn"):
            await store.claim_stage("i-1", "stage0", "{}")
        await slow
        assert await store.stage_result("i-1", "stage0") is None
    finally:
        await store.close()


async def test_reads_are_answered_on_the_calling_thread_while_the_writer_is_busy(tmp_path: Path) -> None:
    """get / stage_result of a file store read on the caller's own read-only connection: a busy
    writer thread does not hold them up, and they see everything committed."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'reads.db'}")
    assert isinstance(store, SQLiteFlowStore)
    try:
        await store.save(record())
        assert await store.claim_stage("i-1", "stage0", "won") == "won"
        slow = asyncio.ensure_future(store._call(lambda conn: time.sleep(0.5), (), False, "slow"))
        await asyncio.sleep(0.05)  # the writer thread is in it now
        assert await store.get("i-1") == record()
        assert await store.stage_result("i-1", "stage0") == "won"
        assert await store.stage_result("i-1", "stage1") is None
        assert not slow.done()  # answered without the writer thread
        await slow
    finally:
        await store.close()


async def test_a_read_the_calling_thread_cannot_do_goes_to_the_writer_thread(tmp_path: Path) -> None:
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'fallback.db'}")
    assert isinstance(store, SQLiteFlowStore)
    try:
        await store.save(record())
        await store.claim_stage("i-1", "stage0", "won")
        conn = store._conn()
        assert conn is not None
        conn.close()  # this thread's connection is broken: every read on it fails
        assert await store.get("i-1") == record()
        assert await store.stage_result("i-1", "stage0") == "won"
    finally:
        await store.close()


async def test_a_save_nowait_that_fails_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Nobody awaits a save_nowait: when it cannot be written (here: it waited longer than the
    timeout behind a slow call), the named error is logged as a warning."""
    store = open_store(f"sqlite:///{tmp_path / 'nowait.db'}?timeout=0.2")
    try:
        slow = asyncio.ensure_future(store._call(lambda conn: time.sleep(0.5), (), True, "slow"))  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)  # a write on the writer thread: the save_nowait queues behind it
        with caplog.at_level("WARNING", logger="mmate_fast.stageflow"):
            store.save_nowait(record())  # type: ignore[attr-defined]
            await slow
            await store.claim_stage("i-1", "k", "v")  # the batch after the stale save is done
            await asyncio.sleep(0.05)  # its settling reached the loop
        assert any("save waited more than 0.2s" in r.getMessage() for r in caplog.records)
        assert await store.get("i-1") is None
    finally:
        await store.close()


async def test_the_wal_is_checkpointed_off_the_writer_thread(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer connection never checkpoints (wal_autocheckpoint = 0): the checkpointer thread
    copies the WAL's pages into the database file (without it the file would keep its first page
    only until close); close stops the thread."""
    import threading

    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "CHECKPOINT_EVERY", 5)
    path = tmp_path / "wal.db"
    store = open_store(f"sqlite:///{path}")
    try:
        assert path.stat().st_size <= 4096 * 8  # the schema: the pages are in the WAL
        for v in range(1, 51):
            await store.save(record(f"i-{v}", state=f'"{"x" * 20_000}"'))
        async with asyncio.timeout(10):  # the checkpointer runs beside the writer: wait for it
            while path.stat().st_size < 50 * 20_000:
                await asyncio.sleep(0.01)
        writer = sqlite3.connect(path)
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # others: SQLite's default
        writer.close()
    finally:
        await store.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("mmate-flowstore-checkpoint")]


async def test_writes_run_on_the_calling_thread_batched_per_loop_turn(tmp_path: Path) -> None:
    """The writes issued in one loop turn go in one transaction on the caller's own connection, with
    no trip to the writer thread: they are answered while that thread is busy."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'inline.db'}")
    assert isinstance(store, SQLiteFlowStore)
    try:
        await store.save(record("warm-up"))
        slow = asyncio.ensure_future(store._call(lambda conn: time.sleep(0.5), (), False, "slow"))
        await asyncio.sleep(0.05)  # the writer thread is in it now (a read: writes need not wait)
        commits = store._write_commits
        results = await asyncio.gather(store.save(record()), store.claim_stage("i-1", "k", "v"),
                                       store.claim_stage_and_save("i-1", "j", "w", record(version=2)))
        assert results == [None, "v", "w"]
        assert store._write_commits == commits + 1  # one transaction
        assert not slow.done()  # answered without the writer thread
        got = await store.get("i-1")
        assert got is not None and got.version == 2
        await slow
    finally:
        await store.close()


async def test_writes_wait_for_another_process_on_the_writer_thread(tmp_path: Path) -> None:
    """The write lock is taken (another process): the batch goes to the writer thread, which waits
    for it off the event loop; the loop goes on meanwhile."""
    path = tmp_path / "taken.db"
    store = open_store(f"sqlite:///{path}")
    try:
        await store.save(record())
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        saving = asyncio.ensure_future(store.save(record(version=2)))
        try:
            for _ in range(5):
                await asyncio.sleep(0.01)  # the loop turns while the save waits
            assert not saving.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await saving
        got = await store.get("i-1")
        assert got is not None and got.version == 2
    finally:
        await store.close()


async def test_a_write_lock_held_briefly_elsewhere_is_waited_for_on_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline writes try again from the loop while another process holds the lock (the writes issued
    meanwhile join them, in order); only after INLINE_LOCK_WAIT do they go to the writer thread."""
    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "INLINE_LOCK_WAIT", 30.0)  # never the writer thread here
    path = tmp_path / "brief.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, _sqlite.SQLiteFlowStore)
    try:
        await store.save(record())
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(store.save(record(version=3)))
        await asyncio.sleep(0.02)
        later = asyncio.ensure_future(store.save(record(version=2, status="older")))  # queued behind
        await asyncio.sleep(0.02)
        assert not first.done() and not later.done()
        blocker.execute("ROLLBACK")
        blocker.close()
        await asyncio.gather(first, later)
        assert store._writes_handed == 0  # all on the loop's connection
        got = await store.get("i-1")
        assert got is not None and got.version == 3 and got.status == "running"
    finally:
        await store.close()


def test_a_busy_write_lock_is_tried_again_at_most_every_millisecond_on_uvloop(tmp_path: Path) -> None:
    """uvloop runs a timer of less than 0.5 ms on the next loop turn: the retries after a refused
    ``BEGIN IMMEDIATE`` must not spin an idle loop (they were hundreds in 40 ms, now a few, the pause
    doubling from 1 ms up to ``INLINE_LOCK_PAUSE_MAX``)."""
    uvloop = pytest.importorskip("uvloop")
    from mmate_fast.stageflow.store import _sqlite

    path = tmp_path / "spin.db"
    tries: list[str] = []
    held_ms: list[float] = []

    async def main() -> None:
        store = open_store(f"sqlite:///{path}")
        assert isinstance(store, _sqlite.SQLiteFlowStore)
        try:
            await store.save(record())
            conn = store._conn()
            assert conn is not None
            conn.set_trace_callback(lambda sql: tries.append(sql) if sql == "BEGIN IMMEDIATE" else None)
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            loop = asyncio.get_running_loop()
            began = loop.time()
            saved = asyncio.ensure_future(store.save(record(version=2)))
            await asyncio.sleep(0.04)  # the loop idles meanwhile (as a starter's between flows)
            assert not saved.done()
            held_ms.append((loop.time() - began) * 1000)
            blocker.execute("ROLLBACK")
            blocker.close()
            await saved
            if held_ms[0] < _sqlite.INLINE_LOCK_WAIT * 1000:  # a loaded machine may sleep past it
                assert store._writes_handed == 0
        finally:
            await store.close()

    uvloop.run(main())
    # 40 ms: tries at ~0, 1, 2, 4, 8, 12, 16, ... ms (then the writer thread's, not traced here); a
    # spin would be one every few µs. The bound follows how long the lock was really held (a loaded
    # machine oversleeps), capped at the tries before the hand-over to the writer thread.
    bound = 6 + min(held_ms[0], _sqlite.INLINE_LOCK_WAIT * 1000) / 2
    assert 3 <= len(tries) <= bound, (len(tries), held_ms)


async def test_opening_an_existing_store_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """open_store is synchronous: on a store whose schema exists it only reads, so another process
    holding the write lock does not block the caller's event loop."""
    path = tmp_path / "busy.db"
    first = open_store(f"sqlite:///{path}")
    await first.save(record())
    await first.close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store = open_store(f"sqlite:///{path}?timeout=0.2")  # would fail after 0.2 s if it wrote
        try:
            assert await store.get("i-1") == record()
        finally:
            await store.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def _bad_records() -> list[tuple[str, object]]:
    """One wrong field at a time, each a value that only the field-by-field check used to see."""
    class Text(str):
        pass

    return [("instance_id", ""), ("instance_id", None), ("instance_id", "a\x00"), ("workflow_id", 1),
            ("workflow_id", "w\x00"), ("status", None), ("status", "s\x00"), ("state_json", b"{}"),
            ("state_json", "{\x00}"), ("worker", None), ("worker", "w\x00"), ("current_stage", 3),
            ("current_stage", "c\x00"), ("error", 1.5), ("error", "e\x00"), ("version", True),
            ("version", 2**63), ("version", -(2**63) - 1), ("version", 1.0), ("started_ns", "1"),
            ("updated_ns", 2**64), ("instance_id", Text("i"))]


@pytest.mark.parametrize(("field", "value"), _bad_records())
def test_check_record_refuses_each_wrong_field_by_name(field: str, value: object) -> None:
    """The engine's fast path accepts only what the field-by-field check accepts (a str subclass
    goes the slow way, which takes it)."""
    from dataclasses import replace

    from mmate_fast.errors import InvalidArgumentError
    from mmate_fast.stageflow.store import FlowRecord
    from mmate_fast.stageflow.store._record import _check_record, check_record

    good = FlowRecord("i-1", "wf", "running", 2, None, None, 1, 2, "{}", "w")
    assert check_record(good) is good and check_record(replace(good, current_stage="s", error="e"))
    bad = replace(good, **{field: value})
    try:
        _check_record(bad)
    except InvalidArgumentError as slow:
        with pytest.raises(InvalidArgumentError) as fast:
            check_record(bad)
        assert str(fast.value) == str(slow) and field in str(fast.value)
    else:
        assert check_record(bad) is bad


@pytest.mark.parametrize(("instance_id", "stage_key", "named"),
                         [("", "k", "instance_id"), ("i", "", "stage_key"), (None, "k", "instance_id"),
                          ("i", 1, "stage_key"), ("i\x00", "k", "instance_id"), ("i", "k\x00", "stage_key")])
def test_check_key_names_the_wrong_part(instance_id: object, stage_key: object, named: str) -> None:
    from mmate_fast.errors import InvalidArgumentError
    from mmate_fast.stageflow.store._record import check_key

    check_key("i-1", "stage0")
    with pytest.raises(InvalidArgumentError) as err:
        check_key(instance_id, stage_key)
    assert err.value.argument == named


async def test_reads_join_the_loop_turns_write_batch(tmp_path: Path) -> None:
    """get / stage_result issued in the same loop turn as writes run in their transaction, in order:
    a read queued after a write sees it, one before does not, and the turn costs one transaction
    (no read transaction of its own for the reads before the first write, while the lock is free)."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'mixed.db'}")
    assert isinstance(store, SQLiteFlowStore)
    try:
        await store.save(record("warm-up"))
        commits = store._write_commits
        conn = store._conn()
        assert conn is not None
        begins: list[str] = []
        conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
        results = await asyncio.gather(
            store.stage_result("i-1", "stage0"), store.get("i-1"), store.save(record()),
            store.claim_stage("i-1", "stage0", "won"), store.stage_result("i-1", "stage0"), store.get("i-1"))
        assert results == [None, None, None, "won", "won", record()]
        assert store._write_commits == commits + 1
        assert begins == ["BEGIN IMMEDIATE"]
        assert store._writes_handed == 0  # all on the loop's connection
    finally:
        await store.close()


async def test_reads_no_queued_write_touches_are_answered_while_another_process_holds_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that writes waits for a lock another process holds; its reads that no write queued
    before them touches (before the first write, or of another instance) are answered at once
    (they need no lock), a read of a written instance after the lock is free."""
    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "INLINE_LOCK_WAIT", 30.0)  # never the writer thread here
    path = tmp_path / "reads-first.db"
    store = open_store(f"sqlite:///{path}")
    try:
        await store.save(record())
        await store.claim_stage("i-1", "stage0", "won")
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            read = asyncio.ensure_future(store.stage_result("i-1", "stage0"))
            write = asyncio.ensure_future(store.claim_stage("i-1", "stage1", "mine"))
            after = asyncio.ensure_future(store.stage_result("i-1", "stage1"))
            other = asyncio.ensure_future(store.get("i-2"))
            saved = asyncio.ensure_future(store.save(record("i-3")))
            written = asyncio.ensure_future(store.get("i-3"))
            assert await asyncio.wait_for(read, 5) == "won"
            assert await asyncio.wait_for(other, 5) is None
            await asyncio.sleep(0.02)
            assert not write.done() and not after.done() and not saved.done() and not written.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await write == "mine"
        assert await after == "mine"
        await saved
        assert await written == record("i-3")
    finally:
        await store.close()


async def test_get_ended_waits_for_a_queued_write_of_any_of_its_instances(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_ended`` reads several instances: while another process holds the lock, it is answered
    at once only when no write queued before it touches any of them, else after that write."""
    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "INLINE_LOCK_WAIT", 30.0)  # never the writer thread here
    path = tmp_path / "ended-order.db"
    store = open_store(f"sqlite:///{path}")
    try:
        await store.save(record("i-1"))
        await store.save(record("i-2", status="completed"))
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            store.save_nowait(record("i-1", status="completed", version=2))
            untouched = asyncio.ensure_future(store.get_ended(["i-2", "i-3"]))
            touched = asyncio.ensure_future(store.get_ended(["i-2", "i-1"]))
            assert [r.instance_id for r in await asyncio.wait_for(untouched, 5)] == ["i-2"]
            await asyncio.sleep(0.02)
            assert not touched.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert sorted(r.instance_id for r in await touched) == ["i-1", "i-2"]
    finally:
        await store.close()


def test_get_ended_seeks_the_instance_id_index() -> None:
    """One statement per chunk of ids, each a seek in the instance id index (no scan of flows)."""
    from mmate_fast.stageflow.store import _sqlite

    conn = sqlite3.connect(":memory:", isolation_level=None)
    _sqlite._migrate(conn)
    plans: list[str] = []
    real = conn.execute

    class Spy:
        def execute(self, sql: str, args: Any = ()) -> Any:
            plans.extend(row[3] for row in real("EXPLAIN QUERY PLAN " + sql, args))
            return real(sql, args)

    assert _sqlite._get_ended(Spy(), ["a", "b"]) == []  # type: ignore[arg-type]
    assert plans and all("USING INDEX sqlite_autoindex_flows" in p for p in plans if "flows" in p), plans
    sqls: list[str] = []
    conn.set_trace_callback(sqls.append)
    for n in (1, 3, 8, 9, 31, 100, 129, 700):  # padded to a few statement sizes (the statement cache)
        assert _sqlite._get_ended(conn, [f"x-{k}" for k in range(n)]) == []
    sizes = {sql.split(" IN (", 1)[1].split(")", 1)[0].count(",") + 1 for sql in sqls}
    assert sizes <= {8, 32, 128, 500}, sizes


async def test_a_claim_lost_to_another_connection_returns_the_winner(tmp_path: Path) -> None:
    """claim_stage reads the stored result back only when its insert did nothing: a claim another
    connection made first is returned, not ours."""
    path = tmp_path / "lost.db"
    store = open_store(f"sqlite:///{path}")
    try:
        await store.get("open")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("INSERT INTO stage_results VALUES ('i-1', 'stage0', 'theirs', 1)")
        other.close()
        assert await store.claim_stage("i-1", "stage0", "ours") == "theirs"
        assert await store.claim_stage("i-1", "stage1", "ours") == "ours"
    finally:
        await store.close()


async def test_a_big_wal_after_a_passive_checkpoint_is_restarted(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpointer follows a passive checkpoint that leaves more than RESTART_FRAMES frames
    with a restart (writers that never pause would otherwise grow the WAL without end)."""
    import threading

    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "CHECKPOINT_EVERY", 1)
    monkeypatch.setattr(_sqlite, "RESTART_FRAMES", 0)
    restarted = threading.Event()
    monkeypatch.setattr(_sqlite._Checkpointer, "_restart", lambda self, conn: restarted.set())
    store = open_store(f"sqlite:///{tmp_path / 'restart.db'}")
    try:
        for v in range(1, 6):
            await store.save(record(version=v))
        assert await asyncio.get_running_loop().run_in_executor(None, restarted.wait, 10)
    finally:
        await store.close()


async def test_a_wal_restart_waits_for_readers_then_the_wal_starts_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader on an old snapshot keeps a passive checkpoint from catching up; the restart waits
    for it (polling), and the next commit writes the WAL from its start."""
    import threading

    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "CHECKPOINT_EVERY", 10**9)  # no checkpoints but this test's
    monkeypatch.setattr(_sqlite, "RESTART_WAIT_MS", 10_000)
    path = tmp_path / "reader.db"
    store = open_store(f"sqlite:///{path}")
    probe = sqlite3.connect(path, isolation_level=None)
    reader = sqlite3.connect(path, isolation_level=None)
    checkpointer = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        await store.save(record())
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM flows").fetchone()  # holds this snapshot
        for v in range(2, 40):
            await store.save(record(version=v, state=f'"{"x" * 5000}"'))
        _, log, done = checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert done < log  # the reader's snapshot holds it back
        restart = threading.Thread(target=_sqlite._Checkpointer(str(path), "test")._restart,
                                   args=(checkpointer,))
        restart.start()
        await asyncio.sleep(0.1)
        assert restart.is_alive()  # waiting for the reader
        reader.execute("COMMIT")
        await asyncio.get_running_loop().run_in_executor(None, restart.join, 10)
        assert not restart.is_alive()
        await store.save(record(version=40))
        log = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        assert log < 10  # the last commit's frames only
        got = await store.get("i-1")
        assert got is not None and got.version == 40
    finally:
        for conn in (probe, reader, checkpointer):
            conn.close()
        await store.close()


_CRASH = """
import asyncio, os, sys
from mmate_fast.stageflow.store import open_store
from tests.flow_store_suite import record

async def main():
    store = open_store(sys.argv[1])
    await store.save(record())
    assert await store.claim_stage("i-1", "stage0", "done") == "done"
    assert await store.claim_stage_and_save("i-1", "stage1", "last", record(version=2)) == "last"
    print("CLAIMED", flush=True)
    os.kill(os.getpid(), 9)  # no close, no checkpoint: the commits are in the WAL only

asyncio.run(main())
"""


async def test_a_claimed_stage_survives_a_crash_of_the_process(tmp_path: Path) -> None:
    """What claim_stage / claim_stage_and_save returned is committed: a process killed right after
    (SIGKILL, no close) leaves it in the file for the next one."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "crash.db"
    proc = subprocess.run([sys.executable, "-c", _CRASH, f"sqlite:///{path}"], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "CLAIMED" in proc.stdout
    store = open_store(f"sqlite:///{path}")
    try:
        assert await store.stage_result("i-1", "stage0") == "done"
        assert await store.stage_result("i-1", "stage1") == "last"
        assert await store.get("i-1") == record(version=2)
    finally:
        await store.close()


#: the schema of the first SQLite store (user_version 0): three full indexes on updated_ns
_SCHEMA_0 = (
    """CREATE TABLE flows (
        instance_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, status TEXT NOT NULL,
        version INTEGER NOT NULL, current_stage TEXT, error TEXT, started_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL, state_json TEXT NOT NULL, worker TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE stage_results (
        instance_id TEXT NOT NULL, stage_key TEXT NOT NULL, result_json TEXT NOT NULL,
        created_ns INTEGER NOT NULL, PRIMARY KEY (instance_id, stage_key)) WITHOUT ROWID""",
    "CREATE INDEX flows_by_updated ON flows (updated_ns DESC, instance_id)",
    "CREATE INDEX flows_by_status ON flows (status, updated_ns DESC, instance_id)",
    "CREATE INDEX flows_by_workflow ON flows (workflow_id, updated_ns DESC, instance_id)",
)


async def test_a_store_file_of_the_first_schema_is_migrated(tmp_path: Path) -> None:
    """A file written by the first SQLite store (full indexes, user_version 0) opens: its indexes
    are replaced by the partial ones, its records and claims are all there and list as before."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode = WAL")
    for statement in _SCHEMA_0:
        old.execute(statement)
    recs = [record(f"i-{n}", status=("running", "completed", "failed")[n % 3], workflow="ab"[n % 2],
                   updated=100 + n) for n in range(9)]
    for r in recs:
        old.execute("INSERT INTO flows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.instance_id, r.workflow_id, r.status, r.version, r.current_stage, r.error,
                     r.started_ns, r.updated_ns, r.state_json, r.worker))
    old.execute("INSERT INTO stage_results VALUES ('i-0', 'stage0', 'won', 1)")
    old.close()
    store = open_store(f"sqlite:///{path}")
    try:
        newest = sorted(recs, key=lambda r: -r.updated_ns)
        assert await store.list() == newest
        assert await store.list(status="running", workflow="a") == [
            r for r in newest if r.status == "running" and r.workflow_id == "a"]
        assert await store.list(status="failed") == [r for r in newest if r.status == "failed"]
        assert await store.stage_result("i-0", "stage0") == "won"
        await store.save(record("i-0", version=2, status="completed", updated=500))
        assert [r.instance_id for r in await store.list(status="completed", limit=1)] == ["i-0"]
    finally:
        await store.close()
    check = sqlite3.connect(path)
    names = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert check.execute("PRAGMA user_version").fetchone()[0] == 4
    assert check.execute("SELECT flow, stage_key FROM claims").fetchall() == [(1, "stage0")]
    assert check.execute("SELECT count(*) FROM stage_results").fetchone()[0] == 0
    check.close()
    assert not names & {"flows_by_updated", "flows_by_status", "flows_by_workflow", "flows_ended",
                        "flows_ended_by_status", "flows_ended_by_workflow", "flows_running"}
    assert {"flows_in_flight", "flows_ended_runs"} <= names


#: schema 2 (user_version 2): flows keyed by instance id, every claim in stage_results
_SCHEMA_2 = (*_SCHEMA_0[:2],
             "CREATE INDEX flows_running ON flows (updated_ns DESC, instance_id) WHERE status = 'running'",
             "CREATE INDEX flows_ended ON flows (updated_ns DESC, instance_id) WHERE status <> 'running'",
             "CREATE INDEX flows_ended_by_status ON flows (status, updated_ns DESC, instance_id) "
             "WHERE status <> 'running'",
             "CREATE INDEX flows_ended_by_workflow ON flows (workflow_id, updated_ns DESC, instance_id) "
             "WHERE status <> 'running'",
             "PRAGMA user_version = 2")


async def test_a_store_file_of_schema_2_is_migrated(tmp_path: Path) -> None:
    """A schema-2 file opens as schema 4: ``flows`` gets its sequence numbers in start order, the
    claims of stored instances move to ``claims``, a claim of an instance without a record stays
    until its first save; every claim still wins against a later one."""
    path = tmp_path / "v2.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode = WAL")
    for statement in _SCHEMA_2:
        old.execute(statement)
    recs = [dataclasses.replace(record(f"i-{n}", updated=100 + n), started_ns=10 - n) for n in range(3)]
    for r in recs:
        old.execute("INSERT INTO flows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.instance_id, r.workflow_id, r.status, r.version, r.current_stage, r.error,
                     r.started_ns, r.updated_ns, r.state_json, r.worker))
    old.executemany("INSERT INTO stage_results VALUES (?, ?, ?, 1)",
                    [("i-0", "stage0", "a"), ("i-2", "stage1", "b"), ("i-9", "stage0", "early")])
    old.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert await store.list() == sorted(recs, key=lambda r: -r.updated_ns)
        assert await store.claim_stage("i-0", "stage0", "late") == "a"
        assert await store.claim_stage("i-2", "stage1", "late") == "b"
        assert await store.claim_stage("i-9", "stage0", "late") == "early"
        assert await store.stage_result("i-9", "stage0") == "early"
        await store.save(record("i-9"))
        assert await store.claim_stage("i-9", "stage0", "later") == "early"
    finally:
        await store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == 4
    assert check.execute("SELECT seq, instance_id FROM flows ORDER BY seq").fetchall() == [
        (1, "i-2"), (2, "i-1"), (3, "i-0"), (4, "i-9")]
    assert check.execute("SELECT flow, stage_key, result_json FROM claims ORDER BY flow").fetchall() == [
        (1, "stage1", "b"), (3, "stage0", "a"), (4, "stage0", "early")]
    assert check.execute("SELECT count(*) FROM stage_results").fetchone()[0] == 0
    check.close()


async def test_a_store_file_of_schema_3_is_migrated(tmp_path: Path) -> None:
    """A schema-3 file (running flows indexed by ``updated_ns``: ``flows_running``) opens as schema 4:
    that index is replaced by ``flows_in_flight``, the records and claims are all there, list() returns
    them in the same order, and a running flow's save after a hop works on the migrated file."""
    from mmate_fast.stageflow.store import _sqlite

    path = tmp_path / "v3.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode = WAL")
    _sqlite._migrate(old)  # the tables of schema 3 and 4 are the same: only the running index differs
    old.execute("DROP INDEX flows_in_flight")
    old.execute("CREATE INDEX flows_running ON flows (updated_ns DESC, instance_id) WHERE status = 'running'")
    old.execute("PRAGMA user_version = 3")
    recs = [record(f"i-{n}", status=("running", "completed", "failed")[n % 3], workflow="ab"[n % 2],
                   updated=100 + n) for n in range(9)]
    for r in recs:
        _sqlite._save(old, r)
    _sqlite._claim(old, "i-0", "stage0", "won")
    _sqlite._claim(old, "i-99", "stage0", "early")
    old.close()
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, _sqlite.SQLiteFlowStore)
    try:
        newest = sorted(recs, key=lambda r: -r.updated_ns)
        assert await store.list() == newest
        assert await store.list(status="running") == [r for r in newest if r.status == "running"]
        assert await store.list(status="running", workflow="a", limit=1) == [
            r for r in newest if r.status == "running" and r.workflow_id == "a"][:1]
        assert await store.stage_result("i-0", "stage0") == "won"  # learns i-0's number
        assert await store.claim_stage("i-0", "stage0", "late") == "won"
        hop = record("i-0", version=2, updated=900, stage=None, state="{\"hop\": 1}")
        await store.save(hop)  # a running flow's save by its number
        assert await store.get("i-0") == hop
        assert (await store.list(status="running", limit=1)) == [hop]
        await store.save(record("i-99"))
        assert await store.stage_result("i-99", "stage0") == "early"
    finally:
        await store.close()
    check = sqlite3.connect(path)
    names = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert check.execute("PRAGMA user_version").fetchone()[0] == 4
    check.close()
    assert "flows_running" not in names and {"flows_in_flight", "flows_ended_runs"} <= names


def test_a_running_flows_save_by_number_leaves_its_index_entries_alone(tmp_path: Path) -> None:
    """A running flow's save whose row is running too (the save after a hop), by the instance's
    known number, is one narrow UPDATE that writes none of the indexed columns but ``updated_ns``;
    a save that changes the status, the workflow or the start time, or an older version, goes on to
    the full statements and saves (or ignores) the whole record as before."""
    from mmate_fast.stageflow.store import _sqlite

    conn = sqlite3.connect(tmp_path / "narrow.db", isolation_level=None)
    _sqlite._migrate(conn)
    seqs: dict[str, int] = {}
    _sqlite._save(conn, record("i-1"), seqs)
    assert _sqlite._stage(conn, "i-1", "stage0", seqs) is None and seqs == {"i-1": 1}
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    hop = record("i-1", version=2, updated=2_000, stage=None, worker="w2")
    _sqlite._save(conn, hop, seqs)
    assert [s.split(" SET ", 1)[0] for s in statements] == ["UPDATE flows"]
    assert "status =" not in statements[0].split(" WHERE ", 1)[0] and "workflow_id =" not in (
        statements[0].split(" WHERE ", 1)[0])
    conn.set_trace_callback(None)
    assert _sqlite._get(conn, "i-1") == hop
    for changed in (dataclasses.replace(hop, version=3, workflow_id="other"),
                    dataclasses.replace(hop, version=4, started_ns=7),
                    dataclasses.replace(hop, version=5, status="completed", updated_ns=3_000)):
        _sqlite._save(conn, changed, seqs)
        assert _sqlite._get(conn, "i-1") == changed
    _sqlite._save(conn, dataclasses.replace(hop, version=1), seqs)  # older: nothing changes
    assert _sqlite._get(conn, "i-1").version == 5  # type: ignore[union-attr]
    assert _sqlite._list(conn, "running", None, 10, 0) == []
    assert [r.instance_id for r in _sqlite._list(conn, "completed", None, 10, 0)] == ["i-1"]
    conn.close()


async def test_a_claim_before_the_first_save_keeps_winning(tmp_path: Path) -> None:
    """A claim of an instance the store has no record of (a flow another engine started) is kept
    apart; the instance's first save adopts it, and it wins against every later claim."""
    store = open_store(f"sqlite:///{tmp_path / 'early.db'}")
    try:
        assert await store.claim_stage("i-1", "stage0", "first") == "first"
        assert await store.claim_stage("i-1", "stage0", "second") == "first"
        await store.save(record("i-1"))
        assert await store.claim_stage("i-1", "stage0", "third") == "first"
        assert await store.stage_result("i-1", "stage0") == "first"
        assert await store.claim_stage_and_save("i-1", "stage1", "next", record("i-1", version=2)) == "next"
        assert await store.claim_stage_and_save("i-2", "stage0", "new", record("i-2")) == "new"
        assert await store.claim_stage("i-2", "stage0", "again") == "new"
        assert (await store.get("i-2")) == record("i-2")
    finally:
        await store.close()


def test_a_store_file_of_a_newer_schema_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    first = open_store(f"sqlite:///{path}")
    asyncio.run(first.close())
    newer = sqlite3.connect(path, isolation_level=None)
    newer.execute("PRAGMA user_version = 99")
    newer.close()
    with pytest.raises(FlowStoreUnavailableError, match="schema version 99, made by a newer mmate_fast"):
        open_store(f"sqlite:///{path}")


@pytest.mark.parametrize(("status", "workflow"), [(None, None), (None, "a"), ("running", None),
                                                  ("running", "a"), ("failed", None), ("failed", "a")])
def test_list_reads_indexes_in_order_without_sorting(status: str | None, workflow: str | None) -> None:
    """Every list() filter walks indexes in the order it returns (the ended flows' index in runs, one
    per workflow and status, merged, with the running flows when no status is asked): no full-table
    scan or sort, however many flows the store holds; only the flows in flight (``flows_in_flight``,
    which a save after a hop does not move: schema 4) are sorted."""
    from mmate_fast.stageflow.store import _sqlite

    conn = sqlite3.connect(":memory:", isolation_level=None)
    _sqlite._migrate(conn)
    recs = [record(f"i-{n}", status=("running", "completed", "failed", "compensated")[n % 4],
                   workflow="ab"[n % 2], updated=100 + n % 7) for n in range(16)]
    for r in recs:
        _sqlite._save(conn, r)
    plans: list[str] = []
    real = conn.execute

    class Spy:
        def execute(self, sql: str, args: tuple[object, ...] = ()) -> object:
            plans.extend(str(row[3]) for row in real("EXPLAIN QUERY PLAN " + sql, args))
            return real(sql, args)

    expected = sorted((r for r in recs if (status is None or r.status == status)
                       and (workflow is None or r.workflow_id == workflow)),
                      key=lambda r: (-r.updated_ns, r.instance_id))
    assert _sqlite._list(Spy(), status, workflow, 10, 0) == expected[:10]  # type: ignore[arg-type]
    assert plans and not [p for p in plans if p.startswith("SCAN flows") and "INDEX" not in p]
    sorts = [i for i, p in enumerate(plans) if "TEMP B-TREE" in p]
    if status in (None, "running"):  # the running flows, right after they are found by their index
        assert len(sorts) == 1 and plans[sorts[0]] == "USE TEMP B-TREE FOR ORDER BY", plans
        assert plans[sorts[0] - 1] == "SEARCH flows USING INDEX flows_in_flight (status=?)", plans
    else:
        assert not sorts, plans
    assert any("flows_in_flight" in p or "flows_ended" in p for p in plans)


@pytest.mark.parametrize(("status", "workflow"), [(None, None), (None, "w1"), ("s3", None), ("s3", "w1")])
def test_list_past_the_merged_runs_sorts(status: str | None, workflow: str | None) -> None:
    """Past MAX_MERGED_RUNS runs (workflow x status) list() sorts the ended flows instead of merging
    a run each: the same records in the same order."""
    from mmate_fast.stageflow.store import _sqlite

    conn = sqlite3.connect(":memory:", isolation_level=None)
    _sqlite._migrate(conn)
    recs = [record(f"i-{n}", status="running" if n % 5 == 0 else f"s{n % 9}", workflow=f"w{n % 4}",
                   updated=100 + n % 11) for n in range(80)]
    for r in recs:
        _sqlite._save(conn, r)
    newest = [r for r in sorted(recs, key=lambda r: (-r.updated_ns, r.instance_id))
              if (status is None or r.status == status) and (workflow is None or r.workflow_id == workflow)]
    assert len(newest) >= 2
    for cap in (_sqlite.MAX_MERGED_RUNS, 2):
        limit = _sqlite.MAX_MERGED_RUNS
        try:
            _sqlite.MAX_MERGED_RUNS = cap
            assert _sqlite._list(conn, status, workflow, 100, 0) == newest
            assert _sqlite._list(conn, status, workflow, 3, 1) == newest[1:4]
        finally:
            _sqlite.MAX_MERGED_RUNS = limit
    assert _sqlite._list(conn, "nobody", None, 10, 0) == []


async def test_a_wrong_remembered_number_never_touches_another_flow(tmp_path: Path) -> None:
    """The store remembers each instance's row number (learned by stage_result) and checks it against
    the instance id wherever it uses it: a number that names another instance's row (one read in a
    transaction that was rolled back, whose number a later insert took) falls back to the id."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'seq.db'}")
    assert isinstance(store, SQLiteFlowStore)
    try:
        await store.save(record("i-1"))
        await store.save(record("i-2", state="{\"two\": 1}"))
        assert await store.stage_result("i-1", "stage0") is None
        assert await store.stage_result("i-2", "stage0") is None
        assert store._seqs == {"i-1": 1, "i-2": 2}
        store._seqs["i-1"] = 2  # wrong: i-2's row
        assert await store.stage_result("i-1", "stage0") is None
        store._seqs["i-1"] = 2
        assert await store.claim_stage("i-1", "stage0", "one") == "one"
        assert await store.stage_result("i-2", "stage0") is None
        store._seqs["i-1"] = 2
        await store.save(record("i-1", version=2, state="{\"one\": 2}"))
        assert await store.get("i-2") == record("i-2", state="{\"two\": 1}")
        assert await store.get("i-1") == record("i-1", version=2, state="{\"one\": 2}")
        store._seqs["i-1"] = 2
        assert await store.claim_stage_and_save("i-1", "stage1", "r", record("i-1", version=3)) == "r"
        assert await store.get("i-2") == record("i-2", state="{\"two\": 1}")
        assert await store.stage_result("i-2", "stage1") is None
        assert await store.stage_result("i-1", "stage1") == "r"
        store._seqs["i-1"] = 2
        assert await store.claim_stage("i-1", "stage0", "again") == "one"  # the first claim still wins
    finally:
        await store.close()


async def test_claim_computed_reads_computes_and_claims_in_one_transaction(tmp_path: Path) -> None:
    """``claim_computed_later``: no claim yet -> ``compute()`` is called inside the transaction and its
    result claimed (its record saved with it), one ``BEGIN IMMEDIATE``; a claim there -> compute is
    not called; compute declining (None) claims nothing; an instance with no record claims early."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'computed.db'}")
    assert isinstance(store, SQLiteFlowStore)
    try:
        await store.save(record())
        conn = store._conn()
        assert conn is not None
        begins: list[str] = []
        conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
        calls: list[bool] = []

        def compute() -> tuple[str, Any]:
            calls.append(conn.in_transaction)
            return "mine", None

        assert await store.claim_computed_later("i-1", "stage0", compute) == ("mine", True)
        assert calls == [True] and begins == ["BEGIN IMMEDIATE"]
        assert await store.stage_result("i-1", "stage0") == "mine"
        assert await store.claim_computed_later("i-1", "stage0", compute) == ("mine", False)
        assert calls == [True]  # claimed already: not computed again
        final = record(version=5, status="completed")
        assert await store.claim_computed_later("i-1", "stage1", lambda: ("fin", final)) == ("fin", True)
        assert await store.get("i-1") == final
        assert await store.claim_computed_later("i-1", "stage2", lambda: None) == (None, False)
        assert await store.stage_result("i-1", "stage2") is None
        assert await store.claim_computed_later("i-9", "stage0", lambda: ("early", None)) == ("early", True)
        await store.save(record("i-9"))  # the first save adopts the early claim
        assert await store.stage_result("i-9", "stage0") == "early"
    finally:
        await store.close()


async def test_claim_computed_lost_to_another_writer_saves_nothing(tmp_path: Path) -> None:
    """Another writer's claim in the same transaction after the read (as one retried after a rollback
    may find): theirs is returned, not ours, and our record is not saved."""
    from mmate_fast.stageflow.store import _sqlite

    store = open_store(f"sqlite:///{tmp_path / 'lost.db'}")
    assert isinstance(store, _sqlite.SQLiteFlowStore)
    try:
        await store.save(record())

        def racing() -> tuple[str, Any]:
            _sqlite._claim(store._conn(), "i-1", "stage0", "theirs")  # type: ignore[arg-type]
            return "ours", record(version=9)

        assert await store.claim_computed_later("i-1", "stage0", racing) == ("theirs", False)
        got = await store.get("i-1")
        assert got is not None and got.version == 1
    finally:
        await store.close()


async def test_claim_computed_on_the_writer_thread_may_decline(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """While another process holds the lock past ``INLINE_LOCK_WAIT`` the batch runs on the writer
    thread, and so does ``compute``: the engine's declines there (it runs stages on the loop only)
    and nothing is claimed; a claim found there is still returned."""
    import threading

    from mmate_fast.stageflow.store import _sqlite

    monkeypatch.setattr(_sqlite, "INLINE_LOCK_WAIT", 0.01)
    path = tmp_path / "declined.db"
    store = open_store(f"sqlite:///{path}")
    try:
        await store.save(record())
        await store.claim_stage("i-1", "stage0", "done")
        loop_thread = threading.get_ident()
        threads: list[bool] = []

        def compute() -> tuple[str, Any] | None:
            threads.append(threading.get_ident() == loop_thread)
            return None if threads[-1] is False else ("mine", None)

        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            declined = asyncio.ensure_future(store.claim_computed_later("i-1", "stage1", compute))
            found = asyncio.ensure_future(store.claim_computed_later("i-1", "stage0", compute))
            await asyncio.sleep(0.1)
            assert not declined.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await declined == (None, False) and threads == [False]
        assert await found == ("done", False)
        assert await store.stage_result("i-1", "stage1") is None
    finally:
        await store.close()


async def test_save_later_is_the_batch_future_done_after_the_commit(tmp_path: Path) -> None:
    """``save_later`` (what ``Runtime.save`` and ``start()`` await on SQLite): the loop turn's batch
    future, done once the record is committed in the file; bad records and a closed store raise at
    once, as ``save`` does."""
    from mmate_fast.errors import FlowStoreClosedError

    path = tmp_path / "later.db"
    store = open_store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        fut = store.save_later(record())  # type: ignore[attr-defined]
        assert isinstance(fut, asyncio.Future) and not fut.done()
        assert other.execute("SELECT count(*) FROM flows").fetchone()[0] == 0  # queued, not committed
        assert await fut is None
        assert other.execute("SELECT version FROM flows WHERE instance_id = 'i-1'").fetchone() == (1,)
        await store.save_later(record(version=2))  # type: ignore[attr-defined]
        assert await store.get("i-1") == record(version=2)
        with pytest.raises(InvalidArgumentError):
            store.save_later("not a record")  # type: ignore[attr-defined]
    finally:
        other.close()
        await store.close()
    with pytest.raises(FlowStoreClosedError):
        store.save_later(record())  # type: ignore[attr-defined]


async def test_the_engine_saves_through_the_sqlite_store_futures(tmp_path: Path) -> None:
    """``Runtime.later`` needs ``save_later`` too; ``Runtime.save`` (and so ``start()``) awaits it
    instead of the store's ``save`` coroutine."""
    from mmate_fast.stageflow._runtime import Runtime
    from mmate_fast.stageflow._wire import WorkflowState

    store = open_store(f"sqlite:///{tmp_path / 'rt.db'}")
    try:
        rt = Runtime(None, store, events=(), prefix="", worker="w", finished=lambda state: None)
        assert rt.later is store

        async def no_coroutine(record: Any) -> None:
            raise AssertionError("the save coroutine was used")

        store.save = no_coroutine  # type: ignore[method-assign]
        state = WorkflowState(workflow_id="wf", instance_id="i-7", status="running", start_ns=1, version=1)
        await rt.save(state)
        got = await store.get("i-7")
        assert got is not None and got.version == 1 and got.worker == "w"

        class Without:  # the other ``*_later`` calls but no ``save_later``: not a futures store
            def __getattr__(self, name: str) -> Any:
                if name == "save_later":
                    raise AttributeError(name)
                return getattr(store, name)

        rt.store = Without()  # type: ignore[assignment]
        assert rt.later is None
    finally:
        await store.close()


async def test_a_save_writes_none_and_text_for_current_stage_and_error_in_every_combination(
        tmp_path: Path) -> None:
    """``_save`` writes a None ``current_stage`` / ``error`` as NULL in the statement (not bound):
    every combination of the two, inserted, updated through the upsert and through the instance's
    known number (``_seqs``), reads back as saved, and NULL stays distinct from ''."""
    from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

    store = open_store(f"sqlite:///{tmp_path / 'nulls.db'}")
    assert isinstance(store, SQLiteFlowStore)
    combos = [(cs, err) for cs in (None, "", "stage-b") for err in (None, "", "boom")]
    try:
        for n, (cs, err) in enumerate(combos):
            iid = f"i-{n}"
            first = dataclasses.replace(record(iid), current_stage=cs, error=err)
            await store.save(first)  # the upsert (a new record)
            assert await store.get(iid) == first
            version = 2
            for cs2, err2 in combos:  # the upsert again (no number known), then by number
                for by_seq in (False, True):
                    if by_seq:
                        assert await store.stage_result(iid, "stage0") is None  # learns the number
                        assert iid in store._seqs
                    else:
                        store._seqs.pop(iid, None)
                    again = dataclasses.replace(first, version=version, current_stage=cs2, error=err2,
                                                state_json=f"{{\"v\": {version}}}")
                    await store.save(again)
                    assert await store.get(iid) == again
                    version += 1
            older = dataclasses.replace(first, version=1, current_stage="old", error="old")
            await store.save(older)  # an older version changes nothing, either way
            assert (await store.get(iid)).version == version - 1  # type: ignore[union-attr]
    finally:
        await store.close()
