"""The observer hook: a plain, synchronous callback the publisher and the subscriber call once per
message, for metrics that must not cost the interceptor pipeline (no Task, no context object, no
await per message: the inline handler path stays inline).

An observer is set on a :class:`~mmate_fast.messaging.publisher.Publisher` and a
:class:`~mmate_fast.messaging.subscriber.Subscriber` (``.observer``; the Client's ``set_observer``
sets both). With none set, the hot paths pay one attribute test. An observer must be fast and must
not raise (what it raises is logged and dropped, never failing a publish or a delivery).
"""
from __future__ import annotations

from typing import Any, Protocol


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


__all__ = ["MessageObserver"]
