"""Shared pieces of the ``stageflow`` workload: the 3-stage flow, its queues, the two worker
processes and the starter that counts completions.

The flow (an order: ``validate`` -> ``charge`` -> ``ship``, each stage adding one key) runs on
durable stage queues with Go's StageFlow arguments (spec 2.2: TTL + dead-lettering to
``dlq.{queue}``), persistent messages, publisher confirms and manual acks. Every client row runs the
same shape: two worker processes serving every stage queue (competing consumers), and a third
process, the starter, that keeps ``inflight`` flows running (a new flow per completion) until N have
completed, timed from the first start to the N-th completion.

The client process that run.py starts is the starter; it spawns the two workers (``SCRIPT
flow-worker``), waits for their ``READY`` line, runs, then writes ``STOP`` to their stdin and reads
their JSON line (CPU seconds and stages handled). Client CPU is starter + both workers.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from _common import AMQPError, RawAMQP, broker_cpu_s
from pamqp import commands as C

#: The stages and the key each one adds to the flow's data (validate/charge/ship as in the vectors).
STAGES: tuple[tuple[str, str, Any], ...] = (
    ("validate", "validated", True),
    ("charge", "chargeId", "CH-ORD-00000042"),
    ("ship", "trackingNo", "TRK-ORD-00000042"),
)
INITIAL_DATA: dict[str, Any] = {"orderId": "ORD-00000042", "amount": 99.95, "customerId": "CUST-00000042"}
#: prefetch per stage-queue consumer in every worker (Go's StageFlow default MaxStageConcurrency)
FLOW_PREFETCH = int(os.environ.get("BENCH_FLOW_PREFETCH", "10"))
#: flows running at once (the starter starts one more per completion)
INFLIGHT = int(os.environ.get("BENCH_FLOW_INFLIGHT", "200"))
WORKERS = 2
DEFAULT_FLOWS = 5_000
#: Go's stage / compensation queue TTLs (spec 2.2)
STAGE_TTL_MS = 3_600_000
COMPENSATION_TTL_MS = 7_200_000


def stage_apply(index: int, data: dict[str, Any]) -> None:
    """What stage ``index`` does: add its one key to the flow's data (``{stageId}.{key}``, the way
    StageFlow merges a stage's result into globalData)."""
    stage, key, value = STAGES[index]
    data[f"{stage}.{key}"] = value


def hand_state(workflow_id: str, instance_id: str) -> dict[str, Any]:
    """The hand-written flow's message body at stage 0 (what the aio-pika and raw rows send)."""
    return {"workflowId": workflow_id, "instanceId": instance_id, "stage": 0, "data": dict(INITIAL_DATA)}


def hand_bodies(workflow_id: str) -> list[bytes]:
    """The hand-written bodies of one flow, one per hop: stage 0, 1, 2 inputs and the result (what the
    aio-pika workers produce, byte for byte; the raw row sends these pre-encoded)."""
    state = hand_state(workflow_id, "6f1c2a9e-3b7d-4c1e-9a2f-5d8e7b6c4a31")
    out = [orjson.dumps(state)]
    for i in range(len(STAGES)):
        stage_apply(i, state["data"])
        state["stage"] = i + 1
        out.append(orjson.dumps(state))
    return out


class FlowNames:
    """The queue names of one run: unique workflow id, Go's names (``stageflow.{id}.stage{N}``,
    ``stageflow.compensation.{id}``) and the hand-written rows' results queue."""

    def __init__(self, client: str, workflow_id: str | None = None) -> None:
        #: BENCH_FLOW_ID (set by run.py, so that it can delete the queues of a run it had to kill)
        self.workflow_id = (workflow_id or os.environ.get("BENCH_FLOW_ID")
                            or f"bench-{client.replace('_', '-')}-{uuid.uuid4().hex[:8]}")
        self.stages = [f"stageflow.{self.workflow_id}.stage{i}" for i in range(len(STAGES))]
        self.compensation = f"stageflow.compensation.{self.workflow_id}"
        self.results = f"stageflow.{self.workflow_id}.results"
        #: the mmate rows' Client service name (its service queue is declared by the Client)
        self.service = self.workflow_id
        self.service_queue = f"{self.service}-queue"

    def all(self) -> list[str]:
        return [*self.stages, self.compensation, self.results, self.service_queue]


