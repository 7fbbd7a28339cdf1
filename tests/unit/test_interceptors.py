"""Unit tests of the built-in interceptors: pure logic on hand-built contexts (no broker)."""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import Event
from mmate_fast.interceptors import (
    DeduplicationInterceptor,
    FilterInterceptor,
    LoggingInterceptor,
    MemoryDedupStore,
    MetricsInterceptor,
    SigningInterceptor,
    TimeoutInterceptor,
    ValidationInterceptor,
)
from mmate_fast.messaging.dispatcher import HandlerSpec
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, Pipeline, PublishContext

_env = load("envelope")

SECRET = b"s3cr3t-key-material-0123456789"


@dataclass
class UEvt(Event):
    n: int = 0

    def validate(self) -> bool:
        return self.n >= 0


@dataclass
class Other(Event):
    text: str = ""


def _body(type_: str = "UEvt", id_: str = "id-1", headers: dict[str, Any] | None = None) -> bytes:
    return bytes(_env.encode_envelope(id_, type_, "2025-01-02T03:04:05Z", None, None, headers or {}, {"n": 1}))


def cctx(msg: Any = None, *, body: bytes | None = None, amqp_headers: dict[str, Any] | None = None,
         handler: Any = None, id_: str = "id-1", type_: str | None = None) -> ConsumeContext:
    msg = UEvt(n=1) if msg is None else msg
    type_ = type_ or type(msg).__name__
    body = body if body is not None else _body(type_, id_)
    env = _env.decode_envelope(body)
    delivery = SimpleNamespace(body=body, properties=SimpleNamespace(headers=amqp_headers),
                               exchange="mmate.events", routing_key="evt.x.UEvt", redelivered=False)

    def default_handler(m: Any) -> None:
        return None

    spec = HandlerSpec(handler or default_handler)
    return ConsumeContext(delivery, env, msg, "q", spec, None)


def pctx(msg: Any = None, body: bytes = b"{}") -> PublishContext:
    ctx = PublishContext(UEvt(n=1) if msg is None else msg, None, None, {})
    ctx.outgoing = SimpleNamespace(body=body, message_id="m-1")
    ctx.exchange, ctx.routing_key = "mmate.events", "evt.x.UEvt"
    return ctx


async def _ok() -> str:
    return "done"


# --------------------------------------------------------------------------- validation
async def test_validation_uses_validate_method_and_mappings() -> None:
    v = ValidationInterceptor()
    await v.before_publish(pctx(UEvt(n=1)))
    with pytest.raises(errors.ValidationError) as info:
        await v.before_publish(pctx(UEvt(n=-1)))
    assert info.value.reason == "validation-failed" and "UEvt" in str(info.value)

    def no_empty(m: Other) -> str | None:
        return None if m.text else "text is empty"

    async def positive(m: UEvt) -> bool:
        return m.n > 5

    by_type = ValidationInterceptor(validators={Other: no_empty, "UEvt": positive})
    await by_type.before_consume(cctx(Other(text="x")))
    with pytest.raises(errors.ValidationError, match="text is empty"):
        await by_type.before_consume(cctx(Other(text="")))
    with pytest.raises(errors.ValidationError):
        await by_type.before_consume(cctx(UEvt(n=3)))
    # a base class key covers subclasses; a raising validator becomes ValidationError
    raising = ValidationInterceptor(validators={Event: lambda m: 1 / 0}, use_model=False)
    with pytest.raises(errors.ValidationError, match="ZeroDivisionError") as info2:
        await raising.before_publish(pctx(Other()))
    assert isinstance(info2.value.__cause__, ZeroDivisionError)


async def test_validation_sides_can_be_switched_off() -> None:
    v = ValidationInterceptor(on_publish=False)
    await v.before_publish(pctx(UEvt(n=-1)))
    with pytest.raises(errors.ValidationError):
        await v.before_consume(cctx(UEvt(n=-1)))


