"""``Client(wire_profile="lean")`` on the embedded broker and RabbitMQ: the delivery carries Go's own
properties only (content type, delivery mode; no header table, no .NET mapping properties), yet our
consumer dispatches it, sees the standard headers (from the envelope), the correlation id and the
message id, and request/reply works both ways between a lean and a Go-profile client, signed too."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event, Query, Reply
from mmate_fast.interceptors import SigningInterceptor
from mmate_fast.messaging import MessageContext

from .behaviour_helpers import wait_until


@dataclass
class LeanShipped(Event):
    order_id: str = ""


@dataclass
class LeanGetStatus(Query):
    order_id: str = ""


@dataclass
class LeanStatus(Reply):
    order_id: str = ""
    status: str = ""


async def test_lean_event_is_dispatched_with_envelope_headers(url: str, names: Any) -> None:
    service = names.service()
    got: list[tuple[LeanShipped, dict[str, Any], Any, str | None]] = []
    async with Client(url, service_name=service, wire_profile="lean") as client:

        @client.handler(LeanShipped)
        def on_shipped(evt: LeanShipped, ctx: MessageContext) -> None:
            got.append((evt, ctx.headers, ctx.delivery.properties, ctx.correlation_id))

        sub = await client.start_consuming()
        sent = LeanShipped(order_id="o-7", aggregate_id="o-7", sequence=2)
        await client.publish_event(sent, correlation_id="corr-7")
        await wait_until(lambda: len(got) == 1, timeout=10)
        evt, headers, props, corr = got[0]
        assert (evt.id, evt.order_id, evt.aggregate_id, evt.sequence) == (sent.id, "o-7", "o-7", 2)
        assert not props.headers  # no AMQP header table on the wire, only Go's two properties
        assert (props.content_type, props.delivery_mode) == ("application/json", 2)
        assert props.type is props.message_id is props.correlation_id is props.timestamp is None
        assert headers["x-message-kind"] == "event" and headers["x-aggregate-id"] == "o-7"
        assert headers["x-message-type"] == "LeanShipped" and corr == "corr-7"
        assert sub.stats.acked == 1 and sub.stats.dead_lettered == 0


async def _round_trips(url: str, names: Any, server_profile: str, client_profile: str,
                       interceptors: Any = ()) -> list[LeanStatus]:
    service = names.service()
    async with Client(url, service_name=service, wire_profile=server_profile,
                      interceptors=list(interceptors)) as srv:

        @srv.handler(LeanGetStatus)
        def status(q: LeanGetStatus) -> LeanStatus:
            return LeanStatus(order_id=q.order_id, status=f"shipped-{server_profile}")

        await srv.start_consuming()
        async with Client(url, service_name=names.service("asker"), declare_topology=False,
                          wire_profile=client_profile, interceptors=list(interceptors)) as client:
            names.queues.append(client.bridge.reply_queue)
            return list(await asyncio.gather(*(client.request(LeanGetStatus(order_id=f"o-{i}"), timeout=10)
                                               for i in range(5))))


async def test_request_reply_between_lean_and_go_profiles(url: str, names: Any) -> None:
    for server_profile, client_profile in (("lean", "go"), ("go", "lean")):
        replies = await _round_trips(url, names, server_profile, client_profile)
        assert [(r.order_id, r.status) for r in replies] == [(f"o-{i}", f"shipped-{server_profile}")
                                                             for i in range(5)]


async def test_signed_request_reply_with_the_lean_profile(url: str, names: Any) -> None:
    """Signatures cover the copies that are present: the lean form (properties, no standard table)
    verifies against a Go-profile peer and the other way round."""
    def signing() -> list[Any]:
        return [SigningInterceptor(b"lean-secret-0123456789abcdef01234", key_id="k1")]

    for server_profile, client_profile in (("lean", "go"), ("go", "lean")):
        replies = await _round_trips(url, names, server_profile, client_profile, signing())
        assert [r.status for r in replies] == [f"shipped-{server_profile}"] * 5


async def test_a_failed_lean_message_is_listed_with_its_type_and_id(url: str, names: Any) -> None:
    """The DLQ tools read type and id from the envelope when neither headers nor properties carry
    them (a lean message): ``mmate dlq peek`` shows what failed."""
    from mmate_fast.reliability.dlq import peek

    service = names.service()
    async with Client(url, service_name=service, wire_profile="lean") as client:

        @client.handler(LeanShipped)
        def boom(evt: LeanShipped) -> None:
            raise RuntimeError("cannot ship")

        sub = await client.start_consuming()
        sent = LeanShipped(order_id="o-9", aggregate_id="o-9")
        await client.publish_event(sent)
        await wait_until(lambda: sub.stats.dead_lettered == 1, timeout=10)
        [dead] = await peek(client.connection, f"dlq.{service}-queue", limit=5)
        assert (dead.message_type, dead.message_id) == ("LeanShipped", sent.id)
        assert "cannot ship" in dead.error


async def test_a_stageflow_runs_and_compensates_on_a_lean_client(url: str, names: Any) -> None:
    """StageFlow hops and lifecycle events go through Client.publish: with the lean profile the flow
    still completes (and compensates), its state travelling in the body as Go reads it."""
    from mmate_fast.stageflow import FlowEngine
    from tests.behaviour.stageflow_helpers import flow_queues
    from tests.behaviour.test_stageflow import three_stages

    for fail_at, status in ((None, "completed"), ("charge", "compensated")):
        calls: list[str] = []
        wf = three_stages(f"bt-flow-{names.queue('wf')}", calls, fail_at=fail_at)
        prefix = f"{names.queue('sf')}."
        flow_queues(names, prefix, wf)
        async with Client(url, service_name=names.service(), wire_profile="lean") as client:
            engine = FlowEngine(client, prefix=prefix, events=False)
            try:
                await engine.register(wf, serve=True)
                iid = await engine.start(wf, {"orderId": "o-1", "amount": 9.5})
                state = await engine.wait(iid, timeout=10)
            finally:
                await engine.close()
        assert state.status == status
        assert calls[:2] == ["validate", "charge"]