def stage_queue_arguments(queue: str, ttl_ms: int = STAGE_TTL_MS) -> dict[str, Any]:
    """Go's stage queue arguments (spec 2.2), also used by the hand-written rows so that the broker
    does the same work per message on every row."""
    return {"x-message-ttl": ttl_ms, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"dlq.{queue}"}


def declare_flow_queues(admin: RawAMQP, names: FlowNames) -> None:
    """Declare the stage queues (Go's arguments) and the results queue (durable, no arguments)."""
    for q in names.stages:
        admin.rpc(C.Queue.Declare(queue=q, durable=True, arguments=stage_queue_arguments(q)),
                  C.Queue.DeclareOk)
    admin.rpc(C.Queue.Declare(queue=names.results, durable=True), C.Queue.DeclareOk)


def delete_flow_queues(admin: RawAMQP, names: FlowNames) -> None:
    """Delete every queue the run may have declared, dead-letter queues included (absent ones too:
    RabbitMQ answers delete-ok for a queue that does not exist)."""
    for q in names.all():
        for name in (q, f"dlq.{q}"):
            admin.rpc(C.Queue.Delete(queue=name), C.Queue.DeleteOk)


def queued(admin: RawAMQP, names: FlowNames) -> dict[str, int]:
    """Messages still ready in each of the run's queues that holds some (absent queues count 0)."""
    left: dict[str, int] = {}
    for q in names.all():
        try:
            c = admin.count(q)
        except AMQPError:  # absent queue (404): the broker closed the admin channel; reopen it
            admin.send(C.Channel.CloseOk())
            admin.rpc(C.Channel.Open(), C.Channel.OpenOk)
            continue
        if c:
            left[q] = c
    return left


# ---------------------------------------------------------------------------------------- workers
def spawn_workers(script: str, names: FlowNames, loop: str, env: dict[str, str] | None = None,
                  count: int = WORKERS, timeout: float = 60.0) -> list[subprocess.Popen[str]]:
    """Start ``count`` worker processes (``script flow-worker --queue WORKFLOW_ID``) and wait for
    each one's READY line; kills them all and raises when one does not get ready."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen(
                [sys.executable, script, "flow-worker", "--queue", names.workflow_id, "--loop", loop],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
        for p in procs:
            assert p.stdout is not None
            r, _, _ = select.select([p.stdout], [], [], timeout)
            line = p.stdout.readline() if r else ""
            if line.strip() != "READY":
                raise RuntimeError(f"flow worker did not start (got {line.strip()!r}, rc={p.poll()})")
    except BaseException:
        kill_workers(procs)
        raise
    return procs


def stop_workers(procs: list[subprocess.Popen[str]], timeout: float = 30.0) -> list[dict[str, Any]]:
    """Write STOP to every worker and read its JSON line (one dict per worker)."""
    for p in procs:
        assert p.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            p.stdin.write("STOP\n")
            p.stdin.flush()
    out = []
    for p in procs:
        text, _ = p.communicate(timeout=timeout)
        lines = text.strip().splitlines()
        if p.returncode != 0 or not lines:
            raise RuntimeError(f"flow worker failed (rc={p.returncode})")
        out.append(json.loads(lines[-1]))
    return out


def kill_workers(procs: list[subprocess.Popen[str]]) -> None:
    """Kill the workers still running (our own children only) and reap them."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        with contextlib.suppress(Exception):
            p.communicate(timeout=10)


def stdin_says_stop() -> bool:
    """Non-blocking: True once the starter wrote STOP (or closed our stdin)."""
    r, _, _ = select.select([sys.stdin], [], [], 0)
    if not r:
        return False
    line = sys.stdin.readline()
    return line.strip() == "STOP" or line == ""


