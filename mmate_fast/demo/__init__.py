"""``mmate demo``: an order pipeline of four services on the embedded broker or RabbitMQ.

``run_demo(config, progress)`` sets the services up, sends the orders, waits for every one to
complete or be rejected, inspects the dead-letter queue and deletes the run's queues.
"""
from __future__ import annotations

from collections.abc import Callable

from ._pipeline import DemoConfig, DemoResult, Pipeline, Snapshot
from ._progress import Progress
from ._report import format_summary, percentile, safe_url, transport_name


async def run_demo(cfg: DemoConfig, on_tick: Callable[[Snapshot], None] | None = None,
                   warn: Callable[[str], None] | None = None) -> DemoResult:
    """Run the pipeline once; raises MmateError (unreachable broker, timeout, ...). The queues of
    the run are deleted in every case; cleanup problems go to ``warn``."""
    pipeline = Pipeline(cfg)
    try:
        await pipeline.start()
        await pipeline.run(on_tick)
        return await pipeline.result()
    finally:
        for text in await pipeline.close():
            if warn is not None:
                warn(text)


__all__ = ["DemoConfig", "DemoResult", "Progress", "Snapshot", "format_summary", "percentile",
           "run_demo", "safe_url", "transport_name"]