async def test_validation_revalidates_pydantic_models() -> None:
    pytest.importorskip("pydantic")
    from pydantic import field_validator

    from mmate_fast.contracts import PydanticEvent  # type: ignore[attr-defined]

    class PEvt(PydanticEvent):  # type: ignore[misc,valid-type]
        amount: float = 0.0

        @field_validator("amount")
        @classmethod
        def non_negative(cls, v: float) -> float:
            if v < 0:
                raise ValueError("amount must be >= 0")
            return v

    v = ValidationInterceptor()
    ok = PEvt(amount=1.0)
    await v.before_publish(pctx(ok))
    ok.amount = -5.0  # assignment is not validated by pydantic by default
    with pytest.raises(errors.ValidationError, match="amount must be >= 0"):
        await v.before_publish(pctx(ok))


# --------------------------------------------------------------------------- timeout
async def test_timeout_cancels_slow_async_handler() -> None:
    t = TimeoutInterceptor(0.02)
    ctx = cctx()
    ctx.handler.is_async = True
    cancelled = []

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(errors.HandlerTimeout) as info:
        await t.around_handler(ctx, slow)
    assert info.value.reason == "handler-timeout" and cancelled == [True]
    assert isinstance(info.value, TimeoutError)
    assert await t.around_handler(ctx, _ok) == "done"


async def test_timeout_keeps_handlers_own_timeout_error_and_per_type() -> None:
    t = TimeoutInterceptor(5, per_type={UEvt: None, "Other": 0.01})
    ctx = cctx()
    ctx.handler.is_async = True

    async def own() -> None:
        raise TimeoutError("downstream")

    with pytest.raises(TimeoutError, match="downstream") as info:
        await t.around_handler(ctx, own)
    assert not isinstance(info.value, errors.HandlerTimeout)
    assert t.timeout_for(ctx) is None
    assert t.timeout_for(cctx(Other())) == 0.01
    assert TimeoutInterceptor(3).timeout_for(ctx) == 3


async def test_timeout_sync_handler_overrun_is_logged_not_failed(caplog: pytest.LogCaptureFixture) -> None:
    t = TimeoutInterceptor(0.001)
    ctx = cctx()
    assert ctx.handler.is_async is False

    async def blocking() -> str:
        import time
        time.sleep(0.01)
        return "r"

    with caplog.at_level(logging.WARNING, "mmate_fast.interceptors.timeout"):
        assert await t.around_handler(ctx, blocking) == "r"
    assert "cannot be cancelled" in caplog.text


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_timeout_bad_config(bad: float) -> None:
    with pytest.raises(errors.ConfigurationError):
        TimeoutInterceptor(bad)


# --------------------------------------------------------------------------- filter
async def test_filter_consume_and_publish() -> None:
    async def only_even(ctx: ConsumeContext) -> bool:
        return bool(ctx.message.n % 2 == 0)

    f = FilterInterceptor(only_even, publish_predicate=lambda c: c.message.n < 10)
    assert await f.before_consume(cctx(UEvt(n=2))) is None
    assert await f.before_consume(cctx(UEvt(n=3))) is False
    assert await f.before_publish(pctx(UEvt(n=3))) is None
    assert await f.before_publish(pctx(UEvt(n=30))) is False
    assert (f.skipped, f.dropped) == (1, 1)
    assert await FilterInterceptor().before_consume(cctx()) is None  # no predicate: everything passes


# --------------------------------------------------------------------------- dedup
def test_memory_store_lru_and_ttl() -> None:
    now = [100.0]
    s = MemoryDedupStore(max_entries=2, ttl=10, clock=lambda: now[0])
    s.add("a")
    s.add("b")
    assert s.contains("a")  # touch: b is now the oldest
    s.add("c")
    assert s.contains("a") and s.contains("c") and not s.contains("b") and len(s) == 2
    now[0] = 111.0
    assert not s.contains("a") and len(s) == 1
    with pytest.raises(errors.ConfigurationError):
        MemoryDedupStore(max_entries=0)


async def test_dedup_records_only_after_success() -> None:
    d = DeduplicationInterceptor()
    runs: list[str] = []

    async def fail() -> None:
        runs.append("fail")
        raise RuntimeError("boom")

    async def work() -> str:
        runs.append("work")
        return "r"

    with pytest.raises(RuntimeError):
        await d.around_handler(cctx(), fail)
    assert await d.around_handler(cctx(), work) == "r"  # the failed one may be retried
    second = cctx()
    assert await d.around_handler(second, work) is None  # duplicate: not run
    assert runs == ["fail", "work"] and second.skipped and d.duplicates == 1
    assert await d.around_handler(cctx(id_="id-2"), work) == "r"  # another id runs


