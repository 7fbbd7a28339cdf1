"""The mmate-level benchmark message: a typed ``OrderCreatedEvent`` and its wire form.

``template()`` builds one real Mmate envelope with our encoder (mmate_fast.messaging.outgoing.build:
the body with the full mmate-go header set, and the pre-encoded AMQP properties with the same
headers, message_id, type, timestamp; transient, persistent under BENCH_PERSISTENT=1). Its payload
carries ``sentAtNs`` as a 19-digit string, so the body holds _common.STAMP_TOKEN exactly once: the
raw and transport clients stamp the send time into the same bytes, the Client-level producer sets
``sent_at_ns`` on each event.
With ``BENCH_BODY=mmate`` in the environment, _common uses this template as BODY (and its
properties for every raw publish and prefill), so all four clients move the same bytes.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast (PYTHONPATH wins)
    sys.path.append(_ROOT)

from mmate_fast.contracts import Event  # noqa: E402 - after the path fix above

STAMP_ZERO = "0" * 19
TEMPLATE_ID = "6f1c2a9e-3b7d-4c1e-9a2f-5d8e7b6c4a31"


@dataclass
class OrderCreatedEvent(Event):
    """The benchmark event (payload of the same order of size as the transport-level body)."""

    order_id: str
    customer_id: str
    amount: float
    currency: str
    sent_at_ns: str = STAMP_ZERO


def new_event(i: int, sent_at_ns: str = STAMP_ZERO) -> OrderCreatedEvent:
    """A fresh event object, as a producer creates one per message."""
    return OrderCreatedEvent(order_id=f"ORD-{i:08d}", customer_id="CUST-00000042", amount=10.42,
                             currency="EUR", sent_at_ns=sent_at_ns, aggregate_id="order-42")


def template() -> tuple[bytes, bytes]:
    """(body, encoded properties) of one event, built once by our encoder (fixed id)."""
    from mmate_fast.messaging.outgoing import build

    evt = new_event(42)
    evt.id = TEMPLATE_ID
    out = build(evt, persistent=os.environ.get("BENCH_PERSISTENT", "") == "1")
    return out.body, out.properties
