"""What the broker pays for the Mmate wire: broker CPU µs per published message, one part at a time.

    python benchmarks/broker_cost.py [--messages N] [--repeat R] [--only row,row] [--node own|main] [--list]

A zero-cost raw client (blocking socket, frames pre-encoded once, 1000 messages per sendall) publishes
N messages of one *shape* into a fresh queue; the run is timed until the queue holds all N (or, with
confirms, until the last ack). The broker's CPU time (utime+stime of its beam.smp, read from /proc
before and after) over that span, minus the node's background CPU rate measured for 0.5 s just
before, divided by N, is its cost per message. ``--node own`` (default) starts a throw-away node for
the run (tests/integration/broker_node.py; stopped at the end), so that CPU is ours alone; ``--node
main`` measures the shared broker on 5672 (found by its listener, not the extra nodes tests start).
Rows (``--list``):

* ``plain`` — the transport benchmark's message: default exchange, 300-byte body, content_type +
  delivery_mode only (20 bytes of properties), transient, non-durable queue, no confirms, one channel,
  one connection;
* one part changed from ``plain``: the exchange (``direct``, ``topic`` with Client.subscribe's
  ``evt.#.{type}`` binding, ``topic_star``/``topic_hash``/``topic_exact`` bindings), the properties
  (``go_headers``, ``our_props``, ``lean_props``, ``net_props``, ``props_63``/``props_65`` around the
  broker's 64-byte step), ``body692``, ``durable_queue``, ``persistent`` (``persistent_v2``: a classic
  queue v2), ``confirms``, ``channels4``, ``connections4``;
* the whole Mmate event as Go sends it (``mmate_go``: topic exchange, Go's 14 headers, the 692-byte
  envelope, persistent into a durable queue), as we send it by default (``mmate_ours``: plus the .NET
  mapping's message_id/type/timestamp), with the lean profile (``mmate_lean``), spread over 4 channels
  or connections (``*_ch4``, ``*_conn4``), into a classic queue v2 (``*_v2``) and into 3 bound queues
  (``*_fanout3*``: three subscribed services);
* ``client_*``: our Client publishing the same events (``publish_event`` per new event object, no
  confirms) with its defaults, ``publish_channels=4`` and ``wire_profile="lean"``: how close the
  library gets to the raw ceiling of the same wire (``vs_raw``).

The table gives the rate, client CPU µs/msg (this process), broker CPU µs/msg (net of background) and
its difference to ``plain``, the gross figure, the background share and how many cores the broker
kept busy during the run (gross CPU / wall time: above 1 only when its processes ran in parallel);
the last line is one JSON object (``rates``, ``broker_us``, ``client_us``, ``broker_cores``,
``vs_raw`` of the client rows against the raw row with the same bytes, ``vs_plain``). Medians of
``--repeat``. Broker CPU per message is robust to the machine's load; the rates are not.
Queues and exchanges are this run's own (``bench.brokercost.*``) and deleted afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _common
from _common import (
    BATCH,
    FRAME_END,
    HDR,
    RawAMQP,
    _make_body,
    deadline,
    run_loop,
)
from _mmate_event import new_event, template
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe

from mmate_fast._ext import load

_frames = load("frames")
TYPE = "OrderCreatedEvent"
ROUTING_KEY = f"evt.order-42.{TYPE}"
BINDING = f"evt.#.{TYPE}"  # what Client.subscribe binds for an event type (topology.binding_for)
POLL_S = 0.002  # queue-depth poll while waiting for the last message (each poll costs the broker too)
BG_S = 0.5  # background broker CPU sample before each run
NODE = ["own"]  # which node was measured (for the JSON)
HDR_PREFIX = struct.Struct(">HHQ")  # content header: class id, weight, body size


@dataclass(frozen=True)
class Shape:
    """One way to publish: what travels and how."""

    exchange: str = "default"  # default | direct | topic
    props: str = "plain"  # plain | go (Go's 14 headers) | ours (+ .NET properties) | lean | net | p63 | p65
    body: int = 300  # 300 (transport body) | 692 (the Mmate envelope)
    durable_queue: bool = False
    persistent: bool = False  # delivery_mode 2 (into a durable queue)
    confirms: bool = False
    channels: int = 1
    connections: int = 1
    client: str = ""  # "" raw; else Client options: "default" | "channels4" | "lean"
    binding: str = BINDING  # the queue's binding key on the topic exchange
    queues: int = 1  # queues bound (several subscribed services; topic/direct only)
    queue_version: int = 0  # classic queue storage version (x-queue-version; 0: the broker's default, 1)


_P = Shape()
_MMATE = Shape(exchange="topic", props="go", body=692, durable_queue=True, persistent=True)
ROWS: dict[str, tuple[Shape, str]] = {
    "plain": (_P, "transport message: default exchange, 300 B, no headers, transient"),
    "direct": (Shape(exchange="direct"), "direct exchange instead of the default one"),
    "topic": (Shape(exchange="topic"), f"topic exchange, binding {BINDING} (Client.subscribe's)"),
    "topic_star": (Shape(exchange="topic", binding=f"evt.*.{TYPE}"), f"topic, binding evt.*.{TYPE}"),
    "topic_hash": (Shape(exchange="topic", binding="evt.#"), "topic, binding evt.#"),
    "topic_exact": (Shape(exchange="topic", binding=ROUTING_KEY), "topic, binding = the routing key"),
    "go_headers": (Shape(props="go"), "Go's 14 Mmate headers (content header ~480 B)"),
    "our_props": (Shape(props="ours"), "our default: Go's headers + message_id/type/timestamp"),
    "lean_props": (Shape(props="lean"), "lean profile: Go's properties (20 B), no header table"),
    "net_props": (Shape(props="net"), "message_id/type/timestamp, no table (83 B: over 64 B)"),
    "props_63": (Shape(props="p63"), "message_id + timestamp in 63 bytes of properties"),
    "props_65": (Shape(props="p65"), "message_id + timestamp in 65 bytes: the 64-byte step"),
    "body692": (Shape(body=692), "the 692-byte Mmate envelope as body"),
    "durable_queue": (Shape(durable_queue=True), "durable queue, transient message"),
    "persistent": (Shape(durable_queue=True, persistent=True), "persistent into a durable queue"),
    "persistent_v2": (Shape(durable_queue=True, persistent=True, queue_version=2),
                      "persistent into a durable classic queue v2 (x-queue-version 2, or a policy)"),
    "confirms": (Shape(confirms=True), "publisher confirms (windows of 1000)"),
    "channels4": (Shape(channels=4), "4 channels on one connection, round-robin"),
    "connections4": (Shape(connections=4), "4 connections, round-robin"),
    "mmate_go": (_MMATE, "the Mmate event as Go sends it: topic, 14 headers, 692 B, persistent"),
    "mmate_ours": (Shape(exchange="topic", props="ours", body=692, durable_queue=True, persistent=True),
                   "the same as our default wire profile sends it"),
    "mmate_lean": (Shape(exchange="topic", props="lean", body=692, durable_queue=True, persistent=True),
                   "the same with wire_profile='lean'"),
    "mmate_ours_ch4": (Shape(exchange="topic", props="ours", body=692, durable_queue=True, persistent=True,
                             channels=4), "mmate_ours over 4 channels"),
    "mmate_ours_conn4": (Shape(exchange="topic", props="ours", body=692, durable_queue=True, persistent=True,
                               connections=4), "mmate_ours over 4 connections"),
    "mmate_lean_ch4": (Shape(exchange="topic", props="lean", body=692, durable_queue=True, persistent=True,
                             channels=4), "mmate_lean over 4 channels"),
    "mmate_ours_v2": (Shape(exchange="topic", props="ours", body=692, durable_queue=True, persistent=True,
                            queue_version=2), "mmate_ours into a classic queue v2"),
    "mmate_ours_fanout3_v2": (Shape(exchange="topic", props="ours", body=692, durable_queue=True,
                                    persistent=True, queues=3, queue_version=2),
                              "mmate_ours into 3 classic queues v2"),
    "topic_fanout3": (Shape(exchange="topic", queues=3), "topic, 3 bound queues (3 subscribed services)"),
    "mmate_ours_fanout3": (Shape(exchange="topic", props="ours", body=692, durable_queue=True,
                                 persistent=True, queues=3), "mmate_ours into 3 bound queues"),
    "mmate_ours_fanout3_ch4": (Shape(exchange="topic", props="ours", body=692, durable_queue=True,
                                     persistent=True, queues=3, channels=4),
                               "mmate_ours into 3 bound queues over 4 channels"),
    "client_default": (Shape(exchange="topic", props="ours", body=692, durable_queue=True, persistent=True,
                             client="default"), "Client.publish_event, defaults (confirms off)"),
    "client_channels4": (Shape(exchange="topic", props="ours", body=692, durable_queue=True, persistent=True,
                               client="channels4"), "the same with publish_channels=4"),
    "client_lean": (Shape(exchange="topic", props="lean", body=692, durable_queue=True, persistent=True,
                          client="lean"), "the same with wire_profile='lean'"),
}
#: the raw row with the same bytes as each Client row (vs_raw)
CLIENT_RAW = {"client_default": "mmate_ours", "client_channels4": "mmate_ours_ch4",
              "client_lean": "mmate_lean"}


# ------------------------------------------------------------------------------------------- frames
def _properties(shape: Shape, body: bytes) -> bytes:
    """The encoded basic properties (flags + fields) of ``shape``."""
    mode = 2 if shape.persistent else 1
    if shape.props == "plain":
        return bytes(_frames.encode_properties(_frames.BasicProperties(
            content_type="application/json", delivery_mode=mode)))
    from mmate_fast.messaging.outgoing import build

    evt = new_event(42)
    if shape.props in ("p63", "p65"):  # message_id + timestamp: 63 or 65 bytes of properties
        mid = "6f1c2a9e-3b7d-4c1e-9a2f-5d8e7b6c4a31"[:34 if shape.props == "p63" else 36]
        return bytes(_frames.encode_properties(_frames.BasicProperties(
            content_type="application/json", delivery_mode=mode, message_id=mid, timestamp=1_796_000_000)))
    if shape.props == "lean":  # what Publisher(wire_profile="lean") sends
        from mmate_fast.messaging._lean import lean_properties

        return lean_properties(shape.persistent, None, None)
    out = build(evt, persistent=shape.persistent)
    if shape.props == "net":  # the .NET mapping's properties without the table (lean with interceptors)
        from mmate_fast.messaging._lean import without_header_table

        return without_header_table(bytes(out.properties))
    if shape.props == "ours":
        return bytes(out.properties)
    # Go: content_type, headers (Go's field types: B for priority/delivery-mode), delivery_mode only
    # (flags 0xb000, wire spec §4.1)
    return bytes(_frames.encode_properties(_frames.BasicProperties(
        content_type="application/json", delivery_mode=mode, headers=out.headers)))


def _body(shape: Shape) -> bytes:
    return template()[0] if shape.body == 692 else _make_body()


def publish_frames(exchange: str, routing_key: str, body: bytes, props: bytes, channel: int) -> bytes:
    payload = HDR_PREFIX.pack(60, 0, len(body)) + props
    return (pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key), channel)
            + HDR.pack(2, channel, len(payload)) + payload + bytes((FRAME_END,))
            + pframe.marshal(pbody.ContentBody(body), channel))


# ------------------------------------------------------------------------------------------- timing
class Broker:
    """The node measured: the main one on 5672 (``--node main``) or a throw-away node of this run
    (``--node own``, the default: only our traffic on it, so its CPU time is ours)."""

    port = _common.PORT
    pid = 0

    @classmethod
    def cpu_s(cls) -> float | None:
        if not cls.pid:
            return None
        try:
            with open(f"/proc/{cls.pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / _TCK
        except OSError:
            return None

    @classmethod
    def raw(cls) -> RawAMQP:
        return RawAMQP(port=cls.port)

    @classmethod
    def url(cls) -> str:
        return f"amqp://{_common.USER}:{_common.PASSWORD}@{_common.HOST}:{cls.port}/"


_TCK = os.sysconf("SC_CLK_TCK")


def broker_cpu_s() -> float | None:
    return Broker.cpu_s()


class Meter:
    """Wall time, this process's CPU and the broker's CPU over a section, net of the broker's
    background rate sampled just before."""

    def __init__(self) -> None:
        b0 = broker_cpu_s()
        time.sleep(BG_S)
        b1 = broker_cpu_s()
        self.bg_rate = (b1 - b0) / BG_S if b0 is not None and b1 is not None else None
        self.t0 = self.c0 = 0.0
        self.b0: float | None = None

    def start(self) -> None:
        self.b0 = broker_cpu_s()
        self.c0 = time.process_time()
        self.t0 = time.perf_counter()

    def stop(self, n: int) -> dict[str, Any]:
        t = time.perf_counter() - self.t0
        c = time.process_time() - self.c0
        b1 = broker_cpu_s()
        res: dict[str, Any] = {"count": n, "elapsed_s": t, "rate": n / t, "client_us": c / n * 1e6}
        if self.b0 is not None and b1 is not None:
            gross = b1 - self.b0
            res["broker_gross_us"] = gross / n * 1e6
            bg = (self.bg_rate or 0.0) * t
            res["broker_us"] = max(0.0, gross - bg) / n * 1e6
            res["broker_bg_pct"] = (self.bg_rate or 0.0) * 100
            res["broker_cores"] = gross / t  # how many cores the broker kept busy meanwhile
        return res


# ------------------------------------------------------------------------------------------- runs
class Names:
    """This run's exchanges (declared once) and queue names."""

    def __init__(self) -> None:
        tag = f"{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.topic = f"bench.brokercost.{tag}.topic"
        self.direct = f"bench.brokercost.{tag}.direct"
        self.tag = tag
        self.n = 0

    def queue(self) -> str:
        self.n += 1
        return f"bench.brokercost.{self.tag}.q{self.n}"


