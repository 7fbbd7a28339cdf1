"""Micro-benchmarks of the publisher's hot path: outgoing.build() of a typical event on the template
path vs the general path (forced by a truthy but empty ``headers`` mapping; same bytes), and
MessageTemplate.encode compiled vs twin. Run with ``pytest benchmarks/micro --benchmark-only``."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from mmate_fast.contracts import Event
from mmate_fast.messaging import outgoing

TS = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ID = "0b5e0000-0000-4000-8000-000000000002"
STATIC: dict[str, Any] = {
    "x-message-type": "OrderCreatedEvent", "x-source": "mmate-python", "x-version": "1.0",
    "message-type": "OrderCreatedEvent", "source": "mmate-python", "expiration": "300000",
    "priority": 0, "delivery-mode": 2, "x-message-kind": "event",
}
VAR = {"x-message-id": ID, "message-id": ID, "timestamp": "2025-01-02T03:04:05Z",
       "x-correlation-id": ID, "correlation-id": ID, "x-aggregate-id": "order-1001", "x-sequence": "7"}
PAYLOAD = {"orderId": "order-1001", "aggregateId": "order-1001", "sequence": 7, "amount": 99.95}


@dataclass
class OrderCreatedEvent(Event):
    order_id: str = ""
    amount: float = 0.0


# typical: id and timestamp filled in at publish (new id, "now")
MSG = OrderCreatedEvent(correlation_id=ID, order_id="order-1001", amount=99.95, aggregate_id="order-1001",
                        sequence=7)


class _Headers(dict[str, Any]):
    """A non-empty-looking mapping with no entries: forces build()'s general path, same output."""

    def __bool__(self) -> bool:
        return True


@pytest.mark.parametrize("path", ["template", "general"])
def test_build_typical_event(benchmark: Any, path: str) -> None:
    if path == "template":
        benchmark(outgoing.build, MSG)
        return
    hdrs = _Headers()
    fixed = OrderCreatedEvent(id=ID, timestamp=TS, order_id="o", aggregate_id="o", sequence=7)
    assert outgoing.build(fixed, headers=hdrs).body == outgoing.build(fixed).body
    benchmark(lambda: outgoing.build(MSG, headers=hdrs))


@pytest.mark.parametrize("impl", ["cy", "py"])
def test_template_encode(benchmark: Any, impl: str) -> None:
    wire = importlib.import_module(f"mmate_fast._{impl}.wire")
    frames = importlib.import_module(f"mmate_fast._{impl}.frames")
    tpl = wire.MessageTemplate(STATIC, {"priority": frames.Typed("B", 0),
                                        "delivery-mode": frames.Typed("B", 2)},
                               type_name="OrderCreatedEvent")
    benchmark(tpl.encode, ID, "2025-01-02T03:04:05Z", 1735787045, ID, None, True, VAR, PAYLOAD)
