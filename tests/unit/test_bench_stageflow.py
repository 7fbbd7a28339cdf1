"""The ``stageflow`` benchmark's plumbing (benchmarks/_flow_*.py) keeps its promises without a broker:
the raw row sends exactly the bodies the hand-written aio-pika stages produce, the raw frame walker
reads deliveries and confirms (split reads, out-of-order confirms), the starter keeps its window,
workers start and stop by the READY/STOP protocol, and the summary computes the ratios and
``sqlite_cost`` per repetition. The runs themselves: tests/integration/test_stageflow_bench.py."""
from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The flow modules, imported the way the runners import them (their folder on sys.path)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {m: importlib.import_module(m) for m in ("_flow_common", "_flow_raw", "_flow_aiopika",
                                                       "_flow_runner")}
    finally:
        sys.path.remove(str(BENCH))


def test_raw_bodies_are_what_the_aio_pika_stages_produce(bench: dict[str, ModuleType]) -> None:
    common, aio = bench["_flow_common"], bench["_flow_aiopika"]
    bodies = common.hand_bodies("wf")
    assert len(bodies) == len(common.STAGES) + 1
    for i in range(len(common.STAGES)):
        assert aio.next_body(i, bodies[i]) == bodies[i + 1]
    import orjson

    last = orjson.loads(bodies[-1])
    assert last["stage"] == 3 and {"validate.validated", "charge.chargeId", "ship.trackingNo"} <= set(last["data"])


def test_confirms_count_only_closed_gaps(bench: dict[str, ModuleType]) -> None:
    c = bench["_flow_raw"].Confirms()
    c.ack(2, False)
    c.ack(3, False)
    assert c.upto == 0  # 1 is still unconfirmed
    c.ack(1, False)
    assert c.upto == 3 and not c.singles
    c.ack(6, False)
    c.ack(5, True)
    assert c.upto == 6 and not c.singles


def _frames(*parts: object) -> bytes:
    return b"".join(pframe.marshal(p, 1) for p in parts)  # type: ignore[arg-type]


def test_raw_frame_walker_reads_deliveries_and_confirms_across_reads(bench: dict[str, ModuleType]) -> None:
    raw = bench["_flow_raw"]
    conn = object.__new__(raw.FlowConn)
    conn.reset_parser()
    body = b'{"stage":1}'
    delivery = _frames(C.Basic.Deliver(consumer_tag="s1", delivery_tag=7, exchange="", routing_key="q"),
                       pheader.ContentHeader(0, len(body), C.Basic.Properties()), pbody.ContentBody(body))
    data = _frames(C.Basic.Ack(delivery_tag=3, multiple=True)) + delivery
    seen: list[tuple[int, int]] = []
    cut = len(data) - 5  # the body frame arrives in two reads
    conn.buf[:cut] = data[:cut]
    assert conn.parse(cut, lambda ch, tag: seen.append((ch, tag))) == 0
    assert seen == [] and conn.confirms.upto == 3
    conn.buf[conn.filled:conn.filled + 5] = data[cut:]
    assert conn.parse(conn.filled + 5, lambda ch, tag: seen.append((ch, tag))) == 7
    assert seen == [(ord("1"), 7)] and conn.filled == 0


def test_the_starter_keeps_its_window(bench: dict[str, ModuleType]) -> None:
    st = bench["_flow_common"].Starts(5, inflight=2)
    assert st.first == 2
    st.started = st.first
    for _ in range(3):
        more = st.complete()
        assert more == 1
        st.started += more
    assert st.started == 5 and st.complete() == 0 and not st.done()
    assert st.complete() == 0 and st.done() and st.t_end


_FAKE_WORKER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {bench!r})
    from _flow_common import stdin_says_stop, worker_result
    if {ready}:
        print("READY", flush=True)
    else:
        sys.exit(3)
    while not stdin_says_stop():
        pass
    print(json.dumps(worker_result(0.5, [1, 2, 3])), flush=True)
