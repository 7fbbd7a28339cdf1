"""The observer hook: a plain, synchronous callback the publisher and the subscriber call once per
message, for metrics that must not cost the interceptor pipeline (no Task, no context object, no
await per message: the inline handler path stays inline).

An observer is set on a :class:`~mmate_fast.messaging.publisher.Publisher` and a
:class:`~mmate_fast.messaging.subscriber.Subscriber` (``.observer``; the Client's ``add_observer``
sets both, several at once through an :class:`ObserverSet`). With none set, the hot paths pay one
attribute test. An observer must be fast and must
not raise (what it raises is logged and dropped, never failing a publish or a delivery).

A :class:`MessageTracer` (``.tracer``, one per client: ``client.set_tracer``) is the same kind of
hook for tracing, called before a publish is encoded (to add trace headers) and around the handlers
of a delivery (to make a span current): again plain calls, no Task, no await.
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger("mmate_fast.messaging")


class MessageObserver(Protocol):
    """What the publisher and the subscriber report."""

    def published(self, message: Any, seconds: float, error: BaseException | None) -> None:
        """An awaited publish of ``message`` ended (``seconds`` incl. the broker confirm in confirm
        mode) with ``error`` or None."""
        ...

    def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
        """The handlers of one delivery of wire type ``type_name`` ran for ``seconds`` and raised
        ``error`` (or None)."""
        ...


class MessageTracer(Protocol):
    """The tracing hook (one per client): called *before* a publish is encoded and around the
    handlers of a delivery, so it can add trace headers and make a span current. Plain calls: an
    implementation decides cheaply whether to trace and returns None when not (then nothing else is
    called for that message). What it raises is logged and dropped."""

    def start_publish(self, message: Any, options: dict[str, Any]) -> Any:
        """Before ``message`` is encoded; may put trace headers in ``options["headers"]`` (a new dict:
        never change the caller's). Returns a token for :meth:`end_publish`, or None."""
        ...

    def end_publish(self, token: Any, message_id: str, exchange: str, routing_key: str,
                    error: BaseException | None) -> None:
        """The publish of ``token`` ended (sent, confirmed in confirm mode, or failed with ``error``)."""
        ...

    def start_handle(self, delivery: Any, envelope: Any, queue: str) -> Any:
        """Before the handlers of a delivery run, in the context they run in. Returns a token for
        :meth:`end_handle` (called in the same context), or None."""
        ...

    def end_handle(self, token: Any, error: BaseException | None) -> None:
        """The handlers of ``token``'s delivery ran and raised ``error`` (or None)."""
        ...


def tracer_failed(tracer: Any) -> None:
    """Log the exception a tracer hook just raised (it is dropped: the message goes on untraced)."""
    log.exception("message tracer %r failed (ignored)", tracer)


def start_publish(tracer: Any, message: Any, options: dict[str, Any]) -> Any:
    """``tracer.start_publish`` that never raises (what it raises is logged; the publish goes on)."""
    try:
        return tracer.start_publish(message, options)
    except Exception:
        log.exception("message tracer %r failed (ignored)", tracer)
        return None


def end_publish(tracer: Any, token: Any, message_id: str, exchange: str | None, routing_key: str | None,
                error: BaseException | None) -> None:
    """``tracer.end_publish`` that never raises."""
    try:
        tracer.end_publish(token, message_id, exchange or "", routing_key or "", error)
    except Exception:
        log.exception("message tracer %r failed (ignored)", tracer)


def start_handle(tracer: Any, delivery: Any, envelope: Any, queue: str) -> Any:
    """``tracer.start_handle`` that never raises."""
    try:
        return tracer.start_handle(delivery, envelope, queue)
    except Exception:
        log.exception("message tracer %r failed (ignored)", tracer)
        return None


def end_handle(tracer: Any, token: Any, error: BaseException | None) -> None:
    """``tracer.end_handle`` that never raises."""
    try:
        tracer.end_handle(token, error)
    except Exception:
        log.exception("message tracer %r failed (ignored)", tracer)


class ObserverSet:
    """Several observers as one (each is told in turn; one that raises does not stop the others)."""

    __slots__ = ("observers",)

    def __init__(self, observers: tuple[MessageObserver, ...]) -> None:
        self.observers = observers

    def published(self, message: Any, seconds: float, error: BaseException | None) -> None:
        for o in self.observers:
            try:
                o.published(message, seconds, error)
            except Exception:
                log.exception("publish observer %r failed (ignored)", o)

    def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
        for o in self.observers:
            try:
                o.handled(type_name, seconds, error)
            except Exception:
                log.exception("handler observer %r failed (ignored)", o)


def combined(observers: list[MessageObserver]) -> MessageObserver | None:
    """What to set as ``.observer`` for ``observers``: None, the one, or an ObserverSet."""
    if not observers:
        return None
    if len(observers) == 1:
        return observers[0]
    return ObserverSet(tuple(observers))


__all__ = ["MessageObserver", "MessageTracer", "ObserverSet", "combined", "end_handle", "end_publish",
           "start_handle", "start_publish", "tracer_failed"]
