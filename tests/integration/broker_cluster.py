"""A throw-away RabbitMQ cluster for failover tests: N :mod:`broker_node` nodes (own names, loopback
ports, data dirs) sharing one Erlang cookie, clustered with ``rabbitmqctl join_cluster``.

    cluster = broker_cluster.start(3)   # nodes started in parallel, then joined to the first
    cluster.url                         # amqp://guest:guest@127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/
    cluster.kill(0)                     # SIGKILL the Erlang VM of node 0 (no clean shutdown)
    cluster.stop()                      # stop every node and remove every temp dir

:meth:`BrokerCluster.stop` always cleans up, also after a kill (a dead node's stop only removes its
dir); nodes of a killed test run are reaped by the next start (``broker_node.reap_orphans``).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.integration import broker_node
from tests.integration.broker_node import START_TIMEOUT, BrokerNode, BrokerNodeError, _alive


@dataclass
class BrokerCluster:
    """Running nodes of one cluster (``nodes[0]`` is the one the others joined)."""

    nodes: list[BrokerNode]
    killed: set[int] = field(default_factory=set)
    startup_seconds: float = 0.0

    @property
    def url(self) -> str:
        """One URL naming every node: ``amqp://guest:guest@127.0.0.1:p1,127.0.0.1:p2,.../``."""
        return "amqp://guest:guest@" + ",".join(f"127.0.0.1:{n.amqp_port}" for n in self.nodes) + "/"

    def index_of_port(self, port: int) -> int:
        """Which node listens on AMQP ``port``."""
        for i, node in enumerate(self.nodes):
            if node.amqp_port == port:
                return i
        raise KeyError(port)

    def pid(self, index: int) -> int:
        """The OS pid of node ``index``'s Erlang VM."""
        return int((self.nodes[index].tmp / "node.pid").read_text().strip())

    def kill(self, index: int) -> None:
        """SIGKILL node ``index``'s Erlang VM (like a crashed machine: no goodbye to peers or clients)
        and wait until it is gone."""
        pid = self.pid(index)
        os.kill(pid, signal.SIGKILL)
        self.killed.add(index)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def live(self) -> list[BrokerNode]:
        return [n for i, n in enumerate(self.nodes) if i not in self.killed]

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` on a live node."""
        return self.live()[0].ctl(*args)

    def stop(self) -> None:
        """Stop every node (in parallel) and remove their temp dirs."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for future in [pool.submit(n.stop) for n in self.nodes]:
                with contextlib.suppress(Exception):
                    future.result()


def start(size: int = 3, timeout: float = START_TIMEOUT) -> BrokerCluster:
    """Start ``size`` nodes in parallel with one cookie and join nodes 1.. to node 0; BrokerNodeError
    (every node started so far stopped) when that fails."""
    started = time.monotonic()
    cookie = secrets.token_hex(20).upper()
    nodes: list[BrokerNode] = []
    try:
        with ThreadPoolExecutor(size) as pool:
            futures = [pool.submit(broker_node.start, kind="cluster", cookie=cookie, timeout=timeout)
                       for _ in range(size)]
            errors: list[BaseException] = []
            for future in futures:
                try:
                    nodes.append(future.result())
                except BaseException as exc:  # the others still get collected (and stopped)
                    errors.append(exc)
            if errors:
                raise errors[0]
        first = nodes[0]
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.start_app(timeout)
        cluster = BrokerCluster(nodes)
        members = first.ctl("eval", "length(rabbit_nodes:all_running()).").strip().splitlines()[-1]
        if members != str(size):
            raise BrokerNodeError(f"cluster of {size} nodes has {members} running members; "
                                  f"{first.log_tail()}")
        cluster.startup_seconds = time.monotonic() - started
        return cluster
    except BaseException:
        BrokerCluster(nodes).stop()
        raise