""")


def test_workers_start_on_ready_and_stop_on_stop(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    common = bench["_flow_common"]
    script = tmp_path / "worker.py"
    script.write_text(_FAKE_WORKER.format(bench=str(BENCH), ready=True))
    procs = common.spawn_workers(str(script), common.FlowNames("t"), "asyncio", timeout=30)
    out = common.stop_workers(procs)
    assert [w["handled"] for w in out] == [[1, 2, 3], [1, 2, 3]]
    assert all(p.returncode == 0 for p in procs)


def test_a_worker_that_does_not_get_ready_fails_the_run(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    common = bench["_flow_common"]
    script = tmp_path / "worker.py"
    script.write_text(_FAKE_WORKER.format(bench=str(BENCH), ready=False))
    with pytest.raises(RuntimeError, match="did not start"):
        common.spawn_workers(str(script), common.FlowNames("t"), "asyncio", timeout=30)


def _run(rate: float) -> dict[str, object]:
    return {"rate": rate, "count": 100, "n": 100, "cpu_s": 0.01, "starter_cpu_s": 0.004,
            "workers_cpu_s": 0.006, "broker_cpu_s": 0.02}


def test_the_summary_takes_ratios_and_sqlite_cost_per_repetition(bench: dict[str, ModuleType]) -> None:
    fr = bench["_flow_runner"]
    runs = {"raw": [_run(4000), _run(5000)], "mmate_fast": [_run(2000), _run(3000)],
            "mmate_fast_sqlite": [_run(1800), _run(2400)], "aio_pika": [_run(400), _run(500)]}
    s = fr.summarize(100, runs, {}, list(fr.ORDER))
    obj = s["json"]
    assert obj["rates"]["mmate_fast"] == 2500
    assert obj["vs_aio_pika"] == pytest.approx((5.0 + 6.0) / 2)
    assert obj["vs_raw"] == pytest.approx((0.5 + 0.6) / 2)
    assert obj["sqlite_cost"] == pytest.approx(((1 - 0.9) + (1 - 0.8)) / 2)
    assert obj["cpu_us_per_flow"]["raw"] == {"total": 100.0, "starter": 40.0, "workers": 60.0}
    assert obj["broker_us_per_flow"]["aio_pika"] == 200.0
    assert "sqlite_cost = 1 - mmate_fast_sqlite / mmate_fast = 0.150" in s["table"]
    assert obj["cpu_aio_pika_vs_mmate_fast"] == 1.0 and obj["cpu_sqlite_vs_memory"] == 1.0


def test_the_all_events_row_has_its_ratios(bench: dict[str, ModuleType]) -> None:
    fr = bench["_flow_runner"]
    assert fr.CLIENTS["mmate_fast_all_events"] == ("_flow_mmate.py", "memory")
    assert fr.EVENTS == {"mmate_fast_all_events": "all"}
    runs = {"raw": [_run(4000)], "mmate_fast": [_run(2000)], "mmate_fast_all_events": [_run(3000)],
            "aio_pika": [_run(500)]}
    s = fr.summarize(100, runs, {}, [c for c in fr.ORDER if c in runs])
    assert s["json"]["vs_aio_pika_by_row"]["mmate_fast_all_events"] == 6.0
    assert s["json"]["vs_raw_by_row"]["mmate_fast_all_events"] == 0.75
    assert s["json"]["vs_aio_pika"] == 4.0  # the headline ratio stays the all-events row's
    assert "mmate_fast_all_events / aio_pika = 6.00    mmate_fast_all_events / raw = 0.750" in s["table"]


def test_a_failed_repetition_drops_out_of_the_ratios(bench: dict[str, ModuleType]) -> None:
    fr = bench["_flow_runner"]
    runs = {"mmate_fast": [_run(2000), None], "aio_pika": [_run(400), _run(100)]}
    s = fr.summarize(100, runs, {"mmate_fast": ["rep 2: boom"]}, ["mmate_fast", "aio_pika"])
    assert s["json"]["vs_aio_pika"] == 5.0 and s["json"]["sqlite_cost"] is None
    assert s["json"]["errors"] == {"mmate_fast": ["rep 2: boom"]}
    assert "error mmate_fast: rep 2: boom" in s["table"]


def test_run_py_refuses_unknown_rows() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "stageflow", "--only", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--only" in proc.stderr


def test_raw_gowire_sends_the_engines_own_messages(bench: dict[str, ModuleType]) -> None:
    """The raw_gowire row's pre-encoded publishes are the engine's: the start, two hops whose states
    follow each other (one completed result more each), the WorkflowCompletedEvent on mmate.events
    under this run's instance id; frames that parse back to the same properties and bodies."""
    sys.path.insert(0, str(BENCH))
    try:
        gowire = importlib.import_module("_flow_gowire")
    finally:
        sys.path.remove(str(BENCH))
    import orjson

    from mmate_fast.messaging import topology
    from mmate_fast.stageflow import _wire

    common, raw = bench["_flow_common"], bench["_flow_raw"]
    names = common.FlowNames("t", "bench-t-0001")
    iid = gowire.instance_id(names.workflow_id)
    hops = gowire.go_hops(names.workflow_id)
    assert [(ex, rk) for ex, rk, _, _ in hops] == [
        *(("", q) for q in names.stages),
        (topology.EVENTS, topology.event_routing_key(iid, "WorkflowCompletedEvent"))]
    for i, (_, _, props, body) in enumerate(hops[:3]):
        env = orjson.loads(body)
        assert env["type"] == "FlowMessageEnvelope" and env["payload"]["currentStageIndex"] == i
        state = _wire.decode_state(env["payload"]["serializedWorkflowState"])
        assert state.instance_id == iid and [r.status for r in state.stage_results] == ["completed"] * i
        assert b"FlowMessageEnvelope" in props
    event = orjson.loads(hops[3][3])
    assert event["type"] == "WorkflowCompletedEvent" and event["payload"]["status"] == "completed"
    frames = raw.props_publish(*hops[1])
    parsed = []
    pos = 0
    while pos < len(frames):
        used, _, fr = pframe.unmarshal(frames[pos:])
        parsed.append(fr)
        pos += used
    assert parsed[0].routing_key == names.stages[1] and parsed[2].value == hops[1][3]
    assert parsed[1].body_size == len(hops[1][3])
    assert parsed[1].properties.delivery_mode == 2 and parsed[1].properties.message_type == "FlowMessageEnvelope"


