"""The in-memory broker: exchanges, bindings, queues and routing (one instance per ``memory://NAME``)."""
from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import Mapping
from typing import Any

from mmate_fast.errors import ChannelClosedError
from mmate_fast.transports.memory._errors import broker_error, default_exchange_refused, locked, not_found
from mmate_fast.transports.memory._queue import EQUIVALENCE_ARGS, Message, Queue
from mmate_fast.transports.memory._routing import headers_match, topic_matches

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
_PREDECLARED = (("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                ("amq.headers", "headers"), ("amq.match", "headers"))
_CACHE_MAX = 4096


def _args_key(arguments: Mapping[str, Any] | None) -> str:
    return repr(sorted((arguments or {}).items()))


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Binding:
    """source --routing_key/arguments--> destination (a Queue or an Exchange)."""

    __slots__ = ("arguments", "destination", "routing_key")

    def __init__(self, destination: Queue | Exchange, routing_key: str, arguments: Mapping[str, Any]) -> None:
        self.destination = destination
        self.routing_key = routing_key
        self.arguments = dict(arguments)


class Exchange:
    """An exchange and the bindings for which it is the source."""

    def __init__(self, name: str, type_: str, durable: bool, auto_delete: bool, internal: bool,
                 arguments: Mapping[str, Any]) -> None:
        self.name = name
        self.type = type_
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = dict(arguments)
        self.bindings: dict[tuple[str, str, str, str], Binding] = {}
        self.incoming: set[tuple[str, tuple[str, str, str, str]]] = set()  # e2e bindings pointing here
        self.deleted = False
        self._cache: dict[str, list[Queue | Exchange]] = {}

    def changed(self) -> None:
        """Bindings changed: forget cached routes."""
        self._cache.clear()

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> list[Queue | Exchange]:
        """Destinations of one message (may repeat a destination; the broker de-duplicates)."""
        if self.type == "headers":
            return [b.destination for b in self.bindings.values() if headers_match(b.arguments, headers)]
        cached = self._cache.get(routing_key)
        if cached is not None:
            return cached
        if self.type == "fanout":
            dests = [b.destination for b in self.bindings.values()]
        elif self.type == "direct":
            dests = [b.destination for b in self.bindings.values() if b.routing_key == routing_key]
        else:
            dests = [b.destination for b in self.bindings.values()
                     if topic_matches(b.routing_key, routing_key)]
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[routing_key] = dests
        return dests


class Broker:
    """All state of one in-memory broker."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        for xname, xtype in _PREDECLARED:
            self.exchanges[xname] = Exchange(xname, xtype, True, False, False, {})

    # -- exchanges --------------------------------------------------------------------------
    def declare_exchange(self, name: str, type_: str, passive: bool, durable: bool, auto_delete: bool,
                         internal: bool, arguments: Mapping[str, Any]) -> None:
        """exchange.declare with RabbitMQ's checks (403 default/amq.*, 404 passive, 406 inequivalent)."""
        m = "exchange.declare"
        if name == "":
            raise default_exchange_refused(m)
        ex = self.exchanges.get(name)
        if passive:
            if ex is None:
                raise not_found("exchange", name, m)
            return
        if ex is None:
            if name.startswith("amq."):
                raise broker_error(403, f"exchange name '{name}' contains reserved prefix 'amq.*'", m)
            if type_ not in EXCHANGE_TYPES:
                raise broker_error(503, f"unknown exchange type '{type_}'", m)
            self.exchanges[name] = Exchange(name, type_, durable, auto_delete, internal, arguments)
            return
        for arg, have, want in (("type", ex.type, type_), ("durable", ex.durable, durable),
                                ("auto_delete", ex.auto_delete, auto_delete),
                                ("internal", ex.internal, internal)):
            if have != want:
                raise broker_error(406, f"inequivalent arg '{arg}' for exchange '{name}' in vhost '/': "
                                        f"received '{_shown(want)}' but current is '{_shown(have)}'", m)
        have_ae, want_ae = ex.arguments.get("alternate-exchange"), arguments.get("alternate-exchange")
        if have_ae != want_ae:
            raise broker_error(406, f"inequivalent arg 'alternate-exchange' for exchange '{name}' in vhost "
                                    f"'/': received {want_ae!r} but current is {have_ae!r}", m)

    def delete_exchange(self, name: str, if_unused: bool) -> None:
        """exchange.delete (idempotent for a missing exchange, as RabbitMQ 3.10)."""
        m = "exchange.delete"
        if name == "":
            raise default_exchange_refused(m)
        if name.startswith("amq."):
            raise broker_error(403, f"exchange name '{name}' contains reserved prefix 'amq.*'", m)
        ex = self.exchanges.get(name)
        if ex is None:
            return
        if if_unused and ex.bindings:
            raise broker_error(406, f"exchange '{name}' in vhost '/' in use", m)
        self._drop_exchange(ex)

    def _drop_exchange(self, ex: Exchange) -> None:
        ex.deleted = True
        self.exchanges.pop(ex.name, None)
        for key, b in list(ex.bindings.items()):
            self._forget_binding(ex, key, b)
        for src_name, key in list(ex.incoming):
            src = self.exchanges.get(src_name)
            if src is not None and key in src.bindings:
                self._forget_binding(src, key, src.bindings[key])

    # -- queues -----------------------------------------------------------------------------
    def queue_for(self, name: str, conn: object, method: str) -> Queue:
        """The queue ``name`` if it exists and ``conn`` may use it (404 / 405 otherwise)."""
        q = self.queues.get(name)
        if q is None:
            raise not_found("queue", name, method)
        if q.owner is not None and q.owner is not conn:
            raise locked(name, method)
        return q

    def declare_queue(self, name: str, conn: object, passive: bool, durable: bool, exclusive: bool,
                      auto_delete: bool, arguments: Mapping[str, Any],
                      loop: asyncio.AbstractEventLoop) -> Queue:
        """queue.declare with RabbitMQ's checks; ``""`` gets a server-generated ``amq.gen-`` name."""
        m = "queue.declare"
        if passive:
            q = self.queue_for(name, conn, m)
            q.touch()
            return q
        if name == "":
            while True:
                name = "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
                if name not in self.queues:
                    break
        existing = self.queues.get(name)
        if existing is None:
            if name.startswith("amq.") and not name.startswith("amq.gen-"):
                raise broker_error(403, f"queue name '{name}' contains reserved prefix 'amq.*'", m)
            q = Queue(self, name, durable, conn if exclusive else None, auto_delete, arguments, loop)
            self.queues[name] = q
            return q
        q = existing
        if (q.owner is not None and q.owner is not conn) or (q.owner is None) == exclusive:
            raise locked(name, m)
        for arg, flag_have, flag_want in (("durable", q.durable, durable),
                                          ("auto_delete", q.auto_delete, auto_delete)):
            if flag_have != flag_want:
                raise broker_error(406, f"inequivalent arg '{arg}' for queue '{name}' in vhost '/': received "
                                        f"'{_shown(flag_want)}' but current is '{_shown(flag_have)}'", m)
        for key in EQUIVALENCE_ARGS:
            have, want = q.arguments.get(key), arguments.get(key)
            if have != want:
                raise broker_error(406, f"inequivalent arg '{key}' for queue '{name}' in vhost '/': "
                                        f"received {want!r} but current is {have!r}", m)
        q.touch()
        return q

    def delete_queue(self, q: Queue) -> int:
        """Delete ``q``: drop its bindings, cancel its consumers (basic.cancel to each)."""
        if q.deleted:
            return 0
        self.queues.pop(q.name, None)
        count = q.close()
        for src_name, key in list(q.bindings):
            src = self.exchanges.get(src_name)
            if src is not None and key in src.bindings:
                self._forget_binding(src, key, src.bindings[key])
        for c in list(q.consumers):
            c.channel._broker_cancel(c)
        q.consumers.clear()
        return count

    def connection_closed(self, conn: object) -> None:
        """Exclusive queues go with their connection."""
        for q in [q for q in self.queues.values() if q.owner is conn]:
            self.delete_queue(q)

    # -- bindings ---------------------------------------------------------------------------
    def bind(self, source: str, destination: Queue | Exchange, routing_key: str,
             arguments: Mapping[str, Any], method: str) -> None:
        """Add a binding (idempotent)."""
        if source == "":
            raise default_exchange_refused(method)
        src = self.exchanges.get(source)
        if src is None:
            raise not_found("exchange", source, method)
        kind = "q" if isinstance(destination, Queue) else "e"
        key = (kind, destination.name, routing_key, _args_key(arguments))
        if key in src.bindings:
            return
        src.bindings[key] = Binding(destination, routing_key, arguments)
        src.changed()
        if isinstance(destination, Queue):
            destination.bindings.add((source, key))
        else:
            destination.incoming.add((source, key))

    def unbind(self, source: str, destination: Queue | Exchange, routing_key: str,
               arguments: Mapping[str, Any], method: str) -> None:
        """Remove a binding (a missing binding is fine, as in RabbitMQ)."""
        if source == "":
            raise default_exchange_refused(method)
        src = self.exchanges.get(source)
        if src is None:
            raise not_found("exchange", source, method)
        kind = "q" if isinstance(destination, Queue) else "e"
        key = (kind, destination.name, routing_key, _args_key(arguments))
        b = src.bindings.get(key)
        if b is not None:
            self._forget_binding(src, key, b)

    def _forget_binding(self, src: Exchange, key: tuple[str, str, str, str], b: Binding) -> None:
        src.bindings.pop(key, None)
        src.changed()
        dest = b.destination
        if isinstance(dest, Queue):
            dest.bindings.discard((src.name, key))
        else:
            dest.incoming.discard((src.name, key))
        if src.auto_delete and not src.bindings and not src.deleted:
            self._drop_exchange(src)

    # -- routing ----------------------------------------------------------------------------
    def route(self, exchange: Exchange, routing_key: str, headers: Mapping[str, Any] | None) -> list[Queue]:
        """Queues a message reaches, following exchange-to-exchange bindings and alternate exchanges."""
        dests = exchange.route(routing_key, headers)
        if len(dests) == 1 and isinstance(dests[0], Queue):
            return dests  # type: ignore[return-value]
        queues: list[Queue] = []
        seen_q: set[int] = set()
        seen_x = {id(exchange)}
        stack = [exchange]
        first = True
        while stack:
            x = stack.pop()
            for d in (dests if first else x.route(routing_key, headers)):
                if isinstance(d, Queue):
                    if id(d) not in seen_q:
                        seen_q.add(id(d))
                        queues.append(d)
                elif id(d) not in seen_x:
                    seen_x.add(id(d))
                    stack.append(d)
            first = False
        if not queues:
            ae_name = exchange.arguments.get("alternate-exchange")
            ae = self.exchanges.get(ae_name) if isinstance(ae_name, str) else None
            if ae is not None and ae is not exchange:
                return self.route(ae, routing_key, headers)
        return queues

    def route_internal(self, exchange: Exchange | None, routing_key: str, body: bytes, properties: Any,
                       loop: asyncio.AbstractEventLoop) -> None:
        """Publish from inside the broker (dead-lettering): no confirms, no returns. ``None`` is the
        default exchange: straight to the queue named by the routing key."""
        headers = properties.headers if properties is not None else None
        ttl = _expiration_ms(properties)
        if exchange is None:
            target = self.queues.get(routing_key)
            queues = [target] if target is not None and not target.deleted else []
            name = ""
        else:
            queues = self.route(exchange, routing_key, headers)
            name = exchange.name
        for q in queues:
            q.enqueue(Message(body, name, routing_key, properties, _expires_at(q, ttl, loop)), loop)

    def exchange_for_publish(self, name: str) -> Exchange:
        """The exchange a basic.publish names (404 missing, 403 internal)."""
        ex = self.exchanges.get(name)
        if ex is None:
            raise not_found("exchange", name, "basic.publish")
        if ex.internal:
            raise broker_error(403, f"cannot publish to internal exchange '{name}' in vhost '/'",
                               "basic.publish")
        return ex


_EXPIRATION = re.compile(r"[+-]?[0-9]+")


def _expiration_ms(properties: Any) -> int | None:
    """Per-message TTL from the ``expiration`` property (406 when it is not a non-negative integer)."""
    if properties is None:
        return None
    exp = properties.expiration
    if exp is None:
        return None
    # as RabbitMQ parses it (Erlang string:to_integer, the whole string): optional sign, digits
    value = int(exp) if isinstance(exp, str) and _EXPIRATION.fullmatch(exp) else -1
    if value < 0:
        raise broker_error(406, f"invalid expiration '{exp}'", "basic.publish")
    return value


def _expires_at(q: Queue, ttl: int | None, loop: asyncio.AbstractEventLoop) -> float | None:
    if q.ttl is not None and (ttl is None or q.ttl < ttl):
        ttl = q.ttl
    return None if ttl is None else loop.time() + ttl / 1000


def expiration_ms(properties: Any) -> int | None:
    """Public alias of the expiration parser for the channel."""
    return _expiration_ms(properties)


def expires_at(q: Queue, ttl: int | None, loop: asyncio.AbstractEventLoop) -> float | None:
    """When a message with per-message ``ttl`` (ms or None) expires in ``q``."""
    return _expires_at(q, ttl, loop)


__all__ = ["EXCHANGE_TYPES", "Binding", "Broker", "ChannelClosedError", "Exchange", "expiration_ms",
           "expires_at"]
