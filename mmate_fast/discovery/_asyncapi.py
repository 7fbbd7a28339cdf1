"""AsyncAPI 3.0 documents of Mmate services (https://www.asyncapi.com/docs/reference/specification/v3.0.0).

``asyncapi(client)``: the channels and messages of one Client — its service queue (AMQP queue
binding) and the handled types it receives there, the exchange/routing key each type is published
to (AMQP routingKey bindings), request/reply (the reply goes to the address in the request payload's
``replyTo`` through the default exchange), and, with discovery running, the announcement and
discovery channels. ``asyncapi_document(contracts)``: the same from endpoint contracts (for example
the announced ones: ``mmate contracts export``), one receive operation per endpoint on its queue.

A message's payload schema describes the AMQP body, i.e. the Mmate envelope ``{id, type,
timestamp, correlationId?, replyTo?, headers, payload}``; its ``payload`` property refers to the
contract's schema in ``components.schemas`` (JSON Schema draft-07, which AsyncAPI's default schema
format extends; nested ``definitions`` become components too, references rewritten).
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from mmate_fast.contracts import kind_of, message_type
from mmate_fast.discovery._announcer import ANNOUNCE_KEY, CONTRACTS_EXCHANGE
from mmate_fast.discovery._contract import (
    ContractAnnouncement,
    ContractDiscoveryRequest,
    ContractDiscoveryResponse,
    EndpointContract,
)
from mmate_fast.discovery._extract import NO_OUTPUT, endpoint_for, schema_of
from mmate_fast.discovery._query import DISCOVER_QUEUE
from mmate_fast.messaging import topology

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
REPLIES = "replies"
_ID = re.compile(r"[^A-Za-z0-9_\-]")


def _id(text: str) -> str:
    """A component / channel / operation key (``^[A-Za-z0-9_\\-]+$``)."""
    return _ID.sub("_", text) or "_"


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def _node_urls(server_url: str | Sequence[str] | None) -> list[str]:
    """One URL per RabbitMQ node of a Client's ``url`` (a list, or ``amqp://u:p@h1,h2/``)."""
    if not server_url:
        return []
    out: list[str] = []
    for url in [server_url] if isinstance(server_url, str) else list(server_url):
        scheme, sep, rest = url.partition("://")
        end = min((j for j in (rest.find("/"), rest.find("?")) if j >= 0), default=len(rest))
        userinfo, at, hosts = rest[:end].rpartition("@")
        out.extend(f"{scheme}{sep}{userinfo}{at}{h}{rest[end:]}" for h in hosts.split(",") if h)
    return out


