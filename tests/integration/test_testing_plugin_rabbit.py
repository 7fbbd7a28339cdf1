"""The pytest plugin's ``mmate_rabbit_client`` on the real broker, run as a user's project runs it
(pytester subprocess on the README's example; the memory fixtures: tests/unit/test_testing_plugin.py)."""
from __future__ import annotations

import pytest

from tests.integration.conftest import AMQP_URL
from tests.unit.test_testing_plugin import run_example

pytestmark = pytest.mark.integration


def test_rabbit_fixture_runs_on_the_broker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_example(pytester, monkeypatch, "--mmate-url", AMQP_URL, "-k", "rabbitmq")
    result.assert_outcomes(passed=1, deselected=2)
