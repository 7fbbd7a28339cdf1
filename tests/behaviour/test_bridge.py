"""Request/reply through the bridge (``client.request``) and the server side (handlers returning a
Reply, handlers raising), on the embedded broker and on RabbitMQ (same suite)."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Command, ErrorReply, GenericMessage, Query, Reply, TypeRegistry, register
from mmate_fast.messaging import MessageContext, topology
from mmate_fast.transports import connect
from mmate_fast.transports.base import BasicProperties
from tests.vectors import VECTORS as VECTORS_PATH

from .behaviour_helpers import drain_queue, wait_until

#: suffix of this run's query types: their routing keys (``qry.{type}`` on the shared
#: ``mmate.queries``) must not reach another suite's responders running against the same broker
_RUN = uuid.uuid4().hex[:8]


@dataclass
class BrGetOrder(Query):
    __mmate_type__: ClassVar[str] = f"BrGetOrder{_RUN}"
    order_id: str = ""
    delay: float = 0.0


@dataclass
class BrCreateOrder(Command):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class BrOrderReply(Reply):
    order_id: str = ""
    amount: float = 0.0
    status: str = ""


class OrderMissing(Exception):
    code = "ORDER_NOT_FOUND"


def _service() -> str:
    return f"br-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def cleanup(url: str) -> AsyncIterator[list[str]]:
    queues: list[str] = []
    yield queues
    conn = await connect(url)
    ch = await conn.channel()
    for q in queues:
        await ch.queue_delete(q)
    await conn.close()


@pytest.fixture
async def server(url: str, cleanup: list[str]) -> AsyncIterator[Client]:
    """A responder service: answers BrGetOrder and BrCreateOrder, fails on demand."""
    service = _service()
    cleanup.extend([topology.service_queue(service), topology.dead_letter_queue(topology.service_queue(service))])
    async with Client(url, service_name=service) as srv:

        @srv.handler(BrGetOrder)
        async def get_order(q: BrGetOrder) -> Reply:
            if q.delay:
                await asyncio.sleep(q.delay)
            if q.order_id == "missing":
                return ErrorReply(error_code="ORDER_NOT_FOUND", error_message="order missing not found")
            if q.order_id == "raise":
                raise OrderMissing("order raise not found")
            if q.order_id == "boom":
                raise RuntimeError("boom")
            return BrOrderReply(order_id=q.order_id, amount=float(len(q.order_id)), status="shipped")

        @srv.handler(BrCreateOrder)
        def create_order(cmd: BrCreateOrder) -> BrOrderReply:
            if cmd.order_id == "raise":
                raise OrderMissing("order raise not found")
            return BrOrderReply(order_id=cmd.order_id, amount=cmd.amount, status="created")

        await srv.start_consuming()
        yield srv


async def test_query_round_trip_typed(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        q = BrGetOrder(order_id="order-1001")
        reply = await client.request(q, timeout=5)
        assert isinstance(reply, BrOrderReply)
        assert (reply.order_id, reply.amount, reply.status, reply.success) == ("order-1001", 10.0, "shipped", True)
        bridge = client.bridge
        assert q.reply_to == bridge.reply_queue  # payload replyTo, as Go sets it
        assert reply.correlation_id and reply.correlation_id != q.id
        assert (bridge.stats.sent, bridge.stats.replied, bridge.pending) == (1, 1, 0)


async def test_command_round_trip_typed(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        cmd = BrCreateOrder(order_id="order-1013", amount=13.0, target_service=server.service_name)
        reply = await client.request(cmd, timeout=5)
        assert isinstance(reply, BrOrderReply)
        assert (reply.order_id, reply.amount, reply.status) == ("order-1013", 13.0, "created")


async def test_command_without_target_service_is_refused(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        with pytest.raises(errors.ContractError):
            await client.request(BrCreateOrder(order_id="x"), timeout=2)
        assert client.bridge.pending == 0


async def test_many_concurrent_requests_get_their_own_replies(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        ids = [f"order-{i:04d}-{'x' * (i % 7)}" for i in range(200)]
        replies = await asyncio.gather(*(client.request(BrGetOrder(order_id=i), timeout=20) for i in ids))
        assert [r.order_id for r in replies] == ids
        assert [r.amount for r in replies] == [float(len(i)) for i in ids]
        assert len({r.correlation_id for r in replies}) == 200
        assert client.bridge.stats.replied == 200 and client.bridge.pending == 0


async def test_error_reply_raises_remote_error(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        with pytest.raises(errors.RemoteError) as info:
            await client.request(BrGetOrder(order_id="missing"), timeout=5)
        assert info.value.code == "ORDER_NOT_FOUND"
        assert info.value.message == "order missing not found"
        assert isinstance(info.value.reply, ErrorReply) and info.value.reply.success is False
        assert client.bridge.stats.errors == 1 and client.bridge.pending == 0


async def test_handler_exception_becomes_error_reply(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        with pytest.raises(errors.RemoteError) as info:
            await client.request(BrGetOrder(order_id="raise"), timeout=5)
        assert (info.value.code, info.value.message) == ("ORDER_NOT_FOUND", "order raise not found")
        with pytest.raises(errors.RemoteError) as info:
            await client.request(BrGetOrder(order_id="boom"), timeout=5)
        assert (info.value.code, info.value.message) == ("HANDLER_ERROR", "boom")
        # answered requests are acked, not rejected
        sub = server._service_sub
        assert sub is not None
        await wait_until(lambda: sub.stats.acked == 2)
        assert sub.stats.rejected == 0 and sub.stats.handler_errors == 2


async def _captured_replies(url: str, cleanup: list[str], requests: list[tuple[Any, dict[str, Any]]],
                            send: Any) -> tuple[str, list[Any]]:
    """Send ``requests`` (message, publish options) with ``send`` after pointing their ``reply_to``
    at a capture queue of our own; (that queue, the replies it got, in arrival order)."""
    reply_q = f"br-capture-{uuid.uuid4().hex[:8]}"
    cleanup.append(reply_q)
    conn = await connect(url)
    try:
        ch = await conn.channel()
        await ch.queue_declare(reply_q)
        for msg, options in requests:
            msg.reply_to = reply_q
            await send(msg, **options)
        return reply_q, await drain_queue(ch, reply_q, expect=len(requests))
    finally:
        await conn.close()


async def test_error_reply_on_the_wire_is_gos_shape(url: str, server: Client, cleanup: list[str]) -> None:
    """What a Go bridge receives for a failing handler whose reply type is unknown (annotated
    with the base ``Reply``): type ErrorReply, payload as contracts.NewErrorReply, correlation id
    copied, default exchange."""
    corr = str(uuid.uuid4())
    reply_q, [d] = await _captured_replies(url, cleanup, [(BrGetOrder(order_id="raise"), {"correlation_id": corr})],
                                           server.publish_query)
    body = orjson.loads(d.body)
    assert d.exchange == "" and d.routing_key == reply_q
    assert body["type"] == "ErrorReply" and body["correlationId"] == corr
    assert body["payload"] == {"error": "order raise not found", "errorCode": "ORDER_NOT_FOUND",
                               "errorMessage": "order raise not found", "success": False}
    assert body["headers"]["x-success"] == "false" and body["headers"]["x-message-kind"] == "reply"


VECTORS = VECTORS_PATH


@pytest.mark.parametrize("prefix", ["12", "14"])
async def test_we_answer_a_go_bridge_request(url: str, cleanup: list[str], prefix: str) -> None:
    """Go's bridge request (vector 12 / 14, as captured, reply queue renamed) delivered to our
    service: the reply goes to the default exchange with routing key = payload ``replyTo``, with the
    request's envelope correlation id and payload ``success``."""
    [body_file] = VECTORS.glob(f"{prefix}-bridge-query*.body.json")
    sidecar = json.loads(body_file.with_name(body_file.name.replace(".body.", ".amqp.")).read_text())
    reply_q = f"bridge.reply.{uuid.uuid4().hex[:8]}"
    service = _service()
    cleanup.extend([topology.service_queue(service), reply_q])
    body = body_file.read_bytes().replace(b"bridge.reply.dce7c29b", reply_q.encode())
    go = orjson.loads(body)
    async with Client(url, service_name=service, registry=TypeRegistry()) as srv:

        @srv.handler("GetOrderQuery")
        def get_order(q: GenericMessage) -> BrOrderReply:
            if q.payload["orderId"] == "missing":
                raise OrderMissing("order missing not found")
            return BrOrderReply(order_id=q.payload["orderId"], amount=42.5, status="shipped")

        await srv.start_consuming()
        conn = await connect(url)
        try:
            ch = await conn.channel()
            await ch.queue_declare(reply_q, auto_delete=True)
            headers = {k: v["v"] for k, v in sidecar["properties"]["headers"].items()}
            await ch.publish(body, "", srv.service_queue, BasicProperties(
                content_type="application/json", delivery_mode=2, headers=headers))
            [d] = await drain_queue(ch, reply_q, expect=1)
        finally:
            await conn.close()
    reply = orjson.loads(d.body)
    assert (d.exchange, d.routing_key) == ("", reply_q)
    assert reply["correlationId"] == go["correlationId"] == go["headers"]["x-correlation-id"]
    assert reply["headers"]["x-correlation-id"] == reply["headers"]["correlation-id"] == go["correlationId"]
    assert reply["headers"]["x-message-kind"] == "reply"
    if prefix == "12":
        assert reply["type"] == "BrOrderReply"
        assert reply["payload"] == {"amount": 42.5, "orderId": "order-1001", "status": "shipped", "success": True}
    else:  # the handler's reply type (its return annotation), as the Go bridge registered it
        assert reply["type"] == "BrOrderReply"
        assert reply["payload"] == {"amount": 0.0, "orderId": "", "status": "", "success": False,
                                    "error": "order missing not found", "errorCode": "ORDER_NOT_FOUND",
                                    "errorMessage": "order missing not found"}
        assert reply["headers"]["x-success"] == "false"