async def test_dedup_keys_per_handler_by_default() -> None:
    d = DeduplicationInterceptor()

    def h1(m: Any) -> None: ...
    def h2(m: Any) -> None: ...

    assert await d.around_handler(cctx(handler=h1), _ok) == "done"
    assert await d.around_handler(cctx(handler=h2), _ok) == "done"  # same message, other handler runs
    assert await d.around_handler(cctx(handler=h1), _ok) is None
    shared = DeduplicationInterceptor(per_handler=False)
    assert await shared.around_handler(cctx(handler=h1), _ok) == "done"
    assert await shared.around_handler(cctx(handler=h2), _ok) is None


async def test_dedup_concurrent_redelivery_waits_for_first() -> None:
    d = DeduplicationInterceptor()
    gate = asyncio.Event()
    runs: list[int] = []

    async def first() -> str:
        runs.append(1)
        await gate.wait()
        return "first"

    async def second() -> str:
        runs.append(2)
        return "second"

    t1 = asyncio.create_task(d.around_handler(cctx(), first))
    await asyncio.sleep(0)
    t2 = asyncio.create_task(d.around_handler(cctx(), second))
    await asyncio.sleep(0.01)
    assert runs == [1] and not t2.done()
    gate.set()
    assert await t1 == "first" and await t2 is None and runs == [1]

    # when the first fails, the waiting one runs
    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("x")

    t3 = asyncio.create_task(d.around_handler(cctx(id_="id-9"), boom))
    await asyncio.sleep(0)
    t4 = asyncio.create_task(d.around_handler(cctx(id_="id-9"), second))
    with pytest.raises(RuntimeError):
        await t3
    assert await t4 == "second"


async def test_dedup_reject_mode_and_async_store() -> None:
    class AsyncStore:
        def __init__(self) -> None:
            self.keys: set[str] = set()

        async def contains(self, key: str) -> bool:
            return key in self.keys

        async def add(self, key: str) -> None:
            self.keys.add(key)

    store = AsyncStore()
    d = DeduplicationInterceptor(store, on_duplicate="reject", per_handler=False)
    await d.around_handler(cctx(), _ok)
    assert store.keys == {"id-1"}
    with pytest.raises(errors.DuplicateMessage) as info:
        await d.around_handler(cctx(), _ok)
    assert info.value.reason == "duplicate"
    with pytest.raises(errors.ConfigurationError):
        DeduplicationInterceptor(on_duplicate="drop")  # type: ignore[arg-type]


async def test_dedup_in_pipeline_does_not_leak_when_a_later_before_consume_raises() -> None:
    class Refuse(Interceptor):
        async def before_consume(self, ctx: ConsumeContext) -> bool | None:
            raise errors.ValidationError("no")

    d = DeduplicationInterceptor()
    with pytest.raises(errors.ValidationError):
        await Pipeline([d, Refuse()]).consume(cctx(), _ok)
    assert d._in_flight == {}
    assert await Pipeline([d]).consume(cctx(), _ok) == "done"  # not marked as seen


# --------------------------------------------------------------------------- metrics
async def test_metrics_counts_histograms_and_snapshot() -> None:
    m = MetricsInterceptor(buckets=(0.01, 1.0))
    for _ in range(2):
        p = pctx()
        await m.before_publish(p)
        await m.after_publish(p, None)
    p = pctx(Other())
    await m.before_publish(p)
    await m.after_publish(p, RuntimeError("x"))
    pipe = Pipeline([m])
    await pipe.consume(cctx(), _ok)
    with pytest.raises(RuntimeError):
        await pipe.consume(cctx(), _boom)
    skipped = cctx()
    skipped.skipped = True
    await m.after_consume(skipped, None)
    snap = m.snapshot()
    assert snap["published"] == {"UEvt": 2} and snap["publish_failed"] == {"Other": 1}
    assert snap["consumed"] == {"UEvt": 1} and snap["failed"] == {"UEvt": 1} and snap["skipped"] == {"UEvt": 1}
    h = snap["handler_seconds"]["UEvt"]
    assert h["count"] == 2 and h["buckets"][float("inf")] == 2 and h["sum"] >= 0
    assert snap["publish_seconds"]["UEvt"]["count"] == 2
    m.reset()
    assert m.snapshot()["published"] == {}


