"""TracingObserver's cheap parts: the traceparent flag parser, the ratio counter, a seeded sampler,
and a tracer hook that raises never failing a publish or a delivery."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.observability._tracing import _RatioCounter, _sampled_flag
from tests.behaviour.behaviour_helpers import wait_until

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"


@pytest.mark.parametrize(("value", "expected"), [
    (TP + "01", True), (TP + "00", False), (TP + "03", True), (TP + "02", False),
    ((TP + "01").encode(), True), ("01" + TP[2:] + "01-extra", True),
    ("ff" + TP[2:] + "01", None), (TP + "zz", None), (TP[:-5], None), ("", None), (42, None),
])
def test_sampled_flag(value: Any, expected: bool | None) -> None:
    assert _sampled_flag(value) is expected


@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.1, 0.25, 1 / 3, 1.0])
def test_ratio_counter_is_exact(ratio: float) -> None:
    decide = _RatioCounter(ratio)
    picks = [i for i in range(3000) if decide()]
    assert len(picks) == pytest.approx(3000 * ratio, abs=1)
    if ratio:
        assert picks[0] == 0  # the first root is traced, then evenly spread
        gaps = {b - a for a, b in itertools.pairwise(picks)}
        assert max(gaps) - min(gaps) <= 1


def test_ratio_counter_refuses_a_bad_ratio() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        _RatioCounter(1.5)


@dataclass
class UtEvt(Event):
    n: int = 0


async def test_seeded_sampler_and_a_failing_tracer() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mmate_fast.observability import TracingObserver
    from mmate_fast.transports.memory import reset_broker

    reset_broker("tracing-unit")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rng = random.Random(7)
    check = random.Random(7)
    expected = sum(check.random() < 0.2 for _ in range(200))
    got: list[int] = []
    async with Client("memory://tracing-unit", service_name="tr-unit") as client:
        obs = TracingObserver(client, tracer_provider=provider, sampler=lambda: rng.random() < 0.2)
        for n in range(200):
            await client.publish_event(UtEvt(n=n, aggregate_id="a"))
        assert obs.sampled == expected == len(exporter.get_finished_spans())

        class Broken:
            def __getattr__(self, name: str) -> Any:
                def fail(*args: Any) -> None:
                    raise RuntimeError(name)
                return fail

        client.set_tracer(Broken())
        client.add_handler(UtEvt, lambda e: got.append(e.n))
        sub = await client.start_consuming()
        await client.publish_event(UtEvt(n=-1, aggregate_id="a"))
        await wait_until(lambda: got == [-1])
        assert sub.stats.acked == 1
