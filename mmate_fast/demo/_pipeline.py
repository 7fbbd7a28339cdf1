r"""The demo's order pipeline: four services, each its own Client, all in this process.

storefront --PlaceOrder--> orders --OrderPlaced--> inventory --StockReserved--> notifications
                                              \--> billing   --PaymentCaptured-/

Every run uses fresh service names (a random suffix) and deletes its queues at the end, so runs on
a shared RabbitMQ neither see each other's messages nor leave queues behind. Events carry the
order as aggregate id ``{run}.{order_id}``; the event subscriptions bind ``evt.{run}.*.{Type}``
instead of the automatic ``evt.#.{Type}`` for that isolation (the command binding
``cmd.{service}.PlaceOrder`` is the Client's automatic one).
"""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.messaging import MessageContext, Subscription, topology
from mmate_fast.transports import connect

from .contracts import OrderPlaced, OrderRejected, PaymentCaptured, PlaceOrder, StockReserved

#: price list of the orders service (cents)
CATALOG = {"SKU-COFFEE": 1299, "SKU-MUG": 899, "SKU-FILTER": 349, "SKU-GRINDER": 4999}
_SKUS = tuple(CATALOG)
ROLES = ("orders", "inventory", "billing", "notifications")
_SEND_CHUNK = 250
_STOCK_BIT, _PAYMENT_BIT = 1, 2


@dataclass(slots=True)
class DemoConfig:
    """What ``mmate demo`` runs."""

    url: str = "memory://"
    orders: int = 3000
    #: instances (competing consumers) per service
    services: int = 1
    #: seconds for the whole pipeline to finish once sending started
    timeout: float = 60.0
    #: every ``bad_every``-th order is invalid (unknown SKU or zero quantity)
    bad_every: int = 100
    prefetch: int = 200
    connect_timeout: float = 10.0


@dataclass(slots=True)
class Snapshot:
    """Progress numbers at one moment."""

    total: int
    sent: int
    completed: int
    rejected: int
    handled: int
    elapsed: float


@dataclass(slots=True)
class DemoResult:
    """What a finished run measured."""

    url: str
    orders_sent: int
    expected_rejected: int
    completed: int
    rejected: int
    #: role -> messages handled by each of its instances
    handled: dict[str, list[int]]
    wall_time: float
    latencies: list[float]
    dead_letter_queue: str
    dead_letter_count: int
    dead_letter_reason: str = ""
    dead_letter_error: str = ""
    service_names: dict[str, str] = field(default_factory=dict)

    @property
    def messages_handled(self) -> int:
        return sum(sum(v) for v in self.handled.values())


def is_bad(i: int, bad_every: int) -> bool:
    """Order ``i`` (0-based) is one of the invalid ones."""
    return bad_every > 0 and i % bad_every == bad_every // 2


