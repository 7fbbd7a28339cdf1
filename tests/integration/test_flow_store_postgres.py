"""The StageFlow state store's behaviour suite on PostgreSQL (the real server on 127.0.0.1:5432).

Each test gets a fresh schema (``?schema=flowtest_...``), dropped afterwards. The server comes from
``MMATE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``; start it with
``bash ci/postgres.sh``); a server that does not answer fails these tests, unless
``MMATE_SKIP_POSTGRES=1`` says this machine knowingly has none.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg  # the postgres extra, part of the test extra
import pytest

from mmate_fast.errors import FlowStoreError, FlowStoreUnavailableError, InvalidArgumentError
from mmate_fast.stageflow.store import FlowStore, open_store
from tests.flow_store_suite import FlowStoreSuite, record

PG_URL = os.environ.get("MMATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module", autouse=True)
def postgres_url() -> str:
    """The server's URL; every test here fails (or skips with MMATE_SKIP_POSTGRES=1) without one."""
    from urllib.parse import urlsplit

    parts = urlsplit(PG_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=5).close()
    except OSError as exc:
        if os.environ.get("MMATE_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL not available ({exc}); MMATE_SKIP_POSTGRES=1")
        pytest.fail(f"PostgreSQL is needed by these tests and does not answer at {parts.hostname}:"
                    f"{parts.port}: {exc}. Start it with `bash ci/postgres.sh`, or set "
                    "MMATE_SKIP_POSTGRES=1 to skip them.", pytrace=False)
    return PG_URL


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


async def _drop(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def fresh_schema() -> AsyncIterator[str]:
    schema = f"flowtest_{uuid.uuid4().hex[:16]}"
    yield schema
    await _drop(schema)


class TestPostgresStore(FlowStoreSuite):
    race_keys = 200
    @pytest.fixture
    def store_url(self, fresh_schema: str) -> str:
        return _with(PG_URL, f"schema={fresh_schema}")

    @pytest.fixture
    async def store(self, store_url: str) -> AsyncIterator[FlowStore]:
        opened = open_store(store_url)
        yield opened
        await opened.close()


# ---------------------------------------------------------------------------- PostgreSQL specifics
async def test_the_tables_live_in_the_schema_of_the_url(fresh_schema: str) -> None:
    store = open_store(_with(PG_URL, f"schema={fresh_schema}&pool_max=2"))
    try:
        await store.save(record())
        await store.claim_stage("i-1", "0:a", "r")
    finally:
        await store.close()
    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        tables = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
                                  "ORDER BY table_name", fresh_schema)
        assert [t["table_name"] for t in tables] == ["flows", "stage_results"]
        row = await conn.fetchrow(f'SELECT instance_id, version FROM "{fresh_schema}".flows')
        assert tuple(row) == ("i-1", 1)
    finally:
        await conn.close()


async def test_many_stores_opening_one_new_schema_at_once_all_work(fresh_schema: str) -> None:
    """Concurrent CREATE ... IF NOT EXISTS would collide without the advisory lock."""
    stores = [open_store(_with(PG_URL, f"schema={fresh_schema}&pool_min=1&pool_max=1")) for _ in range(6)]
    try:
        got = await asyncio.gather(*(s.claim_stage("i", "k", f"v{n}") for n, s in enumerate(stores)))
        assert len(set(got)) == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_an_unreachable_server_is_unavailable_quickly_and_names_the_url_without_password() -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = f"postgresql://flows:s3cret@127.0.0.1:{port}/test?timeout=3"
        store = open_store(url)
        try:
            with pytest.raises(FlowStoreUnavailableError) as info:
                await asyncio.wait_for(store.get("x"), 10)  # connection refused: well within its timeout
        finally:
            await store.close()
    assert "s3cret" not in str(info.value) and "s3cret" not in info.value.url
    assert f"127.0.0.1:{port}" in str(info.value) and "flows:***@" in info.value.url


