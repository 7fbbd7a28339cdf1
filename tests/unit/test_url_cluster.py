"""Several broker addresses (issue 12 item 1): parsing a host list or a list of URLs, the order nodes
are tried in, and what errors and safe URLs say; quorum-queue arguments (item 2)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from mmate_fast import errors
from mmate_fast.amqp import connect, parse_url, parse_urls
from mmate_fast.amqp.robust import RobustConnection, connect_robust
from mmate_fast.amqp.url import ConnectionParameters, connect_order, safe_urls
from mmate_fast.messaging import topology


def test_host_list_gives_one_node_each_with_the_shared_user_vhost_and_options() -> None:
    nodes = parse_urls("amqp://u:p%40ss@h1:5672,h2:5673,h3/my%2Fvhost?heartbeat=7&name=app")
    assert [(n.host, n.port) for n in nodes] == [("h1", 5672), ("h2", 5673), ("h3", 5672)]
    for n in nodes:
        assert (n.username, n.password, n.virtual_host, n.heartbeat, n.connection_name) == (
            "u", "p@ss", "my/vhost", 7, "app")


def test_list_of_urls_and_parameters_keep_their_order() -> None:
    ready = ConnectionParameters(host="h9", port=9)
    nodes = parse_urls(["amqp://a:b@h1:1/", "amqp://c:d@h2:2,h3:3/v", ready])
    assert [(n.host, n.port, n.username) for n in nodes] == [
        ("h1", 1, "a"), ("h2", 2, "c"), ("h3", 3, "c"), ("h9", 9, "guest")]
    assert nodes[-1] is ready


def test_ipv6_hosts_in_a_list() -> None:
    nodes = parse_urls("amqp://[::1]:5672,[fe80::2]:5673/")
    assert [(n.host, n.port) for n in nodes] == [("::1", 5672), ("fe80::2", 5673)]
    assert safe_urls(nodes) == "amqp://guest@[::1]:5672,[fe80::2]:5673/"


@pytest.mark.parametrize("bad", ["amqp://h1,,h2/", "amqp://h1,/", "amqp://,h2/"])
def test_empty_address_in_the_list_is_a_named_error(bad: str) -> None:
    with pytest.raises(errors.InvalidURLError, match="empty address"):
        parse_urls(bad)


def test_empty_list_and_non_strings_are_named_errors() -> None:
    with pytest.raises(errors.InvalidURLError, match="at least one"):
        parse_urls([])
    with pytest.raises(errors.InvalidURLError, match="URL string"):
        parse_urls([42])  # type: ignore[list-item]


def test_parse_url_of_one_node_refuses_a_list_with_a_hint() -> None:
    with pytest.raises(errors.InvalidURLError, match="parse_urls"):
        parse_url("amqp://h1,h2/")


def test_safe_urls_name_every_node_without_the_password() -> None:
    nodes = parse_urls("amqp://user:secret@h1:1,h2:2/vh")
    text = safe_urls(nodes)
    assert text == "amqp://user@h1:1,h2:2/vh"
    assert "secret" not in text and all("secret" not in repr(n) for n in nodes)


def test_shuffle_option() -> None:
    assert parse_urls("amqp://h1,h2/?shuffle=true")[0].shuffle is True
    assert parse_urls("amqp://h1,h2/?shuffle=0")[1].shuffle is False
    with pytest.raises(errors.InvalidURLError, match="shuffle"):
        parse_urls("amqp://h1,h2/?shuffle=maybe")


def test_connect_order_rounds_the_list_from_start_or_shuffles() -> None:
    nodes = parse_urls("amqp://h1,h2,h3,h4/")
    assert connect_order(nodes, 0) == [0, 1, 2, 3]
    assert connect_order(nodes, 2) == [2, 3, 0, 1]
    orders = {tuple(connect_order(nodes, 0, shuffle=True)) for _ in range(200)}
    assert len(orders) > 1 and all(sorted(o) == [0, 1, 2, 3] for o in orders)
    shuffled = parse_urls("amqp://h1,h2,h3,h4/?shuffle=true")
    assert len({tuple(connect_order(shuffled, 0)) for _ in range(200)}) > 1
    assert connect_order(shuffled, 0, shuffle=False) == [0, 1, 2, 3]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connect_to_no_answering_node_names_every_node() -> None:
    p1, p2 = _dead_port(), _dead_port()
    with pytest.raises(errors.BrokerUnreachableError) as info:
        await connect(f"amqp://guest:pw-secret@127.0.0.1:{p1},127.0.0.1:{p2}/", timeout=2)
    text = str(info.value)
    assert f"127.0.0.1:{p1}" in text and f"127.0.0.1:{p2}" in text and "2 nodes" in text
    assert "pw-secret" not in text
    with pytest.raises(errors.BrokerUnreachableError, match=str(p2)):
        await connect_robust([f"amqp://127.0.0.1:{p1}/", f"amqp://127.0.0.1:{p2}/"], timeout=2)


async def test_overrides_apply_to_every_node_and_unknown_ones_are_refused() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="no_such"):
        await connect("amqp://h1,h2/", no_such=1)
    with pytest.raises(errors.InvalidArgumentError, match="frame_max"):
        await connect_robust("amqp://h1,h2/", frame_max=5)


def test_robust_connection_knows_every_node() -> None:
    loop = asyncio.new_event_loop()
    try:
        robust = RobustConnection(parse_urls("amqp://u:pw@h1:1,h2:2/"), None, loop)  # type: ignore[arg-type]
        assert robust.params.host == "h1" and len(robust.nodes) == 2
        assert robust.safe_url() == "amqp://u@h1:1,h2:2/"
        assert "of 2 nodes" in repr(robust) and "pw" not in repr(robust)
    finally:
        loop.close()


# ---------------------------------------------------------------------- quorum-queue arguments
def test_classic_queues_carry_no_queue_type_argument_as_go_declares_them() -> None:
    assert topology.queue_arguments("q") is None
    assert topology.queue_arguments("q", "classic", None, {"x-message-ttl": 5}) == {"x-message-ttl": 5}


def test_quorum_arguments_with_a_delivery_limit_dead_letter_to_the_dlq() -> None:
    assert topology.queue_arguments("q", "quorum") == {"x-queue-type": "quorum"}
    assert topology.queue_arguments("q", "quorum", 5) == {
        "x-queue-type": "quorum", "x-delivery-limit": 5, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "dlq.q"}
    # a queue that names its own dead-letter target keeps it
    own = {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "k"}
    assert topology.queue_arguments("q", "quorum", 3, own) == {**own, "x-queue-type": "quorum",
                                                               "x-delivery-limit": 3}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"queue_type": "stream"}, "queue_type"),
    ({"queue_type": "quorum", "durable": False}, "durable"),
    ({"queue_type": "quorum", "exclusive": True}, "exclusive"),
    ({"queue_type": "quorum", "auto_delete": True}, "auto-delete"),
    ({"queue_type": "classic", "delivery_limit": 3}, "quorum"),
    ({"queue_type": "quorum", "delivery_limit": 0}, "at least 1"),
    ({"queue_type": "quorum", "delivery_limit": True}, "whole number"),
])
def test_bad_queue_type_combinations_are_named_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=match):
        topology.queue_arguments("q", **kwargs)  # type: ignore[arg-type]


def test_client_checks_queue_type_and_delivery_limit_up_front() -> None:
    from mmate_fast import Client

    with pytest.raises(errors.InvalidArgumentError, match="quorum"):
        Client("memory://", delivery_limit=3)
    with pytest.raises(errors.InvalidArgumentError, match="queue_type"):
        Client("memory://", queue_type="lazy")
    assert Client(["amqp://h1/", "amqp://h2/"], queue_type="quorum", delivery_limit=3).delivery_limit == 3


def test_asyncapi_lists_every_node_of_a_cluster_url() -> None:
    from mmate_fast.discovery._asyncapi import asyncapi_document

    servers = asyncapi_document([], server_url="amqp://u:secret@h1:1,h2/v")["servers"]
    assert [s["host"] for s in servers.values()] == ["h1:1", "h2:5672"]
    servers = asyncapi_document([], server_url=["amqp://h1/v", "amqps://h2/v"])["servers"]
    assert [s["protocol"] for s in servers.values()] == ["amqp", "amqps"]
    assert "secret" not in repr(servers)
