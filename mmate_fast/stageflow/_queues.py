"""StageFlow's queues, named and declared exactly as mmate-go's ``RegisterWorkflow`` (wire spec §2.2,
§8.1): ``{prefix}{workflowId}.stage{N}`` with a one-hour message TTL and
``{prefix}compensation.{workflowId}`` with two hours, both durable and dead-lettering through the
default exchange to ``dlq.{queue}`` (a Go engine and ours then share the queues without a 406)."""
from __future__ import annotations

from typing import Any

from mmate_fast import _checks

DEFAULT_PREFIX = "stageflow."
#: Go's ``x-message-ttl`` of stage queues (ms)
STAGE_TTL_MS = 3_600_000
#: Go's ``x-message-ttl`` of the compensation queue (ms)
COMPENSATION_TTL_MS = 7_200_000


def stage_queue(prefix: str, workflow_id: str, index: int) -> str:
    return f"{prefix}{workflow_id}.stage{index}"


def compensation_queue(prefix: str, workflow_id: str) -> str:
    return f"{prefix}compensation.{workflow_id}"


def queue_arguments(queue: str, ttl_ms: int, *, fifo: bool = False) -> dict[str, Any]:
    """Go's arguments of a stage / compensation queue (FIFO mode adds single active consumer)."""
    args: dict[str, Any] = {"x-message-ttl": ttl_ms, "x-dead-letter-exchange": "",
                            "x-dead-letter-routing-key": f"dlq.{queue}"}
    if fifo:
        args["x-single-active-consumer"] = True
    return args


async def declare_flow_queue(client: Any, queue: str, ttl_ms: int, *, fifo: bool = False) -> str:
    """Declare one stage or compensation queue through ``client`` (durable, not exclusive, not
    auto-delete, Go's arguments; declared again the same way if a consumer of it is restarted);
    InvalidArgumentError before anything is sent for a name RabbitMQ would refuse."""
    _checks.name(queue, "queue", "stage queue name")
    await client.declare_queue(queue, durable=True, arguments=queue_arguments(queue, ttl_ms, fifo=fifo))
    return queue


__all__ = [
    "COMPENSATION_TTL_MS", "DEFAULT_PREFIX", "STAGE_TTL_MS", "compensation_queue", "declare_flow_queue",
    "queue_arguments", "stage_queue"]
