"""``mmate monitor``'s figures from a management API queue list (no broker: the rows are the API's
JSON shape); the command against the real broker is tests/integration/test_cli_monitor.py."""
from __future__ import annotations

import io
from typing import Any

import pytest

from mmate_fast.cli._monitor_data import API, PASSIVE, QueueStats, Snapshot, from_api_rows, selected
from mmate_fast.cli._monitor_view import console_for, render


def api_row(name: str, ready: int, unacked: int = 0, consumers: int = 0, deliver: float | None = None,
            **rates: float) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "messages": ready + unacked, "messages_ready": ready,
                           "messages_unacknowledged": unacked, "consumers": consumers}
    if deliver is not None:
        row["message_stats"] = {"deliver_get_details": {"rate": deliver},
                                **{f"{k}_details": {"rate": v} for k, v in rates.items()}}
    return row


def test_dlq_depth_beside_its_queue_and_orphan_dlq_as_row() -> None:
    rows = [api_row("orders", 10, 2, 1, deliver=5.0, publish=4.0, ack=5.0), api_row("dlq.orders", 7),
            api_row("dlq.gone", 3), api_row("billing", 0)]
    got = {q.name: q for q in from_api_rows(rows, [], [])}
    assert sorted(got) == ["billing", "dlq.gone", "orders"]
    assert got["orders"] == QueueStats("orders", 10, 2, 1, 4.0, 5.0, 5.0, 7)
    assert got["orders"].lag_seconds == 2.0
    assert got["billing"].dlq_messages is None and got["billing"].lag_seconds == 0.0
    # no message_stats yet: a queue without traffic has rates of 0
    assert got["billing"].publish_rate == 0.0


def test_filter_by_pattern_or_name_keeps_the_dlq_column() -> None:
    rows = [api_row("orders.eu", 1), api_row("dlq.orders.eu", 4), api_row("orders.us", 1), api_row("billing", 1)]
    assert [q.name for q in from_api_rows(rows, [], ["orders.*"])] == ["orders.eu", "orders.us"]
    assert [(q.name, q.dlq_messages) for q in from_api_rows(rows, ["billing"], ["*.eu"])] == [
        ("billing", None), ("orders.eu", 4)]
    assert selected("x", [], []) and not selected("x", ["y"], ["z*"])


@pytest.mark.parametrize(("ready", "deliver", "lag"), [(0, None, 0.0), (0, 0.0, 0.0), (30, 10.0, 3.0),
                                                       (5, 0.0, None), (5, None, None), (None, 1.0, None)])
def test_lag_is_ready_over_deliver_rate(ready: int | None, deliver: float | None, lag: float | None) -> None:
    assert QueueStats("q", ready, 0, 1, deliver_rate=deliver).lag_seconds == lag


def test_view_marks_a_stalled_queue_and_names_the_source() -> None:
    snap = Snapshot(API, "/", "http://h:15672/", [QueueStats("work", 5, 0, 1, 0.0, 0.0, 0.0, 2),
                                                  QueueStats("idle", 5, 0, 0, 0.0, 0.0, 0.0, None)])
    out = io.StringIO()
    console_for(out).print(render(snap, error="boom"))
    text = out.getvalue()
    assert "stalled" in text and "no consumer" in text and "publish/s" in text
    assert "source: RabbitMQ management API at http://h:15672/ (vhost /)" in text
    assert "last refresh failed (showing the one before): boom" in text
    passive = Snapshot(PASSIVE, "/", "h:5672", [QueueStats("work", 5, None, 1)], "API down", ["nope"])
    out = io.StringIO()
    console_for(out).print(render(passive))
    text = out.getvalue()
    assert "publish/s" not in text and "not found: nope" in text and "no rates); the API down" in text
    assert passive.as_json()["fallback_reason"] == "API down" and passive.as_json()["missing"] == ["nope"]