class _Doc:
    """An AsyncAPI document being built."""

    def __init__(self, title: str, version: str, description: str | None,
                 server_url: str | Sequence[str] | None) -> None:
        self.doc: dict[str, Any] = {"asyncapi": ASYNCAPI_VERSION,
                                    "info": {"title": title, "version": version},
                                    "defaultContentType": "application/json"}
        if description:
            self.doc["info"]["description"] = description
        self.vhost = "/"
        urls = _node_urls(server_url)
        for i, url in enumerate(urls, 1):
            parts = urlsplit(url)
            if parts.scheme in ("amqp", "amqps"):
                self.vhost = unquote(parts.path[1:]) or "/"
                port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
                self.doc.setdefault("servers", {})["rabbitmq" if len(urls) == 1 else f"rabbitmq-{i}"] = {
                    "host": f"{parts.hostname or 'localhost'}:{port}", "protocol": parts.scheme,
                    "protocolVersion": "0.9.1", "description": "RabbitMQ (credentials not shown)"}
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}

    # ------------------------------------------------------------------ schemas and messages
    def schema(self, type_name: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
        """Put a contract schema (and its definitions) into components; returns a reference."""
        if not schema:
            return {"type": "object", "description": f"{type_name}: no schema announced"}
        s = copy.deepcopy(dict(schema))
        s.pop("$schema", None)
        defs = {**s.pop("definitions", {}), **s.pop("$defs", {})}
        names = {name: self._free(name, d) for name, d in defs.items()}
        key = self._free(type_name, s)

        def fix(node: Any) -> Any:
            if isinstance(node, dict):
                out = {k: fix(v) for k, v in node.items()}
                target = out.get("$ref")
                if isinstance(target, str):
                    for prefix in ("#/definitions/", "#/$defs/"):
                        if target.startswith(prefix) and target[len(prefix):] in names:
                            out["$ref"] = _ref("components", "schemas", names[target[len(prefix):]])["$ref"]
                return out
            if isinstance(node, list):
                return [fix(x) for x in node]
            return node

        for name, d in defs.items():
            self.schemas[names[name]] = fix(d)
        self.schemas[key] = fix(s)
        return _ref("components", "schemas", key)

    def _free(self, name: str, content: Any) -> str:
        """A components.schemas key for ``name``: itself, unless taken by different content."""
        base = key = _id(name)
        n = 2
        while key in self.schemas and self.schemas[key] != content:
            key, n = f"{base}_{n}", n + 1
        return key

    def message(self, type_name: str, schema: Mapping[str, Any] | None) -> str:
        """Add the message of ``type_name`` (once); returns its key in components.messages."""
        key = _id(type_name)
        if key not in self.messages:
            self.messages[key] = {
                "name": type_name, "title": type_name, "contentType": "application/json",
                "summary": f"Mmate envelope of a {type_name}",
                "headers": {"type": "object", "properties": {
                    "x-message-type": {"type": "string", "const": type_name},
                    "x-message-id": {"type": "string"}, "x-source": {"type": "string"}}},
                "payload": {
                    "type": "object", "required": ["id", "type", "timestamp", "payload"],
                    "properties": {
                        "id": {"type": "string"}, "type": {"type": "string", "const": type_name},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "correlationId": {"type": "string"}, "replyTo": {"type": "string"},
                        "headers": {"type": "object"}, "payload": self.schema(type_name, schema)}},
                "correlationId": {"location": "$message.payload#/correlationId"},
                "bindings": {"amqp": {"messageType": type_name, "bindingVersion": AMQP_BINDING_VERSION}},
            }
        return key

    # ------------------------------------------------------------------ channels and operations
    def queue_channel(self, queue: str, *, durable: bool = True, exclusive: bool = False,
                      auto_delete: bool = False, description: str | None = None) -> str:
        key = _id(queue)
        if key not in self.channels:
            ch: dict[str, Any] = {"address": queue, "messages": {}, "bindings": {"amqp": {
                "is": "queue", "queue": {"name": queue, "durable": durable, "exclusive": exclusive,
                                         "autoDelete": auto_delete, "vhost": self.vhost},
                "bindingVersion": AMQP_BINDING_VERSION}}}
            if description:
                ch["description"] = description
            self.channels[key] = ch
        return key

    def route_channel(self, exchange: str, routing_key: str | None, description: str) -> str:
        key = _id(f"{exchange or 'default'}--{routing_key or 'reply-address'}")
        if key not in self.channels:
            exchange_binding = {"name": exchange, "type": "topic" if exchange else "direct",
                                "durable": True, "autoDelete": False, "vhost": self.vhost}
            self.channels[key] = {"address": routing_key, "description": description, "messages": {},
                                  "bindings": {"amqp": {"is": "routingKey", "exchange": exchange_binding,
                                                        "bindingVersion": AMQP_BINDING_VERSION}}}
        return key

    def add_to(self, channel: str, message: str) -> dict[str, str]:
        self.channels[channel]["messages"][message] = _ref("components", "messages", message)
        return _ref("channels", channel, "messages", message)

    def operation(self, key: str, action: str, channel: str, messages: list[dict[str, str]], summary: str,
                  reply: dict[str, Any] | None = None) -> None:
        op: dict[str, Any] = {"action": action, "channel": _ref("channels", channel), "summary": summary,
                              "messages": messages}
        amqp: dict[str, Any] = {"ack": True} if action == "receive" else {"deliveryMode": 2}
        op["bindings"] = {"amqp": {**amqp, "bindingVersion": AMQP_BINDING_VERSION}}
        if reply is not None:
            op["reply"] = reply
        self.operations[_id(key)] = op

    def endpoint(self, c: EndpointContract, route: tuple[str, str] | None = None) -> None:
        """The receive operation of one endpoint on its queue, with its reply and route."""
        queue = self.queue_channel(c.queue, description=f"Queue of service {c.service_name}")
        msg = self.message(c.input_type, c.input_schema)
        in_ref = self.add_to(queue, msg)
        if route is not None:
            exchange, key = route
            rc = self.route_channel(exchange, key, f"Publish {c.input_type} here (exchange {exchange!r}, "
                                                   f"routing key {key!r}); bound to {c.queue}")
            self.add_to(rc, msg)
        reply = None
        if c.output_type and c.output_type != NO_OUTPUT:
            out = self.message(c.output_type, c.output_schema)
            replies = self.route_channel("", None, "Replies: to the queue named by the request's replyTo, "
                                                   "through the default exchange")
            reply = {"address": {"location": "$message.payload#/payload/replyTo",
                                 "description": "the reply address in the request payload (Go's replyTo)"},
                     "channel": _ref("channels", replies), "messages": [self.add_to(replies, out)]}
        summary = c.description or f"Handles {c.input_type} messages"
        self.operation(f"{c.service_name}--receive-{c.input_type}", "receive", queue, [in_ref],
                       f"{summary} (endpoint {c.endpoint_id} {c.version})", reply)

    def discovery(self, service: str) -> None:
        """The announcement and discovery channels a service with discovery running uses."""
        ann = self.message("ContractAnnouncement", schema_of(ContractAnnouncement))
        ch = self.route_channel(CONTRACTS_EXCHANGE, ANNOUNCE_KEY, "Contract announcements of every service")
        self.operation(f"{service}--announce-contracts", "send", ch, [self.add_to(ch, ann)],
                       "Announce this service's contracts (at start, on changes, periodically, at stop)")
        req = self.message("ContractDiscoveryRequest", schema_of(ContractDiscoveryRequest))
        resp = self.message("ContractDiscoveryResponse", schema_of(ContractDiscoveryResponse))
        q = self.queue_channel(DISCOVER_QUEUE, description="Discovery requests (shared by all services)")
        replies = self.route_channel("", None, "Replies: to the queue named by the request's replyTo, "
                                               "through the default exchange")
        self.operation(f"{service}--answer-discovery", "receive", q, [self.add_to(q, req)],
                       "Answer discovery requests with the matching contracts",
                       {"address": {"location": "$message.payload#/replyTo"},
                        "channel": _ref("channels", replies), "messages": [self.add_to(replies, resp)]})

    def build(self) -> dict[str, Any]:
        self.doc["channels"] = self.channels
        self.doc["operations"] = self.operations
        self.doc["components"] = {"schemas": dict(sorted(self.schemas.items())),
                                  "messages": dict(sorted(self.messages.items()))}
        return self.doc


def asyncapi_document(contracts: Iterable[EndpointContract], *, title: str = "Mmate contracts",
                      version: str = "1.0.0", description: str | None = None,
                      server_url: str | Sequence[str] | None = None,
                      routes: Mapping[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """An AsyncAPI 3.0 document (a JSON-ready dict) of endpoint contracts: one receive operation per
    contract on its queue, with its reply; ``routes``: endpoint id -> (exchange, routing key) where
    its input type is published."""
    d = _Doc(title, version, description, server_url)
    for c in sorted(contracts, key=lambda c: (c.service_name, c.endpoint_id)):
        d.endpoint(c, (routes or {}).get(c.endpoint_id))
    return d.build()


def asyncapi(client: Any, *, title: str | None = None, version: str = "1.0.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of a Client's service (see the module docstring)."""
    service = client.service_name
    registry = client.dispatcher.registry
    disc = client._discovery
    contracts: dict[str, EndpointContract] = {}
    routes: dict[str, tuple[str, str]] = {}
    for name in client.dispatcher.patterns():
        cls = registry.resolve(name)
        if cls is None or getattr(cls, "__mmate_generic__", False):
            continue
        ep = endpoint_for(cls, service, client.service_queue, registry,
                          **({} if disc is None else {"version": disc.options.version,
                                                      "timeout": disc.options.timeout,
                                                      "max_retries": disc.options.max_retries}))
        contracts[ep.endpoint_id] = ep
        binding = topology.binding_for(kind_of(cls), message_type(cls), service)
        if binding is not None:
            routes[ep.endpoint_id] = (binding.exchange, binding.routing_key)
    if disc is not None:
        for c in disc.local():
            contracts.setdefault(c.endpoint_id, c)
    d = _Doc(title or f"{service} (Mmate service)", version,
             f"Channels and messages of the Mmate service {service!r}", client.url)
    for c in sorted(contracts.values(), key=lambda c: c.endpoint_id):
        d.endpoint(c, routes.get(c.endpoint_id))
    if disc is not None and disc.started:
        d.discovery(service)
    return d.build()


__all__ = ["ASYNCAPI_VERSION", "asyncapi", "asyncapi_document"]
