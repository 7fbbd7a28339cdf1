"""StageFlow's stage hop on a SQLite store, on memory:// and RabbitMQ: a plain stage's hop is chained on
the store's futures (``stageflow._later``: what the subscriber settles on is a future, no coroutine, no
Task), with the general path's order and durability: the stage's claim is committed in the file before
the next hop is published, the last stage's claim and final state before the final event, and the
state after a hop is saved once that hop is confirmed."""
from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from typing import Any

import pytest

from mmate_fast.errors import FlowStoreClosedError
from mmate_fast.stageflow import Workflow, _wire
from mmate_fast.stageflow import engine as engine_module
from mmate_fast.stageflow._router import router_for
from mmate_fast.stageflow._wire import FlowMessageEnvelope
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import engine_for
from tests.behaviour.test_stageflow_bad_input import kept_in_dlq


class _Witness:
    """The engine's client, with every publish first checked against the store file through a
    connection of its own (what another process would read at that moment)."""

    def __init__(self, client: Any, path: str) -> None:
        self._client = client
        self._db = sqlite3.connect(path, isolation_level=None)
        #: (what was published, the claims of its instance committed then, its record's status then)
        self.seen: list[tuple[str, list[str], str | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def publish(self, message: Any, **options: Any) -> Any:
        iid = message.instance_id
        claims = sorted(row[0] for row in self._db.execute(
            "SELECT c.stage_key FROM claims c JOIN flows f ON c.flow = f.seq WHERE f.instance_id = ?", (iid,)))
        row = self._db.execute("SELECT status FROM flows WHERE instance_id = ?", (iid,)).fetchone()
        what = (f"stage{message.current_stage_index}" if isinstance(message, FlowMessageEnvelope)
                else type(message).__name__)
        self.seen.append((what, claims, None if row is None else row[0]))
        return self._client.publish(message, **options)


def _plain_flow(wf_id: str) -> Workflow:
    wf = Workflow(wf_id)
    for sid in ("a", "b", "c"):
        wf.add_stage(sid, lambda ctx, sid=sid: {sid: 1})
    return wf


async def test_a_sqlite_hop_commits_its_claim_before_it_publishes(url: str, names: Names, tmp_path: Any) -> None:
    path = f"{tmp_path}/flows.db"
    wf = _plain_flow(f"bt-flow-{names.queue('wf')}")
    async with engine_for(url, names, wf, store=f"sqlite:///{path}", publish_events="terminal") as flows:
        returned: list[Any] = []
        routes = router_for(flows.client).routes
        for i in range(3):
            queue = flows.stage_queue(wf, i)
            route = routes[queue]

            def spy(msg: Any, redelivered: bool, route: Any = route) -> Any:
                out = route(msg, redelivered)
                returned.append(out)
                return out

            routes[queue] = spy
        witness = _Witness(flows.client, path)
        flows._rt.client = witness
        iid = await flows.start(wf, {})
        state = await flows.wait(iid, timeout=10)
        assert state.status == "completed" and state.version == 5
        # the start's hop: no claim yet, the record saved; each hop after its stage's committed claim
        assert witness.seen == [("stage0", [], "running"), ("stage1", ["stage0"], "running"),
                                ("stage2", ["stage0", "stage1"], "running"),
                                ("WorkflowCompletedEvent", ["stage0", "stage1", "stage2"], "completed")]
        assert len(returned) == 3 and all(isinstance(r, asyncio.Future) for r in returned)  # no coroutine
        for _ in range(100):  # the saves after the hops are queued once each hop is confirmed
            record = await flows.status(iid)
            if record is not None and record.version == 5:
                break
            await asyncio.sleep(0.01)
        assert record is not None and record.status == "completed" and record.version == 5


async def test_a_sqlite_hop_whose_publish_fails_saves_nothing_after_it(
        url: str, names: Names, conn: Any, tmp_path: Any) -> None:
    """The publish of the next hop fails: the stage message fails (``dlq.{queue}``, as a raising
    handler's), the stage ran once and its claim stays, the state after the hop is not saved, and the
    stage is no longer in flight."""
    path = f"{tmp_path}/flows.db"
    ran: list[str] = []
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    for sid in ("a", "b", "c"):
        wf.add_stage(sid, lambda ctx, sid=sid: ran.append(sid) or {sid: 1})
    async with engine_for(url, names, wf, store=f"sqlite:///{path}", publish_events="terminal") as flows:
        client = flows.client

        class _HopFails:
            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

            def publish(self, message: Any, **options: Any) -> Any:
                if isinstance(message, FlowMessageEnvelope) and message.current_stage_index == 1:
                    fut = asyncio.get_running_loop().create_future()
                    fut.set_exception(ConnectionError("the broker went away"))
                    return fut
                return client.publish(message, **options)

        flows._rt.client = _HopFails()
        iid = await flows.start(wf, {})
        [kept] = await kept_in_dlq(conn, flows.stage_queue(wf, 0), 1)
        assert kept.properties.headers["x-mmate-reason"] == "handler-error"
        assert "the broker went away" in kept.properties.headers["x-mmate-error"]
        assert ran == ["a"] and not flows._registration(wf).stages._inflight
        await asyncio.sleep(0.05)  # a save queued after the hop would be committed by now
        record = await flows.status(iid)
        assert record is not None and record.version == 1  # the start's save only
        assert await flows.store.stage_result(iid, "stage0") is not None


async def test_a_hop_on_a_sqlite_store_that_closed_fails_at_once(url: str, names: Names, tmp_path: Any) -> None:
    """A hop on a closed store raises FlowStoreClosedError at once (the coroutine path raised it
    from its first store call) and leaves nothing in flight."""
    wf = _plain_flow(f"bt-flow-{names.queue('wf')}")
    async with engine_for(url, names, wf, store=f"sqlite:///{tmp_path}/flows.db") as flows:
        state = await flows.wait(await flows.start(wf, {}), timeout=10)
        assert state.status == "completed"
        await flows.store.close()
        handler = flows._registration(wf).stages
        running = _wire.decode_state(_wire.encode_state(state))
        running.status = "running"
        hop = _wire.flow_message(running, stage_index=1, stage_name="b", next_queue=flows.stage_queue(wf, 2),
                                 payload={})
        with pytest.raises(FlowStoreClosedError):
            handler.handle_now(1, hop)
        # this hop's key only: the last stage's may still wait for its final event's confirm (wait()
        # returns when the flow ends here, before that), which failed this test now and then on RabbitMQ
        assert (state.instance_id, 1) not in handler._inflight


async def test_a_slow_stage_leaves_the_claims_transaction_after_slow_runs_in_a_row(
        url: str, names: Names, tmp_path: Any) -> None:
    """A plain stage that takes longer than ``INLINE_STAGE_NS`` run after run would hold the file's
    write lock as long: after ``SLOW_RUNS`` such runs in a row it runs outside the transaction (read,
    run, claim: the split path); its flows complete either way, each stage run once."""
    from mmate_fast.stageflow import _later

    ran: list[str] = []
    wf = Workflow(f"bt-flow-{names.queue('wf')}")
    wf.add_stage("a", lambda ctx: ran.append("a") or {"a": 1})
    wf.add_stage("slow", lambda ctx: ran.append("slow") or time.sleep(_later.INLINE_STAGE_NS / 1e9 * 2) or {"s": 1})
    wf.add_stage("c", lambda ctx: ran.append("c") or {"c": 1})
    async with engine_for(url, names, wf, store=f"sqlite:///{tmp_path}/flows.db", publish_events="terminal") as flows:
        handler = flows._registration(wf).stages
        computed: list[str] = []
        store = flows.store
        real = store.claim_computed_later

        def spy(instance_id: str, stage_key: str, compute: Any) -> Any:
            computed.append(stage_key)
            return real(instance_id, stage_key, compute)

        store.claim_computed_later = spy  # type: ignore[method-assign]
        flows._rt.store = store
        n = _later.SLOW_RUNS + 3
        for _ in range(n):  # one after the other: the slow runs come in a row
            state = await flows.wait(await flows.start(wf, {}), timeout=10)
            assert state.status == "completed"
        assert ran == ["a", "slow", "c"] * n
        assert handler._slow == {1: _later.SLOW_RUNS}  # its count stops there; a and c are quick
        assert computed.count("stage1") == _later.SLOW_RUNS  # then the split path
        assert computed.count("stage0") == computed.count("stage2") == n


class _NoLater:
    """The engine's SQLite store without its ``*_later`` calls: ``Runtime.later`` is None, so every hop
    takes the general coroutine path (``_guarded`` -> ``step`` -> ``execute``)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_later"):
            raise AttributeError(name)
        return getattr(self._store, name)


class _Recorder:
    """The engine's client, recording every publish in a comparable form (message ids, the run's queue
    prefix and instance id left out)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def publish(self, message: Any, **options: Any) -> Any:
        fields = {k: v for k, v in vars(message).items() if k not in ("id", "_state")}
        if "next_stage_queue" in fields:
            fields["next_stage_queue"] = fields["next_stage_queue"].replace(self._prefix, "")
        self.seen.append((type(message).__name__, fields))
        return self._client.publish(message, **options)


def _every_kind_of_stage(wf_id: str) -> Workflow:
    """Four stages: Go-escaped data, an optional stage that fails (the flow goes on), one that sets
    nothing, and the last one."""
    wf = Workflow(wf_id)

    def b(ctx: Any) -> Any:
        raise ValueError("b is down")

    wf.add_stage("a", lambda ctx: {"a": 1, "s": "x<&>\u2028\"\\", "n": None})
    wf.add_stage("b", b, optional=True)
    wf.add_stage("c", lambda ctx: {})
    wf.add_stage("d", lambda ctx: {"d": [1.5, -0.0, 2**53], "nested": {"k": "v"}})
    return wf


async def _one_flow(url: str, names: Names, wf: Workflow, store: str, events: str, path: str) -> Any:
    """One flow of ``wf`` under ``path`` (``general``: the coroutine path; ``inline``: the stage in its
    claim's transaction; ``split``: read, run, claim): what it published, its claims and its record."""
    async with engine_for(url, names, wf, store=store, publish_events=True if events == "all" else events) as flows:
        handler = flows._registration(wf).stages
        if path == "general":
            flows._rt.store = _NoLater(flows.store)
        elif path == "split":
            handler._slow.update({i: 10**6 for i in range(len(wf.stages))})
        prefix = flows.stage_queue(wf, 0)[:-len(f"{wf.id}.stage0")]
        recorder = _Recorder(flows.client, prefix)
        flows._rt.client = recorder
        iid = await flows.start(wf, {"orderId": "o-1", "amount": 9.5}, instance_id="0190e0e0-0000-7000-8000-000000000001")
        state = await flows.wait(iid, timeout=10)
        for _ in range(200):  # the saves after the hops are queued once each hop is confirmed
            record = await flows.status(iid)
            if record is not None and record.version == state.version:
                break
            await asyncio.sleep(0.01)
        claims = {k: await flows.store.stage_result(iid, f"stage{k}") for k in range(len(wf.stages))}
        if path != "general":
            assert handler._slow == ({} if path == "inline" else {i: 10**6 for i in range(len(wf.stages))})
        assert record is not None
        return recorder.seen, claims, dataclasses.replace(record, worker=""), _wire.encode_state(state)


@pytest.mark.parametrize("events", ["terminal", "all"])
@pytest.mark.parametrize("path", ["inline", "split"])
async def test_a_sqlite_hop_publishes_claims_and_saves_what_the_general_path_does(
        url: str, names: Names, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, events: str, path: str) -> None:
    """With the clock stopped, a flow through the SQLite hop (its stage in the claim's transaction, or
    split) publishes the same hops and events, claims the same outcomes and saves the same records as
    the same flow through the general coroutine path, byte for byte (the hop's state work is
    ``flowstate.advance``'s one call, the general path's is ``step`` + ``encode_state``)."""
    frozen = lambda: 1_733_000_000_123_456_789  # noqa: E731
    monkeypatch.setattr(time, "time_ns", frozen)
    monkeypatch.setattr(engine_module, "_time_ns", frozen)  # start() binds the clock at import
    monkeypatch.setattr(time, "perf_counter_ns", lambda: 5_000)
    wf = _every_kind_of_stage(f"bt-flow-{names.queue('wf')}")
    want = await _one_flow(url, names, wf, f"sqlite:///{tmp_path}/general.db", events, "general")
    got = await _one_flow(url, names, wf, f"sqlite:///{tmp_path}/{path}.db", events, path)
    published, claims, record, final = got
    assert [t for t, _ in published] == [t for t, _ in want[0]]
    assert published == want[0]
    assert claims == want[1] and all(claims.values())
    assert record == want[2] and record.status == "completed"
    assert final == want[3]
