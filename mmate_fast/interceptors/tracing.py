"""OpenTelemetry tracing: a PRODUCER span per publish, a CONSUMER span per handler call, and the W3C
trace context (``traceparent``/``tracestate``, plus ``baggage`` with the default propagator) carried
in the message headers so one trace continues across services (mmate-go or Python).

Needs the optional extra: ``pip install 'mmate-fast[otel]'`` (``opentelemetry-api``; the SDK to
export). It is imported when the interceptor is created, not when mmate_fast is.

- publish: ``before_publish`` starts ``publish {Type}`` as a child of the current span and injects
  its context into ``ctx.headers`` (envelope and AMQP headers); ``before_send`` adds the exchange,
  routing key and message id; ``after_publish`` records an error and ends it;
- consume: ``around_handler`` extracts the context from the delivery headers and runs the handler
  inside ``process {Type}`` (the current span, so the handler's own spans and publishes are its
  children); exceptions are recorded and set the span status to error.

A publish dropped or failed by a later ``before_publish`` leaves its span unended (never exported).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from mmate_fast._version import __version__
from mmate_fast.interceptors._types import type_name
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

_SPAN = "otel.span"
_MISSING_OTEL = ("TracingInterceptor needs OpenTelemetry: install the 'otel' extra "
                 "(pip install 'mmate-fast[otel]', i.e. opentelemetry-api and opentelemetry-sdk)")


def _import_otel() -> Any:
    try:
        from opentelemetry import propagate, trace
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_MISSING_OTEL) from exc
    return propagate, trace


class _HeaderGetter:
    """OpenTelemetry Getter over AMQP/envelope headers (values may arrive as bytes)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            value = bytes(value).decode("utf-8", "replace")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> Iterable[str]:
        return list(carrier.keys())


_GETTER = _HeaderGetter()


class TracingInterceptor(Interceptor):
    """Trace publishes and handler calls with OpenTelemetry (see the module docstring)."""

    def __init__(self, tracer_provider: Any = None, *, propagator: Any = None,
                 tracer_name: str = "mmate_fast", system: str = "rabbitmq") -> None:
        self._propagate, self._trace = _import_otel()
        self._tracer = self._trace.get_tracer(tracer_name, __version__, tracer_provider=tracer_provider)
        self._propagator = propagator
        self.system = system

    def __repr__(self) -> str:
        return f"<TracingInterceptor system={self.system!r}>"

    def _textmap(self) -> Any:
        return self._propagator if self._propagator is not None else self._propagate.get_global_textmap()

    # ------------------------------------------------------------------ publish
    async def before_publish(self, ctx: PublishContext) -> bool | None:
        trace = self._trace
        type_ = type_name(ctx.message)
        span = self._tracer.start_span(f"publish {type_}", kind=trace.SpanKind.PRODUCER, attributes={
            "messaging.system": self.system,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "mmate.message.type": type_,
        })
        ctx.items[_SPAN] = span
        carrier: dict[str, str] = {}
        self._textmap().inject(carrier, context=trace.set_span_in_context(span))
        ctx.headers.update(carrier)
        return None

    async def before_send(self, ctx: PublishContext) -> None:
        span = ctx.items.get(_SPAN)
        if span is None or not span.is_recording():
            return
        span.set_attribute("messaging.destination.name", ctx.exchange or "")
        span.set_attribute("messaging.rabbitmq.destination.routing_key", ctx.routing_key or "")
        message_id = getattr(ctx.outgoing, "message_id", None)
        if message_id:
            span.set_attribute("messaging.message.id", str(message_id))
        correlation_id = ctx.options.get("correlation_id")
        if correlation_id:
            span.set_attribute("messaging.message.conversation_id", str(correlation_id))

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        span = ctx.items.pop(_SPAN, None)
        if span is None:
            return
        if error is not None:
            _record(span, self._trace, error)
        span.end()

    # ------------------------------------------------------------------ consume
    async def around_handler(self, ctx: ConsumeContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        trace = self._trace
        parent = self._textmap().extract(ctx.headers, getter=_GETTER)
        env = ctx.envelope
        delivery = ctx.delivery
        attributes = _consumer_attributes(self.system, delivery, env, ctx.queue)
        attributes["mmate.handler"] = getattr(ctx.handler, "name", "")
        with self._tracer.start_as_current_span(f"process {env.type}", context=parent,
                                                kind=trace.SpanKind.CONSUMER, attributes=attributes,
                                                record_exception=False,
                                                set_status_on_exception=False) as span:
            try:
                return await call_next()
            except BaseException as exc:
                _record(span, trace, exc)
                raise


def _consumer_attributes(system: str, delivery: Any, env: Any, queue: str) -> dict[str, Any]:
    """The attributes of a CONSUMER span ``process {Type}`` (shared with TracingObserver)."""
    attributes: dict[str, Any] = {
        "messaging.system": system,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": getattr(delivery, "exchange", "") or "",
        "messaging.rabbitmq.destination.routing_key": getattr(delivery, "routing_key", "") or "",
        "messaging.message.id": env.id,
        "mmate.message.type": env.type,
        "mmate.queue": queue,
    }
    if env.correlation_id:
        attributes["messaging.message.conversation_id"] = env.correlation_id
    return attributes


def _record(span: Any, trace: Any, error: BaseException) -> None:
    span.record_exception(error)
    reason = getattr(error, "reason", None)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}"
                                 + (f" [{reason}]" if reason else "")))
    if reason:
        span.set_attribute("mmate.failure.reason", str(reason))


__all__ = ["TracingInterceptor"]
