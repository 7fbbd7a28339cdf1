"""AsyncAPI 3 documents (mmate_fast.discovery.asyncapi / asyncapi_document): valid against the official
AsyncAPI 3.0.0 JSON Schema (tests/data/asyncapi), parsed back (every reference resolves, operations use
their channel's messages), and the message schemas accept the bodies our publisher really writes."""
from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from referencing.jsonschema import DRAFT7

from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import Command, Event, Query, Reply, from_envelope, register
from mmate_fast.discovery import ASYNCAPI_VERSION, DiscoveryOptions, asyncapi, asyncapi_document
from mmate_fast.messaging.outgoing import build
from mmate_fast.transports.memory import reset_broker
from tests.vectors import VECTORS

_env = load("envelope")
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json")
                    .read_text())
OFFICIAL = jsonschema.Draft7Validator(SCHEMA)


@dataclass
class ApiLine:
    sku: str = ""
    qty: int = 0


@dataclass
class ApiGetCartQuery(Query):
    cart_id: str = ""


@dataclass
class ApiCartReply(Reply):
    lines: list[ApiLine] = field(default_factory=list)


@dataclass
class ApiCheckoutCommand(Command):
    cart_id: str = ""


@dataclass
class ApiCartEmptied(Event):
    cart_id: str = ""


register(ApiGetCartQuery, reply=ApiCartReply)
SAMPLES = [ApiGetCartQuery(cart_id="c1", reply_to="bridge.reply.12345678"),
           ApiCheckoutCommand(cart_id="c1", target_service="api-carts"),
           ApiCartEmptied(cart_id="c1", aggregate_id="c1", sequence=2)]


def problems(doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in OFFICIAL.iter_errors(doc)]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


async def service_document(discovery: bool) -> dict[str, Any]:
    reset_broker("asyncapi")
    opts = DiscoveryOptions() if discovery else False
    async with Client("memory://asyncapi", service_name="api-carts", discovery=opts) as c:
        c.add_handler(ApiGetCartQuery, lambda q: ApiCartReply())
        c.add_handler(ApiCheckoutCommand, lambda q: None)
        c.add_handler(ApiCartEmptied, lambda q: None)
        return asyncapi(c)


@pytest.mark.parametrize("discovery", [False, True])
async def test_service_document_is_valid_asyncapi_3(discovery: bool) -> None:
    doc = await service_document(discovery)
    assert doc["asyncapi"] == ASYNCAPI_VERSION == "3.0.0"
    assert problems(doc) == []
    assert json.loads(json.dumps(doc)) == doc  # plain JSON all the way
    assert ("api-carts--answer-discovery" in doc["operations"]) is discovery


async def test_the_official_schema_check_can_fail() -> None:
    doc = await service_document(False)
    for breaks in (lambda d: d["operations"]["api-carts--receive-ApiGetCartQuery"].update(action="take"),
                   lambda d: d.pop("info"),
                   lambda d: d["channels"]["api-carts-queue"].update(address=5)):
        bad = copy.deepcopy(doc)
        breaks(bad)
        assert problems(bad)


async def test_parsed_back_the_document_describes_the_service() -> None:
    doc = json.loads(json.dumps(await service_document(False)))
    for ref in refs(doc):
        resolve(doc, ref)  # every reference resolves
    ops, channels = doc["operations"], doc["channels"]
    assert set(ops) == {"api-carts--receive-ApiGetCartQuery", "api-carts--receive-ApiCheckoutCommand",
                        "api-carts--receive-ApiCartEmptied"}
    queue = channels["api-carts-queue"]
    assert queue["address"] == "api-carts-queue"
    assert queue["bindings"]["amqp"]["queue"]["durable"] is True
    for op in ops.values():
        assert op["action"] == "receive" and op["channel"] == {"$ref": "#/channels/api-carts-queue"}
        for m in op["messages"]:  # an operation's messages are its channel's
            assert m["$ref"].startswith("#/channels/api-carts-queue/messages/")
    reply = ops["api-carts--receive-ApiGetCartQuery"]["reply"]
    assert reply["address"]["location"] == "$message.payload#/payload/replyTo"
    assert resolve(doc, reply["channel"]["$ref"])["address"] is None
    assert [resolve(doc, m["$ref"]) for m in reply["messages"]] == [{"$ref": "#/components/messages/ApiCartReply"}]
    # where each type is published, as the service binds its queue
    routes = {c["address"]: c["bindings"]["amqp"]["exchange"]["name"] for c in channels.values()
              if c["bindings"]["amqp"]["is"] == "routingKey" and c["address"]}
    assert routes == {"qry.ApiGetCartQuery": "mmate.queries", "cmd.api-carts.ApiCheckoutCommand": "mmate.commands",
                      "evt.#.ApiCartEmptied": "mmate.events"}
    # nested classes became components, references rewritten
    assert "ApiLine" in doc["components"]["schemas"]
    cart = doc["components"]["schemas"]["ApiCartReply"]
    assert cart["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/ApiLine"}


async def test_message_schemas_accept_the_bodies_we_publish() -> None:
    doc = await service_document(False)
    registry = referencing.Registry().with_resource("urn:doc", referencing.Resource(doc, DRAFT7))
    bodies = [build(m).body for m in SAMPLES] + [build(ApiCartReply(lines=[ApiLine("a", 1)])).body]
    for body in bodies:
        env = json.loads(body)
        v = jsonschema.Draft7Validator({"$ref": f"urn:doc#/components/messages/{env['type']}/payload"},
                                       registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
        assert list(v.iter_errors(env)) == [], env["type"]
        env["payload"].pop(next(iter(env["payload"])))  # a required key gone: refused
        assert not v.is_valid(env)


def test_document_of_go_announced_contracts() -> None:
    msg = from_envelope(_env.decode_envelope(
        (VECTORS / "11-contract-announcement-ContractAnnouncement.body.json").read_bytes()))
    doc = asyncapi_document(msg.contracts, title="fleet", server_url="amqp://u:secret@broker:5672/prod")
    assert problems(doc) == []
    assert "secret" not in json.dumps(doc)
    assert doc["servers"]["rabbitmq"]["host"] == "broker:5672"
    [op] = doc["operations"].values()
    assert op["channel"] == {"$ref": "#/channels/mmate-peer-queue"}
    assert "baseQuery" in doc["components"]["schemas"]["GetOrderQuery"]["properties"]  # Go's schema, as announced
    assert doc["channels"]["mmate-peer-queue"]["bindings"]["amqp"]["queue"]["vhost"] == "prod"
