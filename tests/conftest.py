"""Suite-wide test helpers: the event loop the asyncio tests run on, unique broker names, and the
guard against orphaned task exceptions.

The loop is uvloop when it imports (that is what the library runs on in production), else the
stock asyncio loop. Choose with ``--loop=uvloop|asyncio`` or ``MMATE_TEST_LOOP=uvloop|asyncio``;
asking for uvloop where it does not import is an error, not a silent fallback.

Orphans: a task or future whose exception nobody retrieved is a bug (an error that vanished; issue
7). asyncio logs "Task exception was never retrieved" / "Future exception was never retrieved" on
the ``asyncio`` logger when such an object is collected. A handler on that logger records these;
after every test the garbage is collected and the test during which one was logged fails (at
teardown, with the log record: under ``PYTHONASYNCIODEBUG=1``, as ci/test.sh runs the suite, it
includes where the task was created). Whatever is logged after the last test fails the session.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import uuid
from collections.abc import Callable, Generator, Mapping

import pytest
import pytest_asyncio.plugin as _pa_plugin

from mmate_fast import _ext

LOOPS = ("uvloop", "asyncio")
PLUGIN = "mmate_fast.testing.plugin"


def _plugin_installed() -> bool:
    """True when pytest loads our plugin by itself (mmate-fast installed with its ``pytest11`` entry
    point); an older install of the package lacks it: this conftest loads it then."""
    from importlib.metadata import entry_points

    return any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))


#: pytester runs the plugin's own tests (tests/unit/test_testing_plugin.py)
pytest_plugins = ["pytester"] + ([] if _plugin_installed() else [PLUGIN])

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
    """Reject a loop name we do not know, or uvloop where it is not installed; honour
    ``PYTHONASYNCIODEBUG`` (pytest-asyncio would otherwise run its loops with debug off)."""
    if os.environ.get("PYTHONASYNCIODEBUG") and config.getoption("asyncio_debug", None) is None:
        config.option.asyncio_debug = True
    config.stash[_DEBUG] = bool(config.getoption("asyncio_debug", None))
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
    debug = "on" if config.getoption("asyncio_debug", None) else "off"
    return f"mmate_fast: event loop {config.getoption('--loop')} (asyncio debug {debug}); extensions: {ext}"


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


# --------------------------------------------------------------------------- asyncio debug mode
_DEBUG = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Run the tests marked ``slow`` (100k-message runs) with asyncio debug off: debug mode records a
    traceback for every callback and future, which makes them about 5x slower. The orphan check
    below still applies to them (only the "created at" part of its report is missing)."""
    item.config.option.asyncio_debug = item.config.stash[_DEBUG] and item.get_closest_marker("slow") is None


# --------------------------------------------------------------------------- orphaned task exceptions
ORPHAN_MARKERS = ("Task exception was never retrieved", "Future exception was never retrieved")


class OrphanCatcher(logging.Handler):
    """Keeps the ``asyncio`` log records that report an exception nobody retrieved."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(marker in message for marker in ORPHAN_MARKERS):
            self.records.append(self.format(record))

    def take(self) -> list[str]:
        """The records since the last call."""
        taken, self.records = self.records, []
        return taken


_ORPHANS = OrphanCatcher()
logging.getLogger("asyncio").addHandler(_ORPHANS)


def _report(records: list[str], show: int = 3) -> str:
    more = f"\n\n... and {len(records) - show} more" if len(records) > show else ""
    return "\n\n".join(records[:show]) + more


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """After a test and its fixtures are torn down, collect its garbage and fail it (a teardown
    error) for every unretrieved task/future exception logged since the previous test.

    The survivors are then frozen (``gc.freeze``) so the next collection only looks at what the
    next test allocates: a full collection after every test would add about a minute to the suite.
    """
    try:
        return (yield)
    finally:
        gc.collect()
        gc.freeze()
        found = _ORPHANS.take()
        if found:
            pytest.fail(f"{len(found)} task/future exception(s) were never retrieved during this test (an "
                        "orphaned task or future: keep a reference and retrieve its result, or add a done "
                        f"callback that does):\n{_report(found)}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session for orphaned exceptions logged outside any test (listed in the summary)."""
    gc.unfreeze()
    gc.collect()
    left = _ORPHANS.take()
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = (f"{len(left)} task/future exception(s) were never retrieved outside a test "
            f"(module fixtures or session teardown):\n{_report(left)}")
    if reporter is not None:
        reporter.write_sep("=", "orphaned task exceptions", red=True)
        reporter.write_line(text)
    else:  # pragma: no cover - without the terminal plugin
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