async def _boom() -> None:
    raise RuntimeError("boom")


def test_metrics_histogram_buckets_are_le_and_cumulative() -> None:
    m = MetricsInterceptor(buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 2.0):
        m._of("T")[6].observe(v)
    h = m.snapshot()["handler_seconds"]["T"]
    assert h["buckets"] == {0.1: 2, 1.0: 3, float("inf"): 4} and h["count"] == 4
    assert h["sum"] == pytest.approx(2.65)


async def test_metrics_prometheus_text() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    m = MetricsInterceptor(buckets=(0.5,), namespace="svc")
    p = pctx()
    await m.before_publish(p)
    await m.after_publish(p, None)
    weird = type('we"ird\\type\n', (), {})()
    for _ in range(3):
        await m.after_publish(pctx(weird), RuntimeError("x"))
    text = m.render_prometheus()
    assert text.endswith("\n")
    assert "# TYPE svc_messages_published_total counter" in text
    assert 'svc_messages_published_total{type="UEvt"} 1.0' in text
    assert "# TYPE svc_publish_seconds histogram" in text
    assert 'svc_publish_seconds_bucket{le="+Inf",type="UEvt"} 1.0' in text
    assert 'svc_publish_seconds_count{type="UEvt"} 1.0' in text
    # the text parses back (escaping of label values included) to the same values
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("svc_messages_publish_failed_total", (("type", 'we"ird\\type\n'),))] == 3
    assert samples[("svc_messages_published_total", (("type", "UEvt"),))] == 1
    with pytest.raises(errors.ConfigurationError):
        MetricsInterceptor(buckets=(1.0, 0.5))


def test_metrics_registries_are_separate_unless_shared() -> None:
    from prometheus_client import CollectorRegistry

    a, b = MetricsInterceptor(), MetricsInterceptor()
    assert a.registry is not b.registry  # two clients (or tests) never clash
    shared = CollectorRegistry()
    MetricsInterceptor(registry=shared)
    with pytest.raises(ValueError, match="Duplicated"):
        MetricsInterceptor(registry=shared)  # same names in one registry: use another namespace
    MetricsInterceptor(registry=shared, namespace="other")


async def test_metrics_labels_stay_bounded_with_10000_message_types(
        caplog: pytest.LogCaptureFixture) -> None:
    m = MetricsInterceptor()  # max_types=100 by default
    caplog.set_level(logging.WARNING, "mmate_fast.interceptors.metrics")

    def consumed(type_: str) -> Any:
        return SimpleNamespace(envelope=SimpleNamespace(type=type_), skipped=False, items={})

    for i in range(10_000):  # what a "*" handler sees when anyone may publish any type
        await m.after_consume(consumed(f"Type{i}"), None if i % 3 else RuntimeError("x"))
    await m.after_consume(consumed("Type5"), None)  # a type seen before the cap keeps its label
    await m.after_publish(pctx(), None)  # a new type after the cap: "other"
    snap = m.snapshot()
    labels = set(snap["consumed"]) | set(snap["failed"]) | set(snap["handler_seconds"])
    assert len(labels) == 101 and "other" in labels  # 100 types + "other"
    assert sum(snap["consumed"].values()) + sum(snap["failed"].values()) == 10_001
    assert snap["consumed"]["Type5"] == 2
    assert snap["handler_seconds"]["other"]["count"] == 10_000 - 100
    assert snap["published"] == {"other": 1}
    text = m.render_prometheus()
    assert len(set(re.findall(r'type="([^"]*)"', text))) == 101
    warned = [r for r in caplog.records if "max_types" in r.getMessage()]
    assert len(warned) == 1  # said once, when the cap was reached
    assert m.max_types == 100


