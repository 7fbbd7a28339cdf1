"""A local 3-node RabbitMQ cluster (issue 12 item 3): SIGKILL the node the clients are connected to
in the middle of a confirmed publish + manual-ack consume of persistent messages to a quorum queue.

The cluster (``broker_cluster``: three throw-away nodes on loopback ports with their own names and
data dirs, one Erlang cookie, joined with ``rabbitmqctl join_cluster``) is started by a session
fixture and stopped (every node, every temp dir) after the last test, also when one fails. The
scenario is ``benchmarks/failover.py``'s ``run_failover`` with MMATE_FAILOVER_MESSAGES messages
(default 100 000: about 45 s of traffic plus about 30 s to start the cluster on 2 shared cores; the
numbers are in README "Clusters and quorum queues").
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict

import pytest

from benchmarks.failover import print_report, run_failover
from tests.integration import broker_cluster, broker_node
from tests.integration.broker_cluster import BrokerCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = int(os.environ.get("MMATE_FAILOVER_MESSAGES", "100000"))


@pytest.fixture(scope="session")
def cluster() -> Iterator[BrokerCluster]:
    yield from broker_node.running(lambda: broker_cluster.start(3))


async def test_killing_the_clients_node_loses_no_confirmed_message(cluster: BrokerCluster) -> None:
    report = await run_failover(cluster, MESSAGES, kill_at=0.5)
    print()
    print_report(report)
    print(asdict(report))
    assert report.queue_type == "quorum"
    assert report.leader_node == report.killed_node  # the queue's leader died with the node
    # the kill came in the middle of publishing and of consuming
    assert 0 < report.consumed_at_kill < MESSAGES and report.confirmed_at_kill < MESSAGES
    assert report.published == MESSAGES
    assert report.lost == 0, report.missing_ranges
    # the clients failed over to another node and the consumer resumed there
    assert report.resumed_node != report.killed_node and report.consumer_reconnects == 1
    assert report.kill_to_first_consumed_s > 0
    # a consumer on a surviving node kept consuming when the queue's leader moved, no reconnect
    assert report.bystander_after_kill > 0 and report.bystander_reconnects == 0
