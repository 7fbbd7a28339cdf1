"""rpc workload, the "raw" client: a zero-cost client doing the same request/reply exchange as ours.

Requester: blocking socket, C requests kept in flight; every frame pre-encoded once, per request only
the correlation id (fixed width) is patched into the content header; a reply is matched by reading
its correlation id at its known offset. Responder (second process): per request reads the reply
address and correlation id at their offsets and answers with the pre-encoded reply; one sendall per
read. Bodies are our request/reply envelopes (830 / 801 bytes), sent as they are.

What travels is chosen by the row (``BENCH_RPC_RAW``, set by _rpc_runner.py):

* ``raw`` (the target's reference; ``mmate``): the Mmate request/reply exchange as a raw client
  does it -- requests to ``mmate.queries`` / ``qry.RpcBenchGetOrderQuery`` (the topic exchange a Mmate
  service is bound on) into a durable service queue, consumed with manual acks (prefetch 256, one
  ``basic.ack(multiple)`` per read: a request is settled once answered, as ours and Go's are),
  replies through the default exchange to a real reply queue ``bridge.reply.{8 hex}`` (exclusive,
  auto-delete, consumed no-ack like our bridge's), transient; properties as a raw client needs them:
  content_type, delivery_mode 1, correlation_id, reply_to (no header table: a Go responder reads the
  body only);
* ``raw_direct`` (``direct``): the broker's absolute ceiling (the anchors' raw_bench rpc mode, this
  row's definition until session 5): default exchange straight into a non-durable queue consumed
  no-ack, replies over direct reply-to (``amq.rabbitmq.reply-to``: no reply queue process at all).
  A Mmate requester cannot use direct reply-to: a Go responder reads the reply address from the
  payload, and the broker's generated name is not known to the requester;
* ``raw_gowire`` (``gowire``): ``raw`` with the exact properties our Client sends by default (Go's
  header table, 16 entries, plus message_id/type/timestamp) on requests and replies: the ceiling of
  the Go wire, to tell the client's share from the wire's.
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from _common import HDR, U64, RawAMQP, ack_frame, deadline
from _rpc_common import (
    SERVER_PREFETCH,
    WARMUP,
    Timed,
    finish,
    profile_path,
    respond_blocking,
    rpc_cli,
    spawn_responder,
    stop_responder,
)
from _rpc_types import REPLY_QUEUE_LIKE, templates
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

CLIENT = "raw"
DIRECT = "amq.rabbitmq.reply-to"
QUERIES = "mmate.queries"  # topology.QUERIES
ROUTING_KEY = "qry.RpcBenchGetOrderQuery"  # topology.query_routing_key of the bench query
#: correlation ids are 36 characters (a UUID's length), patched into pre-encoded headers
CORR_LEN = 36
_TEMPLATE_CORR = b"0b9e4f7a-2c6d-4e8b-8f1a-3c5d7e9f1b2d"


@dataclass(frozen=True)
class Shape:
    """How the raw row exchanges requests and replies."""

    exchange: str  # "" (default, straight to the queue) or QUERIES (topic, bound like a service)
    direct_reply_to: bool  # replies over amq.rabbitmq.reply-to instead of a reply queue
    acks: bool  # the responder consumes with manual acks (prefetch SERVER_PREFETCH) instead of no-ack
    go_props: bool  # our Client's default properties (Go's header table) instead of the minimal ones


SHAPES = {
    "mmate": Shape(QUERIES, False, True, False),
    "direct": Shape("", True, False, False),
    "gowire": Shape(QUERIES, False, True, True),
}
SHAPE = SHAPES[os.environ.get("BENCH_RPC_RAW", "mmate")]


def _method(exchange: str, routing_key: str, channel: int = 1) -> bytes:
    return pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key), channel)


def _content_header(body_len: int, props: bytes, channel: int = 1) -> bytes:
    """A content header frame around already encoded property bytes (flags included)."""
    payload = b"\x00\x3c\x00\x00" + U64.pack(body_len) + props
    return HDR.pack(2, channel, len(payload)) + payload + b"\xce"


def _plain_props(corr: bytes, reply_to: str | None) -> bytes:
    """content_type, delivery_mode 1, correlation_id, reply_to: what a raw client sends."""
    props = C.Basic.Properties(content_type="application/json", delivery_mode=1, correlation_id=corr.decode(),
                               reply_to=reply_to)
    header = pframe.marshal(pheader.ContentHeader(0, 0, props), 1)
    return header[7 + 12:-1]  # frame header, class/weight/body size ... frame end


def _go_props(request: bool, reply_queue: str) -> bytes:
    """The property bytes our Client sends for the bench request (reply address ``reply_queue``,
    of REPLY_QUEUE_LIKE's length) or reply, with the template correlation id."""
    from _rpc_types import new_query, reply_for

    from mmate_fast.messaging.outgoing import build

    q = new_query(42)
    q.reply_to = REPLY_QUEUE_LIKE
    corr = _TEMPLATE_CORR.decode()
    out = (build(q, correlation_id=corr, reply_to=REPLY_QUEUE_LIKE, persistent=False) if request
           else build(reply_for(q), correlation_id=corr, persistent=False))
    props = bytes(out.properties)
    if len(reply_queue) != len(REPLY_QUEUE_LIKE):
        raise ValueError("the reply queue name must have REPLY_QUEUE_LIKE's length")
    return props.replace(REPLY_QUEUE_LIKE.encode(), reply_queue.encode())


class Template:
    """Pre-encoded publish + content header + body frames with a correlation id slot."""

    def __init__(self, method: bytes, body: bytes, props: bytes, channel: int = 1) -> None:
        header = _content_header(len(body), props, channel)
        at = header.rfind(_TEMPLATE_CORR)  # the AMQP property: after any header-table copy
        self.head = method + header[:at]
        self.tail = header[at + CORR_LEN:] + pframe.marshal(pbody.ContentBody(body), channel)
        #: offset of the correlation id inside the content header frame (what the receiver reads)
        self.corr_at = at
        self.header_len = len(header)

    def frames(self, corr: bytes) -> bytes:
        return self.head + corr + self.tail


def request_template(body: bytes, reply_queue: str, queue: str) -> Template:
    """The request: to the service's exchange and routing key, or straight to ``queue``."""
    exchange, rk = (SHAPE.exchange, ROUTING_KEY) if SHAPE.exchange else ("", queue)
    props = _go_props(True, reply_queue) if SHAPE.go_props else _plain_props(_TEMPLATE_CORR, reply_queue)
    return Template(_method(exchange, rk), body, props)


#: BENCH_RPC_RAW_REPLY_CHANNEL=2: the responder publishes its replies on a second channel (as our
#: Client's reply publisher does) instead of the channel it consumes on (experiment)
REPLY_CHANNEL = int(os.environ.get("BENCH_RPC_RAW_REPLY_CHANNEL", "1"))


def reply_template(body: bytes, reply_to: str, channel: int = 1) -> Template:
    props = _go_props(False, REPLY_QUEUE_LIKE) if SHAPE.go_props else _plain_props(_TEMPLATE_CORR, None)
    return Template(_method("", reply_to, channel), body, props, channel)


def _reply_to_of(header: bytes) -> str:
    return str(pframe.unmarshal(header)[2].properties.reply_to)


def _corr_of(header: bytes) -> bytes:
    return str(pframe.unmarshal(header)[2].properties.correlation_id).encode()


def _round_trips(conn: RawAMQP, req: Template, rep_corr_at: int, rep_len: int, n: int, conc: int,
                 dl: float, lat: list[float] | None) -> int:
    """Keep ``conc`` requests in flight until n replies came; returns the replies received."""
    sock, buf = conn.sock, conn.rbuf
    hdr = HDR.unpack_from
    perf = time.perf_counter
    pending: dict[bytes, float] = {}
    frames = req.frames

    def one(i: int) -> bytes:
        corr = b"%036d" % i
        pending[corr] = perf()
        return frames(corr)

    sent = min(conc, n)
    sock.sendall(b"".join(one(i) for i in range(sent)))
    done = 0
    while done < sent and perf() < dl:
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("broker closed the connection")
        buf += data
        pos, end = 0, len(buf)
        out = []
        while pos + 7 <= end:
            typ, _ch, size = hdr(buf, pos)
            fe = pos + 8 + size
            if fe > end:
                break
            if typ == 2:
                corr = (bytes(buf[pos + rep_corr_at:pos + rep_corr_at + CORR_LEN]) if size + 8 == rep_len
                        else _corr_of(bytes(buf[pos:fe])))
                ts = pending.pop(corr)
                if lat is not None:
                    lat.append(perf() - ts)
                done += 1
                if sent < n:
                    out.append(one(sent))
                    sent += 1
            pos = fe
        del buf[:pos]
        if out:
            sock.sendall(b"".join(out))
    return done


def requester(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = f"bench-rpc-srv-{uuid.uuid4().hex[:8]}-queue"
    if SHAPE.exchange:  # a Mmate service queue: durable, bound on mmate.queries (gone 60 s after a crash)
        admin.rpc(C.Exchange.Declare(exchange=QUERIES, exchange_type="topic", durable=True),
                  C.Exchange.DeclareOk)
        admin.rpc(C.Queue.Declare(queue=q, durable=True, arguments={"x-expires": 60_000}), C.Queue.DeclareOk)
        admin.rpc(C.Queue.Bind(queue=q, exchange=QUERIES, routing_key=ROUTING_KEY), C.Queue.BindOk)
    else:
        admin.rpc(C.Queue.Declare(queue=q, arguments={"x-expires": 60_000}), C.Queue.DeclareOk)
    srv = None
    try:
        srv = spawn_responder(__file__, q, a.loop, a.concurrency)
        conn = RawAMQP()
        if SHAPE.direct_reply_to:
            reply_queue = DIRECT
        else:
            reply_queue = "bridge.reply." + uuid.uuid4().hex[:8]
            conn.rpc(C.Queue.Declare(queue=reply_queue, exclusive=True, auto_delete=True), C.Queue.DeclareOk)
        conn.rpc(C.Basic.Consume(queue=reply_queue, consumer_tag="cli", no_ack=True), C.Basic.ConsumeOk)
        body, reply_body = templates()
        req = request_template(body, reply_queue, q)
        rep = reply_template(reply_body, reply_queue)  # what the responder sends: where its id sits
        rep_len = rep.header_len
        dl = deadline()
        _round_trips(conn, req, rep.corr_at, rep_len, WARMUP, a.concurrency, dl, None)
        timed = Timed(profile_path(CLIENT, a.concurrency, "requester"))
        timed.start()
        _round_trips(conn, req, rep.corr_at, rep_len, a.messages, a.concurrency, dl, timed.lat)
        timed.stop()
        timed.count = len(timed.lat)
        conn.close()
        return finish(timed.fields(), srv, admin, q, a.messages)
    finally:
        if srv is not None and srv.poll() is None:
            stop_responder(srv)
        admin.delete(q)
        admin.close()


def _serve(q: str) -> None:
    conn = RawAMQP()
    if SHAPE.acks:
        conn.rpc(C.Basic.Qos(prefetch_count=SERVER_PREFETCH), C.Basic.QosOk)
    conn.rpc(C.Basic.Consume(queue=q, consumer_tag="srv", no_ack=not SHAPE.acks), C.Basic.ConsumeOk)
    if REPLY_CHANNEL != 1:
        conn.rpc(C.Channel.Open(), C.Channel.OpenOk, REPLY_CHANNEL)
    reply_body = templates()[1]
    print("READY", flush=True)
    sock, buf = conn.sock, conn.rbuf
    hdr = HDR.unpack_from
    u64 = U64.unpack_from
    stdin = sys.stdin
    dl = deadline()
    replies: dict[str, Template] = {}  # reply address -> pre-encoded reply
    # where the request's correlation id and reply address sit (requests of this row's template)
    probe = request_template(templates()[0], REPLY_QUEUE_LIKE, q)
    req_len, corr_at = probe.header_len, probe.corr_at
    rt_at = corr_at + CORR_LEN + 1  # reply_to follows correlation_id (shortstr: length byte first)
    acks = SHAPE.acks
    corr = b""
    tag = 0
    template: Template | None = None
    while time.perf_counter() < dl:
        r, _, _ = select.select([sock, stdin], [], [], 1.0)
        if stdin in r and not stdin.readline():
            break  # the requester closed our stdin: stop
        if sock not in r:
            continue
        data = sock.recv(1 << 20)
        if not data:
            break
        buf += data
        pos, end = 0, len(buf)
        out = []
        last = 0
        while pos + 7 <= end:
            typ, _ch, size = hdr(buf, pos)
            fe = pos + 8 + size
            if fe > end:
                break
            if typ == 1 and acks:
                tag = u64(buf, pos + 12 + buf[pos + 11])[0]  # basic.deliver: after the consumer tag
            elif typ == 2:
                if size + 8 == req_len and SHAPE.exchange:
                    corr = bytes(buf[pos + corr_at:pos + corr_at + CORR_LEN])
                    reply_to = buf[pos + rt_at:pos + rt_at + buf[pos + rt_at - 1]].decode()
                else:
                    header = bytes(buf[pos:fe])
                    corr, reply_to = _corr_of(header), _reply_to_of(header)
                template = replies.get(reply_to)
                if template is None:
                    template = replies[reply_to] = reply_template(reply_body, reply_to, REPLY_CHANNEL)
            elif typ == 3 and template is not None:
                out.append(template.frames(corr))
                last = tag  # settled once answered
            pos = fe
        del buf[:pos]
        if last:
            out.append(ack_frame(last, True))
        if out:
            sock.sendall(b"".join(out))
    conn.close()


def responder(a: argparse.Namespace) -> None:
    respond_blocking(CLIENT, a.concurrency, lambda: _serve(a.queue))


if __name__ == "__main__":
    rpc_cli(CLIENT, requester, responder)
