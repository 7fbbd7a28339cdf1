"""``sqlite:///path.db``: the embedded state store for one machine (one or several processes).

Writes of a file store run on the calling thread (the event loop's), batched: the writes issued
during one turn of the loop go in one transaction at its end (``loop.call_soon``), which only starts
when the write lock is free at once (``BEGIN IMMEDIATE`` with no wait); the commit writes the WAL
without syncing it (``synchronous=NORMAL``; checkpoints, which sync, run on their own thread, see
below). When another process holds the lock, or writes handed over earlier are still pending, the
batch goes to the store's writer thread instead, which waits for its turn off the loop (and fails
with ``FlowStoreError`` after the timeout). ``:memory:`` stores and ``list`` always use the writer
thread: it takes everything queued and runs it in one transaction, then settles the callers' futures
with one loop wake-up per batch. Inline, a write costs no thread switch at all: two context switches
and two wake-ups per batch were most of a store call's cost on a loaded machine.

WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of the process, the last ones may be
lost on power loss) and the write lock let several processes share one file; ``claim_stage`` is
``INSERT ... ON CONFLICT DO NOTHING`` (then ``SELECT`` when it inserted nothing) inside that
transaction, atomic across processes by the primary key.

Reads (``get``, ``get_ended``, ``stage_result``) of a file store join the same batch, in order (a read
queued after a write of its instance sees it): one transaction per turn. While another process holds
the write lock, the turn's reads that no write queued before them touches are answered at once, in
one transaction without the lock (``BEGIN``), so they never wait for another process's lock.
Each transaction that starts after another process's commit finds its page cache invalidated
(SQLite reloads every page it touches), so a read of its own cost the same system calls as a
batch. A batch that fails on the
calling thread goes to the writer thread, which names the error. ``save_nowait`` queues a save
without a future (the engine's saves after a hop is published: nobody waits for them; a failure is
logged), committed with the next batch. ``claim_stage`` reads the stored result back only when its
insert did nothing (another writer was first). The ``*_later`` calls hand back the batch's future
itself (no coroutine: the engine's stage hops chain on them), and ``claim_computed_later`` reads a
claim, computes the result when there is none (the engine runs the stage there) and claims it, all in
the batch's write transaction.

WAL checkpoints run on a third thread with its own connection (every ``CHECKPOINT_EVERY`` write
transactions, ``PRAGMA wal_checkpoint(PASSIVE)``), not in the writer's ``COMMIT`` as SQLite's
automatic checkpoint would: a checkpoint syncs the file to disk, which takes milliseconds (tens on a
busy disk), and every call queued behind the writer would wait for it. A passive checkpoint never
blocks a writer or a reader, in this process or another; when it leaves more than
``RESTART_FRAMES`` frames in the WAL (writers that never pause), a ``RESTART`` checkpoint makes the
WAL start over (see ``_Checkpointer``).

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:`` (this
store only), with ``?timeout=SECONDS`` (default 10): how long a call may wait for its turn on the
thread, and then for another process's lock, before it fails with ``FlowStoreError``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

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

log = logging.getLogger("mmate_fast.stageflow")

DEFAULT_TIMEOUT = 10.0
#: most operations one transaction carries
MAX_BATCH = 1024
#: write transactions of one store between two WAL checkpoints (each copies the pages written since
#: the last one back into the database file; SQLite's automatic one comes every 1000 pages)
CHECKPOINT_EVERY = 100
#: WAL frames (pages) left after a passive checkpoint above which the checkpointer restarts the WAL
#: (see ``_Checkpointer``): 1024 frames are 4 MB of 4 KB pages
RESTART_FRAMES = 1024
#: how long the checkpointer's restart may wait for the write lock and for readers to leave the WAL
RESTART_WAIT_MS = 200
#: a WAL file larger than this is truncated to it when the WAL starts over (every connection's
#: ``journal_size_limit``: whichever resets the WAL applies its own)
WAL_SIZE_LIMIT = 64 * 1024 * 1024

_COLUMNS = ("instance_id, workflow_id, status, version, current_stage, error, started_ns, updated_ns, "
            "state_json, worker")
#: ``PRAGMA user_version`` of the schema below. 0 was the first one (three full indexes on
#: ``updated_ns``), 2 the partial indexes with ``flows`` keyed by ``instance_id`` and every claim in
#: ``stage_results``, 3 the running flows indexed by ``updated_ns`` (``flows_running``: every save
#: after a hop moved its entry); opening a store migrates any of them (``_migrate``)
SCHEMA_VERSION = 4
#: the status of a flow still moving (the engine's saves between its start and its end)
_RUNNING = "running"
#: ``flows`` keeps a sequence number (``seq``, its rowid: ascending in insertion order) besides the
#: instance id, and the claims of a stored instance are keyed by it (``claims``): a write
#: transaction carrying the calls of the flows in flight then dirties a few pages at the end of each
#: b-tree instead of one random page per claim (instance ids are random UUIDs): 11 -> 5 WAL frames
#: (4 KB each) per 3-stage flow. Claims of an instance with no record yet (a flow started by another
#: engine) wait in ``stage_results`` until its first save moves them over (``flows_adopt``).
_FLOWS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
        seq INTEGER PRIMARY KEY, instance_id TEXT NOT NULL UNIQUE, workflow_id TEXT NOT NULL,
        status TEXT NOT NULL, version INTEGER NOT NULL, current_stage TEXT, error TEXT,
        started_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, state_json TEXT NOT NULL,
        worker TEXT NOT NULL DEFAULT '')"""
