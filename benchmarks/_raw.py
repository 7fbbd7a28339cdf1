"""The "raw" client: the broker's ceiling on this machine (a zero-cost client, as in the anchors).

Publishing writes pre-encoded publish+header+body frames in 1000-message chunks with one sendall;
consuming walks frame headers with struct.unpack_from and acks multiple once per received batch.
Run as ``python benchmarks/_raw.py WORKLOAD --messages N``; prints one JSON line.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from _common import (
    BATCH,
    BODY,
    DELIVER_ID,
    HDR,
    PREFETCH,
    STAMP_LEN,
    STAMP_OFF,
    STAMP_TOKEN,
    U32,
    U64,
    VARIANT,
    E2EState,
    RawAMQP,
    Span,
    ack_frame,
    broker_cpu_s,
    child_main,
    deadline,
    e2e_collect,
    e2e_spawn_consumer,
    latency_fields,
    prefill,
    publish_frames,
    stamp_token,
    unique_name,
)
from pamqp import commands as C

CLIENT = "raw"


def _with_queue(workload: str, fn: Any) -> dict[str, Any]:
    """Declare a fresh queue, run fn(admin, q), always delete the queue."""
    admin = RawAMQP()
    q = unique_name(CLIENT, workload)
    admin.declare(q)
    try:
        return dict(fn(admin, q))
    finally:
        admin.delete(q)
        admin.close()


def publish(a: argparse.Namespace) -> dict[str, Any]:
    """No confirms; timed until the queue holds all N (admin passive-declare poll every ms)."""
    n = a.messages

    def run(admin: RawAMQP, q: str) -> dict[str, Any]:
        frames = publish_frames(q, BODY)
        chunk = frames * BATCH
        full, rest = divmod(n, BATCH)
        conn = RawAMQP()
        dl = deadline()
        sp = Span().start()
        sent = conn.send_chunks(chunk, full, dl) * BATCH
        if rest and sent == full * BATCH:
            conn.sock.sendall(frames * rest)
            sent += rest
        got = admin.wait_count(q, sent, dl)
        sp.stop()
        conn.close()
        return {"count": min(got, sent), **sp.fields(), "queue_count": got, "capped": got < n}

    return _with_queue(a.workload, run)


def publish_confirm(a: argparse.Namespace) -> dict[str, Any]:
    """Confirms, windows of 1000: send a 1000-message chunk, wait for its last ack, repeat.
    Row raw_pipelined (BENCH_VARIANT=pipelined): the next chunk goes out while the previous one's
    confirms are still on their way (at most 2 chunks unconfirmed), all confirmed at the end."""
    n = a.messages
    ahead = BATCH if VARIANT == "pipelined" else 0

    def run(admin: RawAMQP, q: str) -> dict[str, Any]:
        frames = publish_frames(q, BODY)
        chunk = frames * BATCH
        conn = RawAMQP()
        conn.rpc(C.Confirm.Select(), C.Confirm.SelectOk)
        state = [0, 0]
        dl = deadline()
        perf = time.perf_counter
        sp = Span().start()
        sent = 0
        while sent < n and perf() < dl:
            k = min(BATCH, n - sent)
            conn.sock.sendall(chunk if k == BATCH else frames * k)
            sent += k
            while state[0] < sent - ahead:
                conn.drain_confirms(state, block=True)
        while state[0] < sent and perf() < dl:
            conn.drain_confirms(state, block=True)
        sp.stop()
        conn.close()
        return {"count": state[0], **sp.fields(), "nacks": state[1], "capped": state[0] < n}

    return _with_queue(a.workload, run)


def publish_confirm_each(a: argparse.Namespace) -> dict[str, Any]:
    """Confirms, one message then wait for its ack; latency = publish to ack."""
    n = a.messages

    def run(admin: RawAMQP, q: str) -> dict[str, Any]:
        frames = publish_frames(q, BODY)
        conn = RawAMQP()
        conn.rpc(C.Confirm.Select(), C.Confirm.SelectOk)
        state = [0, 0]
        lat: list[float] = []
        dl = deadline()
        perf = time.perf_counter
        sendall = conn.sock.sendall
        sp = Span().start()
        i = 0
        while i < n and perf() < dl:
            ts = perf()
            sendall(frames)
            i += 1
            while state[0] < i:
                conn.drain_confirms(state, block=True)
            lat.append(perf() - ts)
        sp.stop()
        conn.close()
        return {"count": i, **sp.fields(), "nacks": state[1], **latency_fields(lat), "capped": i < n}

    return _with_queue(a.workload, run)


def _qos(conn: RawAMQP) -> None:
    conn.rpc(C.Basic.Qos(prefetch_count=PREFETCH), C.Basic.QosOk)


def _start_consumer(conn: RawAMQP, q: str) -> None:
    conn.rpc(C.Basic.Consume(queue=q, consumer_tag="raw", no_ack=False), C.Basic.ConsumeOk)


def consume_loop(conn: RawAMQP, n: int, dl: float, st: E2EState | None = None) -> int:
    """Walk frames; per received batch ack (multiple) the last delivery whose body is complete.

    With ``st`` also record each message's age from the send time stamped in its body.
    """
    sock = conn.sock
    buf = bytearray(8 << 20)
    mv = memoryview(buf)
    filled = len(conn.rbuf)
    buf[:filled] = conn.rbuf
    conn.rbuf.clear()
    hdr, u32, u64 = HDR.unpack_from, U32.unpack_from, U64.unpack_from
    perf = time.perf_counter
    now_ns = time.time_ns
    recv_into, sendall = sock.recv_into, sock.sendall
    lat = st.lat if st is not None else None
    off = 7 + STAMP_OFF
    count = 0
    cur_tag = done_tag = acked_tag = 0
    end = filled
    while count < n:
        if end == filled:
            if perf() > dl:
                break
            got = recv_into(mv[filled:])
            if not got:
                raise RuntimeError("broker closed the connection")
            end = filled + got
        pos = 0
        t_ns = now_ns() if lat is not None else 0
        while pos + 7 <= end:
            typ, _ch, size = hdr(buf, pos)
            fe = pos + 8 + size
            if fe > end:
                break
            if typ == 3:
                count += 1
                done_tag = cur_tag
                if lat is not None:
                    lat.append((t_ns - int(buf[pos + off:pos + off + STAMP_LEN])) * 1e-9)
            elif typ == 1 and u32(buf, pos + 7)[0] == DELIVER_ID:
                ctl = buf[pos + 11]
                cur_tag = u64(buf, pos + 12 + ctl)[0]
            pos = fe
        rem = end - pos
        if rem:
            buf[:rem] = buf[pos:end]
        filled = end = rem
        if done_tag != acked_tag:
            sendall(ack_frame(done_tag, True))
            acked_tag = done_tag
    return count


def consume(a: argparse.Namespace) -> dict[str, Any]:
    """Queue pre-filled with N; timed from basic.qos/consume until the N-th message is acked."""
    n = a.messages

    def run(admin: RawAMQP, q: str) -> dict[str, Any]:
        filled = prefill(admin, q, n)
        conn = RawAMQP()
        _qos(conn)
        dl = deadline()
        sp = Span().start()
        _start_consumer(conn, q)
        count = consume_loop(conn, n, dl)
        sp.stop()
        conn.close()
        left = admin.count(q)
        return {"count": count, **sp.fields(), "prefilled": filled, "left_in_queue": left,
                "capped": count < n}

    return _with_queue(a.workload, run)


def e2e(a: argparse.Namespace) -> dict[str, Any]:
    """Producer here (stamped 1000-message chunks, open loop), consumer in a second process."""
    n = a.messages

    def run(admin: RawAMQP, q: str) -> dict[str, Any]:
        child = e2e_spawn_consumer(__file__, q, n, a.loop)
        try:
            parts = (publish_frames(q, BODY) * BATCH).split(STAMP_TOKEN)
            rest_parts = (publish_frames(q, BODY) * (n % BATCH)).split(STAMP_TOKEN)
            conn = RawAMQP()
            dl = deadline()
            perf = time.perf_counter
            sendall = conn.sock.sendall
            now_ns = time.time_ns
            b0 = broker_cpu_s()
            c0 = time.process_time()
            t0 = time.time()
            sent = 0
            while sent + BATCH <= n and perf() < dl:
                sendall(stamp_token(now_ns()).join(parts))
                sent += BATCH
            if sent < n and len(rest_parts) > 1:
                sendall(stamp_token(now_ns()).join(rest_parts))
                sent = n
            prod = {"t0": t0, "cpu_s": time.process_time() - c0, "sent": sent, "b0": b0}
            res = e2e_collect(child, prod, n, dl)
            conn.close()
            res["left_in_queue"] = admin.count(q)
            return res
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    return _with_queue(a.workload, run)


def e2e_consumer(a: argparse.Namespace) -> dict[str, Any]:
    conn = RawAMQP()
    _qos(conn)
    _start_consumer(conn, a.queue)
    st = E2EState(a.messages)
    c0 = time.process_time()
    print("READY", flush=True)
    st.count = consume_loop(conn, a.messages, deadline(), st)
    st.t_end = time.time()
    cpu = time.process_time() - c0
    conn.close()
    return st.result(cpu)


RUNNERS = {
    "publish": publish,
    "publish-confirm": publish_confirm,
    "publish-confirm-each": publish_confirm_each,
    "consume": consume,
    "e2e": e2e,
    "e2e-consumer": e2e_consumer,
}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