async def test_failing_handler_without_reply_address_keeps_failure_path(url: str, server: Client) -> None:
    sub = server._service_sub
    assert sub is not None
    await server.publish_query(BrGetOrder(order_id="boom"))  # no replyTo
    await wait_until(lambda: sub.stats.dead_lettered == 1)  # kept in its DLQ (the default)
    assert sub.stats.acked == 0 and sub.stats.rejected == 0


async def test_timeout_raises_and_cleans_up(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        await client.bridge.start()  # so that the short timeout covers only the request itself
        # the reply comes 1.5 s after the 0.1 s timeout (which fires up to 50 ms late, by design):
        # room for a loaded machine's scheduling lag
        with pytest.raises(errors.RequestTimeout) as info:
            await client.request(BrGetOrder(order_id="slow", delay=1.5), timeout=0.1)
        assert isinstance(info.value, errors.OperationTimeout)
        assert info.value.type_name == BrGetOrder.__mmate_type__ and info.value.timeout == 0.1
        assert BrGetOrder.__mmate_type__ in str(info.value) and "0.1" in str(info.value)
        bridge = client.bridge
        assert bridge.pending == 0 and bridge.stats.timeouts == 1
        # the reply that arrives after the timeout is dropped and counted
        await wait_until(lambda: bridge.stats.late_replies == 1, timeout=5.0)
        assert bridge.stats.replied == 0
        # and the bridge keeps working
        reply = await client.request(BrGetOrder(order_id="after"), timeout=5)
        assert reply.order_id == "after" and bridge.stats.late_replies == 1


async def test_replies_go_on_after_the_reply_channel_was_closed(url: str, server: Client) -> None:
    """The responder's reply channel closed by a refused call (here: an ack of an unknown delivery
    tag, 406): the next replies still go out."""
    assert server._reply_pool is not None
    server._reply_pool.channel().basic_ack(10**6)
    await asyncio.sleep(0.2)  # closed by now (a recovering channel may have healed itself already)
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        for n in range(3):
            reply = await client.request(BrGetOrder(order_id=f"after-{n}"), timeout=3)
            assert reply.order_id == f"after-{n}"


async def test_no_responder_times_out(url: str, cleanup: list[str]) -> None:
    service = _service()
    cleanup.append(topology.service_queue(service))
    async with Client(url, service_name=service) as client:
        with pytest.raises(errors.RequestTimeout):
            await client.request(BrGetOrder(order_id="nobody"), timeout=0.2)
        assert client.bridge.pending == 0


async def test_unregistered_error_shape_is_remote_error(url: str, cleanup: list[str]) -> None:
    """A Go ``QueryHandlerAdapter`` style error (type ``{Query}Error``, unregistered here) and the
    request/reply server's ErrorReply shape (no ``error`` key) both raise RemoteError."""
    service = _service()
    cleanup.append(topology.service_queue(service))
    async with Client(url, service_name=service) as srv, \
            Client(url, service_name=_service(), declare_topology=False) as client:

        @srv.handler(BrGetOrder)
        async def answer(q: BrGetOrder, ctx: MessageContext) -> None:
            if q.order_id == "adapter":
                reply: Any = GenericMessage(type=f"{BrGetOrder.__mmate_type__}Error", payload={
                    "error": "db down", "errorCode": "QUERY_HANDLER_ERROR", "errorMessage": "db down",
                    "success": False})
            else:
                reply = GenericMessage(type="ErrorReply", payload={
                    "errorCode": "REQUEST_FAILED", "errorMessage": "handler failed", "success": False})
            assert ctx.reply_to
            await srv.publish_reply(reply, ctx.reply_to, correlation_id=ctx.correlation_id)

        await srv.start_consuming()
        with pytest.raises(errors.RemoteError) as info:
            await client.request(BrGetOrder(order_id="adapter"), timeout=5)
        assert (info.value.code, info.value.message) == ("QUERY_HANDLER_ERROR", "db down")
        assert isinstance(info.value.reply, GenericMessage)
        with pytest.raises(errors.RemoteError) as info:
            await client.request(BrGetOrder(order_id="server"), timeout=5)
        assert (info.value.code, info.value.message) == ("REQUEST_FAILED", "handler failed")
        assert isinstance(info.value.reply, ErrorReply)


async def test_reply_queue_is_named_like_go_and_exclusive(url: str, server: Client) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        await client.request(BrGetOrder(order_id="q"), timeout=5)
        name = client.bridge.reply_queue
        assert re.fullmatch(r"bridge\.reply\.[0-9a-f]{8}", name)
        async with await connect(url) as other:
            ch = await other.channel()
            with pytest.raises(errors.ResourceLockedError) as info:
                await ch.queue_declare(name, passive=True)
            assert info.value.reply_code == 405
            # same flags as Go: a non-durable, exclusive, auto-delete re-declare by the owner is accepted
            owner = await client.connection.channel()
            ok = await owner.queue_declare(name, durable=False, exclusive=True, auto_delete=True)
            assert ok.consumer_count == 1
            await owner.close()
    # auto-delete / exclusive: gone with the client's connection
    async with await connect(url) as other:
        ch = await other.channel()
        with pytest.raises(errors.NotFoundError):
            await ch.queue_declare(name, passive=True)


async def test_unknown_and_malformed_replies_are_dropped(url: str) -> None:
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        bridge = client.bridge
        await bridge.start()
        await client.publish_reply(BrOrderReply(order_id="stray"), bridge.reply_queue,
                                   correlation_id=str(uuid.uuid4()))
        ch = await client.connection.channel()
        await ch.publish(b"not json", "", bridge.reply_queue)
        await ch.publish(b'{"id":"1","type":"BrOrderReply","payload":{}}', "", bridge.reply_queue)  # no corr
        await wait_until(lambda: bridge.stats.late_replies == 2 and bridge.stats.malformed == 1)
        assert bridge.stats.replied == 0
        # all acked: nothing left on the queue
        ok = await ch.queue_declare(bridge.reply_queue, passive=True)
        assert ok.message_count == 0
        await ch.close()


async def test_close_fails_pending_requests(url: str, cleanup: list[str]) -> None:
    service = _service()
    cleanup.append(topology.service_queue(service))
    client = await Client(url, service_name=service).connect()
    task = asyncio.ensure_future(client.request(BrGetOrder(order_id="never"), timeout=10))
    await wait_until(lambda: client._bridge is not None and client.bridge.pending == 1)
    await client.close()
    with pytest.raises(errors.BridgeClosedError):
        await task


@dataclass
class BrUnbound(Query):
    __mmate_type__: ClassVar[str] = f"BrUnbound{_RUN}"
    order_id: str = ""


@pytest.mark.parametrize("confirmed", [False, True], ids=["direct", "confirmed"])
async def test_unroutable_request_fails_fast_with_the_return(url: str, cleanup: list[str],
                                                            confirmed: bool) -> None:
    """Unconfirmed requests fail through their basic.return; confirmed ones through the failed
    confirm (not awaited before the reply, but its failure still ends the request)."""
    service = _service()
    cleanup.append(topology.service_queue(service))
    async with Client(url, service_name=service) as client:
        client.bridge.confirm_requests = confirmed
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(errors.PublishReturnedError):
            await client.request(BrUnbound(order_id="x"), timeout=10, mandatory=True)
        assert loop.time() - t0 < 5
        assert client.bridge.pending == 0


async def test_requests_are_persistent_unless_asked(url: str, cleanup: list[str]) -> None:
    """As Go sends them (delivery_mode 2): a command in flight survives a broker restart;
    ``persistent=False`` opts out for speed."""
    service = _service()
    queue = f"{service}-spy"
    cleanup.extend([topology.service_queue(service), queue])
    async with Client(url, service_name=service) as client:
        admin = await client.connection.channel()
        await admin.queue_declare(queue, durable=False)
        await admin.queue_bind(queue, topology.QUERIES, f"qry.{BrUnbound.__mmate_type__}")
        for persistent in (None, False, True):
            opts = {} if persistent is None else {"persistent": persistent}
            with pytest.raises(errors.RequestTimeout):
                await client.request(BrUnbound(order_id="spy"), timeout=0.3, **opts)
        got = await drain_queue(admin, queue, expect=3)
        assert [d.properties.delivery_mode for d in got] == [2, 1, 2]
        assert [orjson.loads(d.body)["headers"]["delivery-mode"] for d in got] == [2, 1, 2]


@pytest.mark.parametrize("persistent", [None, False])
async def test_replies_are_persistent_like_their_request(url: str, server: Client, cleanup: list[str],
                                                         persistent: bool | None) -> None:
    """A reply (and an error reply) has its request's delivery mode: persistent by default, as Go
    sends them; transient when the requester asked ``persistent=False``."""
    opts: dict[str, Any] = {} if persistent is None else {"persistent": persistent}
    _, replies = await _captured_replies(
        url, cleanup, [(BrGetOrder(order_id=order_id), {"correlation_id": str(uuid.uuid4()), **opts})
                       for order_id in ("fine", "raise")], server.publish_query)
    assert sorted(orjson.loads(d.body)["type"] for d in replies) == ["BrOrderReply", "ErrorReply"]
    want = 1 if persistent is False else 2
    assert [d.properties.delivery_mode for d in replies] == [want, want]


async def test_typed_error_reply_for_a_handler_with_a_reply_type(url: str, server: Client,
                                                                cleanup: list[str]) -> None:
    """A Go requester registers only its own reply types: a failing handler whose reply type is
    known (here its return annotation) answers with that type, ``success: false`` and Go's error
    fields, so a Go bridge returns at once with the error instead of dropping an ErrorReply and
    timing out. Our requester raises RemoteError for it, as for an ErrorReply."""
    corr = str(uuid.uuid4())
    request = BrCreateOrder(order_id="raise", target_service=server.service_name)
    reply_q, [d] = await _captured_replies(url, cleanup, [(request, {"correlation_id": corr})],
                                           server.publish_command)
    body = orjson.loads(d.body)
    assert (d.exchange, d.routing_key, body["type"], body["correlationId"]) == ("", reply_q, "BrOrderReply", corr)
    assert body["payload"] == {"amount": 0.0, "orderId": "", "status": "", "success": False,
                               "error": "order raise not found", "errorCode": "ORDER_NOT_FOUND",
                               "errorMessage": "order raise not found"}
    assert body["headers"]["x-success"] == "false" and body["headers"]["x-message-kind"] == "reply"
    async with Client(url, service_name=_service(), declare_topology=False) as client:
        with pytest.raises(errors.RemoteError) as info:
            await client.request(BrCreateOrder(order_id="raise", target_service=server.service_name), timeout=5)
        assert (info.value.code, info.value.message) == ("ORDER_NOT_FOUND", "order raise not found")
        assert isinstance(info.value.reply, BrOrderReply) and info.value.reply.success is False
        assert client.bridge.stats.errors == 1 and client.bridge.pending == 0


@dataclass
class BrGetStock(Query):
    __mmate_type__: ClassVar[str] = f"BrGetStock{_RUN}"
    sku: str = ""


@dataclass
class BrStockReply(Reply):
    sku: str = ""
    count: int = 0


register(BrGetStock, reply=BrStockReply)


async def test_typed_error_reply_for_a_reply_type_given_at_registration(url: str, cleanup: list[str]) -> None:
    """No return annotation: ``register(BrGetStock, reply=BrStockReply)`` names the reply type."""
    service = _service()
    cleanup.append(topology.service_queue(service))
    async with Client(url, service_name=service) as srv:

        @srv.handler(BrGetStock)
        def stock(q: BrGetStock):  # no return annotation: the reply type comes from register()
            raise LookupError(f"no sku {q.sku}")

        await srv.start_consuming()
        async with Client(url, service_name=_service(), declare_topology=False) as client:
            with pytest.raises(errors.RemoteError) as info:
                await client.request(BrGetStock(sku="s-1"), timeout=5)
    assert (info.value.code, info.value.message) == ("HANDLER_ERROR", "no sku s-1")
    reply = info.value.reply
    assert isinstance(reply, BrStockReply) and (reply.sku, reply.count, reply.success) == ("", 0, False)


# ---------------------------------------------------------------------------------- issue 8 item 8
@dataclass
class BrGetOrderStatus(Query):
    __mmate_type__: ClassVar[str] = f"BrGetOrderStatus{_RUN}"
    order_id: str = ""


async def _go_rr_server(url: str, queue: str, vector: str) -> tuple[Any, list[dict[str, Any]]]:
    """A responder that answers the way mmate-go's ``RequestReplyServer`` does (wire spec §6.3,
    vectors 18-21): it consumes ``queue`` (bound to ``mmate.queries`` / ``qry.{type}``) and publishes
    the captured reply ``vector`` (19: OrderReply, 21: ErrorReply), its ids and correlation id set
    to the request's, to **``mmate.messages``** with routing key = the request's payload ``replyTo``,
    with the captured properties (content type, ``delivery_mode`` 2, the 15 Go headers)."""
    [body_file] = VECTORS.glob(f"{vector}-rr-server-*.body.json")
    sidecar = json.loads(body_file.with_name(body_file.name.replace(".body.", ".amqp.")).read_text())
    template = orjson.loads(body_file.read_bytes())
    assert sidecar["exchange"] == topology.MESSAGES
    conn = await connect(url)
    ch = await conn.channel()
    await topology.declare_exchanges(ch)  # as every mmate-go client does at start
    await ch.queue_declare(queue, durable=False, auto_delete=True)
    await ch.queue_bind(queue, topology.QUERIES, f"qry.{BrGetOrderStatus.__mmate_type__}")
    answered: list[dict[str, Any]] = []

    def on_request(d: Any) -> None:
        request = orjson.loads(d.body)
        corr, reply_to = request["correlationId"], request["payload"]["replyTo"]
        body = json.loads(json.dumps(template))
        body["id"] = body["headers"]["x-message-id"] = body["headers"]["message-id"] = str(uuid.uuid4())
        body["correlationId"] = body["headers"]["correlation-id"] = corr
        body["headers"]["x-correlation-id"] = corr
        typed = {k: v["v"] for k, v in sidecar["properties"]["headers"].items()}
        typed.update({k: body["headers"][k] for k in ("x-message-id", "message-id", "correlation-id",
                                                       "x-correlation-id")})
        ch.publish_nowait(orjson.dumps(body), topology.MESSAGES, reply_to, BasicProperties(
            content_type="application/json", delivery_mode=2, headers=typed))
        answered.append({"exchange": topology.MESSAGES, "routing_key": reply_to, "body": body})

    await ch.basic_consume(queue, on_request, no_ack=True)
    return conn, answered


@pytest.mark.parametrize("vector", ["19", "21"])
async def test_request_to_a_go_request_reply_server_gets_its_reply(url: str, cleanup: list[str],
                                                                   vector: str) -> None:
    """mmate-go's RequestReplyServer publishes replies to ``mmate.messages`` with the reply queue
    as routing key, not to the default exchange; our bridge binds its reply queue there too, so the
    reply arrives (a Go bridge times out: vectors 18-21)."""
    service = _service()
    rpc_queue = f"mmate.rpc.BrGetOrderStatus.{uuid.uuid4().hex[:8]}"
    cleanup.extend([topology.service_queue(service), rpc_queue])
    go_server, answered = await _go_rr_server(url, rpc_queue, vector)
    try:
        async with Client(url, service_name=service, registry=TypeRegistry()) as client:
            if vector == "19":
                reply = await client.request(BrGetOrderStatus(order_id="order-1001"), timeout=5)
                assert isinstance(reply, GenericMessage) and reply.type == "OrderReply"  # not in this registry
                assert reply.payload == {"amount": 42.5, "orderId": "order-1001", "status": "shipped",
                                         "success": True}
            else:
                with pytest.raises(errors.RemoteError) as info:
                    await client.request(BrGetOrderStatus(order_id="missing"), timeout=5)
                assert (info.value.code, info.value.message) == ("REQUEST_FAILED", "order missing not found")
            [sent] = answered
            assert sent["routing_key"] == client.bridge.reply_queue
            assert client.bridge.stats.timeouts == 0
    finally:
        await go_server.close()
