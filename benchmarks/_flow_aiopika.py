"""The ``stageflow`` workload written by hand on aio-pika, the way a good aio-pika user would:
the flow's state as JSON in the message body (orjson), one durable queue per stage, persistent
messages, a channel with publisher confirms (each publish awaited until confirmed), the stage message
acked after the next hop is confirmed, prefetch FLOW_PREFETCH per stage consumer; completion is a
message to a results queue that the starter consumes.

Run as ``python benchmarks/_flow_aiopika.py stageflow --messages N`` (N flows; it starts its two
``flow-worker`` processes itself) and prints one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import orjson
from _common import AMQP_URL, child_main, deadline, run_loop, wait_event
from _flow_common import (
    FLOW_PREFETCH,
    INFLIGHT,
    STAGES,
    FlowNames,
    Starts,
    flow_workload,
    hand_state,
    profiled,
    stage_apply,
    wait_for_stop,
    worker_result,
)

CLIENT = "aio_pika"


def next_body(i: int, body: bytes) -> bytes:
    """Stage ``i`` of the hand-written flow: decode the state, apply the stage, encode the next hop."""
    state = orjson.loads(body)
    stage_apply(i, state["data"])
    state["stage"] = i + 1
    return orjson.dumps(state)


def _message(body: bytes) -> Any:
    from aio_pika import DeliveryMode, Message

    return Message(body, content_type="application/json", delivery_mode=DeliveryMode.PERSISTENT)


async def _worker(workflow_id: str) -> dict[str, Any]:
    import aio_pika

    names = FlowNames(CLIENT, workflow_id)
    targets = [*names.stages[1:], names.results]
    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=True)
    await ch.set_qos(prefetch_count=FLOW_PREFETCH)
    ex = ch.default_exchange
    handled = [0] * len(STAGES)
    busy = [0]  # handlers between delivery and ack

    def handler(i: int) -> Any:
        target = targets[i]

        async def on_msg(m: Any) -> None:
            busy[0] += 1
            await ex.publish(_message(next_body(i, m.body)), routing_key=target)  # awaits the confirm
            await m.ack()
            handled[i] += 1
            busy[0] -= 1

        return on_msg

    for i, q in enumerate(names.stages):
        queue = await ch.get_queue(q, ensure=False)
        await queue.consume(handler(i))
    print("READY", flush=True)
    c0 = time.process_time()
    with profiled("worker"):
        await wait_for_stop()
    stop_by = time.perf_counter() + 10.0
    while busy[0] and time.perf_counter() < stop_by:  # let the last acks go out: closing requeues
        await asyncio.sleep(0.01)
    cpu = time.process_time() - c0
    await conn.close()
    return worker_result(cpu, handled, unacked_at_stop=busy[0])


def flow_worker(a: argparse.Namespace) -> dict[str, Any]:
    return dict(run_loop(lambda: _worker(a.queue), a.loop))


async def _starter(names: FlowNames, n: int, cap: float) -> dict[str, Any]:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=True)
    await ch.set_qos(prefetch_count=INFLIGHT)
    ex = ch.default_exchange
    first = names.stages[0]
    st = Starts(n)
    done = asyncio.Event()
    bad = [0]

    async def start_one() -> None:
        st.started += 1
        body = orjson.dumps(hand_state(names.workflow_id, str(uuid.uuid4())))
        await ex.publish(_message(body), routing_key=first)

    async def on_result(m: Any) -> None:
        if orjson.loads(m.body)["stage"] != len(STAGES):
            bad[0] += 1
        await m.ack()
        more = st.complete()
        if st.done():
            done.set()
        for _ in range(more):
            await start_one()

    results = await ch.get_queue(names.results, ensure=False)
    tag = await results.consume(on_result)
    st.begin()
    with profiled("starter"):
        await asyncio.gather(*(start_one() for _ in range(st.first)))
        await wait_event(done, deadline(cap))
    res = st.result()
    await results.cancel(tag)
    await conn.close()
    return {**res, "bad_results": bad[0]}


def stageflow(a: argparse.Namespace) -> dict[str, Any]:
    def starter(names: FlowNames, n: int, cap: float) -> dict[str, Any]:
        return dict(run_loop(lambda: _starter(names, n, cap), a.loop))

    return flow_workload(CLIENT, __file__, a, starter)


RUNNERS = {"stageflow": stageflow, "flow-worker": flow_worker}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
