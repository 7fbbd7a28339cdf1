"""The pytest plugin of mmate_fast.testing, run the way a user's project runs it: pytester starts a
pytest subprocess on the README's example test file (tests/data/testing_plugin/orders_example.py) in
strict asyncio mode, with the plugin from its ``pytest11`` entry point (or ``-p`` where the installed
package predates it)."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tests.conftest import PLUGIN, _plugin_installed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "data" / "testing_plugin" / "orders_example.py"


def run_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    """pytest in a subprocess on a copy of the example (importing mmate_fast from this checkout)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MMATE_TEST_URL", raising=False)
    pytester.makepyfile(test_orders=EXAMPLE.read_text())
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    plugin = [] if _plugin_installed() else ["-p", PLUGIN]
    return pytester.runpytest_subprocess(*plugin, "-p", "no:cacheprovider", "-rs", *args, timeout=120)


def test_entry_point_is_declared() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"mmate": PLUGIN}


def test_memory_fixture_feed_and_capture(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_example(pytester, monkeypatch, "-k", "not rabbitmq")
    result.assert_outcomes(passed=2, deselected=1)


def test_rabbit_fixture_skips_when_no_broker_answers(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.broker_node import free_port

    port = free_port()
    monkeypatch.setenv("MMATE_TEST_URL", f"amqp://guest:secret@127.0.0.1:{port}/")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_orders=EXAMPLE.read_text())
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    plugin = [] if _plugin_installed() else ["-p", PLUGIN]
    result = pytester.runpytest_subprocess(*plugin, "-p", "no:cacheprovider", "-rs", "-k", "rabbitmq",
                                           timeout=120)
    result.assert_outcomes(skipped=1, deselected=2)
    result.stdout.fnmatch_lines([f"*no RabbitMQ answers at amqp://127.0.0.1:{port}/*--mmate-url*MMATE_TEST_URL*"])
    assert "secret" not in result.stdout.str()


def test_failed_expectations_are_test_failures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the helpers waited for and did not see fails the user's test with a message that says what
    was published instead; a type without a handler says how to register one."""
    pytester.makepyfile(test_expect=EXAMPLE.read_text() + '''

@dataclass
class OrderShipped(Event):
    order_id: str = ""


@dataclass
class CancelOrder(Command):
    order_id: str = ""


@pytest.mark.asyncio
async def test_expects_a_shipment(mmate_memory_client: Client) -> None:
    orders_service(mmate_memory_client)
    published = record_published(mmate_memory_client)
    await feed(mmate_memory_client, PlaceOrder(order_id="o-9", amount=2.0))
    await published.wait_for(OrderShipped, timeout=0.3)


@pytest.mark.asyncio
async def test_feeds_a_type_nobody_handles(mmate_memory_client: Client) -> None:
    orders_service(mmate_memory_client)
    await feed(mmate_memory_client, CancelOrder(order_id="o-9"))
''')
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    plugin = [] if _plugin_installed() else ["-p", PLUGIN]
    result = pytester.runpytest_subprocess(*plugin, "-p", "no:cacheprovider", "-k", "shipment or nobody",
                                           timeout=120)
    result.assert_outcomes(failed=2, deselected=3)
    result.stdout.fnmatch_lines([
        "*ObservationTimeout: expected 1 published OrderShipped, saw 0 within 0.3 s; published meanwhile: "
        "OrderPlaced -> mmate.events/evt.o-9.OrderPlaced*",
        "*UnknownMessageTypeError: service 'mmate-test-svc-*' has no handler for CancelOrder: register one "
        "(e.g. @client.handler(CancelOrder)) before feeding it one*"])
