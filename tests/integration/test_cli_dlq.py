"""``mmate dlq list`` against any broker (issue 8 item 5).

The list comes from the RabbitMQ management HTTP API of the broker ``--url`` points at (never from
whatever node a local ``rabbitmqctl`` reaches); ``rabbitmqctl`` stands in only for the local node
when the API does not answer, and the output says which source was used. A throw-away node with the
management plugin on a port of its own is the "other broker"; the shared broker on 5672 has the
plugin on 15672 (``ci/broker.sh``). Errors end with a message and exit code 1, never a traceback.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mmate_fast.amqp.url import parse_url
from mmate_fast.cli import main
from tests.integration import broker_node
from tests.integration.broker_node import BrokerNode, amqp_answers, free_port
from tests.integration.conftest import AMQP_URL

SHARED_API = "http://127.0.0.1:15672/"
#: seconds the broker may take to publish queue statistics to the API (5 s by default)
STATS_WAIT = 20.0


# ---------------------------------------------------------------------------- helpers
async def _fill_async(url: str, queue: str, n: int) -> None:
    from mmate_fast.transports import connect

    conn = await connect(url)
    try:
        ch = await conn.channel(publisher_confirms=True)
        await ch.queue_declare(queue, durable=True)
        for i in range(n):
            await ch.publish(f'{{"n":{i}}}'.encode(), "", queue)
    finally:
        await conn.close()


async def _delete_async(url: str, queues: tuple[str, ...]) -> None:
    from mmate_fast.transports import connect

    conn = await connect(url)
    try:
        for q in queues:
            ch = await conn.channel()
            await ch.queue_delete(q)
            await ch.close()
    finally:
        await conn.close()


def _fill(url: str, queue: str, n: int) -> None:
    """Declare durable ``queue`` on ``url`` and put ``n`` confirmed messages in it."""
    asyncio.run(_fill_async(url, queue, n))


def _delete(url: str, *queues: str) -> None:
    asyncio.run(_delete_async(url, queues))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``mmate ARGV`` -> (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _list_until(capsys: pytest.CaptureFixture[str], argv: list[str],
                done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Run ``mmate dlq list --json ARGV`` until ``done(result)`` (bounded: the API's queue statistics
    are refreshed every few seconds); the last result."""
    deadline = time.monotonic() + STATS_WAIT
    while True:
        code, out, err = _run(capsys, "dlq", "list", "--json", *argv)
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def _has(result: dict[str, Any], queue: str, messages: int) -> bool:
    return {"queue": queue, "messages": messages} in result["queues"]


def _assert_clean_error(code: int, out: str, err: str, *secrets: str) -> None:
    assert code == 1, (out, err)
    assert err.startswith("mmate dlq: error: ") and "Traceback" not in err
    for secret in secrets:
        assert secret not in out + err


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture
def shared_dlq() -> Iterator[str]:
    """``dlq.cli-*`` with 3 messages on the shared broker, deleted afterwards."""
    queue = f"dlq.cli-{uuid.uuid4().hex[:10]}"
    _fill(AMQP_URL, queue, 3)
    try:
        yield queue
    finally:
        _delete(AMQP_URL, queue)


def _http_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/overview", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 401: it answers
    except OSError:
        return False


def _start_management_node() -> BrokerNode:
    return broker_node.start(
        kind="mgmt", extra_ports=("http",), plugins=("rabbitmq_management",),
        configure=lambda node: [f"management.tcp.port = {node.ports['http']}", "management.tcp.ip = 127.0.0.1",
                                "collect_statistics_interval = 500"],
        ready=lambda node: amqp_answers(node.amqp_port) and _http_answers(node.ports["http"]))


@pytest.fixture(scope="module")
def mgmt_node() -> Iterator[BrokerNode]:
    """A throw-away node with the management plugin on a port of its own (not 15672)."""
    yield from broker_node.running(_start_management_node)


def _api_of(node: BrokerNode) -> str:
    return f"http://127.0.0.1:{node.ports['http']}/"