class Pipeline:
    """Sets up the services, sends the orders, waits for the outcome, cleans up."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.run_id = uuid.uuid4().hex[:6]
        self.names = {role: f"demo-{role}-{self.run_id}" for role in ROLES}
        self.clients: list[Client] = []
        self.storefront: Client | None = None
        self.subs: dict[str, list[Subscription]] = {role: [] for role in ROLES}
        self.placed_at: dict[str, float] = {}
        self.arrived: dict[str, int] = {}
        self.latencies: list[float] = []
        self.sent = 0
        self.completed = 0
        self.expected_bad = sum(1 for i in range(cfg.orders) if is_bad(i, cfg.bad_every))
        self.started = 0.0
        self.wall_time = 0.0
        self._stock = dict.fromkeys(CATALOG, 10**9)

    # ------------------------------------------------------------------ counters
    def _handled(self, role: str) -> list[int]:
        return [s.stats.received for s in self.subs[role]]

    def rejected(self) -> int:
        return sum(s.stats.dead_lettered + s.stats.rejected for s in self.subs["orders"])

    def failed_elsewhere(self) -> int:
        return sum(s.stats.dead_lettered + s.stats.rejected for role in ROLES[1:] for s in self.subs[role])

    def snapshot(self) -> Snapshot:
        handled = sum(s.stats.received for subs in self.subs.values() for s in subs)
        elapsed = time.perf_counter() - self.started if self.started else 0.0
        return Snapshot(self.cfg.orders, self.sent, self.completed, self.rejected(), handled, elapsed)

    def done(self) -> bool:
        return (self.sent == self.cfg.orders and self.rejected() == self.expected_bad
                and self.completed == self.cfg.orders - self.expected_bad)

    # ------------------------------------------------------------------ the services
    def _aggregate(self, order_id: str) -> str:
        return f"{self.run_id}.{order_id}"

    async def _place_order(self, cmd: PlaceOrder, ctx: MessageContext) -> None:
        """Orders service: validate and price; a bad order raises (-> dlq with the reason)."""
        price = CATALOG.get(cmd.sku)
        if price is None:
            raise OrderRejected(f"order {cmd.order_id}: unknown sku {cmd.sku!r}")
        if cmd.quantity <= 0:
            raise OrderRejected(f"order {cmd.order_id}: quantity must be positive, got {cmd.quantity}")
        await ctx.services.publish_event(
            OrderPlaced(order_id=cmd.order_id, customer=cmd.customer, sku=cmd.sku, quantity=cmd.quantity,
                        total_cents=price * cmd.quantity, aggregate_id=self._aggregate(cmd.order_id),
                        sequence=1, source=self.names["orders"]),
            correlation_id=ctx.correlation_id)

    async def _reserve_stock(self, evt: OrderPlaced, ctx: MessageContext) -> None:
        """Inventory service: take the items out of stock."""
        self._stock[evt.sku] -= evt.quantity
        await ctx.services.publish_event(
            StockReserved(order_id=evt.order_id, sku=evt.sku, quantity=evt.quantity, warehouse="WH-1",
                          aggregate_id=evt.aggregate_id, sequence=2, source=self.names["inventory"]),
            correlation_id=ctx.correlation_id)

    async def _capture_payment(self, evt: OrderPlaced, ctx: MessageContext) -> None:
        """Billing service: charge the customer."""
        await ctx.services.publish_event(
            PaymentCaptured(order_id=evt.order_id, amount_cents=evt.total_cents,
                            payment_id=f"pay-{evt.order_id}", aggregate_id=evt.aggregate_id, sequence=3,
                            source=self.names["billing"]),
            correlation_id=ctx.correlation_id)

    def _arrive(self, order_id: str, bit: int) -> None:
        """Notifications service: an order is complete once stock and payment are both in.

        (Competing instances share this in-process state; real ones would share a store.)"""
        if order_id not in self.placed_at:
            return  # already completed (a redelivery) or not ours
        state = self.arrived.get(order_id, 0) | bit
        if state == _STOCK_BIT | _PAYMENT_BIT:
            self.latencies.append(time.perf_counter() - self.placed_at.pop(order_id))
            self.arrived.pop(order_id, None)
            self.completed += 1
        else:
            self.arrived[order_id] = state

    def _on_stock(self, evt: StockReserved) -> None:
        self._arrive(evt.order_id, _STOCK_BIT)

    def _on_payment(self, evt: PaymentCaptured) -> None:
        self._arrive(evt.order_id, _PAYMENT_BIT)

    def _handlers(self, role: str) -> list[tuple[type, Callable[..., Any]]]:
        table: dict[str, list[tuple[type, Callable[..., Any]]]] = {
            "orders": [(PlaceOrder, self._place_order)],
            "inventory": [(OrderPlaced, self._reserve_stock)],
            "billing": [(OrderPlaced, self._capture_payment)],
            "notifications": [(StockReserved, self._on_stock), (PaymentCaptured, self._on_payment)],
        }
        return table[role]

    async def _start_service(self, role: str) -> None:
        client = Client(self.cfg.url, service_name=self.names[role], prefetch=self.cfg.prefetch,
                        dead_letter=True, connect_timeout=self.cfg.connect_timeout)
        self.clients.append(client)  # before connect: close() also ends a half-set-up client
        await client.connect()
        for cls, fn in self._handlers(role):
            if role == "orders":
                client.add_handler(cls, fn)  # automatic binding: cmd.{service}.PlaceOrder
            else:
                client.add_handler(cls, fn, bind=False)
                await client.bind(topology.EVENTS, f"evt.{self.run_id}.*.{cls.__name__}")
        self.subs[role].append(await client.start_consuming())

    async def start(self) -> None:
        """Connect every service instance (they declare the exchanges and their queues)."""
        for role in ROLES:
            for _ in range(max(1, self.cfg.services)):
                await self._start_service(role)
        self.storefront = Client(self.cfg.url, service_name=f"demo-storefront-{self.run_id}",
                                 declare_topology=False, connect_timeout=self.cfg.connect_timeout)
        self.clients.append(self.storefront)
        await self.storefront.connect()

    # ------------------------------------------------------------------ running
    def _order(self, i: int) -> PlaceOrder:
        order_id = f"O-{i + 1:06d}"
        sku, quantity = _SKUS[i % len(_SKUS)], 1 + i % 3
        if is_bad(i, self.cfg.bad_every):
            sku, quantity = ("SKU-UNKNOWN", quantity) if (i // self.cfg.bad_every) % 2 == 0 else (sku, 0)
        return PlaceOrder(order_id=order_id, customer=f"customer-{i % 97}", sku=sku, quantity=quantity,
                          target_service=self.names["orders"], correlation_id=order_id)

    async def send(self) -> None:
        """The storefront sends every order (publish_batch, confirmed per chunk)."""
        assert self.storefront is not None
        for start in range(0, self.cfg.orders, _SEND_CHUNK):
            batch = [self._order(i) for i in range(start, min(self.cfg.orders, start + _SEND_CHUNK))]
            now = time.perf_counter()
            for order in batch:
                self.placed_at[order.order_id] = now
            await self.storefront.publish_batch(batch)
            self.sent += len(batch)

    async def run(self, on_tick: Callable[[Snapshot], None] | None = None, poll: float = 0.005) -> None:
        """Send and wait until every order completed or was rejected; OperationTimeout otherwise.
        ``on_tick`` gets a snapshot every ``poll`` seconds (the progress display rate-limits itself)."""
        loop = asyncio.get_running_loop()
        self.started = time.perf_counter()
        deadline = loop.time() + self.cfg.timeout
        sender = loop.create_task(self.send())
        try:
            while not self.done():
                if sender.done() and (failure := sender.exception()) is not None:
                    raise failure
                if loop.time() > deadline:
                    s = self.snapshot()
                    raise errors.OperationTimeout(
                        f"the pipeline did not finish within {self.cfg.timeout:g} s: {s.sent}/{s.total} "
                        f"orders sent, {s.completed} completed, {s.rejected} rejected "
                        f"(expected {self.cfg.orders - self.expected_bad} and {self.expected_bad}), "
                        f"{self.failed_elsewhere()} failures in other services")
                if on_tick is not None:
                    on_tick(self.snapshot())
                await asyncio.sleep(poll)
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, errors.MmateError):
                    await sender
        self.wall_time = time.perf_counter() - self.started
        if on_tick is not None:
            on_tick(self.snapshot())

    async def result(self) -> DemoResult:
        """Inspect the orders DLQ (count and one message's reason) and collect the numbers."""
        dlq = topology.dead_letter_queue(topology.service_queue(self.names["orders"]))
        count, reason, error = 0, "", ""
        conn = await connect(self.cfg.url)
        try:
            ch = await conn.channel()
            try:
                count = (await ch.queue_declare(dlq, passive=True)).message_count
            except errors.NotFoundError:  # declared on the first failure: none failed
                count = 0
            if count:
                d = await ch.basic_get(dlq, no_ack=True)
                if d is not None:
                    h = d.properties.headers or {}
                    reason, error = str(h.get("x-mmate-reason", "")), str(h.get("x-mmate-error", ""))
        finally:
            await conn.close()
        return DemoResult(
            url=self.cfg.url, orders_sent=self.sent, expected_rejected=self.expected_bad,
            completed=self.completed, rejected=self.rejected(),
            handled={role: self._handled(role) for role in ROLES}, wall_time=self.wall_time,
            latencies=sorted(self.latencies), dead_letter_queue=dlq, dead_letter_count=count,
            dead_letter_reason=reason, dead_letter_error=error, service_names=dict(self.names))

    async def close(self) -> list[str]:
        """Close every client (gracefully), then delete the queues this run declared. Returns
        warnings (cleanup problems are reported, never raised)."""
        warnings: list[str] = []
        for client in reversed(self.clients):
            try:
                await client.close(timeout=5.0)
            except errors.MmateError as exc:
                warnings.append(f"closing {client.service_name}: {exc}")
        if all(c.connection is None for c in self.clients):
            return warnings  # never connected: nothing was declared
        try:
            conn = await connect(self.cfg.url)
        except errors.MmateError as exc:
            return [*warnings, f"could not delete the demo queues: {exc}"]
        try:
            ch = await conn.channel()
            for role in ROLES:
                queue = topology.service_queue(self.names[role])
                for name in (queue, topology.dead_letter_queue(queue)):
                    try:
                        await ch.queue_delete(name)
                    except errors.MmateError as exc:
                        warnings.append(f"deleting queue {name}: {exc}")
                        ch = await conn.channel()
        finally:
            await conn.close()
        return warnings
