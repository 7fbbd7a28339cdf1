"""Head-sampled OpenTelemetry tracing on the client's tracer hook: the fast path.

    tracing = TracingObserver(client, tracer_provider=provider, sample=0.01)   # tracing.close() to stop

Same spans, attributes and context propagation as :class:`~mmate_fast.interceptors.TracingInterceptor`
(a PRODUCER span ``publish {Type}`` per publish, its context injected into the headers; a CONSUMER
span ``process {Type}`` around the handlers of a delivery, child of the extracted context and current
while they run; errors recorded), but it is a plain hook (:class:`MessageTracer`), not an interceptor:
plain handlers stay inline, and the sampling decision is made *before* OpenTelemetry is touched, so
an unsampled message costs a header lookup, a context lookup and a counter.

Sampling (parent-based, as OpenTelemetry's ``ParentBased(TraceIdRatioBased(sample))``):

- a delivery carrying a W3C ``traceparent`` follows its sampled flag: ``01`` -> traced (child of
  it); ``00`` -> not traced, and the handlers' publishes carry that ``traceparent``/``tracestate``
  unchanged (W3C trace-context lets a participant that does not record pass the header on as it
  came), so the next service sees the same trace id and the same "not sampled" decision;
- a publish follows the current OpenTelemetry span if there is a valid one (a sampled one: its
  PRODUCER span is a child; an unsampled one: its context is injected with the flag ``00``), else the
  delivery being handled (above);
- anything else is a root: ``sample`` (a ratio, 0..1) decides with a deterministic counter (exactly
  ``sample`` of the roots, evenly spread: 0.01 = every 100th), or ``sampler`` (a callable returning
  True to sample, e.g. ``random.Random(seed).random() < r``). An unsampled root carries no trace
  context at all: it sends no trace headers, so the next service decides for itself, and the
  publishes made by the handlers of an unsampled root delivery are roots too (each decided by the
  ratio). Traces start wherever there is no incoming context; a sampled trace is followed to its end.

The SDK's own sampler still applies to the spans this starts: keep the provider's default
(``ParentBased(ALWAYS_ON)``) so that this head decision is the only one. The decision reads the W3C
``traceparent`` header; sampled messages are injected/extracted with the configured propagator
(the global one by default: traceparent, tracestate and baggage). ``publish_nowait`` is not traced.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from mmate_fast._version import __version__
from mmate_fast.interceptors._types import type_name
from mmate_fast.interceptors.tracing import _GETTER, _consumer_attributes, _import_otel, _record
from mmate_fast.messaging._headers import header_view

#: the trace context of the delivery whose handlers run when its traceparent said "not sampled":
#: the incoming (traceparent, tracestate), passed on unchanged
_INHERITED: ContextVar[Any] = ContextVar("mmate_fast_unsampled_trace", default=None)


def _sampled_flag(traceparent: Any) -> bool | None:
    """The sampled flag of a W3C traceparent (``vv-{32 hex}-{16 hex}-ff``); None if it is not one."""
    if isinstance(traceparent, bytes | bytearray | memoryview):
        traceparent = bytes(traceparent).decode("ascii", "replace")
    if not isinstance(traceparent, str) or len(traceparent) < 55 or traceparent[2] != "-" \
            or traceparent[35] != "-" or traceparent[52] != "-" or traceparent[:2] == "ff":
        return None
    try:
        return bool(int(traceparent[53:55], 16) & 1)
    except ValueError:
        return None


class _RatioCounter:
    """Exactly ``ratio`` of the calls say True, evenly spread (a credit counter, no randomness)."""

    __slots__ = ("credit", "ratio")

    def __init__(self, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"sample must be a ratio between 0 and 1, not {ratio!r}")
        self.ratio = ratio
        self.credit = 1.0 - ratio if ratio else 0.0  # the first root is sampled (when ratio > 0)

    def __call__(self) -> bool:
        credit = self.credit + self.ratio
        if credit >= 1.0:
            self.credit = credit - 1.0
            return True
        self.credit = credit
        return False


class TracingObserver:
    """Head-sampled tracing of a client's publishes and deliveries (see the module docstring).

    ``client``: set as its tracer (:meth:`close` removes it); ``tracer_provider``: default the global
    one; ``sample``: ratio of root traces to sample (default 0.01); ``sampler``: a callable deciding
    instead; ``propagator``: default the global textmap. ``sampled`` / ``unsampled`` count the
    decisions made here (roots and inherited ones).
    """

    def __init__(self, client: Any = None, *, tracer_provider: Any = None, sample: float = 0.01,
                 sampler: Callable[[], bool] | None = None, propagator: Any = None,
                 tracer_name: str = "mmate_fast", system: str = "rabbitmq") -> None:
        self._propagate, self._trace = _import_otel()
        trace = self._trace
        self._tracer = trace.get_tracer(tracer_name, __version__, tracer_provider=tracer_provider)
        self._propagator = propagator
        #: a custom sampler, or None: then the ratio counter, inlined where it decides
        self._sampler = sampler
        self._counter = _RatioCounter(sample)
        self._current_span = _current_span_function(trace)
        self._invalid = trace.INVALID_SPAN
        self._attach, self._detach = _context_functions()
        self.system = system
        self.sampled = 0
        self.unsampled = 0
        self._client = client
        if client is not None:
            client.set_tracer(self)

    def __repr__(self) -> str:
        return f"<TracingObserver system={self.system!r} sampled={self.sampled} unsampled={self.unsampled}>"

    def close(self) -> None:
        """Stop tracing the client (if it is still this one's)."""
        client, self._client = self._client, None
        if client is not None and client.tracer is self:
            client.set_tracer(None)

    def _textmap(self) -> Any:
        return self._propagator if self._propagator is not None else self._propagate.get_global_textmap()

    # ------------------------------------------------------------------ publish
    def start_publish(self, message: Any, options: dict[str, Any]) -> Any:
        """Decide; for a sampled publish start its PRODUCER span and inject its context."""
        span = self._current_span()
        if span is not self._invalid:
            sc = span.get_span_context()
            if sc.is_valid:
                if sc.trace_flags & 1:
                    self.sampled += 1
                    return self._start_producer(message, options)
                self.unsampled += 1
                carrier: dict[str, str] = {}
                self._textmap().inject(carrier)
                _add_headers(options, carrier)
                return None
        inherited = _INHERITED.get()
        if inherited is not None:
            self.unsampled += 1
            traceparent, tracestate = inherited
            _add_headers(options, {"traceparent": traceparent, "tracestate": tracestate}
                         if tracestate else {"traceparent": traceparent})
            return None
        if self._sampler is None:  # _RatioCounter.__call__, inlined (every root message)
            counter = self._counter
            credit = counter.credit + counter.ratio
            take = credit >= 1.0
            counter.credit = credit - 1.0 if take else credit
        else:
            take = self._sampler()
        if take:
            self.sampled += 1
            return self._start_producer(message, options)
        self.unsampled += 1
        return None

    def _start_producer(self, message: Any, options: dict[str, Any]) -> Any:
        trace = self._trace
        type_ = type_name(message)
        span = self._tracer.start_span(f"publish {type_}", kind=trace.SpanKind.PRODUCER, attributes={
            "messaging.system": self.system,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "mmate.message.type": type_,
        })
        carrier: dict[str, str] = {}
        self._textmap().inject(carrier, context=trace.set_span_in_context(span))
        _add_headers(options, carrier)
        correlation_id = options.get("correlation_id")
        if correlation_id and span.is_recording():
            span.set_attribute("messaging.message.conversation_id", str(correlation_id))
        return span

    def end_publish(self, token: Any, message_id: str, exchange: str, routing_key: str,
                    error: BaseException | None) -> None:
        """End a sampled publish's span (route and message id as attributes, the error recorded)."""
        span = token
        if span.is_recording():
            span.set_attribute("messaging.destination.name", exchange)
            span.set_attribute("messaging.rabbitmq.destination.routing_key", routing_key)
            if message_id:
                span.set_attribute("messaging.message.id", message_id)
        if error is not None:
            _record(span, self._trace, error)
        span.end()

    # ------------------------------------------------------------------ consume
    def start_handle(self, delivery: Any, envelope: Any, queue: str) -> Any:
        """Decide from the delivery's traceparent (or as a root); a sampled delivery gets a current
        CONSUMER span, an unsampled one the context its handlers' publishes pass on."""
        amqp = delivery.properties.headers
        traceparent = amqp.get("traceparent") if amqp else None
        if traceparent is None:
            env_headers = envelope.headers
            traceparent = env_headers.get("traceparent") if env_headers else None
        if traceparent is not None:
            flag = _sampled_flag(traceparent)
            if flag is not None:
                if flag:
                    self.sampled += 1
                    headers = header_view(amqp, envelope.headers)
                    return self._start_consumer(delivery, envelope, queue,
                                                self._textmap().extract(headers, getter=_GETTER))
                self.unsampled += 1
                tracestate = (amqp.get("tracestate") if amqp and "traceparent" in amqp
                              else (envelope.headers or {}).get("tracestate"))
                return _INHERITED.set((_text(traceparent), _text(tracestate) if tracestate else ""))
        if self._sampler is None:  # _RatioCounter.__call__, inlined (every root message)
            counter = self._counter
            credit = counter.credit + counter.ratio
            take = credit >= 1.0
            counter.credit = credit - 1.0 if take else credit
        else:
            take = self._sampler()
        if take:
            self.sampled += 1
            return self._start_consumer(delivery, envelope, queue, None)
        self.unsampled += 1
        return None

    def _start_consumer(self, delivery: Any, env: Any, queue: str, parent: Any) -> Any:
        trace = self._trace
        attributes = _consumer_attributes(self.system, delivery, env, queue)
        if parent is None:  # a root: not a child of whatever span the reader's context holds
            parent = self._root_context()
        span = self._tracer.start_span(f"process {env.type}", context=parent, kind=trace.SpanKind.CONSUMER,
                                       attributes=attributes)
        # the span current while the handlers run, and no unsampled context inherited in that scope
        return _Handling(span, self._attach(trace.set_span_in_context(span)), _INHERITED.set(None))

    def _root_context(self) -> Any:
        from opentelemetry.context import Context
        return Context()

    def end_handle(self, token: Any, error: BaseException | None) -> None:
        """Close what :meth:`start_handle` opened (in the same context)."""
        if token.__class__ is not _Handling:
            _INHERITED.reset(token)
            return
        span = token.span
        try:
            if error is not None:
                _record(span, self._trace, error)
            span.end()
        finally:
            _INHERITED.reset(token.inherited)
            self._detach(token.context_token)


class _Handling:
    """What a sampled delivery's handlers run under."""

    __slots__ = ("context_token", "inherited", "span")

    def __init__(self, span: Any, context_token: Any, inherited: Any) -> None:
        self.span = span
        self.context_token = context_token
        self.inherited = inherited


def _current_span_function(trace: Any) -> Callable[[], Any]:
    """``trace.get_current_span`` without its layers of calls when OpenTelemetry keeps the context in
    a ContextVar (its default runtime context): the span under its key, or INVALID_SPAN."""
    try:
        from opentelemetry.context import _RUNTIME_CONTEXT
        from opentelemetry.trace.propagation import _SPAN_KEY

        var = _RUNTIME_CONTEXT._current_context  # type: ignore[attr-defined]
        if not isinstance(var, ContextVar) or not isinstance(_SPAN_KEY, str):
            raise TypeError(var)
    except (ImportError, AttributeError, TypeError):  # another runtime context: the public way
        return trace.get_current_span
    get, invalid = var.get, trace.INVALID_SPAN

    def current_span() -> Any:
        return get().get(_SPAN_KEY, invalid)

    return current_span


def _context_functions() -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
    from opentelemetry import context
    return context.attach, context.detach


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _add_headers(options: dict[str, Any], extra: Mapping[str, str]) -> None:
    """Put ``extra`` into the publish's headers (a new dict: the caller's stays as it was)."""
    if not extra:
        return
    headers = options.get("headers")
    options["headers"] = {**headers, **extra} if headers else dict(extra)


__all__ = ["TracingObserver"]
