"""The ``stageflow`` workload on the zero-cost "raw" client: the same hops as the hand-written
aio-pika flow (the same bodies, persistent, to the same durable queues with Go's arguments, publisher
confirms, the stage message acked only after its next hop is confirmed), with pre-encoded frames and
blocking sockets: the ceiling of this broker for this message pattern.

A worker reads what the socket has, appends the pre-encoded next hop of every complete delivery,
sends them in one write, and acks (multiple) the deliveries whose hops the broker has confirmed.
Run as ``python benchmarks/_flow_raw.py stageflow --messages N``; prints one JSON line.

``BENCH_FLOW_RAW=gowire`` (the ``raw_gowire`` row): the same client sending our engine's exact
messages instead (_flow_gowire.py: Go's ``FlowMessageEnvelope`` hops with our properties, and the
``WorkflowCompletedEvent`` on ``mmate.events`` as the last hop, heard by the starter on an exclusive
queue bound to the three terminal events like ``FlowEngine.wait``'s listener and consumed without
acks; its bindings name this run's instance id, ``evt.{id}.{type}``, where the engine's use
``evt.#.{type}``: on the shared broker other sessions' events must not count as completions): the
broker's CPU per flow on Go's wire with a client that costs nothing, the ceiling of the engine's rate
here.
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections import deque
from typing import Any

from _common import (
    ACK_ID,
    DELIVER_ID,
    HDR,
    NACK_ID,
    U32,
    U64,
    AMQPError,
    RawAMQP,
    ack_frame,
    child_main,
    deadline,
)
from _flow_common import (
    FLOW_PREFETCH,
    INFLIGHT,
    STAGES,
    FlowNames,
    Starts,
    flow_workload,
    hand_bodies,
    stdin_says_stop,
    worker_result,
)
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

CLIENT = "raw"
#: ``gowire``: our engine's exact messages (see the module docstring); else the hand-written bodies
GOWIRE = os.environ.get("BENCH_FLOW_RAW") == "gowire"
#: the terminal events FlowEngine.wait's listener binds (evt.#.{type} on mmate.events)
_TERMINAL = ("WorkflowCompletedEvent", "WorkflowFailedEvent", "WorkflowCompensatedEvent")
#: BENCH_FLOW_RAW_SPIN_US="W,S": burn W µs of CPU per delivery in a worker and S per completion in the
#: starter (a client as slow as the engine on the very same wire: does the broker's CPU per flow follow
#: the client's pace?); unset: no spinning
_SPIN = [float(x) * 1e-6 for x in os.environ.get("BENCH_FLOW_RAW_SPIN_US", "0,0").split(",")]
#: BENCH_FLOW_RAW_SPLIT=1: a worker consumes each stage queue on a channel of its own (2, 3, 4; each
#: with its prefetch, acked per channel) and publishes on channel 1, as the engine's Client does
SPLIT = os.environ.get("BENCH_FLOW_RAW_SPLIT") == "1"
#: BENCH_FLOW_RAW_EVENT_KEYS=N (gowire): the completed event's routing key names one of N instance ids in
#: turn (evt.{id}.WorkflowCompletedEvent) instead of the run's one id: the engine's keys differ per flow,
#: and RabbitMQ caches a channel's last 12 topic-permission checks by routing key, so one fixed key is
#: checked once per run; with N > 12 every event is checked, as the engine's are. The starter's
#: listener then binds evt.#.{type} like FlowEngine.wait's (on a node of our own: flow_cost.py).
EVENT_KEYS = int(os.environ.get("BENCH_FLOW_RAW_EVENT_KEYS", "0"))
_CLOSE_IDS = ((10 << 16) | 50, (20 << 16) | 40)


def _spin(seconds: float) -> None:
    """Burn ``seconds`` of this process's CPU (a stand-in for a client's own work per message)."""
    if seconds > 0:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
_CLOSE_OK_ID = (10 << 16) | 51


def persistent_publish(routing_key: str, body: bytes, channel: int = 1) -> bytes:
    """basic.publish + content header (application/json, persistent) + body, encoded once."""
    props = C.Basic.Properties(content_type="application/json", delivery_mode=2)
    return (pframe.marshal(C.Basic.Publish(exchange="", routing_key=routing_key), channel)
            + pframe.marshal(pheader.ContentHeader(0, len(body), props), channel)
            + pframe.marshal(pbody.ContentBody(body), channel))


def props_publish(exchange: str, routing_key: str, props: bytes, body: bytes, channel: int = 1) -> bytes:
    """basic.publish + content header around already encoded property bytes (flags included) + body."""
    payload = b"\x00\x3c\x00\x00" + U64.pack(len(body)) + props
    return (pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key), channel)
            + HDR.pack(2, channel, len(payload)) + payload + b"\xce"
            + pframe.marshal(pbody.ContentBody(body), channel))


def flow_publishes(names: FlowNames) -> list[bytes]:
    """The pre-encoded publishes of one flow: the start, then one per stage (its next hop)."""
    if GOWIRE:
        from _flow_gowire import go_hops

        return [props_publish(ex, rk, props, body) for ex, rk, props, body in go_hops(names.workflow_id)]
    bodies = hand_bodies(names.workflow_id)
    targets = [names.stages[0], *names.stages[1:], names.results]
    return [persistent_publish(q, b) for q, b in zip(targets, bodies, strict=True)]


def event_variants(names: FlowNames, n: int) -> list[bytes]:
    """The gowire flow's last publish (the completed event) with ``n`` routing keys, one instance id
    each (the body is the run's one event: the broker routes by the key only)."""
    import uuid

    from _flow_gowire import go_hops

    ex, rk, props, body = go_hops(names.workflow_id)[-1]
    word = rk.split(".")[1]
    return [props_publish(ex, rk.replace(word, str(uuid.uuid4()), 1), props, body) for _ in range(n)]


class Confirms:
    """Publisher-confirm bookkeeping: ``upto`` = every publish with a sequence number <= upto is
    confirmed (basic.ack multiple, or single acks that close the gap; RabbitMQ may confirm out of
    order across queues)."""

    def __init__(self) -> None:
        self.upto = 0
        self.singles: set[int] = set()
        self.nacks = 0

    def ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            if tag > self.upto:
                self.upto = tag
                self.singles = {t for t in self.singles if t > tag}
        else:
            self.singles.add(tag)
        while self.upto + 1 in self.singles:
            self.upto += 1
            self.singles.discard(self.upto)


class FlowConn(RawAMQP):
    """A raw connection for the flow: confirms on, prefetch, consumers tagged ``s{i}`` / ``r``."""

    def __init__(self, prefetch: int, consumers: dict[str, str], *, no_ack: bool = False,
                 listen: str | None = None, listen_key: str = "#", split: bool = False) -> None:
        super().__init__()
        self.rpc(C.Confirm.Select(), C.Confirm.SelectOk)
        self.rpc(C.Basic.Qos(prefetch_count=prefetch), C.Basic.QosOk)
        if listen is not None:  # FlowEngine.wait's listener queue: exclusive, bound to the terminal events
            self.rpc(C.Exchange.Declare(exchange="mmate.events", exchange_type="topic", durable=True),
                     C.Exchange.DeclareOk)
            self.rpc(C.Queue.Declare(queue=listen, exclusive=True, auto_delete=True), C.Queue.DeclareOk)
            for event in _TERMINAL:
                key = f"evt.{listen_key}.{event}"
                self.rpc(C.Queue.Bind(queue=listen, exchange="mmate.events", routing_key=key), C.Queue.BindOk)
        for k, (tag, q) in enumerate(consumers.items()):
            ch = 1
            if split:
                ch = k + 2
                self.rpc(C.Channel.Open(), C.Channel.OpenOk, ch)
                self.rpc(C.Basic.Qos(prefetch_count=prefetch), C.Basic.QosOk, ch)
            self.rpc(C.Basic.Consume(queue=q, consumer_tag=tag, no_ack=no_ack), C.Basic.ConsumeOk, ch)
        self.reset_parser(bytes(self.rbuf))
        self.rbuf.clear()

    def reset_parser(self, pending: bytes = b"") -> None:
        """Fresh parse state; ``pending``: bytes already read off the socket."""
        self.buf = bytearray(4 << 20)
        self.filled = len(pending)
        self.buf[:self.filled] = pending
        self.confirms = Confirms()
        self.cur_tag = 0  # delivery tag / consumer-tag byte of the delivery being read
        self.cur_ch = 0
        self.cur_chan = 1  # the AMQP channel of the delivery being read
        self.last_by_chan: dict[int, int] = {}  # split mode: highest delivery tag per channel this parse

    def close(self) -> None:
        """Connection.Close, then read (and drop) everything up to Close-Ok: a socket closed with
        unread data is reset, and a reset may make the broker drop our last acks unread (the
        messages would be requeued)."""
        try:
            self.send(C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0)
            self.sock.settimeout(5)
            end = self.filled
            while True:
                pos = 0
                while pos + 7 <= end:
                    typ, _ch, size = HDR.unpack_from(self.buf, pos)
                    if pos + 8 + size > end:
                        break
                    if typ == 1 and U32.unpack_from(self.buf, pos + 7)[0] == _CLOSE_OK_ID:
                        return
                    pos += 8 + size
                rem = end - pos
                self.buf[:rem] = self.buf[pos:end]
                got = self.sock.recv_into(memoryview(self.buf)[rem:])
                if not got:
                    return
                end = rem + got
        except OSError:
            pass
        finally:
            self.sock.close()

    def read(self, on_body: Any) -> int:
        """One recv, then parse() what arrived."""
        got = self.sock.recv_into(memoryview(self.buf)[self.filled:])
        if not got:
            raise AMQPError("broker closed the connection")
        return self.parse(self.filled + got, on_body)

    def parse(self, end: int, on_body: Any) -> int:
        """Walk the frames in ``buf[:end]``: ``on_body(tag_byte, delivery_tag)`` per complete delivery
        (tag_byte: the consumer tag's second byte, e.g. ``ord('0')`` for ``s0``; 0 for a one-letter
        tag), confirms into ``self.confirms``; a partial frame stays at the start of ``buf``. Returns
        the highest delivery tag completed (0 if none)."""
        buf = self.buf
        hdr, u32, u64 = HDR.unpack_from, U32.unpack_from, U64.unpack_from
        pos = 0
        last = 0
        cur_tag, cur_ch = self.cur_tag, self.cur_ch
        confirms = self.confirms
        while pos + 7 <= end:
            typ, chan, size = hdr(buf, pos)
            fe = pos + 8 + size
            if fe > end:
                break
            if typ == 3:
                on_body(cur_ch, cur_tag)
                last = cur_tag
                if chan != 1:
                    self.last_by_chan[chan] = cur_tag
            elif typ == 1:
                mid = u32(buf, pos + 7)[0]
                if mid == DELIVER_ID:
                    ctl = buf[pos + 11]
                    cur_ch = buf[pos + 13] if ctl > 1 else 0
                    cur_tag = u64(buf, pos + 12 + ctl)[0]
                elif mid == ACK_ID:
                    confirms.ack(u64(buf, pos + 11)[0], bool(buf[pos + 19] & 1))
                elif mid == NACK_ID:
                    confirms.nacks += 1
                    confirms.ack(u64(buf, pos + 11)[0], bool(buf[pos + 19] & 1))
                elif mid in _CLOSE_IDS:
                    raise AMQPError("broker closed the connection/channel")
            pos = fe
        rem = end - pos
        if rem:
            buf[:rem] = buf[pos:end]
        self.filled = rem
        self.cur_tag, self.cur_ch = cur_tag, cur_ch
        return last


def flow_worker(a: argparse.Namespace) -> dict[str, Any]:
    names = FlowNames(CLIENT, a.queue)
    publishes = flow_publishes(names)
    nxt = {ord(str(i)): publishes[i + 1] for i in range(len(STAGES))}
    events = event_variants(names, EVENT_KEYS) if GOWIRE and EVENT_KEYS else []
    last_ch = ord(str(len(STAGES) - 1))
    idx = {ord(str(i)): i for i in range(len(STAGES))}
    conn = FlowConn(FLOW_PREFETCH, {f"s{i}": q for i, q in enumerate(names.stages)}, split=SPLIT)
    handled = [0] * len(STAGES)
    out = bytearray()
    seq = [0]

    spin = _SPIN[0]

    def on_body(ch: int, _tag: int) -> None:
        _spin(spin)
        if events and ch == last_ch:
            out.extend(events[seq[0] % len(events)])
        else:
            out.extend(nxt[ch])
        handled[idx[ch]] += 1
        seq[0] += 1

    # (last publish seq of a read, last delivery tag of it; split: {channel: last tag})
    pending: deque[tuple[int, Any]] = deque()
    sock, stdin, sendall = conn.sock, sys.stdin, conn.sock.sendall
    confirms = conn.confirms
    print("READY", flush=True)
    c0 = time.process_time()
    stopping = 0.0
    while True:
        r, _, _ = select.select([sock] if stopping else [sock, stdin], [], [], 0.05 if stopping else 1.0)
        if stopping and (not pending or time.perf_counter() > stopping):
            break  # every delivery acked (or gave up waiting): closing now requeues nothing
        if stdin in r and stdin_says_stop():
            stopping = time.perf_counter() + 10.0
            continue
        if sock not in r:
            continue
        last = conn.read(on_body)
        if out:
            sendall(out)
            out.clear()
            if SPLIT:
                pending.append((seq[0], dict(conn.last_by_chan)))
                conn.last_by_chan.clear()
            else:
                pending.append((seq[0], last))
        if SPLIT:
            acks: dict[int, int] = {}
            while pending and pending[0][0] <= confirms.upto:
                acks.update(pending.popleft()[1])
            if acks:
                sendall(b"".join(ack_frame(t, True, ch) for ch, t in acks.items()))
            continue
        ack_tag = 0
        while pending and pending[0][0] <= confirms.upto:
            ack_tag = pending.popleft()[1]
        if ack_tag:
            sendall(ack_frame(ack_tag, True))
    cpu = time.process_time() - c0
    conn.close()
    return worker_result(cpu, handled, nacks=confirms.nacks, unacked_at_stop=len(pending))


def stageflow(a: argparse.Namespace) -> dict[str, Any]:
    def starter(names: FlowNames, n: int, cap: float) -> dict[str, Any]:
        start = flow_publishes(names)[0]
        if GOWIRE:  # completions are WorkflowCompletedEvents on the listener queue, consumed without acks
            from _flow_gowire import instance_id

            listen = f"stageflow.wait.{names.workflow_id}"
            # BENCH_FLOW_RAW_LISTEN_KEY: the middle word of the listener's bindings instead of this run's
            # instance id (``#``: FlowEngine.wait's own bindings, fine on a node of our own)
            key = (os.environ.get("BENCH_FLOW_RAW_LISTEN_KEY") or ("#" if EVENT_KEYS else "")
                   or instance_id(names.workflow_id))
            conn = FlowConn(INFLIGHT, {"r": listen}, no_ack=True, listen=listen, listen_key=key)
        else:
            conn = FlowConn(INFLIGHT, {"r": names.results})
        st = Starts(n)
        out = bytearray()
        dl = deadline(cap)

        spin = _SPIN[1]

        def on_body(_ch: int, _tag: int) -> None:
            _spin(spin)
            if st.complete():
                out.extend(start)
                st.started += 1

        st.begin()
        st.started = st.first
        conn.sock.sendall(start * st.first)
        while not st.done() and time.perf_counter() < dl:
            r, _, _ = select.select([conn.sock], [], [], max(0.0, dl - time.perf_counter()))
            if not r:
                break
            last = conn.read(on_body)
            if out:
                conn.sock.sendall(out)
                out.clear()
            if last and not GOWIRE:
                conn.sock.sendall(ack_frame(last, True))
        res = st.result()
        conn.close()
        return {**res, "nacks": conn.confirms.nacks}

    return flow_workload(CLIENT, __file__, a, starter)


RUNNERS = {"stageflow": stageflow, "flow-worker": flow_worker}

if __name__ == "__main__":
    child_main(CLIENT, RUNNERS)
