"""Filtering: a predicate decides whether a message is handled (consume) or sent (publish).

On consume, ``predicate(ctx)`` False skips the handler and acks the message (filtered, not failed).
On publish (only with ``publish_predicate``), False drops the message: ``publish`` returns ``""``.
Predicates take the ConsumeContext / PublishContext and may be ``async``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

ConsumePredicate = Callable[[ConsumeContext], Any]
PublishPredicate = Callable[[PublishContext], Any]


class FilterInterceptor(Interceptor):
    """Skip (consume) or drop (publish) the messages a predicate rejects; counts both."""

    def __init__(self, predicate: ConsumePredicate | None = None, *,
                 publish_predicate: PublishPredicate | None = None) -> None:
        self.predicate = predicate
        self.publish_predicate = publish_predicate
        self.skipped = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<FilterInterceptor skipped={self.skipped} dropped={self.dropped}>"

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        if self.predicate is None or await _truth(self.predicate(ctx)):
            return None
        self.skipped += 1
        return False

    async def before_publish(self, ctx: PublishContext) -> bool | None:
        if self.publish_predicate is None or await _truth(self.publish_predicate(ctx)):
            return None
        self.dropped += 1
        return False


async def _truth(value: Any) -> bool:
    if inspect.isawaitable(value):
        value = await value
    return bool(value)


__all__ = ["ConsumePredicate", "FilterInterceptor", "PublishPredicate"]
