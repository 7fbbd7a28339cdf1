"""Throw-away RabbitMQ nodes for tests that must disrupt a broker (restart it, close its connections).

A node lives in one temp dir (``mmate-node-*``): its config, enabled-plugins file, Erlang cookie
(``HOME`` is the temp dir, so the cookie is its own and ``rabbitmqctl`` talks to this node only),
data (mnesia) and logs. It listens on free loopback ports (AMQP and Erlang distribution), is started
with ``rabbitmq-server -detached`` under its own node name and is never confused with the shared
broker on 5672. A full :meth:`BrokerNode.restart` keeps the data dir, so durable queues and
persistent messages survive it. :meth:`BrokerNode.stop` always cleans up (``rabbitmqctl stop``, else
kill the node's pid, then remove the temp dir); a node whose test run was killed before it could
stop it is stopped by the next :func:`start` (:func:`reap_orphans`). ``tls_broker.py`` builds its
TLS node on :func:`start`.

    node = broker_node.start()          # plain node, guest/guest, no plugins: a few seconds
    url = node.url                      # amqp://guest:guest@127.0.0.1:{port}/
    node.close_connections("my-test-")  # broker-side close, by client-provided connection name
    node.restart()                      # full stop + start, same data dir
    node.stop()
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

RABBIT_BIN = Path(os.environ.get("MMATE_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 60.0
CTL_TIMEOUT = 60.0
TMP_PREFIX = "mmate-node-"
#: temp dirs of nodes started by older versions of these helpers (reaped as well)
_OLD_PREFIXES = ("mmate-tls-",)
_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

#: ``rabbitmqctl eval``: close every connection whose client-provided name starts with ~s (a binary)
_CLOSE_BY_PREFIX = """
Prefix = <<"~s">>,
Pids = [P || I <- rabbit_networking:connection_info_all([pid, client_properties]),
             {pid, P} <- [lists:keyfind(pid, 1, I)],
             {client_properties, Props} <- [lists:keyfind(client_properties, 1, I)],
             is_list(Props),  % 'none' while a connection is still in its handshake
             Name <- [case lists:keyfind(<<"connection_name">>, 1, Props) of
                          {_, _, N} when is_binary(N) -> N; _ -> <<>> end],
             binary:longest_common_prefix([Name, Prefix]) =:= byte_size(Prefix)],
