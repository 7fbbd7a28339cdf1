"""Logging of every publish and every handler call: type, id, route, duration and outcome.

Bodies and headers are never logged unless ``log_bodies=True`` (then the body is cut to
``max_body`` bytes); headers never, since they may carry signatures or tokens. Failures are logged
at ``failure_level`` with the exception type and message (mmate_fast errors never contain
credentials).
"""
from __future__ import annotations

import logging
import time
from typing import Any

from mmate_fast.interceptors._types import type_name
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

_T0 = "log.t0"


class LoggingInterceptor(Interceptor):
    """Log publishes and handler calls on ``logger`` (default ``mmate_fast.messages``)."""

    def __init__(self, logger: logging.Logger | str | None = None, level: int = logging.INFO, *,
                 failure_level: int = logging.WARNING, log_bodies: bool = False,
                 max_body: int = 1024) -> None:
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or "mmate_fast.messages")
        self.logger = logger
        self.level = level
        self.failure_level = failure_level
        self.log_bodies = log_bodies
        self.max_body = max_body

    def __repr__(self) -> str:
        return f"<LoggingInterceptor logger={self.logger.name!r} level={logging.getLevelName(self.level)}>"

    async def before_publish(self, ctx: PublishContext) -> bool | None:
        ctx.items[_T0] = time.perf_counter()
        return None

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        level = self.level if error is None else self.failure_level
        if not self.logger.isEnabledFor(level):
            return
        ms = (time.perf_counter() - ctx.items.get(_T0, time.perf_counter())) * 1000
        out = ctx.outgoing
        msg_id = getattr(out, "message_id", "") if out is not None else ""
        extra = self._body(out.body) if out is not None and self.log_bodies else ""
        self.logger.log(level, "publish %s id=%s exchange=%r routing_key=%r %.2fms %s%s",
                        type_name(ctx.message), msg_id, ctx.exchange, ctx.routing_key, ms, _outcome(error),
                        extra)

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        ctx.items[_T0] = time.perf_counter()
        return None

    async def after_consume(self, ctx: ConsumeContext, error: BaseException | None) -> None:
        level = self.level if error is None else self.failure_level
        if not self.logger.isEnabledFor(level):
            return
        ms = (time.perf_counter() - ctx.items.get(_T0, time.perf_counter())) * 1000
        outcome = "skipped" if ctx.skipped and error is None else _outcome(error)
        extra = self._body(ctx.delivery.body) if self.log_bodies else ""
        self.logger.log(level, "handle %s id=%s queue=%r handler=%s redelivered=%s %.2fms %s%s",
                        ctx.envelope.type, ctx.envelope.id, ctx.queue, ctx.handler.name,
                        bool(getattr(ctx.delivery, "redelivered", False)), ms, outcome, extra)

    def _body(self, body: Any) -> str:
        raw = bytes(body)
        cut = raw[: self.max_body]
        more = f"...(+{len(raw) - len(cut)} bytes)" if len(raw) > len(cut) else ""
        return f" body={cut.decode('utf-8', 'replace')!r}{more}"


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    reason = getattr(error, "reason", None)
    text = str(error)
    if len(text) > 300:
        text = text[:300] + "..."
    return (f"error {type(error).__name__}" + (f" [{reason}]" if reason else "")
            + (f": {text}" if text else ""))


__all__ = ["LoggingInterceptor"]
