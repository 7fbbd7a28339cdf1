"""The rpc workload's messages: a typed query and its reply, and their wire forms.

``GetOrderQuery`` / ``OrderReply`` carry bench-specific envelope types (``RpcBenchGetOrderQuery``,
``RpcBenchOrderReply``) so the binding ``qry.RpcBenchGetOrderQuery`` on ``mmate.queries`` meets no
one else's queue on a shared broker. ``templates()`` gives one real request and reply envelope built
by our encoder; the aio-pika and raw clients move bodies of the same size (aio-pika re-encodes the
decoded dicts per message with orjson, raw sends the bytes as they are).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import ClassVar

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast (PYTHONPATH wins)
    sys.path.append(_ROOT)

from mmate_fast.contracts import Query, Reply  # noqa: E402 - after the path fix above

#: a reply-queue name of the bridge's length (``bridge.reply.`` + 8 hex)
REPLY_QUEUE_LIKE = "bridge.reply.0123abcd"


@dataclass
class GetOrderQuery(Query):
    """The request: which order, for which customer."""

    __mmate_type__: ClassVar[str] = "RpcBenchGetOrderQuery"
    order_id: str = ""
    customer_id: str = ""


@dataclass
class OrderReply(Reply):
    """The answer: the order's state."""

    __mmate_type__: ClassVar[str] = "RpcBenchOrderReply"
    order_id: str = ""
    customer_id: str = ""
    status: str = ""
    amount: float = 0.0
    currency: str = ""


def new_query(i: int) -> GetOrderQuery:
    return GetOrderQuery(order_id=f"ORD-{i:08d}", customer_id="CUST-00000042")


def reply_for(q: GetOrderQuery) -> OrderReply:
    return OrderReply(order_id=q.order_id, customer_id=q.customer_id, status="shipped", amount=10.42,
                      currency="EUR")


def templates() -> tuple[bytes, bytes]:
    """(request body, reply body) as our Client sends them (query with a bridge-like reply address
    and correlation id, reply with that correlation id)."""
    from mmate_fast.messaging.outgoing import build

    q = new_query(42)
    q.reply_to = REPLY_QUEUE_LIKE
    corr = "0b9e4f7a-2c6d-4e8b-8f1a-3c5d7e9f1b2d"
    req = build(q, correlation_id=corr, reply_to=REPLY_QUEUE_LIKE)
    rep = build(reply_for(q), correlation_id=corr, persistent=False)
    return req.body, rep.body
