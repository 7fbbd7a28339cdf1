"""rpc workload, aio-pika's RPC pattern (as in the anchors' bench_rpc.py, exclusive reply queue).

Requester: a server-named exclusive auto-delete callback queue consumed no-ack, a future per
correlation id; per request the body is a dict (the mmate request envelope, decoded once) with a
fresh id/correlation id, encoded with orjson (as a good user would: compact, the same size as our
envelope), published through the default exchange with ``reply_to``/``correlation_id``; the reply is
decoded with ``orjson.loads``. Responder (second process): prefetch 256, decode the request, build
the reply dict, encode, publish to ``reply_to`` through the default exchange (mandatory=False, see
the anchors), ack. No publisher confirms on either side (the anchors' setup).
"""
from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

import _aiopika_alias  # noqa: F401  (BENCH_AIO_PIKA=compat: aio_pika is the mmate_fast facade)
import orjson
from _common import AMQP_URL, RawAMQP, deadline, run_loop, unique_name
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
from _rpc_types import templates

CLIENT = "aio_pika"


async def _request(q: str, n: int, conc: int, dl: float) -> dict[str, Any]:
    import aio_pika
    from aio_pika import DeliveryMode, Message

    req_template = orjson.loads(templates()[0])
    timed = Timed(profile_path(CLIENT, conc, "requester"))
    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=False)
    ex = ch.default_exchange
    rq = await ch.declare_queue("", exclusive=True, auto_delete=True)
    reply_to = rq.name
    futures: dict[str, asyncio.Future[bytes]] = {}
    loads, dumps = orjson.loads, orjson.dumps

    async def on_reply(m: Any) -> None:
        fut = futures.pop(m.correlation_id, None)
        if fut is not None and not fut.done():
            fut.set_result(m.body)

    await rq.consume(on_reply, no_ack=True)
    loop = asyncio.get_running_loop()
    nonpersistent = DeliveryMode.NOT_PERSISTENT

    async def one(i: int) -> None:
        env = dict(req_template)
        env["id"] = str(uuid.uuid4())
        corr = env["correlationId"] = str(uuid.uuid4())
        env["payload"] = {**req_template["payload"], "orderId": f"ORD-{i:08d}", "replyTo": reply_to}
        fut: asyncio.Future[bytes] = loop.create_future()
        futures[corr] = fut
        await ex.publish(Message(dumps(env), content_type="application/json",
                                 correlation_id=corr, reply_to=reply_to, delivery_mode=nonpersistent),
                         routing_key=q)
        loads(await asyncio.wait_for(fut, timeout=30))

    await run_workers(conc, n, one, timed, dl)
    await conn.close()
    return timed.fields()


def requester(a: argparse.Namespace) -> dict[str, Any]:
    admin = RawAMQP()
    q = unique_name(CLIENT, "rpc")
    admin.declare(q)
    srv = None
    try:
        srv = spawn_responder(__file__, q, a.loop, a.concurrency)
        dl = deadline()
        req = run_loop(lambda: _request(q, a.messages, a.concurrency, dl), a.loop)
        return finish(req, srv, admin, q, a.messages)
    finally:
        if srv is not None and srv.poll() is None:
            stop_responder(srv)
        admin.delete(q)
        admin.close()


async def _serve(q: str, conc: int) -> None:
    import aio_pika
    from aio_pika import DeliveryMode, Message

    reply_template = orjson.loads(templates()[1])
    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel(publisher_confirms=False)
    await ch.set_qos(prefetch_count=SERVER_PREFETCH)
    queue = await ch.get_queue(q, ensure=False)
    ex = ch.default_exchange
    loads, dumps = orjson.loads, orjson.dumps
    nonpersistent = DeliveryMode.NOT_PERSISTENT

    async def on_req(m: Any) -> None:
        req = loads(m.body)
        env = dict(reply_template)
        env["id"] = str(uuid.uuid4())
        env["correlationId"] = req["correlationId"]
        env["payload"] = {**reply_template["payload"], "orderId": req["payload"]["orderId"]}
        await ex.publish(Message(dumps(env), content_type="application/json",
                                 correlation_id=m.correlation_id, delivery_mode=nonpersistent),
                         routing_key=m.reply_to, mandatory=False)
        await m.ack()

    await queue.consume(on_req)
    with profiled(profile_path(CLIENT, conc, "responder")):
        print("READY", flush=True)
        await stdin_closed()
    await conn.close()


def responder(a: argparse.Namespace) -> None:
    respond_until_stdin_closes(lambda: _serve(a.queue, a.concurrency), a.loop)


if __name__ == "__main__":
    rpc_cli(CLIENT, requester, responder)