async def test_metrics_max_types_is_configurable_and_checked() -> None:
    m = MetricsInterceptor(max_types=2)
    for name in ("A", "B", "C", "D"):
        p = pctx()
        p.message = type(name, (), {})()
        await m.after_publish(p, None)
    assert m.snapshot()["published"] == {"A": 1, "B": 1, "other": 2}
    m.reset()
    await m.after_publish(pctx(), None)
    assert m.snapshot()["published"] == {"UEvt": 1}  # reset frees the labels
    only_other = MetricsInterceptor(max_types=0)
    await only_other.after_publish(pctx(), None)
    assert only_other.snapshot()["published"] == {"other": 1}
    for bad in (-1, 1.5, True, None):
        with pytest.raises(errors.ConfigurationError, match="max_types"):
            MetricsInterceptor(max_types=bad)  # type: ignore[arg-type]


async def test_metrics_a_huge_type_name_is_counted_as_other() -> None:
    m = MetricsInterceptor()
    await m.after_consume(SimpleNamespace(envelope=SimpleNamespace(type="T" * 10_000), skipped=False,
                                          items={}), None)
    assert m.snapshot()["consumed"] == {"other": 1}


# --------------------------------------------------------------------------- logging
async def test_logging_outcomes_without_bodies_or_secrets(caplog: pytest.LogCaptureFixture) -> None:
    lg = LoggingInterceptor("test.mmate")
    signer = SigningInterceptor(SECRET)
    pipe = Pipeline([lg, signer])
    body = _body()
    with caplog.at_level(logging.INFO, "test.mmate"):
        p = pctx(body=b'{"card":"4111"}')
        p.outgoing = build(UEvt(n=4111, id="m-1"))
        await lg.before_publish(p)
        signer.seal(p)
        await lg.after_publish(p, None)
        await pipe.consume(cctx(body=body), _ok)
        with pytest.raises(errors.HandlerTimeout):
            await pipe.consume(cctx(body=body), _timeout)
    signature = p.amqp_headers["x-signature"]
    text = caplog.text
    assert "publish UEvt id=m-1 exchange='mmate.events' routing_key='evt.x.UEvt'" in text
    assert "handle UEvt id=id-1 queue='q'" in text and " ok" in text
    assert "error HandlerTimeout [handler-timeout]: slow" in text
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO, logging.WARNING]
    assert "4111" not in text and signature not in text and SECRET.decode() not in text
    caplog.clear()
    with caplog.at_level(logging.INFO, "test.mmate"):
        verbose = LoggingInterceptor("test.mmate", log_bodies=True, max_body=8)
        p = pctx(body=b'{"card":"4111"}')
        await verbose.before_publish(p)
        await verbose.after_publish(p, None)
    assert "body='{\"card\":'...(+7 bytes)" in caplog.text


async def _timeout() -> None:
    raise errors.HandlerTimeout("slow")


# --------------------------------------------------------------------------- tracing
async def test_tracing_producer_context_becomes_consumer_parent() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from mmate_fast.interceptors import TracingInterceptor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    t = TracingInterceptor(provider)
    assert "secret" not in repr(t)
    p = pctx()
    await t.before_publish(p)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", p.headers["traceparent"])
    await t.before_send(p)
    await t.after_publish(p, None)
    # the consumer sees them as AMQP headers (bytes on some paths)
    amqp = {k: v.encode() for k, v in p.headers.items()}
    await Pipeline([t]).consume(cctx(amqp_headers=amqp), _ok)
    with pytest.raises(errors.HandlerTimeout):
        await Pipeline([t]).consume(cctx(amqp_headers=amqp), _timeout)
    producer, consumer, failed = exporter.get_finished_spans()
    assert producer.kind is SpanKind.PRODUCER and consumer.kind is SpanKind.CONSUMER
    assert producer.name == "publish UEvt" and consumer.name == "process UEvt"
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id
    assert producer.attributes["messaging.message.id"] == "m-1"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["mmate.failure.reason"] == "handler-timeout"


def test_tracing_without_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mmate_fast.interceptors import TracingInterceptor

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"'otel' extra"):
        TracingInterceptor()
