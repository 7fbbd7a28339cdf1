"""``mmate dlq list|show|replay|purge`` on both transports (moved here from test_reliability.py with
the command line's move into ``mmate_fast.cli``). Listing RabbitMQ through its management API, the
rabbitmqctl fallback and their errors are in tests/integration/test_cli_dlq.py."""
from __future__ import annotations

import io
import json

import pytest

from mmate_fast._ext import load
from mmate_fast.cli import build_parser
from mmate_fast.cli import dlq as dlq_command
from mmate_fast.transports import Connection

from .behaviour_helpers import drain_queue
from .conftest import Names


async def _run(url: str, *argv: str, code: int = 0) -> str:
    """``mmate dlq --url URL ARGV`` in this loop, expecting exit code ``code``; its output."""
    out = io.StringIO()
    args = build_parser().parse_args(["dlq", "--url", url, *argv])
    assert await dlq_command.run_command(args, out) == code
    return out.getvalue()


async def test_dlq_cli_list_show_replay_purge(url: str, conn: Connection, names: Names) -> None:
    queue = names.queue("rel-cli")
    dq = f"dlq.{queue}"
    names.queues.append(dq)
    ch = await conn.channel(publisher_confirms=True)
    await ch.queue_declare(queue, durable=True)
    await ch.queue_declare(dq, durable=True)
    props = load("frames").BasicProperties
    for i in range(3):
        await ch.publish(f'{{"n":{i}}}'.encode(), "", dq, props(headers={
            "x-mmate-reason": "handler-error", "x-mmate-error": f"Boom: {i}", "x-mmate-original-queue": queue,
            "x-mmate-attempt": 3, "x-message-type": "RelJob", "x-message-id": f"id-{i}", "keep": "me"}))

    # a queue named on the command line is counted over AMQP (exact, whatever the API's statistics say)
    listed = json.loads(await _run(url, "list", "--json", dq))
    assert {"queue": dq, "messages": 3} in listed["queues"]
    assert listed["source"] == ("embedded" if url.startswith("memory:") else "management-api")
    human = await _run(url, "list", dq)
    assert f"{dq}  " in human and human.rstrip().splitlines()[-1].startswith("source: ")
    shown = await _run(url, "show", dq, "--limit", "2")
    assert "reason:   handler-error" in shown and "Boom: 0" in shown and "Boom: 1" in shown
    assert "Boom: 2" not in shown and f"from:     {queue}" in shown and "attempts: 3" in shown
    assert (await ch.queue_declare(dq, passive=True)).message_count == 3   # show keeps them
    assert "replayed 2 message(s)" in await _run(url, "replay", dq, "--limit", "2")
    back = await drain_queue(ch, queue, expect=2)
    assert [d.body for d in back] == [b'{"n":0}', b'{"n":1}']
    h = back[0].properties.headers
    assert h["x-mmate-replayed"] == 1 and h["keep"] == "me" and h["x-message-id"] == "id-0"
    assert not {"x-mmate-reason", "x-mmate-error", "x-mmate-original-queue", "x-mmate-attempt"} & set(h)
    assert "purged 1 message(s)" in await _run(url, "purge", dq)
    assert (await ch.queue_declare(dq, passive=True)).message_count == 0


async def test_dlq_cli_missing_queue_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "replay", "purge"):
        assert await _run(url, command, "dlq.cli-no-such-queue", code=1) == ""
        err = capsys.readouterr().err
        assert err.startswith("mmate dlq: error: ") and "404" in err and "Traceback" not in err