def _setup(admin: RawAMQP, names: Names, shape: Shape) -> tuple[list[str], str, str]:
    """Fresh queue(s) bound as ``shape`` needs: (queues, exchange, routing key)."""
    qs = [names.queue() for _ in range(shape.queues)]
    for q in qs:
        args = {"x-queue-version": shape.queue_version} if shape.queue_version else {}
        admin.rpc(C.Queue.Declare(queue=q, durable=shape.durable_queue, auto_delete=False, arguments=args),
                  C.Queue.DeclareOk)
    if shape.exchange == "default":
        return qs, "", qs[0]
    ex = names.topic if shape.exchange == "topic" else names.direct
    key = shape.binding if shape.exchange == "topic" else ROUTING_KEY
    for q in qs:
        admin.rpc(C.Queue.Bind(queue=q, exchange=ex, routing_key=key), C.Queue.BindOk)
    return qs, ex, ROUTING_KEY


def _wait_queue(admin: RawAMQP, qs: list[str], n: int, dl: float) -> int:
    """The fewest messages any of ``qs`` holds once all hold ``n`` (or at the deadline)."""
    return min(admin.wait_count(q, n, dl, poll=POLL_S) for q in qs)


def _delete(admin: RawAMQP, qs: list[str]) -> None:
    for q in qs:
        admin.rpc(C.Queue.Delete(queue=q), C.Queue.DeleteOk)