def test_raw_frame_walker_keeps_the_last_tag_of_each_channel(bench: dict[str, ModuleType]) -> None:
    """``BENCH_FLOW_RAW_SPLIT``: deliveries on channels 2.. are acked per channel, so the walker keeps
    the highest delivery tag of each (channel 1 deliveries are the one-channel mode's)."""
    raw = bench["_flow_raw"]
    conn = object.__new__(raw.FlowConn)
    conn.reset_parser()
    body = b"{}"

    def delivery(ch: int, tag: int) -> bytes:
        return b"".join(pframe.marshal(p, ch) for p in (  # type: ignore[arg-type]
            C.Basic.Deliver(consumer_tag=f"s{ch - 2}", delivery_tag=tag, exchange="", routing_key="q"),
            pheader.ContentHeader(0, len(body), C.Basic.Properties()), pbody.ContentBody(body)))

    data = delivery(2, 4) + delivery(3, 9) + delivery(2, 5) + delivery(1, 1)
    conn.buf[:len(data)] = data
    conn.parse(len(data), lambda ch, tag: None)
    assert conn.last_by_chan == {2: 5, 3: 9}


def test_frame_counter_counts_methods_flags_and_bytes_across_reads(bench: dict[str, ModuleType]) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        frames = importlib.import_module("_flow_frames")
    finally:
        sys.path.remove(str(BENCH))
    up = frames._Counts()
    side = frames._Side(up, client=True)
    body = b'{"x":1}'
    props = C.Basic.Properties(delivery_mode=2)
    data = (b"AMQP\x00\x00\x09\x01"
            + _frames(C.Basic.Publish(exchange="mmate.events", routing_key="evt.abc.WorkflowCompletedEvent",
                                      mandatory=True),
                      pheader.ContentHeader(0, len(body), props), pbody.ContentBody(body),
                      C.Basic.Publish(exchange="", routing_key="q1"),
                      pheader.ContentHeader(0, len(body), props), pbody.ContentBody(body),
                      C.Basic.Ack(delivery_tag=5, multiple=True), C.Basic.Ack(delivery_tag=6),
                      C.Queue.Bind(queue="w", exchange="mmate.events", routing_key="evt.#.WorkflowFailedEvent"),
                      C.Basic.Qos(prefetch_count=10)))
    for i in range(0, len(data), 7):  # frames split at every place
        side.feed(data[i:i + 7])
    c = up.c
    assert c["basic.publish"] == 2 and c["  publish mandatory"] == 1
    assert c["  publish to mmate.events"] == 1 and c["  publish to (default)"] == 1
    assert c["  publish rk evt.*.WorkflowCompletedEvent"] == 1
    assert c["basic.ack"] == 2 and c["  basic.ack multiple"] == 1 and c["  basic.ack single"] == 1
    assert c["  bind evt.#.WorkflowFailedEvent"] == 1 and c["  qos prefetch 10"] == 1
    assert c["content header"] == 2 and c["body frames"] == 2 and c["  body bytes"] == 2 * len(body)
    assert c["frames"] == 10 and c["bytes"] == len(data) - 8
    down = frames._Counts()
    frames._Side(down, client=False).feed(
        _frames(C.Basic.Deliver(consumer_tag="ctag", delivery_tag=1, exchange="mmate.events", routing_key="k")))
    assert down.c["  deliver from mmate.events"] == 1


