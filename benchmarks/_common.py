"""Shared pieces of the benchmark harness: the 300-byte body, timing/CPU accounting, a blocking
raw-socket AMQP connection (queue admin, prefill and the "raw" client's fast paths), and the child
process protocol (each client run prints exactly one JSON line, its last line on stdout).

Methodology follows /work/shared/anchors (RESULTS.md): every loop is bounded by a message count and
a wall-clock deadline; traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

#: the checkout (client processes run from here)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"  # loopback only
#: BENCH_AMQP_PORT: the node the clients talk to (default the shared broker on 5672; rpc_cost.py points
#: it at a throw-away node of its own, whose CPU is then the benchmark's alone)
PORT = int(os.environ.get("BENCH_AMQP_PORT", "5672"))
USER = "guest"
PASSWORD = "guest"
AMQP_URL = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/"
#: Per-run wall-clock cap of a timed section (seconds).
TIME_CAP = float(os.environ.get("BENCH_TIME_CAP", "120"))

PREFETCH = 1000
#: BENCH_PERSISTENT=1 (run.py --persistent): queues are durable and every message persistent
#: (delivery mode 2: the broker writes it to disk and confirms it after the fsync)
PERSISTENT = os.environ.get("BENCH_PERSISTENT", "") == "1"
#: which row of a client module runs (run.py sets it for rows such as raw_pipelined, mmate_fast_gather)
VARIANT = os.environ.get("BENCH_VARIANT", "")
BATCH = 1000  # raw frames per sendall / publish window / drain interval
WORKLOADS = ("publish", "publish-confirm", "publish-confirm-each", "consume", "e2e")
DEFAULT_N = {"publish": 50_000, "publish-confirm": 50_000, "publish-confirm-each": 5_000,
             "consume": 50_000, "e2e": 50_000}

# ---------------------------------------------------------------------------------------- body
BODY_SIZE = 300
#: The placeholder of the send timestamp (ns since the epoch, 19 digits) inside the body.
STAMP_KEY = b'"sentAtNs":"'
STAMP_TOKEN = STAMP_KEY + b"0" * 19 + b'"'
STAMP_LEN = 19


def _make_body() -> bytes:
    """A Mmate-looking JSON envelope padded to exactly BODY_SIZE bytes (compact separators)."""
    env: dict[str, Any] = {
        "id": "6f1c2a9e-3b7d-4c1e-9a2f-5d8e7b6c4a31",
        "type": "OrderCreatedEvent",
        "timestamp": "2025-11-27T14:00:00.123456Z",
        "correlationId": "0b9e4f7a-2c6d-4e8b-8f1a-3c5d7e9f1b2d",
        "headers": {"sentAtNs": "0" * STAMP_LEN},
        "payload": {"orderId": "ORD-42", "customerId": "CUST-00000042", "amount": 10.42},
    }
    short = len(json.dumps(env, separators=(",", ":")))
    env["payload"]["orderId"] = "ORD-" + "42".zfill(2 + BODY_SIZE - short)  # pad to BODY_SIZE
    out = json.dumps(env, separators=(",", ":")).encode()
    assert len(out) == BODY_SIZE and out.count(STAMP_TOKEN) == 1, len(out)
    return out


#: "transport" (default): the 300-byte BODY above with plain properties. "mmate" (set by run.py
#: --level mmate): BODY and PROPS are one real Mmate envelope built by our encoder (_mmate_event).
BODY_KIND = os.environ.get("BENCH_BODY", "transport")
#: Pre-encoded AMQP properties (flags + list) of BODY at the mmate level; None: pamqp's plain ones.
PROPS: bytes | None = None
if BODY_KIND == "mmate":
    from _mmate_event import template

    BODY, PROPS = template()
    assert BODY.count(STAMP_TOKEN) == 1 and STAMP_TOKEN not in PROPS
else:
    BODY = _make_body()
#: Offset of the 19 timestamp digits inside BODY.
STAMP_OFF = BODY.index(STAMP_KEY) + len(STAMP_KEY)


def stamp_token(ns: int) -> bytes:
    """The placeholder with ``ns`` filled in; ``stamp_token(ns).join(x.split(STAMP_TOKEN))`` stamps x."""
    return b'"sentAtNs":"%019d"' % ns


def stamped_body(ns: int) -> bytes:
    """BODY carrying send time ``ns`` (time.time_ns(); valid across processes)."""
    return BODY[:STAMP_OFF] + b"%019d" % ns + BODY[STAMP_OFF + STAMP_LEN:]


def body_age_ns(body: bytes | bytearray | memoryview, now_ns: int) -> int:
    """Nanoseconds since the send time stamped in ``body``."""
    return now_ns - int(bytes(body[STAMP_OFF:STAMP_OFF + STAMP_LEN]))


# ---------------------------------------------------------------------------------------- timing
_TCK = os.sysconf("SC_CLK_TCK")
_beam_pid: int | None = None


def _listen_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (read-only /proc/net)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        found.add(cols[9])
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return found


def _beam_pids() -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == "beam.smp":
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def main_beam_pid(port: int = PORT) -> int:
    """The pid of the RabbitMQ node serving AMQP on ``port`` (0 if not visible).

    Other helpers start extra nodes (tests/integration/broker_node.py), so "the first beam.smp" is not
    good enough: the node whose open sockets include the listener on ``port`` wins (needs the right
    to read its /proc/PID/fd); else the one node whose command line has no throw-away home
    (``mmate-node-``); else the only beam.smp."""
    pids = _beam_pids()
    inodes = _listen_inodes(port)
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return pid
    main = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"mmate-node-" not in f.read():
                    main.append(pid)
        except OSError:
            pass
    return main[0] if len(main) == 1 else (pids[0] if len(pids) == 1 else 0)


def _find_beam_pid() -> int:
    global _beam_pid
    if _beam_pid is None:
        _beam_pid = main_beam_pid()
    return _beam_pid


def broker_cpu_s() -> float | None:
    """utime+stime of RabbitMQ's beam.smp (read-only /proc), None if not visible."""
    pid = _find_beam_pid()
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / _TCK
    except OSError:
        return None


