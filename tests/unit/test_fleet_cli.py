"""``mmate run``'s arguments and the ``module:attr`` loader (no processes started here)."""
from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from mmate_fast import errors
from mmate_fast.cli import build_parser, main
from mmate_fast.cli.run import options_from
from mmate_fast.client import Client
from mmate_fast.fleet import FleetOptions, RestartPolicy, load_target, make_client, parse_target
from mmate_fast.fleet._worker import WorkerConfig


def parse(*argv: str) -> FleetOptions:
    return options_from(build_parser().parse_args(["run", *argv]))


def test_defaults() -> None:
    o = parse("app:make")
    assert (o.target, o.workers, o.factory, o.autoscale, o.reload, o.health_port) == \
        ("app:make", 1, None, None, False, None)
    assert o.drain_timeout == 10.0 and o.restart == RestartPolicy()


def test_every_option() -> None:
    o = parse("pkg.mod:app.client", "-w", "3", "--factory", "--drain-timeout", "2.5", "--health-port", "9100",
              "--reload", "--reload-dir", "src", "--reload-dir", "lib", "--autoscale", "2,6",
              "--scale-interval", "0.5", "--scale-up-backlog", "50", "--scale-up-lag", "0",
              "--scale-down-samples", "4", "--scale-cooldown", "1", "--restart-delay", "0.2", "--crash-limit", "7",
              "--app-dir", "/srv/app", "--log-level", "debug")
    assert (o.workers, o.factory, o.drain_timeout, o.health_port, o.reload, o.reload_dirs) == \
        (3, True, 2.5, 9100, True, ("src", "lib"))
    assert o.autoscale is not None
    assert (o.autoscale.minimum, o.autoscale.maximum, o.autoscale.interval, o.autoscale.up_backlog,
            o.autoscale.up_lag, o.autoscale.down_samples, o.autoscale.cooldown) == (2, 6, 0.5, 50, 0.0, 4, 1.0)
    assert (o.restart.initial, o.restart.crash_limit, o.app_dir, o.log_level) == (0.2, 7, "/srv/app", "debug")


@pytest.mark.parametrize("argv", [["app:make", "--workers", "0"], ["app:make", "--autoscale", "3,1"],
                                  ["app:make", "--health-port", "70000"], ["app:make", "--drain-timeout", "0"],
                                  ["app:make", "--log-level", "loud"], []])
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *argv]) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["nocolon", "app:", ":make", "my-app:make", "app:make()", "a..b:c"])
def test_a_target_without_module_colon_attribute_is_a_usage_error(
        target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", target]) == 2
    assert "MODULE:ATTRIBUTE" in capsys.readouterr().err


def test_parse_target() -> None:
    assert parse_target("a.b:c.d") == ("a.b", "c.d")


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "wt7_fleet_unit_app.py").write_text(textwrap.dedent("""
        from mmate_fast.client import Client

        client = Client("memory://", service_name="module-level")

        def make():
            return Client("memory://", service_name="from-factory")

        async def make_async():
            return Client("memory://", service_name="from-async-factory")

        def needs_args(url):
            return Client(url)

        def wrong():
            return 42

        class ns:
            inner = staticmethod(make)

        number = 7
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "wt7_fleet_unit_app"


def made(spec: str, factory: bool | None = None) -> Client:
    return asyncio.run(make_client(load_target(spec, factory=factory), spec))


def test_load_a_client_a_factory_an_async_factory_or_a_dotted_attribute(app_module: str) -> None:
    assert made(f"{app_module}:client").service_name == "module-level"
    assert made(f"{app_module}:make").service_name == "from-factory"
    assert made(f"{app_module}:make", factory=True).service_name == "from-factory"
    assert made(f"{app_module}:make_async").service_name == "from-async-factory"
    assert made(f"{app_module}:ns.inner").service_name == "from-factory"


@pytest.mark.parametrize(("attr", "factory", "says"), [
    ("nope", None, "has no attribute 'nope'"),
    ("number", None, "is a int, neither a Client nor"),
    ("needs_args", None, "callable without arguments"),
    ("client", True, "is a Client, not a factory"),
    ("make", False, "not a Client: pass --factory"),
    ("wrong", None, "returned int, not a mmate_fast Client"),
])
def test_targets_that_do_not_fit(app_module: str, attr: str, factory: bool | None, says: str) -> None:
    with pytest.raises(errors.FleetTargetError, match=says):
        made(f"{app_module}:{attr}", factory)


def test_a_module_that_does_not_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wt7_broken_app.py").write_text("import no_such_dependency_wt7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(errors.FleetTargetError, match="importing 'wt7_broken_app' failed"):
        load_target("wt7_broken_app:make")
    with pytest.raises(errors.FleetTargetError, match="no such module"):
        load_target("wt7_no_such_module_at_all:make")


def test_worker_config_round_trips_through_json() -> None:
    cfg = WorkerConfig(target="a:b", slot=3, factory=True, drain_timeout=2.0, health_port=9103, status_fd=7,
                       app_dir="/srv")
    assert WorkerConfig.from_json(cfg.to_json()) == cfg


def test_fleet_options_refuse_bad_values() -> None:
    with pytest.raises(errors.ConfigurationError):
        FleetOptions(target="a:b", workers=0)
    with pytest.raises(errors.ConfigurationError):
        FleetOptions(target="a:b", drain_timeout=0)
    with pytest.raises(errors.ConfigurationError):
        RestartPolicy(initial=5, maximum=1)