def test_frame_proxy_forwards_both_ways_and_counts(bench: dict[str, ModuleType]) -> None:
    import socket
    import threading

    sys.path.insert(0, str(BENCH))
    try:
        frames = importlib.import_module("_flow_frames")
    finally:
        sys.path.remove(str(BENCH))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    reply = _frames(C.Basic.Ack(delivery_tag=1))

    def broker() -> None:  # reads the header + one frame, answers one frame
        conn, _ = srv.accept()
        want = 8 + len(_frames(C.Basic.Qos(prefetch_count=3)))
        got = b""
        while len(got) < want:
            got += conn.recv(want - len(got))
        conn.sendall(reply)
        conn.close()

    t = threading.Thread(target=broker, daemon=True)
    t.start()
    proxy = frames.FrameProxy(srv.getsockname()[1])
    port = proxy.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as cs:
            cs.sendall(b"AMQP\x00\x00\x09\x01" + _frames(C.Basic.Qos(prefetch_count=3)))
            got = b""
            while len(got) < len(reply):
                chunk = cs.recv(100)
                if not chunk:
                    break
                got += chunk
        assert got == reply
        t.join(5)
    finally:
        proxy.stop()
        srv.close()
    (up, down), = proxy.conns
    assert up.c["  qos prefetch 3"] == 1 and down.c["  basic.ack single"] == 1


def test_raw_gowire_event_variants_differ_in_the_routing_key_only(bench: dict[str, ModuleType]) -> None:
    raw = bench["_flow_raw"]
    names = bench["_flow_common"].FlowNames("raw_gowire")
    sys.path.insert(0, str(BENCH))
    try:
        gowire = importlib.import_module("_flow_gowire")
    finally:
        sys.path.remove(str(BENCH))
    ex, rk, props, body = gowire.go_hops(names.workflow_id)[-1]
    variants = raw.event_variants(names, 16)
    keys = set()
    for v in variants:
        method = pframe.unmarshal(v)[2]
        assert method.exchange == ex == "mmate.events"
        assert method.routing_key != rk and method.routing_key.endswith(".WorkflowCompletedEvent")
        keys.add(method.routing_key)
        assert props[:2] in v  # the property flags (the values carry the event's own id and time)
    # one body for every key (go_hops builds a new event id per call: compare the variants' bodies)
    tail = len(pframe.marshal(pbody.ContentBody(body), 1))
    assert len({v[-tail:] for v in variants}) == 1 and b'"type":"WorkflowCompletedEvent"' in variants[0][-tail:]
    assert len(keys) == 16