_SCHEMA = (
    _FLOWS_TABLE.format(name="flows"),
    """CREATE TABLE IF NOT EXISTS claims (
        flow INTEGER NOT NULL, stage_key TEXT NOT NULL, result_json TEXT NOT NULL,
        created_ns INTEGER NOT NULL, PRIMARY KEY (flow, stage_key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS stage_results (
        instance_id TEXT NOT NULL, stage_key TEXT NOT NULL, result_json TEXT NOT NULL,
        created_ns INTEGER NOT NULL, PRIMARY KEY (instance_id, stage_key)) WITHOUT ROWID""",
    # a new record adopts the claims its instance made before it existed (in the same transaction)
    """CREATE TRIGGER IF NOT EXISTS flows_adopt AFTER INSERT ON flows BEGIN
        INSERT INTO claims (flow, stage_key, result_json, created_ns)
            SELECT new.seq, stage_key, result_json, created_ns FROM stage_results
            WHERE instance_id = new.instance_id;
        DELETE FROM stage_results WHERE instance_id = new.instance_id; END""",
    # partial indexes: the flows in flight, keyed by nothing a running flow's save changes (the
    # engine's save after every hop, ``_UPDATE_RUNNING``, leaves the index alone: list(running) sorts
    # them); the ended flows' index only changes when a flow ends
    f"""CREATE INDEX IF NOT EXISTS flows_in_flight ON flows (status) WHERE status = '{_RUNNING}'""",
    # ended flows: one index, written once per flow; list() merges its runs (one per workflow and
    # status) in the order it returns
    f"""CREATE INDEX IF NOT EXISTS flows_ended_runs
        ON flows (workflow_id, status, updated_ns DESC, instance_id) WHERE status <> '{_RUNNING}'""",
)
_SCHEMA_NAMES = {"flows", "claims", "stage_results", "flows_adopt", "flows_in_flight", "flows_ended_runs"}
#: indexes dropped on open: schema 0's three (each running save updated all of them), schema 2's
#: three on ended flows (``flows_ended_runs`` replaces them: each index costs every flow's final
#: transaction a page) and schema 2/3's running flows by ``updated_ns`` (``flows_in_flight``
#: replaces it: a save after a hop moved its entry, ~12k instructions and a page)
_OLD_INDEXES = ("flows_by_updated", "flows_by_status", "flows_by_workflow", "flows_ended",
                "flows_ended_by_status", "flows_ended_by_workflow", "flows_running")
_UPSERT = (f"INSERT INTO flows ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (instance_id) DO UPDATE SET workflow_id = excluded.workflow_id, "
           "status = excluded.status, version = excluded.version, "
           "current_stage = excluded.current_stage, error = excluded.error, "
           "started_ns = excluded.started_ns, updated_ns = excluded.updated_ns, "
           "state_json = excluded.state_json, worker = excluded.worker "
           "WHERE excluded.version >= flows.version")
_GET = f"SELECT {_COLUMNS} FROM flows WHERE instance_id = ?"
#: a claim of a stored instance (inserts nothing when the instance has no record, or the key is taken)
_CLAIM = ("INSERT INTO claims (flow, stage_key, result_json, created_ns) SELECT seq, ?, ?, ? FROM flows "
          "WHERE instance_id = ? ON CONFLICT DO NOTHING")
#: a claim of an instance with no record yet
_CLAIM_EARLY = ("INSERT INTO stage_results (instance_id, stage_key, result_json, created_ns) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (instance_id, stage_key) DO NOTHING")
#: a stored instance's number and its claim of a key (None), or no row (args: key, instance)
_STAGE_SEQ = ("SELECT f.seq, c.result_json FROM flows f LEFT JOIN claims c "
              "ON c.flow = f.seq AND c.stage_key = ? WHERE f.instance_id = ?")
#: the same by a known number, checked against the instance id (args: instance, key, seq)
_STAGE_BY_SEQ = ("SELECT f.instance_id = ?, c.result_json FROM flows f LEFT JOIN claims c "
                 "ON c.flow = f.seq AND c.stage_key = ? WHERE f.seq = ?")
#: a claim by a known number, checked against the instance id (args: key, result, now, seq, instance)
_CLAIM_BY_SEQ = ("INSERT INTO claims (flow, stage_key, result_json, created_ns) SELECT seq, ?, ?, ? "
                 "FROM flows WHERE seq = ? AND instance_id = ? ON CONFLICT DO NOTHING")
#: a save by a known number, checked against the instance id (no row changed: the upsert decides)
_UPDATE_BY_SEQ = ("UPDATE flows SET workflow_id = ?, status = ?, version = ?, current_stage = ?, error = ?, "
                  "started_ns = ?, updated_ns = ?, state_json = ?, worker = ? "
                  "WHERE seq = ? AND instance_id = ? AND version <= ?")
#: a running flow's save by a known number, when the row is running too (args: version, current_stage,
#: error, updated_ns, state_json, worker, seq, instance, version, workflow, started_ns): the columns a
#: save after a hop changes, none that ``flows_in_flight`` or ``flows_ended_runs`` depends on but
#: ``updated_ns`` (the ended flows' index, whose condition is false before and after, is not written);
#: no row changed: the full statements decide
_UPDATE_RUNNING = ("UPDATE flows SET version = ?, current_stage = {current_stage}, error = {error}, "
                   "updated_ns = ?, state_json = ?, worker = ? WHERE seq = ? AND instance_id = ? "
                   f"AND version <= ? AND status = '{_RUNNING}' AND workflow_id = ? AND started_ns = ?")