# ---------------------------------------------------------------------------- the management API
def test_list_uses_the_management_api_with_counts(shared_dlq: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The shared broker's DLQs come from its API: no rabbitmqctl on PATH, and the output says so."""
    monkeypatch.setenv("PATH", "/nonexistent")  # rabbitmqctl cannot be what lists them
    result = _list_until(capsys, ["--url", AMQP_URL], lambda r: _has(r, shared_dlq, 3))
    assert _has(result, shared_dlq, 3), result
    assert result["source"] == "management-api" and result["management_url"] == SHARED_API
    assert result["vhost"] == "/"
    assert all(row["queue"].startswith("dlq.") for row in result["queues"])
    code, out, err = _run(capsys, "dlq", "list", "--url", AMQP_URL)
    assert code == 0, err
    assert re.search(rf"^{re.escape(shared_dlq)} +3$", out, re.M), out
    assert f"source: RabbitMQ management API at {SHARED_API} (vhost /)" in out


def test_list_takes_a_cluster_url(shared_dlq: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A multi-node URL (issue 12): the DLQs are listed from its first node's management API."""
    cluster = f"amqp://guest:guest@127.0.0.1:5672,127.0.0.1:{free_port()}/"
    result = _list_until(capsys, ["--url", cluster], lambda r: _has(r, shared_dlq, 3))
    assert _has(result, shared_dlq, 3) and result["management_url"] == SHARED_API, result


def test_list_follows_url_to_another_node(mgmt_node: BrokerNode, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The case that was broken: ``--url`` at a node holding 1,000 dead letters listed the local
    node's queues instead (and printed "no dead-letter queues" where it had none)."""
    from mmate_fast.cli import _management

    tag = uuid.uuid4().hex[:10]
    expected = {f"dlq.cli-node-{tag}-{i}": n for i, n in enumerate((1000, 0, 2))}
    queues = list(expected)
    for queue, n in expected.items():
        _fill(mgmt_node.url, queue, n)
    _fill(mgmt_node.url, f"cli-node-{tag}", 1)  # not a DLQ: not listed
    monkeypatch.setattr(_management, "PAGE_SIZE", 2)  # the queues come in several pages
    try:
        argv = ["--url", mgmt_node.url, "--management-url", _api_of(mgmt_node)]
        result = _list_until(capsys, argv, lambda r: all(_has(r, q, n) for q, n in expected.items()))
        assert result["queues"] == [{"queue": q, "messages": n} for q, n in expected.items()], result
        assert result["source"] == "management-api" and result["management_url"] == _api_of(mgmt_node)
        # the API's own counts (a new queue has none for a moment: the list counts it over AMQP then)
        api = _management.ManagementAPI(_management.endpoint_for(parse_url(mgmt_node.url), _api_of(mgmt_node)))
        deadline = time.monotonic() + STATS_WAIT
        while True:
            counts = {row["name"]: row.get("messages") for row in api.queues("/", r"^dlq\.cli-node-")}
            if counts == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert counts == expected
    finally:
        _delete(mgmt_node.url, *queues, f"cli-node-{tag}")


def test_management_url_option_after_the_subcommand_and_credentials_in_it(
        mgmt_node: BrokerNode, capsys: pytest.CaptureFixture[str]) -> None:
    """``--management-url`` may carry its own user (and is never echoed with the password)."""
    url = _api_of(mgmt_node).replace("http://", "http://guest:guest@")
    code, out, err = _run(capsys, "dlq", "--url", mgmt_node.url, "list", "--json", "--management-url", url)
    assert code == 0, err
    result = json.loads(out)
    assert result["management_url"] == _api_of(mgmt_node) and "guest:guest" not in out


def test_derived_api_of_another_broker_is_refused(mgmt_node: BrokerNode,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Derived from ``--url`` the API is 127.0.0.1:15672, which belongs to the shared broker, not to
    the node on ``--url``: listing the shared broker's queues would be the old bug again."""
    code, out, err = _run(capsys, "dlq", "list", "--url", mgmt_node.url)
    _assert_clean_error(code, out, err)
    assert f"does not serve AMQP port {mgmt_node.amqp_port}" in err and "--management-url" in err
    assert out == ""


# ---------------------------------------------------------------------------- the rabbitmqctl fallback
def test_list_falls_back_to_rabbitmqctl_for_the_local_node(shared_dlq: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    code, out, err = _run(capsys, "dlq", "list", "--json", "--url", AMQP_URL, "--management-url", dead)
    assert code == 0, err
    result = json.loads(out)
    assert result["source"] == "rabbitmqctl" and _has(result, shared_dlq, 3), result
    assert dead in result["fallback_reason"] and "did not answer" in result["fallback_reason"]
    code, out, err = _run(capsys, "dlq", "list", "--url", AMQP_URL, "--management-url", dead)
    assert code == 0, err
    assert re.search(rf"^{re.escape(shared_dlq)} +3$", out, re.M), out
    assert re.search(r"^source: rabbitmqctl \(node \S+\); the management API at .* did not answer", out, re.M)


def test_fallback_never_lists_another_node(mgmt_node: BrokerNode, capsys: pytest.CaptureFixture[str]) -> None:
    """rabbitmqctl reaches the local default node: it must not stand in for the node on ``--url``."""
    dead = f"http://127.0.0.1:{free_port()}/"
    code, out, err = _run(capsys, "dlq", "list", "--url", mgmt_node.url, "--management-url", dead)
    _assert_clean_error(code, out, err)
    assert "did not answer" in err and f"does not serve AMQP port {mgmt_node.amqp_port}" in err


def test_fallback_without_rabbitmqctl(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    dead = f"http://127.0.0.1:{free_port()}/"
    code, out, err = _run(capsys, "dlq", "list", "--url", AMQP_URL, "--management-url", dead)
    _assert_clean_error(code, out, err)
    assert "did not answer" in err and "rabbitmqctl is not installed" in err
    assert "rabbitmq-plugins enable rabbitmq_management" in err


def test_named_queues_are_counted_when_nothing_lists(shared_dlq: str, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Queues named on the command line are counted over AMQP even when no source can list."""
    monkeypatch.setenv("PATH", "/nonexistent")
    dead = f"http://127.0.0.1:{free_port()}/"
    code, out, err = _run(capsys, "dlq", "list", "--json", shared_dlq, "--url", AMQP_URL, "--management-url", dead)
    assert code == 0, err
    result = json.loads(out)
    assert result["source"] == "named" and result["queues"] == [{"queue": shared_dlq, "messages": 3}]
    assert "did not answer" in result["fallback_reason"]


# ---------------------------------------------------------------------------- errors
def test_unreachable_api_of_a_remote_broker(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "dlq", "list", "--url", "amqp://guest:s3cret@mmate-no-such-host.invalid:5672/")
    _assert_clean_error(code, out, err, "s3cret")
    assert "management API at http://mmate-no-such-host.invalid:15672/ did not answer" in err
    assert "not the local node" in err and "--management-url" in err


def test_wrong_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    """The API answers 401: a clear error (no fallback to rabbitmqctl, which would hide it)."""
    code, out, err = _run(capsys, "dlq", "list", "--url", "amqp://guest:wr0ng@127.0.0.1:5672/")
    _assert_clean_error(code, out, err, "wr0ng")
    assert f"management API at {SHARED_API} refused the login of user 'guest'" in err and "401" in err
    code, out, err = _run(capsys, "dlq", "list", "--url", AMQP_URL,
                          "--management-url", "http://guest:wr0ng@127.0.0.1:15672/")
    _assert_clean_error(code, out, err, "wr0ng")
    assert "refused the login of user 'guest'" in err


def test_unknown_vhost(capsys: pytest.CaptureFixture[str]) -> None:
    vhost = f"cli-no-such-vhost-{uuid.uuid4().hex[:6]}"
    code, out, err = _run(capsys, "dlq", "list", "--url", f"{AMQP_URL}{vhost}")
    _assert_clean_error(code, out, err)
    assert f"vhost {vhost!r} does not exist" in err