async def wait_for_stop() -> None:
    """Asyncio side of the stop protocol: return once STOP arrives on stdin (polled every 50 ms)."""
    import asyncio

    while not stdin_says_stop():
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def profiled(role: str) -> Iterator[None]:
    """With ``BENCH_FLOW_PROFILE=DIR``: cProfile this block and dump ``DIR/{role}-{pid}.prof`` (read it
    with ``python -m pstats``); otherwise nothing. The profile counts this process's CPU time, not
    wall time: on a shared machine a wall-clock profile charges the time the process waited for a
    core to whatever syscall it was in (typically the socket write that wakes the broker)."""
    out = os.environ.get("BENCH_FLOW_PROFILE")
    if not out:
        yield
        return
    import cProfile

    prof = cProfile.Profile(time.process_time)
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        os.makedirs(out, exist_ok=True)
        prof.dump_stats(os.path.join(out, f"{role}-{os.getpid()}.prof"))


def worker_result(cpu_s: float, handled: list[int], **extra: Any) -> dict[str, Any]:
    """A worker's JSON line: CPU seconds from READY to STOP and stages handled per stage index."""
    return {"worker_cpu_s": cpu_s, "handled": handled, "pid": os.getpid(), **extra}


# ---------------------------------------------------------------------------------------- a run
StarterFn = Callable[[FlowNames, int, float], dict[str, Any]]


def flow_workload(client: str, script: str, a: Any, starter: StarterFn, *, declare: bool = True,
                  env: dict[str, str] | None = None, names: FlowNames | None = None) -> dict[str, Any]:
    """One run: queues (``declare``: the hand-written rows; the engine declares its own), two
    workers, ``starter(names, n, deadline_s)`` here, then the workers' figures merged in.

    ``starter`` returns ``count`` (flows completed), ``elapsed_s``, ``cpu_s`` (its own), ``b0``
    (broker CPU at its start). The result: ``cpu_s`` = starter + workers, ``left_in_queue`` = what
    is still in the run's queues at the end (must be 0), per-worker stage counts. Queues are deleted
    and workers reaped in any case.
    """
    from _common import TIME_CAP

    admin = RawAMQP()
    names = names or FlowNames(client)
    procs: list[subprocess.Popen[str]] = []
    try:
        if declare:
            declare_flow_queues(admin, names)
        procs = spawn_workers(script, names, a.loop, env)
        res = dict(starter(names, a.messages, TIME_CAP))
        b1 = broker_cpu_s()
        workers = stop_workers(procs)
        b0 = res.pop("b0", None)
        if b0 is not None and b1 is not None:
            res["broker_cpu_s"] = b1 - b0
        res["starter_cpu_s"] = res["cpu_s"]
        res["workers_cpu_s"] = sum(w["worker_cpu_s"] for w in workers)
        res["cpu_s"] = res["starter_cpu_s"] + res["workers_cpu_s"]
        res["handled"] = [w["handled"] for w in workers]
        for k in ("extensions", "store"):
            if workers and k in workers[0]:
                res[f"worker_{k}"] = workers[0][k]
        time.sleep(0.2)  # let the broker settle the last acks before counting what is left
        left = queued(admin, names)
        res["left_in_queue"] = sum(left.values())
        if left:
            res["left_by_queue"] = left
        res["capped"] = res["count"] < a.messages
        res["flows"] = a.messages
        return res
    finally:
        kill_workers(procs)
        delete_flow_queues(admin, names)
        admin.close()


class Starts:
    """Starter bookkeeping shared by the clients: how many flows to start, started, completed."""

    def __init__(self, n: int, inflight: int = INFLIGHT) -> None:
        self.n = n
        self.first = min(n, inflight)
        self.started = 0
        self.completed = 0
        self.t0 = 0.0
        self.t_end = 0.0
        self.c0 = 0.0
        self.b0: float | None = None

    def begin(self) -> None:
        self.b0 = broker_cpu_s()
        self.c0 = time.process_time()
        self.t0 = time.perf_counter()

    def complete(self, k: int = 1) -> int:
        """Record ``k`` completions; returns how many new flows to start now (one per completion
        while some are left)."""
        self.completed += k
        if self.completed >= self.n and not self.t_end:
            self.t_end = time.perf_counter()
        more = min(k, self.n - self.started)
        return max(0, more)

    def done(self) -> bool:
        return self.completed >= self.n

    def result(self) -> dict[str, Any]:
        end = self.t_end or time.perf_counter()
        return {"count": self.completed, "started": self.started, "elapsed_s": end - self.t0,
                "cpu_s": time.process_time() - self.c0, "b0": self.b0}
