"""Suite-wide test helpers: the event loop the asyncio tests run on, and unique broker names.

The loop is uvloop when it imports (that is what the library runs on in production), else the
stock asyncio loop. Choose with ``--loop=uvloop|asyncio`` or ``MMATE_TEST_LOOP=uvloop|asyncio``;
asking for uvloop where it does not import is an error, not a silent fallback.
"""
from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Mapping

import pytest
import pytest_asyncio.plugin as _pa_plugin

from mmate_fast import _ext

LOOPS = ("uvloop", "asyncio")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
    uvloop = None  # type: ignore[assignment]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--loop``; its default comes from MMATE_TEST_LOOP, then from what imports."""
    default = os.environ.get("MMATE_TEST_LOOP") or ("uvloop" if uvloop is not None else "asyncio")
    parser.addoption(
        "--loop",
        choices=LOOPS,
        default=default,
        help="event loop for the asyncio tests (env MMATE_TEST_LOOP; default: uvloop if importable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Reject a loop name we do not know, or uvloop where it is not installed."""
    loop = config.getoption("--loop")
    if loop not in LOOPS:
        raise pytest.UsageError(f"MMATE_TEST_LOOP={loop!r}: use one of {', '.join(LOOPS)}")
    if loop == "uvloop" and uvloop is None:
        raise pytest.UsageError("uvloop was asked for (--loop / MMATE_TEST_LOOP) but does not import")


def pytest_report_header(config: pytest.Config) -> str:
    """Say which loop and which codec implementation (compiled or twins) this run uses."""
    if _ext.NO_EXTENSIONS:
        ext = "pure-Python twins (MMATE_NO_EXTENSIONS=1)"
    elif _ext.REQUIRE_EXTENSIONS:
        ext = "compiled, required (MMATE_REQUIRE_EXTENSIONS=1)"
    else:
        ext = "compiled where built, else twins"
    return f"mmate_fast: event loop {config.getoption('--loop')}; extensions: {ext}"


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        assert uvloop is not None
        return uvloop.new_event_loop
    return asyncio.new_event_loop


if hasattr(getattr(_pa_plugin, "PytestAsyncioSpecs", None), "pytest_asyncio_loop_factories"):
    # pytest-asyncio >= 1.4: loop factories replace the deprecated event_loop_policy override.
    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        """Run every asyncio test on the chosen loop (one factory: test ids stay unchanged)."""
        name = config.getoption("--loop")
        return {name: _loop_factory(name)}

else:

    @pytest.fixture(scope="session")
    def event_loop_policy(pytestconfig: pytest.Config) -> asyncio.AbstractEventLoopPolicy:
        """Run every asyncio test on the chosen loop (older pytest-asyncio)."""
        if pytestconfig.getoption("--loop") == "uvloop":
            assert uvloop is not None
            return uvloop.EventLoopPolicy()
        return asyncio.DefaultEventLoopPolicy()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Return a maker of broker names unique to this call, e.g. ``unique_name("orders")``.

    Names look like ``mmate-test.orders.test_publish.1f0c...``: recognisable in the management UI,
    never shared between tests or runs. Tests still delete what they declare.
    """
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:40].strip("-")

    def make(prefix: str = "q") -> str:
        return f"mmate-test.{prefix}.{test}.{uuid.uuid4().hex}"

    return make