async def test_a_missing_database_is_unavailable() -> None:
    base = PG_URL.rsplit("/", 1)[0]
    store = open_store(f"{base}/no_such_db_{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(FlowStoreUnavailableError, match="does not exist"):
            await store.list()
    finally:
        await store.close()


async def test_a_schema_with_other_tables_of_these_names_is_refused(fresh_schema: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        await conn.execute(f'CREATE SCHEMA "{fresh_schema}"')
        await conn.execute(f'CREATE TABLE "{fresh_schema}".flows (something INT)')
    finally:
        await conn.close()
    store = open_store(_with(PG_URL, f"schema={fresh_schema}"))
    try:
        with pytest.raises(FlowStoreUnavailableError, match=r"use another \?schema="):
            await store.save(record())
    finally:
        await store.close()


@pytest.mark.parametrize("query", ["schema=bad-name", "schema=", "timeout=0", "timeout=x", "pool_max=0",
                                   "pool_min=5&pool_max=2"])
def test_bad_postgres_options_are_refused(query: str) -> None:
    with pytest.raises(InvalidArgumentError, match="PostgreSQL store URL"):
        open_store(_with("postgresql://u:pw@127.0.0.1:5432/test", query))


def test_a_bad_port_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="PostgreSQL store URL"):
        open_store("postgresql://u:pw@127.0.0.1:99999/test")


async def test_a_failing_statement_is_a_store_error_and_the_store_goes_on(fresh_schema: str) -> None:
    store = open_store(_with(PG_URL, f"schema={fresh_schema}"))
    try:
        await store.save(record())
        await _drop(fresh_schema)  # someone removed the tables under the running store
        with pytest.raises(FlowStoreError, match="holds a StageFlow store") as info:
            await store.save(record(version=2))
        assert isinstance(info.value.__cause__, asyncpg.UndefinedTableError)
    finally:
        await store.close()


async def test_after_a_lost_connection_the_pool_reconnects(fresh_schema: str) -> None:
    store = open_store(_with(PG_URL, f"schema={fresh_schema}&pool_min=1&pool_max=1&application_name={fresh_schema}"))
    try:
        await store.save(record())
        conn = await asyncpg.connect(PG_URL, timeout=10)
        try:  # the server ends the store's connection (as a restart or failover would)
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1", fresh_schema)
        finally:
            await conn.close()
        assert killed == 1
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(await store.get("i-1"))
            except FlowStoreUnavailableError as exc:
                outcomes.append(exc)
        # at worst the first call after the loss fails with the named error; the next one works
        assert all(o == record() or isinstance(o, FlowStoreUnavailableError) for o in outcomes)
        assert outcomes[-1] == record()
    finally:
        await store.close()


async def test_a_write_the_database_refuses_fails_alone_in_its_batch(fresh_schema: str) -> None:
    """Concurrent writes share one statement; one the database refuses is retried alone and fails
    alone, the others of its batch are stored."""
    store = open_store(_with(PG_URL, f"schema={fresh_schema}&pool_max=1"))
    try:
        await store.get("warm-up")  # the tables exist
        conn = await asyncpg.connect(PG_URL, timeout=10)
        try:
            await conn.execute(f'ALTER TABLE "{fresh_schema}".flows ADD CONSTRAINT no_poison CHECK (status <> \'poison\')')
        finally:
            await conn.close()
        outcomes = await asyncio.gather(
            *(store.save(record(f"i-{n}", status="poison" if n == 7 else "running")) for n in range(20)),
            *(store.claim_stage(f"i-{n}", "k", f"v{n}") for n in range(20)), return_exceptions=True)
        failed = [n for n, o in enumerate(outcomes) if o is not None and not isinstance(o, str)]
        assert failed == [7], outcomes
        assert isinstance(outcomes[7], FlowStoreError) and "no_poison" in str(outcomes[7])
        assert outcomes[20:] == [f"v{n}" for n in range(20)]
        stored = await store.list(limit=100)
        assert sorted(r.instance_id for r in stored) == sorted(f"i-{n}" for n in range(20) if n != 7)
    finally:
        await store.close()


async def test_many_pools_saving_overlapping_instances_keep_the_highest_versions(fresh_schema: str) -> None:
    """Batches on several connections and stores lock rows in one order: no deadlock, and every
    instance ends at its highest version."""
    url = _with(PG_URL, f"schema={fresh_schema}&pool_max=4")
    stores = [open_store(url) for _ in range(3)]
    rng = random.Random(5)
    writes = [(f"i-{rng.randrange(15)}", rng.randrange(1, 1000)) for _ in range(600)]
    try:
        await asyncio.gather(*(stores[n % 3].save(record(iid, version=v, status=f"v{v}"))
                               for n, (iid, v) in enumerate(writes)))
        best: dict[str, int] = {}
        for iid, v in writes:
            best[iid] = max(best.get(iid, 0), v)
        got = {r.instance_id: (r.version, r.status) for r in await stores[0].list(limit=100)}
        assert got == {iid: (v, f"v{v}") for iid, v in best.items()}
    finally:
        await asyncio.gather(*(s.close() for s in stores))

