"""The ``mmate`` command line: demo on the embedded broker and on RabbitMQ, errors, --version, the dlq
command's wiring, exit codes and management API address (its broker tests: tests/integration/test_cli_dlq.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

import mmate_fast
from mmate_fast import errors
from mmate_fast.amqp.url import parse_url
from mmate_fast.cli import main
from mmate_fast.cli._management import endpoint_for, is_local

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _field(out: str, label: str) -> int:
    m = re.search(rf"\b{label} (\d+)", out)
    assert m is not None, f"{label!r} not in summary:\n{out}"
    return int(m.group(1))


def _check_summary(out: str, orders: int, bad: int) -> None:
    assert "order pipeline finished" in out
    assert _field(out, "sent") == orders
    assert _field(out, "completed") == orders - bad
    assert _field(out, "rejected") == bad
    assert re.search(rf"dead letter {bad} in dlq\.demo-orders-\w+-queue, x-mmate-reason=handler-error", out)
    assert _field(out, "orders") == orders  # handled by the orders service
    assert _field(out, "inventory") == orders - bad
    assert _field(out, "billing") == orders - bad
    assert _field(out, "notifications") == 2 * (orders - bad)
    assert re.search(r"p50 [\d.]+ ms\s+p99 [\d.]+ ms", out)
    assert "messages/s" in out and "orders/s" in out


def test_demo_memory_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--orders", "200", "--quiet"]) == 0
    captured = capsys.readouterr()
    _check_summary(captured.out, 200, 2)
    assert "embedded in-memory broker" in captured.out
    assert captured.err == ""  # quiet: no progress, no library log lines


def test_demo_memory_competing_instances_and_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--orders", "300", "--services", "2", "--bad-every", "50"]) == 0
    captured = capsys.readouterr()
    _check_summary(captured.out, 300, 6)
    assert re.search(r"orders 300 \(\d+\+\d+\)", captured.out)
    # stderr is not a terminal here: a few plain progress lines, no ANSI bar
    assert "progress: 300/300 orders finished (100%)" in captured.err
    assert "\x1b[" not in captured.err and "Traceback" not in captured.err


def test_demo_without_bad_orders_has_no_dead_letter_queue(capsys: pytest.CaptureFixture[str]) -> None:
    """The DLQ is declared on the first failure: a run where nothing fails finds none, and says 0."""
    assert main(["demo", "--orders", "40", "--bad-every", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert _field(out, "completed") == 40 and _field(out, "rejected") == 0
    assert re.search(r"dead letter 0 in dlq\.demo-orders-\w+-queue\n", out)


@pytest.mark.integration
@pytest.mark.skipif(os.environ.get("MMATE_SKIP_BROKER") == "1", reason="MMATE_SKIP_BROKER=1")
def test_demo_rabbitmq(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--url", AMQP_URL, "--orders", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    _check_summary(out, 200, 2)
    assert "RabbitMQ" in out and "guest@127.0.0.1:5672" in out and "guest:guest" not in out


@pytest.mark.integration
@pytest.mark.skipif(os.environ.get("MMATE_SKIP_BROKER") == "1", reason="MMATE_SKIP_BROKER=1")
async def test_demo_rabbitmq_leaves_no_queues() -> None:
    from mmate_fast.demo import DemoConfig, run_demo
    from mmate_fast.messaging import topology
    from mmate_fast.transports import connect

    result = await run_demo(DemoConfig(url=AMQP_URL, orders=50, bad_every=10))
    assert (result.completed, result.rejected, result.dead_letter_count) == (45, 5, 5)
    conn = await connect(AMQP_URL)
    try:
        for name in result.service_names.values():
            q = topology.service_queue(name)
            for queue in (q, topology.dead_letter_queue(q)):
                ch = await conn.channel()
                with pytest.raises(mmate_fast.NotFoundError):
                    await ch.queue_declare(queue, passive=True)
    finally:
        await conn.close()


def test_demo_unreachable_broker_exits_1_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--url", "amqp://guest:secret@127.0.0.1:1/", "--orders", "10", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "mmate demo: error: cannot connect to amqp://guest@127.0.0.1:1/" in captured.err
    assert "Traceback" not in captured.err and "secret" not in captured.err
    assert captured.out == ""


def test_demo_bad_url_scheme_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--url", "nats://localhost", "--quiet"]) == 1
    assert "unsupported URL scheme 'nats'" in capsys.readouterr().err


def test_demo_timeout_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--orders", "200000", "--timeout", "0.2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "did not finish within 0.2 s" in err and "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"mmate {mmate_fast.__version__} (mmate_fast; compiled extensions:")


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "COMMAND" in out


def test_no_subcommand_and_bad_option_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["demo", "--orders", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_dlq_subcommand_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list", "--url", "memory://cli-dlq-test"]) == 0
    assert capsys.readouterr().out == "no dead-letter queues\nsource: the embedded broker memory://cli-dlq-test\n"
    assert main(["dlq", "list", "--json", "--url", "memory://cli-dlq-test"]) == 0
    assert json.loads(capsys.readouterr().out) == {"source": "embedded", "broker": "memory://cli-dlq-test",
                                                   "vhost": "/", "queues": []}
    assert main(["dlq", "show", "dlq.missing", "--url", "memory://cli-dlq-test"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mmate dlq: error: ") and "404" in err
    assert main(["--help"]) == 0
    assert "dlq" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["dlq"], ["dlq", "show", "q", "--limit", "0"], ["dlq", "replay", "q", "--limit", "x"],
                                  ["dlq", "list", "--url", "nats://x"], ["dlq", "list", "--management-url", "ftp://x"],
                                  ["dlq", "list", "--url", "amqp://h:99999/"]])
def test_dlq_bad_use_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_console_script_runs_cli_main() -> None:
    """pyproject's ``mmate`` script is ``mmate_fast.cli:main``, the package's dispatcher; the old
    module of the dlq command is gone (command-line code lives only in ``mmate_fast.cli``)."""
    import importlib.util
    import tomllib
    from pathlib import Path

    import mmate_fast.cli

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    module, _, attr = pyproject["project"]["scripts"]["mmate"].partition(":")
    assert getattr(importlib.import_module(module), attr) is mmate_fast.cli.main
    assert importlib.util.find_spec("mmate_fast.reliability.dlq_cli") is None
    names = [cmd.__name__ for cmd in mmate_fast.cli.COMMANDS]
    assert names[:3] == ["mmate_fast.cli.demo", "mmate_fast.cli.dlq", "mmate_fast.cli.flows"]
    assert all(name.startswith("mmate_fast.cli.") for name in names) and len(set(names)) == len(names)
    assert "mmate_fast.cli.contracts" in names
    assert "mmate_fast.cli.health" in names


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "mmate_fast.cli", "--version"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.startswith(f"mmate {mmate_fast.__version__} ")


# ---------------------------------------------------------------------------- management API address
def test_management_endpoint_derived_from_the_amqp_url() -> None:
    ep = endpoint_for(parse_url("amqp://ops:pa%3Ass@broker.example:5673/prod"))
    assert (ep.url, ep.username, ep.password, ep.derived) == ("http://broker.example:15672/", "ops", "pa:ss", True)
    assert "pa:ss" not in repr(ep) and ep.ssl_context is None
    assert endpoint_for(parse_url("amqp://[::1]:5672/")).url == "http://[::1]:15672/"
    assert endpoint_for(parse_url("amqp://")).url == "http://127.0.0.1:15672/"


def test_management_endpoint_for_amqps_is_https_with_the_urls_tls_settings() -> None:
    params = parse_url("amqps://u:p@rabbit.example/?verify=verify_none")
    ep = endpoint_for(params)
    assert ep.url == "https://rabbit.example:15671/" and ep.ssl_context is params.ssl_context


def test_management_endpoint_given() -> None:
    params = parse_url("amqp://u:p@127.0.0.1:5672/")
    ep = endpoint_for(params, "http://admin:s3cret@mgmt.example:8080/rabbitmq")
    assert (ep.url, ep.username, ep.password, ep.derived) == ("http://mgmt.example:8080/rabbitmq/", "admin",
                                                              "s3cret", False)
    assert endpoint_for(params, "http://mgmt.example:8080").username == "u"  # no user: --url's
    assert endpoint_for(params, "http://admin@mgmt.example/").password == ""
    assert endpoint_for(params, "https://mgmt.example/").ssl_context is not None
    for bad in ("ftp://mgmt.example/", "mgmt.example:15672", "http://mgmt.example:99999/", "http://h/?x=1"):
        with pytest.raises(errors.InvalidURLError) as info:
            endpoint_for(params, bad.replace("mgmt", "admin:s3cret@mgmt"))
        assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(("host", "local"), [("127.0.0.1", True), ("127.0.1.1", True), ("localhost", True),
                                             ("::1", True), ("10.0.0.5", False), ("rabbit.example", False),
                                             ("localhost.example", False)])
def test_only_loopback_hosts_are_the_local_node(host: str, local: bool) -> None:
    assert is_local(host) is local


def test_management_api_does_not_follow_redirects_with_the_credentials() -> None:
    """urllib would send the Authorization header on to wherever a redirect points: a redirect is an
    error answer instead, and the other address sees no request."""
    import http.server
    import threading

    from mmate_fast.cli._management import ManagementAPI

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"{self.server.server_address[1]}{self.path} {self.headers.get('Authorization')}")
            if self.path.startswith("/api/"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/steal")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    servers = [http.server.HTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    first, other = servers
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        api = ManagementAPI(endpoint_for(parse_url("amqp://u:s3cret@127.0.0.1/"),
                                         f"http://127.0.0.1:{first.server_address[1]}/"), timeout=5)
        with pytest.raises(errors.ManagementAPIError) as info:
            api.get("overview")
        assert info.value.status == 302 and "s3cret" not in str(info.value)
        assert len(seen) == 1 and seen[0].startswith(f"{first.server_address[1]}/api/overview Basic ")
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_contracts_subcommand_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "list", "--url", "memory://cli-contracts-test", "--json", "--wait", "0.1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"contracts": []}
    assert main(["contracts", "show", "x.Y", "--url", "memory://cli-contracts-test", "--wait", "0.1"]) == 1
    assert capsys.readouterr().err.startswith("mmate contracts: error: no endpoint 'x.Y'")
    assert main(["contracts", "export", "--format", "yaml"]) == 2
