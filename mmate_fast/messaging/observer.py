"""The observer hook: a plain, synchronous callback the publisher and the subscriber call once per
message, for metrics that must not cost the interceptor pipeline (no Task, no context object, no
await per message: the inline handler path stays inline).

An observer is set on a :class:`~mmate_fast.messaging.publisher.Publisher` and a
:class:`~mmate_fast.messaging.subscriber.Subscriber` (``.observer``; the Client's ``add_observer``
sets both, several at once through an :class:`ObserverSet`). With none set, the hot paths pay one
attribute test. An observer must be fast and must
not raise (what it raises is logged and dropped, never failing a publish or a delivery).
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


__all__ = ["MessageObserver", "ObserverSet", "combined"]
