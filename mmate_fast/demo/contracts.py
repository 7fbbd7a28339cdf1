"""The demo's message contracts: one command and three events of an order pipeline.

Plain dataclasses on the Mmate base types; the wire names are the camelCase of the attributes
(``order_id`` -> ``orderId``), the type names the class names, as mmate-go would write them.
"""
from __future__ import annotations

from dataclasses import dataclass

from mmate_fast.contracts import Command, Event


@dataclass
class PlaceOrder(Command):
    """Storefront -> orders service: please take this order."""

    order_id: str = ""
    customer: str = ""
    sku: str = ""
    quantity: int = 0


@dataclass
class OrderPlaced(Event):
    """Orders service: the order is valid and priced (aggregate: the order)."""

    order_id: str = ""
    customer: str = ""
    sku: str = ""
    quantity: int = 0
    total_cents: int = 0


@dataclass
class StockReserved(Event):
    """Inventory service: the items are set aside."""

    order_id: str = ""
    sku: str = ""
    quantity: int = 0
    warehouse: str = ""


@dataclass
class PaymentCaptured(Event):
    """Billing service: the customer was charged."""

    order_id: str = ""
    amount_cents: int = 0
    payment_id: str = ""


class OrderRejected(Exception):
    """Raised by the orders handler for an order it cannot accept (the message goes to the DLQ)."""


__all__ = ["OrderPlaced", "OrderRejected", "PaymentCaptured", "PlaceOrder", "StockReserved"]