def run_raw(admin: RawAMQP, names: Names, shape: Shape, n: int) -> dict[str, Any]:
    qs, ex, rk = _setup(admin, names, shape)
    body = _body(shape)
    props = _properties(shape, body)
    conns = [Broker.raw() for _ in range(shape.connections)]
    try:
        for c in conns:
            for ch in range(2, shape.channels + 1):
                c.rpc(C.Channel.Open(), C.Channel.OpenOk, ch)
        per_msg = [publish_frames(ex, rk, body, props, ch) for ch in range(1, shape.channels + 1)]
        chunk = b"".join(per_msg) * (BATCH // shape.channels)
        per_chunk = (BATCH // shape.channels) * shape.channels
        if shape.confirms:
            conns[0].rpc(C.Confirm.Select(), C.Confirm.SelectOk)
        m = Meter()
        dl = deadline()
        m.start()
        sent = 0
        if shape.confirms:
            state = [0, 0]
            sock = conns[0].sock
            while sent < n and time.perf_counter() < dl:
                sock.sendall(chunk)
                sent += per_chunk
                while state[0] < sent:
                    conns[0].drain_confirms(state, block=True)
            got = state[0]
        else:
            socks = [c.sock for c in conns]
            i = 0
            while sent < n and time.perf_counter() < dl:
                socks[i % len(socks)].sendall(chunk)
                sent += per_chunk
                i += 1
            got = _wait_queue(admin, qs, sent, dl)
        res = m.stop(min(sent, got))
        res["capped"] = got < sent or sent < n
        res["content_header_bytes"] = len(props) + 12
        res["body_bytes"] = len(body)
        return res
    finally:
        for c in conns:
            c.close()
        _delete(admin, qs)


def run_client(admin: RawAMQP, names: Names, shape: Shape, n: int, loop: str) -> dict[str, Any]:
    """Our Client: a new event object per publish, ``publish_event`` to the bound topic exchange."""
    from mmate_fast.client import Client

    qs, ex, rk = _setup(admin, names, shape)
    opts: dict[str, Any] = {"publisher_confirms": False, "declare_topology": False,
                            "service_name": f"bench-brokercost-{names.tag}"}
    if shape.client == "channels4":
        opts["publish_channels"] = 4
    elif shape.client == "lean":
        opts["wire_profile"] = "lean"

    async def go() -> dict[str, Any]:
        async with Client(Broker.url(), **opts) as client:
            publish_event = client.publish_event
            persistent = shape.persistent
            m = Meter()
            dl = deadline()
            m.start()
            sent = 0
            while sent < n and time.perf_counter() < dl:
                for i in range(sent, min(sent + BATCH, n)):
                    await publish_event(new_event(i), exchange=ex, routing_key=rk, persistent=persistent)
                sent = min(sent + BATCH, n)
            got = await asyncio.to_thread(_wait_queue, admin, qs, sent, dl)
            res = m.stop(min(sent, got))
            res["capped"] = got < n
            return res

    try:
        return dict(run_loop(go, loop))
    finally:
        _delete(admin, qs)


# ------------------------------------------------------------------------------------------- report
def _med(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _table(head: list[str], rows: list[list[str]], left: tuple[int, ...]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(v.ljust(w) if i in left else v.rjust(w)
                         for i, (v, w) in enumerate(zip(cells, widths, strict=True)))

    return [line(head), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def summarize(rows: list[str], runs: dict[str, list[dict[str, Any]]], n: int) -> tuple[str, dict[str, Any]]:
    keys = ("rate", "client_us", "broker_us", "broker_gross_us", "broker_bg_pct", "broker_cores")
    med = {r: {k: _med([x.get(k) for x in runs[r]]) for k in keys} for r in rows}
    base = med.get("plain", {}).get("broker_us")
    head = ["row", "msg/s", "client µs/msg", "broker µs/msg", "Δ vs plain", "gross", "bg %", "broker cores",
            "what"]
    table = []
    for r in rows:
        b = med[r]["broker_us"]
        delta = None if b is None or base is None or r == "plain" else b - base
        table.append([r, _fmt(med[r]["rate"], ",.0f"), _fmt(med[r]["client_us"], ".1f"), _fmt(b, ".1f"),
                      _fmt(delta, "+.1f"), _fmt(med[r]["broker_gross_us"], ".1f"),
                      _fmt(med[r]["broker_bg_pct"], ".0f"), _fmt(med[r]["broker_cores"], ".2f"), ROWS[r][1]])
    reps = len(next(iter(runs.values())))
    lines = [f"broker cost per published message ({NODE[0]} node, N={n:,} per run, medians of {reps})",
             *_table(head, table, (0, 8))]

    def ratio(a: str, b: str) -> float | None:
        if a not in runs or b not in runs:
            return None
        return _med([x["rate"] / y["rate"] for x, y in zip(runs[a], runs[b], strict=True)])

    vs_raw = {c: ratio(c, raw) for c, raw in CLIENT_RAW.items() if c in runs}
    vs_plain = {r: ratio(r, "plain") for r in rows if r != "plain"}
    for c, v in vs_raw.items():
        lines.append(f"{c} / {CLIENT_RAW[c]} (raw, same bytes) = {_fmt(v, '.3f')}")
    lines.append(f"load average at the end: {os.getloadavg()[0]:.2f}")
    obj = {"workload": "broker-cost", "messages": n, "node": NODE[0],
           "rates": {r: med[r]["rate"] for r in rows}, "broker_us": {r: med[r]["broker_us"] for r in rows},
           "client_us": {r: med[r]["client_us"] for r in rows},
           "broker_cores": {r: med[r]["broker_cores"] for r in rows}, "vs_raw": vs_raw, "vs_plain": vs_plain,
           "load": os.getloadavg()[0], "extensions": _common.extensions_in_use()}
    return "\n".join(lines), obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", "-n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default=None, help="comma list of rows (--list shows them)")
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--node", default="own", choices=["own", "main"],
                    help="own (default): a throw-away RabbitMQ node for this run, so its CPU is ours "
                         "alone; main: the shared broker on 5672 (other traffic counts, less background "
                         "subtraction can correct)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        for r, (_s, what) in ROWS.items():
            print(f"{r:<18} {what}")
        return 0
    rows = [r.strip() for r in (a.only or ",".join(ROWS)).split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad or a.repeat < 1 or a.messages < BATCH:
        ap.error(f"unknown rows {bad} (see --list); --repeat >= 1; --messages >= {BATCH}")
    NODE[0] = a.node
    node = None
    if a.node == "own":
        sys.path.insert(0, os.path.join(_common.ROOT, "tests", "integration"))
        import broker_node

        node = broker_node.start(kind="brokercost")
        Broker.port = node.amqp_port
        Broker.pid = int((node.tmp / "node.pid").read_text().strip())
        print(f"broker_cost: own node {node.node} on port {node.amqp_port} (pid {Broker.pid}, started in "
              f"{node.startup_seconds:.1f} s)", file=sys.stderr, flush=True)
    else:
        Broker.pid = _common.main_beam_pid()
    try:
        return _measure(a, rows)
    finally:
        if node is not None:
            node.stop()


def _measure(a: argparse.Namespace, rows: list[str]) -> int:
    if broker_cpu_s() is None:
        print("broker_cost: RabbitMQ's beam.smp is not visible in /proc: no broker CPU", file=sys.stderr)
    names = Names()
    admin = Broker.raw()
    admin.rpc(C.Exchange.Declare(exchange=names.topic, exchange_type="topic"), C.Exchange.DeclareOk)
    admin.rpc(C.Exchange.Declare(exchange=names.direct, exchange_type="direct"), C.Exchange.DeclareOk)
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in rows}
    try:
        for rep in range(1, a.repeat + 1):
            for r in rows:
                shape = ROWS[r][0]
                run: Callable[[], dict[str, Any]] = (
                    (lambda s=shape: run_client(admin, names, s, a.messages, a.loop)) if shape.client
                    else (lambda s=shape: run_raw(admin, names, s, a.messages)))
                res = run()
                runs[r].append(res)
                print(f"[rep {rep}/{a.repeat}] {r:<18} {res['rate']:>9,.0f} msg/s  broker "
                      f"{_fmt(res.get('broker_us'), '.1f')} µs/msg  client {res['client_us']:.1f} µs/msg"
                      + ("  CAPPED" if res.get("capped") else ""), file=sys.stderr, flush=True)
    finally:
        for ex in (names.topic, names.direct):
            admin.rpc(C.Exchange.Delete(exchange=ex), C.Exchange.DeleteOk)
        admin.close()
    table, obj = summarize(rows, runs, a.messages)
    print(table)
    print(json.dumps(obj), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
