"""Bad publish arguments and unencodable payloads raise named errors before anything is sent.

Issue 7 items 3 and 7: what RabbitMQ would refuse (closing the publishing channel) or the wire
cannot carry is refused at the Mmate level with InvalidArgumentError / SchedulingError naming the
argument; a payload JSON cannot carry raises PayloadEncodeError with the field path. Runs against
the compiled codecs and (ci/test.sh) the pure-Python twins.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.contracts import Command, Event, GenericMessage, to_payload
from mmate_fast.messaging import topology
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import Publisher
from mmate_fast.reliability.circuit_breaker import CircuitBreaker
from mmate_fast.reliability.retry import ExponentialBackoff, FixedDelay
from mmate_fast.reliability.scheduling import delay_name
from mmate_fast.reliability.ttl_retry import delay_queue_name
from mmate_fast.shutdown import GracefulShutdown


@dataclass
class NeOrderPlaced(Event):
    order_id: str = "o-1"
    amount: float = 1.5
    data: Any = None
    items: list[Any] = field(default_factory=list)


@dataclass
class NeNode(Event):
    child: Any = None


@dataclass
class NeShip(Command):
    order_id: str = "o-1"


LONG = "x" * 256
FOUR_BYTES = "😀" * 64  # 64 characters, 256 bytes of UTF-8


def _prepare(msg: Any = None, **options: Any) -> tuple[str, str, Any]:
    return Publisher(None).prepare(msg if msg is not None else NeOrderPlaced(aggregate_id="a-1"), **options)


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(("options", "argument"), [
    ({"ttl": -1}, "ttl"),
    ({"ttl": -0.0001}, "ttl"),
    ({"ttl": float("nan")}, "ttl"),
    ({"ttl": float("inf")}, "ttl"),
    ({"ttl": "5"}, "ttl"),
    ({"ttl": 10 * 366 * 86400}, "ttl"),  # beyond RabbitMQ's ten years: 406 invalid expiration
    ({"priority": 300}, "priority"),
    ({"priority": 256}, "priority"),
    ({"priority": -1}, "priority"),
    ({"priority": 1.5}, "priority"),
    ({"priority": True}, "priority"),
    ({"exchange": LONG}, "exchange"),
    ({"exchange": FOUR_BYTES}, "exchange"),
    ({"exchange": "bad\ud800"}, "exchange"),
    ({"exchange": 5}, "exchange"),
    ({"routing_key": LONG}, "routing_key"),
    ({"routing_key": "rk\udfff"}, "routing_key"),
    ({"reply_to": LONG}, "reply_to"),
    ({"correlation_id": LONG}, "correlation_id"),
    ({"correlation_id": "c\ud800"}, "correlation_id"),
    ({"headers": {LONG: "v"}}, f"headers[{LONG[:40]!r}]"),
    ({"headers": {"k": 2**70}}, "headers['k']"),  # JSON carries it, an AMQP table does not
    ({"headers": {"k": object()}}, "headers['k']"),
    ({"headers": {"k": float("nan")}}, "headers['k']"),
    ({"headers": {"k": "v\ud800"}}, "headers['k']"),
    ({"headers": {1: "v"}}, "headers"),
])
def test_bad_publish_arguments_are_invalid_argument_errors(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:
        _prepare(**options)
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)  # ``except ValueError`` keeps working


@pytest.mark.parametrize("msg", [
    NeOrderPlaced(id=LONG),
    NeOrderPlaced(id=5),  # type: ignore[arg-type]
    NeOrderPlaced(aggregate_id=LONG),  # routing key evt.{aggregate}.{type}
    NeShip(target_service=LONG),  # routing key cmd.{service}.{type}
    GenericMessage(type=LONG),
])
def test_bad_message_fields_are_invalid_argument_errors(msg: Any) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        _prepare(msg)


def test_priority_and_ttl_in_range_are_accepted() -> None:
    _, _, out = _prepare(priority=255, ttl=0.0004)  # a positive ttl below 1 ms: 1 ms, never "no ttl"
    assert b"\x011" in out.properties  # expiration "1"
    _prepare(priority=0, ttl=0)
    _prepare(exchange="x" * 255, routing_key="é" * 127, reply_to="r" * 255, correlation_id="c" * 255)


@pytest.mark.parametrize("delay", [-1, -0.5, float("nan"), float("inf"), "1"])
def test_bad_delay_is_a_scheduling_error(delay: Any) -> None:
    with pytest.raises(errors.SchedulingError):
        _prepare(delay=delay)
    with pytest.raises(errors.SchedulingError):
        build(NeOrderPlaced(), delay_ms=delay if not isinstance(delay, float | int) else delay * 1000)


def test_build_checks_its_own_arguments() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="ttl_ms"):
        build(NeOrderPlaced(), ttl_ms=-1000)
    with pytest.raises(errors.InvalidArgumentError, match="priority"):
        build(NeOrderPlaced(), priority=300)
    with pytest.raises(errors.ContractError, match="timestamp"):
        build(NeOrderPlaced(timestamp="yesterday"))  # type: ignore[arg-type]


def test_a_refused_publish_leaves_the_next_one_working() -> None:
    p = Publisher(None)
    with pytest.raises(errors.InvalidArgumentError):
        p.prepare(NeOrderPlaced(), priority=300)
    with pytest.raises(errors.PayloadEncodeError):
        p.prepare(NeOrderPlaced(amount=float("nan")))
    _, _, out = p.prepare(NeOrderPlaced(), priority=3)
    assert out.type_name == "NeOrderPlaced"


# --------------------------------------------------------------------------- payloads
def _cyclic_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"ok": 1}
    d["self"] = d
    return d


def _cyclic_list() -> list[Any]:
    lst: list[Any] = [1]
    lst.append(lst)
    return lst


def _cyclic_node() -> NeNode:
    n = NeNode()
    n.child = NeNode(child=n)
    return n


@pytest.mark.parametrize(("make", "path", "reason"), [
    (lambda: NeOrderPlaced(data=_cyclic_dict()), "NeOrderPlaced.data['self']", "itself"),
    (lambda: NeOrderPlaced(items=[0, _cyclic_list()]), "NeOrderPlaced.items[1][1]", "itself"),
    (_cyclic_node, "NeNode.child.child", "itself"),
    (lambda: NeOrderPlaced(data={"when": object()}), "NeOrderPlaced.data['when']", "object"),
    (lambda: NeOrderPlaced(amount=float("nan")), "NeOrderPlaced.amount", "NaN"),
    (lambda: NeOrderPlaced(items=[1.0, float("-inf")]), "NeOrderPlaced.items[1]", "Inf"),
    (lambda: NeOrderPlaced(data={1: "one"}), "NeOrderPlaced.data", "key of type int"),
    (lambda: NeOrderPlaced(data={"s": "bad\ud800"}), "NeOrderPlaced.data['s']", "UTF-8"),
    (lambda: GenericMessage(type="NeGeneric", payload=_cyclic_dict()), "NeGeneric.payload['self']", "itself"),
    (lambda: GenericMessage(type="NeGeneric", payload={"a": [{"b": {2, object()}}]}),
     "NeGeneric.payload['a'][0]['b'][...]", "object"),
])
@pytest.mark.parametrize("headers", [None, {"tenant": "t-1"}])  # template path and general path
def test_unencodable_payload_is_a_payload_encode_error(make: Any, path: str, reason: str,
                                                        headers: dict[str, str] | None) -> None:
    with pytest.raises(errors.PayloadEncodeError) as info:
        _prepare(make(), headers=headers)
    assert info.value.path == path
    assert reason in str(info.value)
    assert isinstance(info.value, errors.ContractError | TypeError)


def test_deep_nesting_is_a_payload_encode_error() -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = [deep]
    with pytest.raises(errors.PayloadEncodeError, match="nested deeper"):
        _prepare(NeOrderPlaced(data=deep))


def test_to_payload_names_a_cycle() -> None:
    with pytest.raises(errors.PayloadEncodeError, match=r"NeNode\.child\.child: refers to itself"):
        to_payload(_cyclic_node())


def test_pydantic_cycle_is_a_payload_encode_error() -> None:
    pytest.importorskip("pydantic")
    from mmate_fast.contracts import PydanticEvent

    class NePydanticEvent(PydanticEvent):
        data: Any = None

    d: dict[str, Any] = {}
    d["d"] = d
    with pytest.raises(errors.PayloadEncodeError, match="refers to itself"):
        _prepare(NePydanticEvent(data=d))


def test_valid_payloads_still_encode() -> None:
    _, _, out = _prepare(NeOrderPlaced(data={"when": datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC),
                                             "big": 2**70, "shared": [[1], [1]]}))
    assert b'"big":1180591620717411303424' in out.body


# --------------------------------------------------------------------------- queue and exchange names
@pytest.mark.parametrize(("make", "argument"), [
    (lambda: topology.service_queue("s" * 250), "service_name"),
    (lambda: topology.service_queue("amq.orders"), "service_name"),
    (lambda: topology.service_queue("orders\n"), "service_name"),
    (lambda: topology.service_queue("bad\ud800"), "service_name"),
    (lambda: topology.service_queue(None), "service_name"),
    (lambda: topology.dead_letter_queue("q" * 252), "queue"),
    (lambda: delay_queue_name("q" * 245, 1000), "queue"),
    (lambda: delay_queue_name("amq.gen-abc", 1000), "queue"),
    (lambda: delay_name("x" * 240, 1000), "exchange"),
])
def test_names_rabbitmq_refuses_are_invalid_argument_errors(make: Any, argument: str) -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:
        make()
    assert info.value.argument == argument


def test_names_rabbitmq_accepts_pass() -> None:
    assert topology.service_queue("s" * 249) == "s" * 249 + "-queue"
    assert topology.service_queue("AMQ.upper ok/é") == "AMQ.upper ok/é-queue"
    assert topology.dead_letter_queue("amq.gen-abc") == "dlq.amq.gen-abc"


def test_bridge_reply_queue_name_is_checked() -> None:
    from mmate_fast.bridge import Bridge

    with pytest.raises(errors.InvalidArgumentError) as info:
        Bridge(None, Publisher(None), reply_queue="amq.replies")
    assert info.value.argument == "reply_queue"


def test_something_that_is_no_message_keeps_its_contract_error() -> None:
    for not_a_message in (5, None, NeOrderPlaced):
        with pytest.raises(errors.ContractError) as info:
            Publisher(None).prepare(not_a_message)
        assert not isinstance(info.value, errors.PayloadEncodeError)


# --------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("make", [
    lambda: ExponentialBackoff(initial=-1),
    lambda: ExponentialBackoff(jitter=1.0),
    lambda: ExponentialBackoff(max_retries="3"),  # type: ignore[arg-type]
    lambda: FixedDelay(delay=float("nan")),
    lambda: CircuitBreaker(failure_threshold=0),
    lambda: CircuitBreaker(recovery_timeout=-1),
    lambda: GracefulShutdown([], deadline=0),
])
def test_bad_configuration_is_a_configuration_error(make: Any) -> None:
    with pytest.raises(errors.ConfigurationError):
        make()


def test_template_failures_are_named_too() -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:  # explicit route: the type name is the culprit
        _prepare(GenericMessage(type="T" * 256), exchange="x", routing_key="rk")
    assert info.value.argument == "type"
    with pytest.raises(errors.InvalidArgumentError) as info:
        Publisher(None, source="bad\ud800").prepare(NeOrderPlaced())
    assert info.value.argument == "headers['x-source']"