[rabbit_networking:close_connection(P, "closed by the test (broker_node.close_connections)") || P <- Pids],
length(Pids).
"""


class BrokerNodeError(RuntimeError):
    """A test node could not be prepared, started or controlled (the message says why and where the
    logs are)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def amqp_answers(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` answers the AMQP 0-9-1 protocol header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            sock.sendall(_PROTOCOL_HEADER)
            return sock.recv(1) == b"\x01"
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _node_env(tmp: Path, node: str, amqp_port: int, dist_port: int) -> dict[str, str]:
    """The environment ``rabbitmq-server`` and ``rabbitmqctl`` run with for the node in ``tmp``."""
    return {
        **os.environ,
        "HOME": str(tmp),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "RABBITMQ_PID_FILE": str(tmp / "node.pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


@dataclass
class BrokerNode:
    """A running throw-away node: where it listens and how to control it."""

    node: str
    tmp: Path
    amqp_port: int
    dist_port: int
    env: dict[str, str] = field(repr=False)
    #: extra ports by name (e.g. ``"tls"``), allocated before the config was written
    ports: dict[str, int] = field(default_factory=dict)
    #: how to tell that the node serves (default: AMQP answers on ``amqp_port``)
    ready: Callable[[BrokerNode], bool] | None = field(default=None, repr=False)
    startup_seconds: float = 0.0

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:{amqp_port}/`` (the default user of a plain node)."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def url_with(self, **query: object) -> str:
        """:attr:`url` with URL options, e.g. ``node.url_with(name="pub-1", heartbeat=5)``."""
        return self.url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")

    # ------------------------------------------------------------------ control
    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` against this node; its stdout, or BrokerNodeError."""
        try:
            proc = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BrokerNodeError(f"rabbitmqctl {args[0]} on {self.node} did not finish within {timeout} s; "
                                  f"{self.log_tail()}") from None
        if proc.returncode != 0:
            raise BrokerNodeError(f"rabbitmqctl {args[0]} on {self.node} failed ({proc.returncode}): "
                                  f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc.stdout

    def serves(self) -> bool:
        """True when the node answers its clients right now."""
        return self.ready(self) if self.ready is not None else amqp_answers(self.amqp_port)

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Wait (bounded) until :meth:`serves`; BrokerNodeError with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while not self.serves():
            if time.monotonic() > deadline:
                raise BrokerNodeError(f"node {self.node} did not serve on 127.0.0.1:{self.amqp_port} within "
                                      f"{timeout:.0f} s; {self.log_tail()}")
            time.sleep(0.1)

    def stop_app(self) -> None:
        """Stop the RabbitMQ application (the Erlang VM stays up): every client connection is closed
        by the broker and new ones are refused until :meth:`start_app`."""
        self.ctl("stop_app")

    def start_app(self, timeout: float = START_TIMEOUT) -> None:
        """Start the application again and wait until it serves."""
        self.ctl("start_app", timeout=timeout)
        self.wait_serving(timeout)

    def restart(self, *, down: float = 0.0, timeout: float = START_TIMEOUT) -> None:
        """Full stop of the node (Erlang VM included), ``down`` seconds off, then start it again
        with the same data dir (durable queues and persistent messages survive)."""
        self._halt()
        if down > 0:
            time.sleep(down)
        self._launch(timeout)

    def close_connections(self, name_prefix: str = "") -> int:
        """Close (broker side) every connection whose client-provided name starts with
        ``name_prefix`` (every connection for ``""``); returns how many."""
        if not all(c.isascii() and c.isprintable() and c not in '"\\~' for c in name_prefix):
            raise ValueError(f"name_prefix {name_prefix!r}: printable ASCII without quotes, backslashes, '~'")
        out = self.ctl("eval", _CLOSE_BY_PREFIX.replace("~s", name_prefix))
        return int(out.strip().splitlines()[-1])

    def list_queues(self) -> dict[str, dict[str, int]]:
        """``{queue: {"messages": n, "consumers": n}}`` for every queue of the default vhost."""
        out = self.ctl("list_queues", "name", "messages", "consumers", "--formatter", "json", "-q")
        rows: list[dict[str, Any]] = json.loads(out) if out.strip() else []
        return {str(r["name"]): {"messages": int(r["messages"] or 0), "consumers": int(r["consumers"] or 0)}
                for r in rows}

    def stop(self) -> None:
        """Stop the node (``rabbitmqctl stop``, else kill its pid) and remove its temp dir."""
        try:
            _stop_node(self.node, self.tmp, self.env)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        """The last lines of the node's logs (for error messages)."""
        logs = "\n".join(p.read_text(errors="replace")[-chars:] for p in sorted((self.tmp / "log").glob("*.log")))
        return f"logs in {self.tmp / 'log'}; last lines:\n{logs}" if logs else f"no logs in {self.tmp / 'log'}"

    # ------------------------------------------------------------------ start / stop of the VM
    def _launch(self, timeout: float) -> None:
        started = time.monotonic()
        proc = subprocess.run([str(RABBIT_BIN / "rabbitmq-server"), "-detached"], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise BrokerNodeError(f"rabbitmq-server -detached failed ({proc.returncode}): "
                                  f"{proc.stderr.strip() or proc.stdout.strip()}")
        self.wait_serving(max(0.0, timeout - (time.monotonic() - started)))
        self.startup_seconds = time.monotonic() - started

    def _halt(self) -> None:
        """Stop the Erlang VM (data dir kept); kill it if it does not stop by itself."""
        _stop_node(self.node, self.tmp, self.env)


def _stop_node(node: str, tmp: Path, env: dict[str, str]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", node, "stop"], env=env,
                       capture_output=True, timeout=CTL_TIMEOUT)
    try:
        pid = int((tmp / "node.pid").read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def reap_orphans() -> None:
    """Stop nodes left behind by a test run that was killed (the pid that started them is gone)."""
    tmp_root = Path(tempfile.gettempdir())
    for prefix in (TMP_PREFIX, *_OLD_PREFIXES):
        for tmp in tmp_root.glob(f"{prefix}*"):
            try:
                owner = int((tmp / "owner.pid").read_text())
                node = (tmp / "node.name").read_text().strip()
            except (OSError, ValueError):
                continue
            if _alive(owner):
                continue
            env = {**os.environ, "HOME": str(tmp), "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
                   "ERL_EPMD_ADDRESS": "127.0.0.1"}
            _stop_node(node, tmp, env)
            shutil.rmtree(tmp, ignore_errors=True)


def _base_config(amqp_port: int) -> list[str]:
    return [
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}",
        "disk_free_limit.absolute = 1MB",
        "log.console = false",
        "log.file.level = info",
    ]


def start(*, kind: str = "plain", extra_ports: Sequence[str] = (),
          configure: Callable[[BrokerNode], Iterable[str]] | None = None, plugins: Sequence[str] = (),
          ready: Callable[[BrokerNode], bool] | None = None, timeout: float = START_TIMEOUT,
          cookie: str | None = None) -> BrokerNode:
    """Start a throw-away node and wait (bounded) until it serves.

    ``extra_ports`` names more free ports to allocate (``node.ports[name]``); ``configure(node)`` may
    write files into ``node.tmp`` and returns config lines added to the base config (AMQP listener on
    ``amqp_port``, file logging, no disk alarm); ``plugins`` are enabled; ``ready(node)`` says when
    it serves (default: AMQP answers on ``amqp_port``); ``cookie``: the Erlang cookie (nodes that are
    to form a cluster share one; default: a random one of this node's own).
    """
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        raise BrokerNodeError(f"{RABBIT_BIN}/rabbitmq-server not found (run ci/setup.sh, or set "
                              "MMATE_RABBITMQ_BIN)")
    reap_orphans()
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{kind}-"))
    tmp.chmod(0o755)
    name = f"mmate-{kind}-{uuid.uuid4().hex[:8]}@localhost"
    (tmp / "owner.pid").write_text(str(os.getpid()))
    (tmp / "node.name").write_text(name)
    amqp_port, dist_port = free_port(), free_port()
    node = BrokerNode(name, tmp, amqp_port, dist_port, _node_env(tmp, name, amqp_port, dist_port),
                      {p: free_port() for p in extra_ports}, ready)
    try:
        lines = _base_config(amqp_port) + (list(configure(node)) if configure is not None else [])
        (tmp / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (tmp / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        (tmp / "rabbitmq-env.conf").write_text("")  # do not pick up the main node's env file
        cookie_text = cookie or secrets.token_hex(20).upper()
        cookie_file = tmp / ".erlang.cookie"
        cookie_file.write_text(cookie_text)
        cookie_file.chmod(0o400)
        node._launch(timeout)
        return node
    except BaseException:
        node.stop()
        raise


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_N = TypeVar("_N", bound=_Stoppable)


def running(factory: Callable[[], _N]) -> Iterator[_N]:
    """Body of a pytest fixture: ``yield from broker_node.running(broker_node.start)`` gives a started
    node and stops it afterwards. A node that cannot start fails the test (skips it with
    MMATE_SKIP_BROKER=1, for machines that knowingly have no RabbitMQ)."""
    import pytest

    try:
        node = factory()
    except BrokerNodeError as exc:
        if os.environ.get("MMATE_SKIP_BROKER") == "1":
            pytest.skip(f"throw-away RabbitMQ node not available ({exc}); MMATE_SKIP_BROKER=1")
        pytest.fail(f"cannot start a throw-away RabbitMQ node: {exc}", pytrace=False)
    try:
        yield node
    finally:
        node.stop()
