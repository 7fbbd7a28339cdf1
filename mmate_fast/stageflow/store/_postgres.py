"""``postgresql://user:password@host:port/db``: the state store a fleet of workers shares.

asyncpg (the ``postgres`` extra) with a connection pool, opened on first use (``open_store`` is
sync; a store that cannot connect fails its first call with ``FlowStoreUnavailableError``). Same
schema and semantics as SQLite: ``save`` is an upsert that never lowers the version,
``claim_stage`` is ``INSERT ... ON CONFLICT DO NOTHING`` on the (instance_id, stage_key) primary
key, atomic across machines.

URL options (the query string; anything else is passed to asyncpg/libpq as usual, e.g. sslmode):
``schema=NAME`` keeps the tables in that schema (created if missing; default ``public``),
``timeout=SECONDS`` bounds connecting, acquiring a connection and each statement (default 10),
``pool_min`` / ``pool_max`` size the pool (default 1 / 10). The connections' ``application_name``
is ``mmate_fast.stageflow`` unless the URL sets one.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mmate_fast.errors import (
    FlowStoreClosedError,
    FlowStoreError,
    FlowStoreUnavailableError,
    InvalidArgumentError,
)
from mmate_fast.stageflow.store._record import (
    ENDED_STATUSES,
    FlowRecord,
    check_claim,
    check_ids,
    check_key,
    check_page,
    check_record,
)
from mmate_fast.stageflow.store._url import redact

log = logging.getLogger("mmate_fast.stageflow")

DEFAULT_TIMEOUT = 10.0
#: most writes one transaction carries
MAX_BATCH = 1000
#: a queued write: (what, instance id, the record or ((instance id, stage key), result), its future)
_Write = tuple[str, str, Any, "asyncio.Future[Any]"]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_COLUMNS = ("instance_id, workflow_id, status, version, current_stage, error, started_ns, updated_ns, "
            "state_json, worker")


def _schema_sql(schema: str) -> list[str]:
    return [
        f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
        f"""CREATE TABLE IF NOT EXISTS "{schema}".flows (
            instance_id TEXT COLLATE "C" PRIMARY KEY, workflow_id TEXT NOT NULL, status TEXT NOT NULL,
            version BIGINT NOT NULL, current_stage TEXT, error TEXT, started_ns BIGINT NOT NULL,
            updated_ns BIGINT NOT NULL, state_json TEXT NOT NULL, worker TEXT NOT NULL DEFAULT '')""",
        f"""CREATE TABLE IF NOT EXISTS "{schema}".stage_results (
            instance_id TEXT NOT NULL, stage_key TEXT NOT NULL, result_json TEXT NOT NULL,
            created_ns BIGINT NOT NULL, PRIMARY KEY (instance_id, stage_key))""",
        f'CREATE INDEX IF NOT EXISTS flows_by_updated ON "{schema}".flows (updated_ns DESC, instance_id)',
        f'CREATE INDEX IF NOT EXISTS flows_by_status ON "{schema}".flows '
        "(status, updated_ns DESC, instance_id)",
        f'CREATE INDEX IF NOT EXISTS flows_by_workflow ON "{schema}".flows '
        "(workflow_id, updated_ns DESC, instance_id)",
    ]


def _positive(url: str, key: str, value: str, cast: type[float] | type[int]) -> Any:
    try:
        number = cast(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise InvalidArgumentError(f"PostgreSQL store URL {redact(url)}: {key} must be a positive "
                                   f"{cast.__name__}, got {value!r}", argument="url")
    return number


def _terminate(conn: Any) -> None:
    """Close a pooled connection that broke, so the pool never hands it out again. asyncpg may have
    detached it from its proxy already (the server ended it mid-query): terminate() then raises
    InterfaceError, which must not replace the error that broke it."""
    import asyncpg

    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


class PostgresFlowStore:
    """A FlowStore in PostgreSQL through an asyncpg pool."""

    def __init__(self, dsn: str, *, url: str, schema: str = "public", timeout: float = DEFAULT_TIMEOUT,
                 pool_min: int = 1, pool_max: int = 10) -> None:
        self._dsn = dsn
        self.url = redact(url)
        self.schema = schema
        self._timeout = timeout
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._pool: Any = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self._pending: list[_Write] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._starting = 0  # flushers created that have not taken a batch yet
        t = f'"{schema}"'
        self._sql_save = (
            f"INSERT INTO {t}.flows ({_COLUMNS}) SELECT * FROM unnest($1::text[], $2::text[], "
            "$3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], "
            "$10::text[]) ON CONFLICT (instance_id) DO UPDATE SET workflow_id = excluded.workflow_id, "
            "status = excluded.status, version = excluded.version, "
            "current_stage = excluded.current_stage, error = excluded.error, "
            "started_ns = excluded.started_ns, updated_ns = excluded.updated_ns, "
            "state_json = excluded.state_json, worker = excluded.worker "
            "WHERE excluded.version >= flows.version")
        self._sql_get = f"SELECT {_COLUMNS} FROM {t}.flows WHERE instance_id = $1"
        self._sql_list = f"SELECT {_COLUMNS} FROM {t}.flows"
        self._sql_ended = (f"SELECT {_COLUMNS} FROM {t}.flows WHERE instance_id = ANY($1::text[]) "
                           "AND status = ANY($2::text[])")
        self._sql_claim = (
            f"INSERT INTO {t}.stage_results (instance_id, stage_key, result_json, created_ns) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
            "ON CONFLICT (instance_id, stage_key) DO NOTHING")
        # a new statement: in READ COMMITTED it sees the rows of racers whose commit we waited for
        self._sql_claimed = (
            f"SELECT s.instance_id, s.stage_key, s.result_json FROM {t}.stage_results s "
            "JOIN unnest($1::text[], $2::text[]) AS k(i, sk) ON s.instance_id = k.i AND s.stage_key = k.sk")
        self._sql_stage = (f"SELECT result_json FROM {t}.stage_results "
                           "WHERE instance_id = $1 AND stage_key = $2")

    @classmethod
    def from_url(cls, url: str) -> PostgresFlowStore:
        """Split our options off the URL; the rest goes to asyncpg as the DSN."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise InvalidArgumentError(f"PostgreSQL store URL {redact(url)}: {exc}", argument="url") from exc
        options: dict[str, Any] = {}
        rest = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "schema":
                if not _IDENT.fullmatch(value):
                    raise InvalidArgumentError(f"PostgreSQL store URL {redact(url)}: schema must be an "
                                               "identifier (letters, digits, _; up to 63)", argument="url")
                options["schema"] = value
            elif key == "timeout":
                options["timeout"] = _positive(url, key, value, float)
            elif key in ("pool_min", "pool_max"):
                options[key] = _positive(url, key, value, int)
            else:
                rest.append((key, value))
        if options.get("pool_min", 1) > options.get("pool_max", 10):
            raise InvalidArgumentError(f"PostgreSQL store URL {redact(url)}: pool_min is above pool_max",
                                       argument="url")
        if not any(key == "application_name" for key, _ in rest):  # who this is, in pg_stat_activity
            rest.append(("application_name", "mmate_fast.stageflow"))
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), parts.fragment))
        return cls(dsn, url=url, **options)

    def __repr__(self) -> str:
        return f"<PostgresFlowStore {self.url} schema={self.schema}{' closed' if self._closed else ''}>"

    # ------------------------------------------------------------------ connection
    def _closed_error(self) -> FlowStoreClosedError:
        return FlowStoreClosedError(f"the flow store {self.url} is closed: open a new one with "
                                    "open_store(url)")

    async def _connect(self, closing: bool = False) -> Any:
        """The pool, created on first use. ``closing``: for the writes queued before close(), which
        close() waits for before it closes the pool."""
        if self._closed and not closing:
            raise self._closed_error()
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = await self._create_pool()
                if self._closed and not closing:  # closed while we were connecting
                    await pool.close()
                    raise self._closed_error()
                self._pool = pool
        return self._pool

    async def _create_pool(self) -> Any:
        try:
            import asyncpg
        except ImportError as exc:
            raise FlowStoreUnavailableError(
                "the PostgreSQL flow store needs asyncpg: pip install 'mmate-fast[postgres]'",
                url=self.url) from exc
        try:
            async with asyncio.timeout(self._timeout):
                pool = await asyncpg.create_pool(
                    self._dsn, min_size=self._pool_min, max_size=self._pool_max, timeout=self._timeout,
                    command_timeout=self._timeout)
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        # concurrent CREATE ... IF NOT EXISTS can collide: one creator at a time
                        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                           f"mmate_fast.stageflow.store:{self.schema}")
                        for statement in _schema_sql(self.schema):
                            await conn.execute(statement)
                except asyncpg.PostgresError as exc:
                    pool.terminate()
                    if isinstance(exc, asyncpg.PostgresConnectionError):
                        raise
                    raise FlowStoreUnavailableError(
                        f"cannot create the StageFlow tables in schema {self.schema!r} of {self.url} "
                        f"({type(exc).__name__}: {exc}): that schema holds other tables of these names "
                        "(use another ?schema=) or the user may not create them", url=self.url) from exc
                except BaseException:
                    pool.terminate()
                    raise
        except FlowStoreUnavailableError:
            raise
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            what = "did not answer in time" if isinstance(exc, TimeoutError) else \
                f"{type(exc).__name__}: {exc}"
            raise FlowStoreUnavailableError(
                f"cannot open the PostgreSQL flow store {self.url} ({what}): check that the server "
                "runs and the host, port, user, password and database are right", url=self.url) from exc
        return pool

    def _translate(self, exc: BaseException, what: str) -> BaseException:
        """The named error for a backend failure of ``what`` (``exc`` itself when it is not one)."""
        import asyncpg

        if isinstance(exc, FlowStoreError):
            return exc
        if isinstance(exc, _broken()):
            err: FlowStoreError = FlowStoreUnavailableError(
                f"flow store {self.url}: {what} failed, the connection was lost ({exc}): check the "
                "server; the pool reconnects on the next call", url=self.url)
        elif isinstance(exc, TimeoutError):
            err = FlowStoreError(f"flow store {self.url}: {what} got no answer within {self._timeout:g}s: "
                                 "the server is overloaded or a lock is held; raise ?timeout= in the URL")
        elif isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            if self._closed:
                err = self._closed_error()
            else:
                err = FlowStoreError(f"flow store {self.url}: {what} failed: {type(exc).__name__}: {exc}: "
                                     f"check that schema {self.schema!r} holds a StageFlow store")
        else:
            return exc
        err.__cause__ = exc
        return err

    async def _run(self, what: str, method: str, sql: str, *args: Any) -> Any:
        """Run one read on a pooled connection, with backend errors turned into ours."""
        pool = await self._connect()
        try:
            async with pool.acquire(timeout=self._timeout) as conn:
                try:
                    return await getattr(conn, method)(sql, *args, timeout=self._timeout)
                except _broken():
                    _terminate(conn)
                    raise
        except Exception as exc:
            err = self._translate(exc, what)
            if err is exc:
                raise
            raise err from exc

    # ------------------------------------------------------------------ batched writes
    async def _submit(self, write: _Write) -> Any:
        """Queue a write for the next batch and wait for its outcome. Writes queued while a batch is
        in flight go together in the next one, on another pooled connection (up to pool_max
        batches at once): concurrent saves and claims share transactions and commits."""
        self._enqueue(write)
        return await write[3]

    def _enqueue(self, write: _Write) -> None:
        """Queue a write and make sure a flusher will take it."""
        if self._closed:
            raise self._closed_error()
        self._pending.append(write)
        if self._starting == 0 and len(self._flushers) < self._pool_max:
            started = [False]
            self._starting += 1
            task = asyncio.get_running_loop().create_task(self._flush(started))
            self._flushers.add(task)
            task.add_done_callback(lambda t: self._flusher_done(t, started))

    def _flusher_done(self, task: asyncio.Task[None], started: list[bool]) -> None:
        self._flushers.discard(task)
        if not started[0]:  # cancelled before it ran
            self._starting -= 1

    async def _flush(self, started: list[bool]) -> None:
        """Write batches until nothing is pending; every outcome goes to its caller's future."""
        started[0] = True
        self._starting -= 1
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._write(batch)
            except asyncio.CancelledError:  # the loop is closing: nobody will get an answer
                _fail(batch + self._pending, self._closed_error())
                self._pending = []
                raise

    async def _write(self, batch: list[_Write]) -> None:
        """One batch in one transaction; when the database refuses it for its data, each write is
        retried alone so that only the culprit fails."""
        import asyncpg

        try:
            pool = await self._connect(closing=True)
            async with pool.acquire(timeout=self._timeout) as conn:
                try:
                    results = await self._write_on(conn, batch)
                except _broken():
                    _terminate(conn)
                    raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if len(batch) > 1 and not isinstance(exc, _broken()) and not self._closed:
                for write in batch:
                    await self._write([write])
                return
            _fail(batch, self._translate(exc, batch[0][0]))
            return
        except Exception as exc:
            _fail(batch, self._translate(exc, batch[0][0]))
            return
        for write, value in zip(batch, results, strict=True):
            if not write[3].done():
                if isinstance(value, BaseException):
                    write[3].set_exception(value)
                else:
                    write[3].set_result(value)

    async def _write_on(self, conn: Any, batch: list[_Write]) -> list[Any]:
        """Saves first, then claims, each in key order (concurrent batches lock rows in one order:
        no deadlock); one statement per kind (the claims' winners read by a second one)."""
        saves: dict[str, FlowRecord] = {}
        claims: dict[tuple[str, str], str] = {}
        for what, _, value, _ in batch:
            if what == "save":
                rec: FlowRecord = value
                kept = saves.get(rec.instance_id)
                if kept is None or rec.version >= kept.version:  # as if saved one after the other
                    saves[rec.instance_id] = rec
            else:
                claims.setdefault(value[0], value[1])  # the first claim of a key in the batch wins it
        timeout = self._timeout
        claimed: dict[tuple[str, str], str] = {}
        # one statement commits alone; saves and claims together share one commit
        async with conn.transaction() if saves and claims else contextlib.nullcontext():
            if saves:
                rows = [saves[k] for k in sorted(saves)]
                await conn.execute(self._sql_save, [r.instance_id for r in rows],
                                   [r.workflow_id for r in rows], [r.status for r in rows],
                                   [r.version for r in rows],
                                   [r.current_stage for r in rows], [r.error for r in rows],
                                   [r.started_ns for r in rows], [r.updated_ns for r in rows],
                                   [r.state_json for r in rows], [r.worker for r in rows], timeout=timeout)
            if claims:
                keys = sorted(claims)
                ids, stage_keys = [k[0] for k in keys], [k[1] for k in keys]
                now = time.time_ns()
                await conn.execute(self._sql_claim, ids, stage_keys, [claims[k] for k in keys],
                                   [now] * len(keys), timeout=timeout)
                for iid, key, result in await conn.fetch(self._sql_claimed, ids, stage_keys, timeout=timeout):
                    claimed[(iid, key)] = result
        results: list[Any] = []
        for what, _, value, _ in batch:
            if what == "save":
                results.append(None)
            elif value[0] in claimed:
                results.append(claimed[value[0]])
            else:  # a claim is never deleted: only a store emptied by hand gets here
                results.append(FlowStoreError(
                    f"flow store {self.url}: the claim of {value[0][0]}/{value[0][1]} vanished while it "
                    "was made: was the stage_results table emptied?"))
        return results

    # ------------------------------------------------------------------ FlowStore
    async def save(self, record: FlowRecord) -> None:
        rec = check_record(record)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._submit(("save", rec.instance_id, replace(rec), fut))

    def save_nowait(self, record: FlowRecord) -> None:
        """Queue a save and return at once (it goes with the next batch); nobody waits for it, and a
        failure is logged (a warning), not raised. For the engine's saves after a hop."""
        rec = check_record(record)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_log_failure)
        self._enqueue(("save", rec.instance_id, replace(rec), fut))

    async def get(self, instance_id: str) -> FlowRecord | None:
        row = await self._run("get", "fetchrow", self._sql_get, instance_id)
        return None if row is None else FlowRecord(*row)

    async def get_ended(self, instance_ids: list[str]) -> list[FlowRecord]:
        """The records of those instances that have ended (see ``FlowStore``), in one query."""
        ids = check_ids(instance_ids)
        rows = await self._run("get_ended", "fetch", self._sql_ended, ids, list(ENDED_STATUSES))
        return [FlowRecord(*row) for row in rows]

    async def list(self, *, status: str | None = None, workflow: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[FlowRecord]:
        check_page(limit, offset)
        where, args = [], []
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        if workflow is not None:
            args.append(workflow)
            where.append(f"workflow_id = ${len(args)}")
        sql = self._sql_list + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY updated_ns DESC, instance_id LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
        rows = await self._run("list", "fetch", sql, *args, limit, offset)
        return [FlowRecord(*row) for row in rows]

    async def claim_stage(self, instance_id: str, stage_key: str, result_json: str) -> str:
        check_claim(instance_id, stage_key, result_json)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        result: str = await self._submit(("claim_stage", instance_id,
                                          ((instance_id, stage_key), result_json), fut))
        return result

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        check_key(instance_id, stage_key)
        value = await self._run("stage_result", "fetchval", self._sql_stage, instance_id, stage_key)
        return None if value is None else str(value)

    async def close(self) -> None:
        """Finish the writes already queued, then close the pool (waiting up to the timeout for
        calls in flight, then cutting them). Idempotent."""
        self._closed = True
        if self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await pool.close()
        except TimeoutError:
            pool.terminate()


def _broken() -> tuple[type[BaseException], ...]:
    """asyncpg's errors that mean the connection is gone or unusable (a server restart, failover,
    a killed backend, or the protocol left mid-operation by one of these)."""
    import asyncpg
    from asyncpg.exceptions import InternalClientError

    return (asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError, InternalClientError,
            OSError)


def _log_failure(fut: asyncio.Future[Any]) -> None:
    """The outcome of a ``save_nowait``: a failure is logged (nobody awaits it)."""
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("%s", fut.exception())


def _fail(batch: list[_Write], exc: BaseException) -> None:
    for write in batch:
        if not write[3].done():
            write[3].set_exception(exc)


__all__ = ["DEFAULT_TIMEOUT", "PostgresFlowStore"]
