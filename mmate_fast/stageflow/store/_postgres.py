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
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mmate_fast.errors import (
    FlowStoreClosedError,
    FlowStoreError,
    FlowStoreUnavailableError,
    InvalidArgumentError,
)
from mmate_fast.stageflow.store._record import FlowRecord, check_claim, check_key, check_page, check_record
from mmate_fast.stageflow.store._url import redact

DEFAULT_TIMEOUT = 10.0
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
        t = f'"{schema}"'
        self._sql_upsert = (
            f"INSERT INTO {t}.flows ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (instance_id) DO UPDATE SET workflow_id = excluded.workflow_id, "
            "status = excluded.status, version = excluded.version, "
            "current_stage = excluded.current_stage, error = excluded.error, "
            "started_ns = excluded.started_ns, updated_ns = excluded.updated_ns, "
            "state_json = excluded.state_json, worker = excluded.worker "
            "WHERE excluded.version >= flows.version")
        self._sql_get = f"SELECT {_COLUMNS} FROM {t}.flows WHERE instance_id = $1"
        self._sql_list = f"SELECT {_COLUMNS} FROM {t}.flows"
        # one round trip when we win or the winner was committed before we started; when a racer
        # commits while we wait on its row, the snapshot of this statement cannot see it: read again
        self._sql_claim = (
            f"WITH ins AS (INSERT INTO {t}.stage_results (instance_id, stage_key, result_json, created_ns) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, stage_key) DO NOTHING RETURNING result_json) "
            f"SELECT result_json FROM ins UNION ALL SELECT result_json FROM {t}.stage_results "
            "WHERE instance_id = $1 AND stage_key = $2 LIMIT 1")
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

    async def _connect(self) -> Any:
        if self._closed:
            raise self._closed_error()
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await self._create_pool()
                if self._closed:  # closed while we were connecting
                    await self._pool.close()
                    raise self._closed_error()
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

    async def _run(self, what: str, method: str, sql: str, *args: Any) -> Any:
        """Run one statement on a pooled connection, with backend errors turned into ours."""
        pool = await self._connect()
        import asyncpg

        try:
            async with pool.acquire(timeout=self._timeout) as conn:
                return await getattr(conn, method)(sql, *args, timeout=self._timeout)
        except (asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError, OSError) as exc:
            raise FlowStoreUnavailableError(
                f"flow store {self.url}: {what} failed, the connection was lost ({exc}): check the "
                "server; the pool reconnects on the next call", url=self.url) from exc
        except TimeoutError as exc:
            raise FlowStoreError(f"flow store {self.url}: {what} got no answer within {self._timeout:g}s: "
                                 "the server is overloaded or a lock is held; raise ?timeout= in the "
                                 "URL") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self._closed:
                raise self._closed_error() from exc
            raise FlowStoreError(f"flow store {self.url}: {what} failed: {type(exc).__name__}: {exc}: "
                                 f"check that schema {self.schema!r} holds a StageFlow store") from exc

    # ------------------------------------------------------------------ FlowStore
    async def save(self, record: FlowRecord) -> None:
        r = check_record(record)
        await self._run("save", "execute", self._sql_upsert, r.instance_id, r.workflow_id, r.status,
                        r.version, r.current_stage, r.error, r.started_ns, r.updated_ns, r.state_json,
                        r.worker)

    async def get(self, instance_id: str) -> FlowRecord | None:
        row = await self._run("get", "fetchrow", self._sql_get, instance_id)
        return None if row is None else FlowRecord(*row)

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
        value = await self._run("claim_stage", "fetchval", self._sql_claim, instance_id, stage_key,
                                result_json, time.time_ns())
        if value is None:
            value = await self._run("claim_stage", "fetchval", self._sql_stage, instance_id, stage_key)
        if value is None:  # a claim is never deleted: only a store emptied by hand gets here
            raise FlowStoreError(f"flow store {self.url}: the claim of {instance_id}/{stage_key} "
                                 "vanished while it was made: was the stage_results table emptied?")
        return str(value)

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        check_key(instance_id, stage_key)
        value = await self._run("stage_result", "fetchval", self._sql_stage, instance_id, stage_key)
        return None if value is None else str(value)

    async def close(self) -> None:
        """Close the pool (waiting up to the timeout for calls in flight, then cutting them)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await pool.close()
        except TimeoutError:
            pool.terminate()


__all__ = ["DEFAULT_TIMEOUT", "PostgresFlowStore"]
