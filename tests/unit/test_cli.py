"""The ``mmate`` command line: demo on the embedded broker and on RabbitMQ, errors, --version."""
from __future__ import annotations

import os
import re

import pytest

import mmate_fast
from mmate_fast.cli import main

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
    assert "no dead-letter queues" in capsys.readouterr().out
    assert main(["dlq", "show", "dlq.missing", "--url", "memory://cli-dlq-test"]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "dlq" in capsys.readouterr().out