class Span:
    """Wall time, this process's CPU time and the broker's CPU time over a timed section."""

    def __init__(self) -> None:
        self.t0 = self.t1 = self.c0 = self.c1 = 0.0
        self.b0: float | None = None
        self.b1: float | None = None

    def start(self) -> Span:
        self.b0 = broker_cpu_s()
        self.c0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def stop(self) -> Span:
        self.t1 = time.perf_counter()
        self.c1 = time.process_time()
        self.b1 = broker_cpu_s()
        return self

    def fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {"elapsed_s": self.t1 - self.t0, "cpu_s": self.c1 - self.c0}
        if self.b0 is not None and self.b1 is not None:
            d["broker_cpu_s"] = self.b1 - self.b0
        return d


def deadline(cap: float | None = None) -> float:
    return time.perf_counter() + (TIME_CAP if cap is None else cap)


def percentile(sorted_vals: list[float], p: float) -> float | None:
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, round(p / 100.0 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


def latency_fields(lat_s: list[float]) -> dict[str, Any]:
    """p50/p99 in ms of latencies given in seconds."""
    s = sorted(lat_s)
    p50, p99 = percentile(s, 50), percentile(s, 99)
    return {"p50_ms": None if p50 is None else p50 * 1e3, "p99_ms": None if p99 is None else p99 * 1e3,
            "lat_samples": len(s)}


def unique_name(client: str, workload: str) -> str:
    return f"bench.{client}.{workload}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def run_loop(factory: Callable[[], Coroutine[Any, Any, Any]], loop_name: str) -> Any:
    """Run ``factory()`` under asyncio's default loop or uvloop."""
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(factory())
    if loop_name == "asyncio":
        return asyncio.run(factory())
    raise ValueError(f"unknown loop {loop_name!r}")


async def wait_queue_async(admin: RawAMQP, q: str, n: int, dl: float) -> int:
    """Poll the queue depth every ms (keeping the loop running) until it holds n or the deadline."""
    c = admin.count(q)
    while c < n and time.perf_counter() < dl:
        await asyncio.sleep(0.001)
        c = admin.count(q)
    return c


async def wait_event(ev: asyncio.Event, dl: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ev.wait(), timeout=max(0.1, dl - time.perf_counter()))


# ---------------------------------------------------------------------------------------- raw AMQP
FRAME_END = 0xCE
HDR = struct.Struct(">BHI")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
DELIVER_ID = (60 << 16) | 60
ACK_ID = (60 << 16) | 80
NACK_ID = (60 << 16) | 120
_CLOSE_IDS = ((10 << 16) | 50, (20 << 16) | 40)
_CONFIRM_IDS = (ACK_ID, NACK_ID)
_ACK = struct.Struct(">BHIHHQBB")
_CH_PREFIX = struct.Struct(">HHQ")  # content header: class id, weight, body size


def ack_frame(tag: int, multiple: bool, channel: int = 1) -> bytes:
    """A basic.ack method frame."""
    return _ACK.pack(1, channel, 13, 60, 80, tag, 1 if multiple else 0, FRAME_END)


def publish_frames(routing_key: str, body: bytes, channel: int = 1) -> bytes:
    """basic.publish + content header (application/json, transient unless PERSISTENT; PROPS at the
    mmate level) + body,
    encoded once by pamqp."""
    if PROPS is not None:
        payload = _CH_PREFIX.pack(60, 0, len(body)) + PROPS
        header = HDR.pack(2, channel, len(payload)) + payload + bytes((FRAME_END,))
    else:
        props = C.Basic.Properties(content_type="application/json", delivery_mode=2 if PERSISTENT else 1)
        header = pframe.marshal(pheader.ContentHeader(0, len(body), props), channel)
    return (pframe.marshal(C.Basic.Publish(exchange="", routing_key=routing_key), channel)
            + header + pframe.marshal(pbody.ContentBody(body), channel))


class AMQPError(RuntimeError):
    """The broker closed the connection/channel or sent something unexpected."""


class RawAMQP:
    """A blocking-socket AMQP 0-9-1 connection with channel 1 open (pamqp for the slow path)."""

    def __init__(self, timeout: float = 30.0, *, port: int = PORT) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.rbuf = bytearray()
        self.sock.sendall(pframe.marshal(pheader.ProtocolHeader(), 0))
        self.expect(C.Connection.Start)
        self.send(C.Connection.StartOk(
            client_properties={"product": "mmate_fast-bench-raw", "capabilities": {
                "publisher_confirms": True, "basic.nack": True, "consumer_cancel_notify": True}},
            mechanism="PLAIN", response=f"\0{USER}\0{PASSWORD}", locale="en_US"), 0)
        tune = self.expect(C.Connection.Tune)
        self.send(C.Connection.TuneOk(channel_max=tune.channel_max, frame_max=min(131072, tune.frame_max),
                                      heartbeat=0), 0)
        self.send(C.Connection.Open(virtual_host="/"), 0)
        self.expect(C.Connection.OpenOk)
        self.rpc(C.Channel.Open(), C.Channel.OpenOk)

    # -- slow path ---------------------------------------------------------------------------
    def send(self, method: Any, channel: int = 1) -> None:
        self.sock.sendall(pframe.marshal(method, channel))

    def _fill(self, need: int) -> None:
        while len(self.rbuf) < need:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise AMQPError("connection closed by broker")
            self.rbuf += chunk

    def read_frame(self) -> Any:
        self._fill(7)
        _t, _ch, size = HDR.unpack_from(self.rbuf, 0)
        self._fill(8 + size)
        data = bytes(self.rbuf[:8 + size])
        del self.rbuf[:8 + size]
        return pframe.unmarshal(data)[2]

    def expect(self, cls: type) -> Any:
        while True:
            fr = self.read_frame()
            name = getattr(fr, "name", "")
            if name in ("Connection.Close", "Channel.Close"):
                raise AMQPError(f"{name}: {fr.reply_code} {fr.reply_text}")
            if name in ("Heartbeat", "Connection.Blocked", "Connection.Unblocked"):
                continue
            if not isinstance(fr, cls):
                raise AMQPError(f"expected {cls.__name__}, got {fr!r}")
            return fr

    def rpc(self, method: Any, ok_cls: type, channel: int = 1) -> Any:
        self.send(method, channel)
        return self.expect(ok_cls)

    # -- admin -------------------------------------------------------------------------------
    def declare(self, q: str) -> None:
        self.rpc(C.Queue.Declare(queue=q, durable=PERSISTENT, exclusive=False, auto_delete=False),
                 C.Queue.DeclareOk)

    def count(self, q: str) -> int:
        """Ready messages in q (passive declare)."""
        return int(self.rpc(C.Queue.Declare(queue=q, passive=True), C.Queue.DeclareOk).message_count)

    def delete(self, q: str) -> None:
        self.rpc(C.Queue.Delete(queue=q), C.Queue.DeleteOk)

    def wait_count(self, q: str, n: int, dl: float, poll: float = 0.001) -> int:
        c = self.count(q)
        while c < n and time.perf_counter() < dl:
            time.sleep(poll)
            c = self.count(q)
        return c

    def close(self) -> None:
        try:
            self.send(C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0)
            self.sock.settimeout(2)
            self.expect(C.Connection.CloseOk)
        except Exception:
            pass
        finally:
            self.sock.close()

    # -- fast paths --------------------------------------------------------------------------
    def send_chunks(self, chunk: bytes, nchunks: int, dl: float) -> int:
        """sendall() the same pre-joined chunk nchunks times; returns how many were sent."""
        sendall = self.sock.sendall
        perf = time.perf_counter
        for i in range(nchunks):
            sendall(chunk)
            if (i & 7) == 7 and perf() > dl:
                return i + 1
        return nchunks

    def drain_confirms(self, state: list[int], block: bool) -> None:
        """Read what is available and account basic.ack/nack: state = [highest tag, nacks]."""
        sock = self.sock
        if not block:
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return
        data = sock.recv(1 << 20)
        if not data:
            raise AMQPError("connection closed by broker")
        buf = self.rbuf
        buf += data
        pos, end = 0, len(buf)
        hdr, u32, u64 = HDR.unpack_from, U32.unpack_from, U64.unpack_from
        while pos + 7 <= end:
            typ, _ch, size = hdr(buf, pos)
            if pos + 8 + size > end:
                break
            if typ == 1:
                mid = u32(buf, pos + 7)[0]
                if mid in _CONFIRM_IDS:
                    tag = u64(buf, pos + 11)[0]
                    if tag > state[0]:
                        state[0] = tag
                    if mid == NACK_ID:
                        state[1] += 1
                elif mid in _CLOSE_IDS:
                    raise AMQPError("broker closed the connection/channel")
            pos += 8 + size
        del buf[:pos]


def prefill(admin: RawAMQP, q: str, n: int, dl: float | None = None) -> int:
    """Fill q with n copies of BODY using pre-encoded 1000-message chunks; returns the queue depth."""
    frames = publish_frames(q, BODY)
    full, rest = divmod(n, BATCH)
    if dl is None:
        dl = deadline()
    admin.send_chunks(frames * BATCH, full, dl)
    if rest:
        admin.sock.sendall(frames * rest)
    return admin.wait_count(q, n, dl)


# ---------------------------------------------------------------------------------------- children
Runner = Callable[[argparse.Namespace], dict[str, Any]]


def extensions_in_use() -> dict[str, Any] | None:
    """Whether this process ran mmate_fast's compiled extensions: ``{"compiled": all of the loaded
    codec modules are compiled, "modules": {name: compiled}}``; None when mmate_fast was not used."""
    ext = sys.modules.get("mmate_fast._ext")
    if ext is None:
        return None
    modules = dict(ext.COMPILED)
    return {"compiled": bool(modules) and all(modules.values()), "modules": modules}


def our_client(client: str) -> bool:
    """True for the mmate_fast rows (whose results record extensions_in_use())."""
    return client.startswith("mmate_fast")


def child_main(client: str, runners: Mapping[str, Runner]) -> None:
    """CLI of a client module: ``python _x.py WORKLOAD --messages N [--loop L]`` prints one JSON line.

    ``e2e-consumer`` (with --queue) is the consumer half of e2e, started by the producer process.
    The line holds ``extensions`` (our clients) and ``body_bytes`` (at the mmate level).
    """
    ap = argparse.ArgumentParser(description=f"{client} benchmark child")
    ap.add_argument("workload", choices=[*runners])
    ap.add_argument("--messages", type=int, default=None)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--queue", default=None)
    a = ap.parse_args()
    if a.messages is None:
        a.messages = DEFAULT_N.get(a.workload, 50_000)
    res = runners[a.workload](a)
    res.setdefault("client", client)
    res.setdefault("workload", a.workload)
    res.setdefault("n", a.messages)
    if res.get("elapsed_s") and res.get("count") is not None:
        res["rate"] = res["count"] / res["elapsed_s"]
    if our_client(client):
        res["extensions"] = extensions_in_use()
    if BODY_KIND == "mmate":
        res.setdefault("body_bytes", len(BODY))
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


def e2e_spawn_consumer(script: str, q: str, n: int, loop: str) -> Any:
    """Start this client's consumer half in its own process and wait for its READY line."""
    import subprocess

    child = subprocess.Popen([sys.executable, script, "e2e-consumer", "--queue", q, "--messages", str(n),
                              "--loop", loop], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "READY":
        child.kill()
        child.wait()
        raise RuntimeError(f"e2e consumer did not start: {line!r}")
    return child


def e2e_collect(child: Any, prod: dict[str, Any], n: int, dl: float) -> dict[str, Any]:
    """Wait for the consumer process and merge its JSON line with the producer's figures."""
    try:
        out, _ = child.communicate(timeout=max(5.0, dl - time.perf_counter() + 15))
    except Exception:
        child.kill()
        child.wait()
        raise
    r = json.loads(out.strip().splitlines()[-1])
    res = {k: r[k] for k in ("count", "p50_ms", "p99_ms", "lat_samples")}
    res["elapsed_s"] = r["t_end"] - prod["t0"]
    res["cpu_s"] = r["cpu_s"] + prod["cpu_s"]
    res["producer_cpu_s"] = prod["cpu_s"]
    res["consumer_cpu_s"] = r["cpu_s"]
    res["sent"] = prod["sent"]
    if prod.get("b0") is not None:
        b1 = broker_cpu_s()
        if b1 is not None:
            res["broker_cpu_s"] = b1 - prod["b0"]
    res["capped"] = res["count"] < n
    return res


class E2EState:
    """Consumer-side bookkeeping for e2e: count, latencies (s) from the body stamp, last time."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.lat: list[float] = []
        self.t_end: float | None = None

    def result(self, cpu_s: float) -> dict[str, Any]:
        return {"count": self.count, "t_end": self.t_end or time.time(), "cpu_s": cpu_s,
                **latency_fields(self.lat)}

def consume_workload(client: str, a: Any, consume: Any) -> dict[str, Any]:
    """The ``consume`` workload around a client's ``consume(queue, n, deadline)`` coroutine function:
    a fresh queue pre-filled by the raw client, consumed, checked empty, deleted."""
    admin = RawAMQP()
    q = unique_name(client, a.workload)
    admin.declare(q)
    try:
        filled = prefill(admin, q, a.messages)
        dl = deadline()
        res = dict(run_loop(lambda: consume(q, a.messages, dl), a.loop))
        res.update(prefilled=filled, left_in_queue=admin.count(q))
        return res
    finally:
        admin.delete(q)
        admin.close()


def e2e_workload(client: str, script: str, a: Any, produce: Any) -> dict[str, Any]:
    """The ``e2e`` workload: ``script``'s consumer half in its own process, ``produce(queue, n,
    deadline)`` here, both figures merged; the queue is deleted and the child reaped in any case."""
    admin = RawAMQP()
    q = unique_name(client, a.workload)
    admin.declare(q)
    child = None
    try:
        child = e2e_spawn_consumer(script, q, a.messages, a.loop)
        dl = deadline()
        prod = run_loop(lambda: produce(q, a.messages, dl), a.loop)
        res = e2e_collect(child, prod, a.messages, dl)
        res["left_in_queue"] = admin.count(q)
        return res
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        admin.delete(q)
        admin.close()


# ---------------------------------------------------------------------------------------- parent side
def run_child_process(argv: list[str], env: Mapping[str, str], timeout: float,
                      n: int) -> tuple[dict[str, Any] | None, str | None]:
    """Run one client process (argv) and read its JSON line: (result, None) when it ran well;
    (None, why) when it failed, timed out or did not finish its n messages; (result, why) when it
    finished but left messages in its queue (the figures are kept, the run still fails)."""
    import subprocess

    p = subprocess.Popen(argv, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()  # our own child only
        out, err = p.communicate()
        return None, f"timeout after {timeout:.0f}s; stderr: {err.strip()[-400:]}"
    lines = out.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = err.strip().splitlines()[-1:] or [f"rc={p.returncode}"]
        return None, f"rc={p.returncode}: {tail[0][:300]}"
    try:
        res = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None, f"bad output: {lines[-1][:200]!r}"
    if not res.get("rate") or res.get("capped"):
        return None, f"incomplete run: count={res.get('count')} of {n}"
    left = res.get("left_in_queue")
    if left:
        return res, (f"left {left:,} message(s) in its queue at the end (consumed {res.get('count'):,}): "
                     "a run must settle everything it received; its figures are not comparable")
    return res, None


def _compiled(result: Mapping[str, Any], key: str) -> bool:
    return bool((result.get(key) or {}).get("compiled", False))


def extensions_summary(runs: Mapping[str, list[dict[str, Any] | None]]) -> dict[str, bool | None]:
    """Per mmate_fast row: True when every run (and its rpc responder) used the compiled extensions,
    False when any ran the pure-Python twins, None when no run reported."""
    out: dict[str, bool | None] = {}
    for client, results in runs.items():
        if not our_client(client):
            continue
        flags = [_compiled(r, "extensions") for r in results if r]
        flags += [_compiled(r, "responder_extensions") for r in results if r and "responder_extensions" in r]
        out[client] = all(flags) if flags else None
    return out


def extensions_line(summary: Mapping[str, bool | None]) -> str:
    """One table line saying which of our rows ran compiled (the ratios mean little otherwise)."""
    def word(v: bool | None) -> str:
        if v is None:
            return "-"
        return "compiled" if v else "PURE-PYTHON TWINS (MMATE_NO_EXTENSIONS=1 or not built)"
    return "extensions: " + ", ".join(f"{c} {word(v)}" for c, v in summary.items())
