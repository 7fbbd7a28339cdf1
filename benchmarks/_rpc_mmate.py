"""rpc workload, our client at the Mmate level: the bridge pattern.

Requester: ``Client(url, service_name=...)`` (defaults: publisher confirms on, recovery on) and
``await client.request(GetOrderQuery(...), timeout=30)`` from C concurrent loops; the query goes to
``mmate.queries`` / ``qry.RpcBenchGetOrderQuery`` with the bridge's ``bridge.reply.{8 hex}`` queue
as reply address; requests (and so replies) persistent, the default (``BENCH_RPC_TRANSIENT=1``:
requests with persistent=False, and so transient replies; ``BENCH_RPC_LEAN=1``: transient and both
Clients with ``wire_profile="lean"``, no AMQP header table).
Responder (second process): a Client serving its service queue (prefetch 256) with a plain handler
returning an ``OrderReply``, which the Client publishes to the reply queue.
"""
from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

from _common import HOST, PASSWORD, PORT, USER, RawAMQP, deadline, run_loop
from _rpc_common import (
    SERVER_PREFETCH,
    Timed,
    finish,
    profile_path,
    profiled,
    respond_until_stdin_closes,
    rpc_cli,
    run_workers,
    spawn_responder,
    stdin_closed,
    stop_responder,
)
from _rpc_types import GetOrderQuery, OrderReply, new_query, reply_for

CLIENT = "mmate_fast"
URL = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/?heartbeat=60"
#: BENCH_RPC_LEAN (row mmate_fast_lean): transient too, and both Clients on the lean wire profile
LEAN = bool(os.environ.get("BENCH_RPC_LEAN"))
_OPTS: dict[str, Any] = {"persistent": False} if os.environ.get("BENCH_RPC_TRANSIENT") or LEAN else {}
_PROFILE = "lean" if LEAN else "go"


async def _request(n: int, conc: int, dl: float) -> dict[str, Any]:
    from mmate_fast.client import Client

    timed = Timed(profile_path(CLIENT, conc, "requester"))
    async with Client(URL, service_name=f"bench-rpc-req-{os.getpid()}", declare_topology=False,
                      wire_profile=_PROFILE) as client:
        request = client.request

        async def one(i: int) -> None:
            reply = await request(new_query(i), timeout=30, **_OPTS)
            if type(reply) is not OrderReply:
                raise RuntimeError(f"unexpected reply {reply!r}")

        await run_workers(conc, n, one, timed, dl)
        stats = client.bridge.stats
        extra = {"timeouts": stats.timeouts, "late_replies": stats.late_replies}
    return {**timed.fields(), **extra}


def requester(a: argparse.Namespace) -> dict[str, Any]:
    service = f"bench-rpc-srv-{uuid.uuid4().hex[:8]}"
    admin = RawAMQP()
    srv = None
    try:
        srv = spawn_responder(__file__, service, a.loop, a.concurrency)
        dl = deadline()
        req = run_loop(lambda: _request(a.messages, a.concurrency, dl), a.loop)
        return finish(req, srv, admin, f"{service}-queue", a.messages)
    finally:
        if srv is not None and srv.poll() is None:
            stop_responder(srv)
        admin.delete(f"{service}-queue")
        admin.close()


async def _serve(service: str, conc: int) -> None:
    from mmate_fast.client import Client
    from mmate_fast.messaging import topology

    queue = topology.service_queue(service)
    async with Client(URL, service_name=service, prefetch=SERVER_PREFETCH, declare_topology=False,
                      wire_profile=_PROFILE) as srv:
        admin = await srv.connection.channel()
        await topology.declare_exchanges(admin)
        # the service queue expires 60 s after its consumer is gone: a crashed run cannot leave a
        # queue behind that keeps receiving (and slowing down) the requests of later runs
        await admin.queue_declare(queue, durable=True, arguments={"x-expires": 60_000})
        srv.add_handler(GetOrderQuery, reply_for, bind=False)  # plain handler: its reply is published
        binding = (topology.QUERIES, topology.query_routing_key(GetOrderQuery.__mmate_type__))
        await srv.subscribe(queue, declare=False, prefetch=SERVER_PREFETCH, bindings=[binding])
        with profiled(profile_path(CLIENT, conc, "responder")):
            print("READY", flush=True)
            await stdin_closed()


def responder(a: argparse.Namespace) -> None:
    respond_until_stdin_closes(lambda: _serve(a.queue, a.concurrency), a.loop)


if __name__ == "__main__":
    rpc_cli(CLIENT, requester, responder)
