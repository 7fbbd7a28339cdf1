"""rpc workload, row ``raw_pamqp``: the raw client as it was until session 4 (adapted from the anchors'
raw_bench.py rpc mode), kept to compare with the figures measured against it. Not zero-cost (pamqp
encodes every request's properties and decodes every content header: ~30 µs of client CPU per round
trip on each side) and not the same exchange as ours (default exchange, direct reply-to, no acks):
see _rpc_raw.py for the row the target is judged against.

Requester: blocking socket, direct reply-to (``amq.rabbitmq.reply-to``, no-ack), C requests kept in
flight; each reply's content header is decoded with pamqp to find its correlation id, and the next
request (properties encoded by pamqp per request) goes out in the same sendall as the others of
that read. Responder (second process): no-ack consumer on the request queue, per request decodes the
content header (reply_to, correlation_id) and answers with the pre-encoded reply body; one sendall
per read. Bodies are our request/reply envelopes (same sizes as the other clients).
"""
from __future__ import annotations

import argparse
import select
import sys
import time
from typing import Any

from _common import HDR, RawAMQP, deadline, unique_name
from _rpc_common import (
    WARMUP,
    Timed,
    finish,
    profile_path,
    respond_blocking,
    rpc_cli,
    spawn_responder,
    stop_responder,
)
from _rpc_types import templates
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

CLIENT = "raw_pamqp"
DIRECT = "amq.rabbitmq.reply-to"


def _frames(routing_key: str, body: bytes, props: C.Basic.Properties) -> bytes:
    return (pframe.marshal(C.Basic.Publish(exchange="", routing_key=routing_key), 1)
            + pframe.marshal(pheader.ContentHeader(0, len(body), props), 1)
            + pframe.marshal(pbody.ContentBody(body), 1))


def _round_trips(conn: RawAMQP, q: str, body: bytes, n: int, conc: int, dl: float,
                 lat: list[float] | None) -> int:
    """Keep ``conc`` requests in flight until n replies came; returns the replies received."""
    sock, buf = conn.sock, conn.rbuf
    hdr = HDR.unpack_from
    perf = time.perf_counter
    pending: dict[str, float] = {}

    def req(i: int) -> bytes:
        corr = str(i)
        pending[corr] = perf()
        return _frames(q, body, C.Basic.Properties(content_type="application/json", delivery_mode=1,
                                                   correlation_id=corr, reply_to=DIRECT))

    sent = min(conc, n)
    sock.sendall(b"".join(req(i) for i in range(sent)))
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
                h = pframe.unmarshal(bytes(buf[pos:fe]))[2]
                ts = pending.pop(h.properties.correlation_id)
                if lat is not None:
                    lat.append(perf() - ts)
                done += 1
                if sent < n:
                    out.append(req(sent))
                    sent += 1
            pos = fe
        del buf[:pos]
        if out:
            sock.sendall(b"".join(out))
    return done


def requester(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = unique_name(CLIENT, "rpc")
    admin.declare(q)
    srv = None
    try:
        srv = spawn_responder(__file__, q, a.loop, a.concurrency)
        conn = RawAMQP()
        conn.rpc(C.Basic.Consume(queue=DIRECT, consumer_tag="cli", no_ack=True), C.Basic.ConsumeOk)
        body = templates()[0]
        dl = deadline()
        _round_trips(conn, q, body, WARMUP, a.concurrency, dl, None)
        timed = Timed(profile_path(CLIENT, a.concurrency, "requester"))
        timed.start()
        _round_trips(conn, q, body, a.messages, a.concurrency, dl, timed.lat)
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
    conn.rpc(C.Basic.Consume(queue=q, consumer_tag="srv", no_ack=True), C.Basic.ConsumeOk)
    reply_body = templates()[1]
    print("READY", flush=True)
    sock, buf = conn.sock, conn.rbuf
    hdr = HDR.unpack_from
    stdin = sys.stdin
    dl = deadline()
    props = None
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
        while pos + 7 <= end:
            typ, _ch, size = hdr(buf, pos)
            fe = pos + 8 + size
            if fe > end:
                break
            if typ == 2:
                props = pframe.unmarshal(bytes(buf[pos:fe]))[2].properties
            elif typ == 3 and props is not None:
                out.append(_frames(props.reply_to, reply_body, C.Basic.Properties(
                    content_type="application/json", delivery_mode=1, correlation_id=props.correlation_id)))
            pos = fe
        del buf[:pos]
        if out:
            sock.sendall(b"".join(out))
    conn.close()


def responder(a: argparse.Namespace) -> None:
    respond_blocking(CLIENT, a.concurrency, lambda: _serve(a.queue))


if __name__ == "__main__":
    rpc_cli(CLIENT, requester, responder)