#: most instance numbers a store remembers (``_Seqs``) before it forgets them all
SEQ_CACHE = 65_536
#: a claim of an instance with no record yet
_STAGE_EARLY = "SELECT result_json FROM stage_results WHERE instance_id = ? AND stage_key = ?"
#: the claim of (instance, key), wherever it is (args: key, instance, instance, key)
_STAGE = ("SELECT c.result_json FROM flows f JOIN claims c ON c.flow = f.seq AND c.stage_key = ? "
          "WHERE f.instance_id = ? UNION ALL "
          "SELECT result_json FROM stage_results WHERE instance_id = ? AND stage_key = ?")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of schema 0, 2 or 3 (or an empty one) to ``SCHEMA_VERSION``, inside the caller's
    write transaction: ``flows`` rebuilt with ``seq`` (numbered by start time), the claims of stored
    instances moved to ``claims``, the older indexes (``_OLD_INDEXES``) dropped, the rest created."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(flows)")}
    if columns and "seq" not in columns:
        conn.execute(_FLOWS_TABLE.format(name="flows_v3"))
        conn.execute(f"INSERT INTO flows_v3 ({_COLUMNS}) SELECT {_COLUMNS} FROM flows "
                     "ORDER BY started_ns, instance_id")
        conn.execute("DROP TABLE flows")  # its indexes with it
        conn.execute("ALTER TABLE flows_v3 RENAME TO flows")
    for name in _OLD_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO claims (flow, stage_key, result_json, created_ns) "
                 "SELECT f.seq, s.stage_key, s.result_json, s.created_ns FROM stage_results s "
                 "JOIN flows f ON f.instance_id = s.instance_id WHERE true ON CONFLICT DO NOTHING")
    conn.execute("DELETE FROM stage_results WHERE instance_id IN (SELECT instance_id FROM flows)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# ---------------------------------------------------------------------------- operations (writer thread)
#: instance id -> its ``flows.seq``, as read from the file (per store: a number never changes and a
#: record is never deleted; every statement that uses one checks it against the instance id, so a
#: number read in a transaction that was rolled back costs a fallback, not a wrong row). A worker
#: learns it with the stage's first read, and its claim and save then find the row by number (the
#: table's end) instead of through the instance id index (random pages: read again after every other
#: process's commit)
_Seqs = dict[str, int]


def _without_nulls(sql: str) -> dict[tuple[bool, bool], str]:
    """``sql`` (with the placeholders ``{current_stage}`` and ``{error}``) for each of the two being
    None or not: a None is written as ``NULL`` in the statement, not bound. Python's sqlite3 binds
    None through its adapter protocol (two failed attribute look-ups, ~3.3k instructions each), the
    other types at once; a running flow's record has both None."""
    return {(cs, err): sql.format(current_stage="NULL" if cs else "?", error="NULL" if err else "?")
            for cs in (False, True) for err in (False, True)}


#: ``_UPSERT`` / ``_UPDATE_BY_SEQ`` by (current_stage is None, error is None)
_UPSERTS = _without_nulls(f"INSERT INTO flows ({_COLUMNS}) VALUES (?, ?, ?, ?, {{current_stage}}, "
                          "{error}, ?, ?, ?, ?)" + _UPSERT[_UPSERT.index(" ON CONFLICT"):])
_UPDATES_RUNNING = _without_nulls(_UPDATE_RUNNING)
_UPDATES_BY_SEQ = _without_nulls(_UPDATE_BY_SEQ.replace("current_stage = ?",
                                                        "current_stage = {current_stage}")
                                 .replace("error = ?", "error = {error}"))


def _save(conn: sqlite3.Connection, r: FlowRecord, seqs: _Seqs | None = None) -> None:
    seq = None if seqs is None else seqs.get(r.instance_id)
    cs, err = r.current_stage, r.error
    nulls = (cs is None, err is None)
    # the values bound: the record's fields, without a None current_stage / error (NULL in the statement)
    texts = (*(() if cs is None else (cs,)), *(() if err is None else (err,)))
    if seq is not None:
        if r.status == _RUNNING and conn.execute(_UPDATES_RUNNING[nulls], (
                r.version, *texts, r.updated_ns, r.state_json, r.worker, seq, r.instance_id, r.version,
                r.workflow_id, r.started_ns)).rowcount == 1:
            return  # a running flow's save after a hop: its index entries stay where they are
        if conn.execute(_UPDATES_BY_SEQ[nulls], (
                r.workflow_id, r.status, r.version, *texts, r.started_ns, r.updated_ns, r.state_json,
                r.worker, seq, r.instance_id, r.version)).rowcount == 1:
            return
    values: tuple[Any, ...] = (r.status, r.version, *texts, r.started_ns, r.updated_ns, r.state_json,
                               r.worker)
    conn.execute(_UPSERTS[nulls], (r.instance_id, r.workflow_id, *values))


def _get(conn: sqlite3.Connection, instance_id: str) -> FlowRecord | None:
    row = conn.execute(_GET, (instance_id,)).fetchone()
    return None if row is None else FlowRecord(*row)


#: most instance ids one ``get_ended`` statement asks for (SQLite before 3.32 allows 999 parameters)
ENDED_CHUNK = 500
_ENDED_IN = "', '".join(ENDED_STATUSES)


#: the statement sizes ``get_ended`` uses (a chunk is padded to the next one by repeating its last id),
#: so that a few statements stay in the connection's statement cache instead of one per count
_ENDED_SIZES = (8, 32, 128, ENDED_CHUNK)


def _get_ended(conn: sqlite3.Connection, instance_ids: list[str]) -> list[FlowRecord]:
    """The records of those instances that have ended: one statement per ``ENDED_CHUNK`` ids (a seek
    in the instance id index each)."""
    out: list[FlowRecord] = []
    for i in range(0, len(instance_ids), ENDED_CHUNK):
        chunk = instance_ids[i:i + ENDED_CHUNK]
        size = next(n for n in _ENDED_SIZES if n >= len(chunk))
        chunk += chunk[-1:] * (size - len(chunk))
        sql = (f"SELECT {_COLUMNS} FROM flows WHERE instance_id IN ({', '.join('?' * size)}) "
               f"AND status IN ('{_ENDED_IN}')")
        out.extend(FlowRecord(*row) for row in conn.execute(sql, chunk))
    return out


_ORDER = " ORDER BY updated_ns DESC, instance_id LIMIT ? OFFSET ?"
#: list(): each WHERE names its partial index's condition as written (SQLite uses a partial index
#: only then); with no status, the running and the ended flows are merged in order (two index scans)
_LIST_RUNNING = f"SELECT {_COLUMNS} FROM flows WHERE status = '{_RUNNING}'"
_LIST_ENDED = f"SELECT {_COLUMNS} FROM flows WHERE status <> '{_RUNNING}'"


#: most runs of ``flows_ended_runs`` one ``list()`` merges (more: it sorts the ended flows)
MAX_MERGED_RUNS = 64
_ENDED = f"status <> '{_RUNNING}'"


def _ended_runs(conn: sqlite3.Connection, status: str | None,
                workflow: str | None) -> list[tuple[str, str]]:
    """The (workflow, status) runs of ``flows_ended_runs`` that ``list(status, workflow)`` merges,
    found by index seeks (one per run); more than ``MAX_MERGED_RUNS`` stops the search."""
    runs: list[tuple[str, str]] = []
    if workflow is not None:
        workflows = [workflow]
    else:
        workflows = []
        row = conn.execute(f"SELECT workflow_id FROM flows WHERE {_ENDED} "
                           "ORDER BY workflow_id LIMIT 1").fetchone()
        while row is not None and len(workflows) <= MAX_MERGED_RUNS:
            workflows.append(row[0])
            row = conn.execute(f"SELECT workflow_id FROM flows WHERE {_ENDED} AND workflow_id > ? "
                               "ORDER BY workflow_id LIMIT 1", (row[0],)).fetchone()
    for wf in workflows:
        if status is not None:
            runs.append((wf, status))
            continue
        row = conn.execute(f"SELECT status FROM flows WHERE {_ENDED} AND workflow_id = ? "
                           "ORDER BY status LIMIT 1", (wf,)).fetchone()
        while row is not None and len(runs) <= MAX_MERGED_RUNS:
            runs.append((wf, row[0]))
            row = conn.execute(f"SELECT status FROM flows WHERE {_ENDED} AND workflow_id = ? AND status > ? "
                               "ORDER BY status LIMIT 1", (wf, row[0])).fetchone()
        if len(runs) > MAX_MERGED_RUNS:
            break
    return runs


def _list(conn: sqlite3.Connection, status: str | None, workflow: str | None, limit: int,
          offset: int) -> list[FlowRecord]:
    by_workflow = "" if workflow is None else " AND workflow_id = ?"
    wf: tuple[str, ...] = () if workflow is None else (workflow,)
    if status == _RUNNING:
        sql, args = _LIST_RUNNING + by_workflow, wf
    else:
        # ended flows: one run of flows_ended_runs per (workflow, status), merged (with the running
        # flows' index when no status is asked); too many runs: the ended flows sorted
        runs = _ended_runs(conn, status, workflow)
        ended_args: tuple[str, ...]
        if len(runs) > MAX_MERGED_RUNS:
            ended = _LIST_ENDED + by_workflow + ("" if status is None else " AND status = ?")
            ended_args = (*wf, *(() if status is None else (status,)))
        else:
            ended = " UNION ALL ".join(f"{_LIST_ENDED} AND workflow_id = ? AND status = ?" for _ in runs)
            ended_args = tuple(x for run in runs for x in run)
        if status is None:
            sql = _LIST_RUNNING + by_workflow + (f" UNION ALL {ended}" if ended else "")
            args = (*wf, *ended_args)
        elif ended:
            sql, args = ended, ended_args
        else:  # no ended flow at all: the plain query (finds nothing, checks the arguments)
            sql, args = f"{_LIST_ENDED} AND status = ?", (status,)
    return [FlowRecord(*row) for row in conn.execute(sql + _ORDER, (*args, limit, offset))]


def _claim(conn: sqlite3.Connection, instance_id: str, stage_key: str, result_json: str,
           seqs: _Seqs | None = None) -> str:
    now = time.time_ns()
    seq = None if seqs is None else seqs.get(instance_id)
    if seq is not None and conn.execute(_CLAIM_BY_SEQ, (
            stage_key, result_json, now, seq, instance_id)).rowcount == 1:
        return result_json
    if conn.execute(_CLAIM, (stage_key, result_json, now, instance_id)).rowcount == 1:
        return result_json  # inserted: ours is the claim (no SELECT to read it back)
    row = conn.execute(_STAGE, (stage_key, instance_id, instance_id, stage_key)).fetchone()
    if row is not None:
        return str(row[0])  # another writer was first
    # no record of the instance yet: the claim waits in stage_results for its first save
    if conn.execute(_CLAIM_EARLY, (instance_id, stage_key, result_json, now)).rowcount == 1:
        return result_json
    row = conn.execute(_STAGE, (stage_key, instance_id, instance_id, stage_key)).fetchone()
    return str(row[0])


def _claim_and_save(conn: sqlite3.Connection, instance_id: str, stage_key: str, result_json: str,
                    record: FlowRecord, seqs: _Seqs | None = None) -> str:
    stored = _claim(conn, instance_id, stage_key, result_json, seqs)
    if stored == result_json:
        _save(conn, record, seqs)
    return stored


def _stage(conn: sqlite3.Connection, instance_id: str, stage_key: str,
           seqs: _Seqs | None = None) -> str | None:
    seq = None if seqs is None else seqs.get(instance_id)
    if seq is not None:
        row = conn.execute(_STAGE_BY_SEQ, (instance_id, stage_key, seq)).fetchone()
        if row is not None and row[0]:
            return None if row[1] is None else str(row[1])
    row = conn.execute(_STAGE_SEQ, (stage_key, instance_id)).fetchone()
    if row is not None:  # a stored instance: every claim of it is in claims
        if seqs is not None:
            if len(seqs) >= SEQ_CACHE:
                seqs.clear()
            seqs[instance_id] = row[0]
        return None if row[1] is None else str(row[1])
    row = conn.execute(_STAGE_EARLY, (instance_id, stage_key)).fetchone()
    return None if row is None else str(row[0])


#: ``claim_computed_later``'s ``compute()``: (result JSON, the record to save with it or None), or None
Compute = Callable[[], "tuple[str, FlowRecord | None] | None"]


def _claim_computed(conn: sqlite3.Connection, instance_id: str, stage_key: str, compute: Compute,
                    seqs: _Seqs | None = None) -> tuple[str | None, bool]:
    """The claimed result of (instance, key); when there is none, ``compute()``'s result claimed (and
    its record saved when the claim wins) in the same transaction. Returns (the claim found or made,
    whether it is the computed one); (None, False) when ``compute`` declined."""
    stored = _stage(conn, instance_id, stage_key, seqs)
    if stored is not None:
        return stored, False
    computed = compute()
    if computed is None:
        return None, False
    text, record = computed  # the engine's own (no argument checks here: an error would leave the batch)
    if record is not None:
        stored = _claim_and_save(conn, instance_id, stage_key, text, record, seqs)
    else:
        stored = _claim(conn, instance_id, stage_key, text, seqs)
    return stored, stored == text


_Fn = Callable[..., Any]


def _instance_of(op: _Op) -> str:
    """The instance id an operation reads or writes (``_save`` takes a record, the others the id)."""
    first = op[1][0]
    return first.instance_id if first.__class__ is FlowRecord else str(first)


#: (function, its arguments after the connection, writes?, the caller's loop, the caller's future (None:
#: nobody waits), what, time.monotonic() when queued)
_Op = tuple[_Fn, tuple[Any, ...], bool, asyncio.AbstractEventLoop, "asyncio.Future[Any] | None", str, float]
_CLOSE = None
#: ``_run_here``: another connection holds the write lock
_BUSY: list[tuple[_Op, bool, Any]] = []
#: how long inline writes try again while another process holds the write lock, before the writer
#: thread waits for it: the first try INLINE_LOCK_PAUSE s after the refusal, then each after as long
#: as the wait so far (the pause doubles), at most INLINE_LOCK_PAUSE_MAX apart. Never less than 1 ms:
#: uvloop rounds a timer to whole milliseconds, so a pause under 0.5 ms fired on the next loop turn
#: and an idle loop (the starter's) spun on ``BEGIN IMMEDIATE``, ~27 refusals per wait for the lock
#: (each ~12 µs of SQLite and an exception, CPU the holder needed on a loaded machine)
INLINE_LOCK_WAIT = 0.05
INLINE_LOCK_PAUSE = 0.001
INLINE_LOCK_PAUSE_MAX = 0.004


def _settle(done: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """On the caller's loop: resolve the futures of one batch (a caller that gave up is skipped)."""
    for fut, ok, value in done:
        if not fut.done():
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


def _settle_here(done: list[tuple[_Op, bool, Any]]) -> None:
    """Resolve the futures of a batch run on their own loop's thread (no wake-up needed)."""
    for op, ok, value in done:
        fut = op[4]
        if fut is None:
            if not ok:
                log.warning("%s", value)
        elif not fut.done():
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


def _deliver(done: list[tuple[_Op, bool, Any]]) -> None:
    """Hand the batch's outcomes to each caller's loop, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for op, ok, value in done:
        fut = op[4]
        if fut is None:  # save_nowait: nobody waits; a failure is logged
            if not ok:
                log.warning("%s", value)
            continue
        by_loop.setdefault(op[3], []).append((fut, ok, value))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, items)


def _store_error(exc: sqlite3.Error, what: str, url: str, timeout: float) -> FlowStoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        advice = (f"another process held the database lock for more than {timeout:g}s: raise ?timeout= "
                  "in the URL or use PostgreSQL for many writers")
    elif "readonly" in text or "read-only" in text:
        advice = "the file or its folder is not writable by this process"
    elif "disk" in text or "full" in text:
        advice = "check the disk (space, I/O errors)"
    else:
        advice = "check the file (it may not be a StageFlow store, or be corrupt)"
    err = FlowStoreError(f"flow store {url}: {what} failed: {text}: {advice}")
    err.__cause__ = exc
    return err


class _Checkpointer:
    """Checkpoints the WAL of one store file on its own thread and connection when poked (see the
    module docstring); started on the first poke, stopped by the store's writer thread at close.

    A passive checkpoint copies the WAL into the database file without blocking anyone, but while
    several processes write without a pause it never catches up with the last frame, so SQLite never
    starts the WAL over: it grew to 700 MB for a 34 MB database in the 3-process benchmark, every
    commit appending to a larger file and every page lookup searching more of the WAL index. When a
    passive checkpoint leaves more than ``RESTART_FRAMES`` frames, a ``RESTART`` checkpoint follows:
    it takes the write lock (writers wait, up to ``RESTART_WAIT_MS``), copies the few frames written
    meanwhile, syncs, and waits for readers to leave the WAL, so the next commit writes it from its
    start."""

    def __init__(self, path: str, url: str) -> None:
        self._path = path
        self._url = url
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, daemon=True,
                                            name=f"mmate-flowstore-checkpoint:{self._path}")
            self._thread.start()
        self._wake.set()

    def _serve(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        except sqlite3.Error as exc:
            log.warning("flow store %s: cannot open a connection for WAL checkpoints (%s): the WAL file "
                        "grows until the store is closed", self._url, exc)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if row is not None and row[1] > RESTART_FRAMES:
                        self._restart(conn)
                except sqlite3.Error as exc:  # another one runs (busy), I/O: the next poke tries again
                    log.debug("flow store %s: WAL checkpoint failed: %s", self._url, exc)
        finally:
            conn.close()

    def _restart(self, conn: sqlite3.Connection) -> None:
        """``wal_checkpoint(RESTART)``, tried every 0.1-1 ms for up to ``RESTART_WAIT_MS``: writers
        that poll for the lock as often would always beat SQLite's busy handler (1, 2, 5 ms...)."""
        deadline = time.monotonic() + RESTART_WAIT_MS / 1000
        pause = 0.0001
        while not self._stop:
            try:
                row = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                if row is None or row[0] == 0:
                    return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            if time.monotonic() >= deadline:
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.001)

    def stop(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()


class SQLiteFlowStore:
    """A FlowStore in a SQLite file (or ``:memory:``), served by one writer thread."""

    def __init__(self, path: str, *, timeout: float = DEFAULT_TIMEOUT, url: str = "") -> None:
        self._path = path
        self._timeout = timeout
        self.url = url or f"sqlite:///{path}"
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._closed = False
        #: instance id -> flows.seq, learned by stage_result (see ``_Seqs``)
        self._seqs: _Seqs = {}
        #: per calling thread: ``conn`` (its connection, for reads and inline writes) and ``pending``
        #: (the writes of this loop turn); a file store only: another connection to ``:memory:`` would
        #: open another, empty, database
        self._local = threading.local()
        #: write ops handed to the writer thread / finished there: while they differ, new writes go
        #: there too (after them, in order)
        self._writes_handed = 0
        self._writes_done = 0
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._sync_reads = path != ":memory:" and not path.startswith("file:")
        #: WAL checkpoints off the writer thread (a file store only); the writer counts its commits
        self._checkpointer = _Checkpointer(path, self.url) if self._sync_reads else None
        self._write_commits = 0
        self._stopped: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        opened: list[BaseException | None] = []
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(opened, ready), daemon=True,
                                        name=f"mmate-flowstore-sqlite:{path}")
        self._thread.start()
        ready.wait()
        if opened[0] is not None:
            self._thread.join()
            raise opened[0]

    @classmethod
    def from_url(cls, url: str) -> SQLiteFlowStore:
        """Parse ``sqlite:///path.db?timeout=S`` and open it."""
        rest = url.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise InvalidArgumentError(f"SQLite store URL {url!r}: use sqlite:///relative/path.db, "
                                       "sqlite:////absolute/path.db or sqlite:///:memory:", argument="url")
        path, _, query = rest[1:].partition("?")
        timeout = DEFAULT_TIMEOUT
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key != "timeout":
                raise InvalidArgumentError(f"SQLite store URL {url!r}: unknown option {key!r} (only "
                                           "timeout=SECONDS)", argument="url")
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= 3600:
                raise InvalidArgumentError(f"SQLite store URL {url!r}: timeout must be seconds in "
                                           "(0, 3600]", argument="url")
        return cls(path, timeout=timeout, url=url)

    def __repr__(self) -> str:
        return f"<SQLiteFlowStore {self.url}{' closed' if self._closed else ''}>"

    # ------------------------------------------------------------------ the writer thread
    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise FlowStoreUnavailableError(
                f"cannot open the SQLite flow store {self.url}: {exc}: check that the folder exists "
                "and is writable", url=self.url) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            self._set_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            if self._checkpointer is not None:
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread does it
            if self._schema_outdated(conn):  # a read: opening a store never waits for a writer
                conn.execute("BEGIN IMMEDIATE")
                if self._schema_outdated(conn):  # another process may have done it meanwhile
                    _migrate(conn)
                conn.execute("COMMIT")
        except FlowStoreUnavailableError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise FlowStoreUnavailableError(
                f"cannot open the SQLite flow store {self.url}: {exc}: check that it is a StageFlow "
                "store, writable, and not locked by another process", url=self.url) from exc
        return conn

    def _schema_outdated(self, conn: sqlite3.Connection) -> bool:
        """Whether the file needs the schema created or migrated (an empty file, or schema 0);
        FlowStoreUnavailableError for a schema newer than this code knows."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FlowStoreUnavailableError(
                f"the SQLite flow store {self.url} has schema version {version}, made by a newer "
                f"mmate_fast (this one knows up to {SCHEMA_VERSION}): upgrade mmate_fast here or use "
                "another file", url=self.url)
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        return (version != SCHEMA_VERSION or not _SCHEMA_NAMES.issubset(present)
                or not present.isdisjoint(_OLD_INDEXES))

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        """``journal_mode = WAL``: SQLite reports "locked" at once (no busy handler) when another
        process opens a new file at the same moment, so retry until the timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.001)

    def _serve(self, opened: list[BaseException | None], ready: threading.Event) -> None:
        try:
            conn = self._open()
        except FlowStoreUnavailableError as exc:
            opened.append(exc)
            ready.set()
            return
        opened.append(None)
        ready.set()
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        stop = False
        try:
            while not stop:
                batch: list[_Op] = []
                item = get()
                while True:
                    if item is _CLOSE:
                        stop = True
                        break
                    batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                    try:
                        item = get_nowait()
                    except queue.Empty:
                        break
                writes = sum(1 for op in batch if op[2])
                batch = self._drop_stale(batch) if batch else batch
                if batch:
                    _deliver(self._run(conn, batch))
                self._writes_done += writes
        finally:
            if self._checkpointer is not None:
                self._checkpointer.stop()
            conn.close()
            self._fail_leftovers()
            for loop, fut in self._stopped:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, [(fut, True, None)])

    def _drop_stale(self, batch: list[_Op]) -> list[_Op]:
        """Calls queued longer than the timeout fail (the store is not keeping up); the rest run."""
        oldest = time.monotonic() - self._timeout
        if batch[0][6] >= oldest:
            return batch
        stale = [op for op in batch if op[6] < oldest]
        _deliver([(op, False, FlowStoreError(
            f"flow store {self.url}: {op[5]} waited more than {self._timeout:g}s for its turn: the "
            "store cannot keep up (slow disk, or a lock held by another process); raise ?timeout= in "
            "the URL or use PostgreSQL")) for op in stale])
        return [op for op in batch if op[6] >= oldest]

    def _fail_leftovers(self) -> None:
        """Calls that slipped in after close (from another thread) fail with the named error."""
        left: list[tuple[_Op, bool, Any]] = []
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is not _CLOSE:
                left.append((op, False, FlowStoreClosedError(
                    f"the flow store {self.url} is closed: open a new one with open_store(url)")))
        _deliver(left)

    def _begin_write(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, polling a lock another process holds every 0.1-1 ms instead of
        SQLite's busy handler (which sleeps 1, 2, 5, 10 ms...: 3 processes sharing a file waited
        there ~25% of the time); gives up with the usual "locked" error after the timeout."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + self._timeout
            pause = 0.0001
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    text = str(exc)
                    if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")

    def _run(self, conn: sqlite3.Connection, batch: list[_Op]) -> list[tuple[_Op, bool, Any]]:
        """Run one batch in one transaction; only a committed write is reported done."""
        done: list[tuple[_Op, bool, Any]] = []
        writes = any(op[2] for op in batch)
        try:
            if writes:
                self._begin_write(conn)
            else:
                conn.execute("BEGIN")
            for op in batch:
                try:
                    done.append((op, True, op[0](conn, *op[1])))
                except sqlite3.OperationalError:
                    raise  # locked, I/O: the transaction is lost, fail the whole batch
                except sqlite3.Error as exc:  # this statement only (SQLite undid it alone)
                    done.append((op, False, _store_error(exc, op[5], self.url, self._timeout)))
            conn.execute("COMMIT")
            if writes:
                self._committed()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return [(op, False, _store_error(exc, op[5], self.url, self._timeout)) for op in batch]
        return done

    def _committed(self) -> None:
        """A write transaction committed (here or on the writer thread): poke the checkpointer now
        and then."""
        if self._checkpointer is not None:
            self._write_commits += 1
            if self._write_commits % CHECKPOINT_EVERY == 0:
                self._checkpointer.poke()

    # ------------------------------------------------------------------ inline batches (calling thread)
    def _enqueue(self, fn: _Fn, args: tuple[Any, ...], writes: bool, what: str,
                 wait: bool) -> asyncio.Future[Any] | None:
        """Queue a call for the end of this loop turn; returns its future (None when nobody
        ``wait``s). A store without inline batches hands it to the writer thread at once."""
        if self._closed:
            raise self._closed_error()
        local = self._local
        pending: list[_Op] | None = getattr(local, "pending", None)
        if pending and local.loop.is_running():
            # not the turn's first call: its loop is known (asyncio.get_running_loop() costs a
            # getpid() system call on Python < 3.12: once per batch, not once per call)
            loop: asyncio.AbstractEventLoop = local.loop
        else:
            loop = local.loop = asyncio.get_running_loop()
            if pending:  # queued on a loop that stopped before its turn ended: the writer thread runs them
                self._hand_over(pending)
            elif pending is None:
                pending = local.pending = []
        fut = loop.create_future() if wait else None
        op: _Op = (fn, args, writes, loop, fut, what, time.monotonic())
        if not self._sync_reads:
            if writes:
                self._writes_handed += 1
            self._queue.put(op)
            return fut
        pending.append(op)
        if len(pending) == 1:
            loop.call_soon(self._flush_here, pending)
        return fut

    def _flush_here(self, pending: list[_Op], since: float = 0.0) -> None:
        """Run this turn's calls on this thread, in one transaction (``BEGIN IMMEDIATE`` when one of
        them writes: a read transaction of its own before it, to hold the lock for the writes only,
        cost more CPU than the shorter hold saved). While another process holds the write lock,
        answer the reads that no write queued before them touches in one transaction without the
        lock (and those issued meanwhile the same way), and
        try the writes again a little later from the loop (the calls issued meanwhile join them)
        for up to ``INLINE_LOCK_WAIT`` s, then hand them to the writer thread, which waits for its
        turn off the loop; so do calls behind writes still pending there (in order)."""
        if not pending:
            return
        if self._writes_handed == self._writes_done and not self._closed:
            batch = pending[:]
            done = self._run_here(batch)
            if done is not None and done is not _BUSY:
                del pending[:len(batch)]
                _settle_here(done)
                return
            if done is _BUSY:
                self._answer_reads(pending)
                now = time.monotonic()
                since = since or now
                if now - since < INLINE_LOCK_WAIT:
                    pause = min(max(now - since, INLINE_LOCK_PAUSE), INLINE_LOCK_PAUSE_MAX)
                    pending[0][3].call_later(pause, self._flush_here, pending, since)
                    return
        self._hand_over(pending)

    def _answer_reads(self, pending: list[_Op]) -> None:
        """The write lock is busy: answer now, without it, the reads of ``pending`` that no write
        queued before them touches (another instance's); the rest stay queued, in order."""
        written: set[str] = set()
        reads: list[_Op] = []
        for op in pending:
            if op[2]:
                written.add(_instance_of(op))
            elif op[0] is _get_ended:  # several instances: none of them written before it
                if written.isdisjoint(op[1][0]):
                    reads.append(op)
            elif _instance_of(op) not in written:
                reads.append(op)
        if not reads:
            return
        answered = self._run_here(reads)
        if answered is None or answered is _BUSY:
            return
        taken = {id(op) for op in reads}
        pending[:] = [op for op in pending if id(op) not in taken]
        _settle_here(answered)

    def _hand_over(self, pending: list[_Op]) -> None:
        """Queue ``pending`` (emptied) on the writer thread, in order."""
        batch = pending[:]
        pending.clear()
        for op in batch:
            if op[2]:
                self._writes_handed += 1
            self._queue.put(op)

    def _run_here(self, batch: list[_Op]) -> list[tuple[_Op, bool, Any]] | None:
        """``batch`` in one transaction on this thread's connection; ``_BUSY`` when it writes and
        another connection holds the write lock, None when it cannot run here (no connection, or
        SQLite failed): nothing of it was written then."""
        conn = self._conn()
        if conn is None:
            return None
        writes = False
        for op in batch:
            if op[2]:
                writes = True
                break
        try:
            conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")  # no busy wait (timeout 0)
        except sqlite3.OperationalError as exc:
            text = str(exc)
            return _BUSY if writes and ("locked" in text or "busy" in text) else None
        except sqlite3.Error:
            return None
        done: list[tuple[_Op, bool, Any]] = []
        try:
            for op in batch:
                try:
                    done.append((op, True, op[0](conn, *op[1])))
                except sqlite3.OperationalError:
                    raise
                except sqlite3.Error as exc:  # this statement only (SQLite undid it alone)
                    done.append((op, False, _store_error(exc, op[5], self.url, self._timeout)))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            log.debug("flow store %s: a batch failed on the calling thread (%s): the writer thread "
                      "runs it", self.url, exc)
            return None
        if writes:
            self._committed()
        return done

    # ------------------------------------------------------------------ the callers' side
    def _closed_error(self) -> FlowStoreClosedError:
        return FlowStoreClosedError(f"the flow store {self.url} is closed: open a new one with "
                                    "open_store(url)")

    async def _call(self, fn: _Fn, args: tuple[Any, ...], writes: bool, what: str) -> Any:
        """Run ``fn`` on the writer thread and wait for its outcome."""
        if self._closed:
            raise self._closed_error()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if writes:
            self._writes_handed += 1
        self._queue.put((fn, args, writes, loop, fut, what, time.monotonic()))
        return await fut

    async def _batched(self, fn: _Fn, args: tuple[Any, ...], writes: bool, what: str) -> Any:
        """Queue ``fn`` with this loop turn's batch and wait for its outcome."""
        return await self._enqueue(fn, args, writes, what, True)  # type: ignore[misc]

    def _conn(self) -> sqlite3.Connection | None:
        """This thread's connection (opened on first use; no busy wait, no automatic checkpoint), or
        None (``:memory:``, or it cannot be opened: the writer thread reads and writes then)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None or not self._sync_reads:
            return conn
        try:
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        except sqlite3.Error as exc:
            log.debug("flow store %s: no connection on this thread (%s): reads and writes go to the "
                      "writer thread", self.url, exc)
            self._sync_reads = False
            return None
        with self._conns_lock:
            if self._closed:
                conn.close()
                return None
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    async def save(self, record: FlowRecord) -> None:
        await self.save_later(record)

    def save_later(self, record: FlowRecord) -> asyncio.Future[None]:
        """``save``, committed with this loop turn's batch (the future is done after the commit)."""
        check_record(record)
        return self._enqueue(_save, (record, self._seqs), True, "save", True)  # type: ignore[return-value]

    def save_nowait(self, record: FlowRecord) -> None:
        """Queue a save of ``record`` and return at once: it is committed with the next batch, in
        order with the calls queued before it; nobody waits for it, and a failure is logged (a
        warning), not raised. For the engine's saves after a hop (the record may lag a moment)."""
        check_record(record)
        self._enqueue(_save, (record, self._seqs), True, "save", False)

    async def get(self, instance_id: str) -> FlowRecord | None:
        result: FlowRecord | None = await self._batched(_get, (instance_id,), False, "get")
        return result

    async def get_ended(self, instance_ids: list[str]) -> list[FlowRecord]:
        """The records of those instances that have ended (see ``FlowStore``), read with this loop
        turn's batch."""
        ids = check_ids(instance_ids)
        if not ids:
            if self._closed:
                raise self._closed_error()
            return []
        result: list[FlowRecord] = await self._batched(_get_ended, (ids,), False, "get_ended")
        return result

    async def list(self, *, status: str | None = None, workflow: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[FlowRecord]:
        check_page(limit, offset)
        result: list[FlowRecord] = await self._call(_list, (status, workflow, limit, offset), False, "list")
        return result

    async def claim_stage(self, instance_id: str, stage_key: str, result_json: str) -> str:
        result: str = await self.claim_stage_later(instance_id, stage_key, result_json)
        return result

    async def claim_stage_and_save(self, instance_id: str, stage_key: str, result_json: str,
                                   record: FlowRecord) -> str:
        """``claim_stage``; when this call wins the claim, ``save(record)`` in the same transaction."""
        result: str = await self.claim_stage_and_save_later(instance_id, stage_key, result_json, record)
        return result

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        result: str | None = await self.stage_result_later(instance_id, stage_key)
        return result

    # the ``*_later`` calls: the FlowStore calls as the future of this loop turn's batch (no coroutine;
    # the engine's stage hops chain their steps on them with done-callbacks). Bad arguments and a closed
    # store raise at once; everything else arrives in the future, as the async calls raise it.
    def claim_computed_later(self, instance_id: str, stage_key: str,
                             compute: Compute) -> asyncio.Future[tuple[str | None, bool]]:
        """In this loop turn's write transaction: the claimed result of (instance, key); when there is
        none, ``compute()`` is called there and then (on this thread, with the write lock held: it
        must be quick and must not wait) and the ``(result_json, record or None)`` it returns is
        claimed, the record saved when the claim wins, before the commit: one transaction where
        ``stage_result`` + ``claim_stage[_and_save]`` take two, and no other writer between the read
        and the claim. The future gives (the claim found or made, whether it is the computed one).
        ``compute`` may be called again (the batch retried, or run on the writer thread when this
        thread could not): it returns the same result then, or None to claim nothing ((None, False):
        the caller claims on its own). An error of ``compute`` must stay inside it (kept, None)."""
        check_key(instance_id, stage_key)
        return self._enqueue(_claim_computed, (  # type: ignore[return-value]
            instance_id, stage_key, compute, self._seqs), True, "claim_stage", True)

    def stage_result_later(self, instance_id: str, stage_key: str) -> asyncio.Future[str | None]:
        """``stage_result``, read with this loop turn's batch."""
        check_key(instance_id, stage_key)
        return self._enqueue(_stage, (instance_id, stage_key, self._seqs), False,  # type: ignore[return-value]
                             "stage_result", True)

    def claim_stage_later(self, instance_id: str, stage_key: str, result_json: str) -> asyncio.Future[str]:
        """``claim_stage``, committed with this loop turn's batch (the future is done after the commit)."""
        check_claim(instance_id, stage_key, result_json)
        return self._enqueue(_claim, (instance_id, stage_key, result_json,  # type: ignore[return-value]
                                      self._seqs), True, "claim_stage", True)

    def claim_stage_and_save_later(self, instance_id: str, stage_key: str, result_json: str,
                                   record: FlowRecord) -> asyncio.Future[str]:
        """``claim_stage_and_save``, committed with this loop turn's batch."""
        check_claim(instance_id, stage_key, result_json)
        check_record(record)
        return self._enqueue(_claim_and_save, (  # type: ignore[return-value]
            instance_id, stage_key, result_json, record, self._seqs), True, "claim_stage", True)

    async def close(self) -> None:
        """Finish what is queued, close the connection and stop the thread (idempotent)."""
        if not self._closed:
            pending: list[_Op] | None = getattr(self._local, "pending", None)
            if pending:  # this loop turn's writes (or those waiting for the lock): before the close
                self._hand_over(pending)
            self._closed = True
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._stopped.append((loop, fut))
            # the calling threads' connections first: the last connection to close checkpoints the WAL,
            # and that is the writer thread's (not this loop's)
            with self._conns_lock:
                conns, self._conns = self._conns, []
            for conn in conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._queue.put(_CLOSE)
            await fut
        elif self._thread.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


__all__ = ["DEFAULT_TIMEOUT", "SQLiteFlowStore"]
