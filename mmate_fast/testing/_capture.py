"""``record_published(client)``: what a service published, to assert on in a test.

The capture is an interceptor on the client's pipeline: its ``after_publish`` keeps every message the
broker took (confirmed, in confirm mode), with its wire type, id, exchange, routing key and headers
— replies a handler returns included; not the messages ``feed`` delivers to the client. While it
is installed, the client's ``publish_nowait`` is refused (interceptors are async), as with any
publish interceptor.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from mmate_fast import errors
from mmate_fast.contracts import message_type
from mmate_fast.messaging.pipeline import Interceptor, PublishContext
from mmate_fast.testing._feed import is_fed

#: at most this many published messages are named in a timeout message
_SHOWN = 10


@dataclass(frozen=True)
class Published:
    """One message the client published."""

    message: Any
    #: the wire type name (envelope ``type``)
    type: str
    message_id: str
    exchange: str
    routing_key: str
    headers: dict[str, Any] = field(default_factory=dict)


def _matches(kind: type | str, message: Any, type_name: str) -> bool:
    return type_name == kind if isinstance(kind, str) else isinstance(message, kind)


def _kind_name(kind: type | str) -> str:
    return kind if isinstance(kind, str) else kind.__name__


class PublishedCapture(Interceptor):
    """The messages a client published since the capture started (``published``, in order).

    ``capture.of(OrderPlaced)`` lists the messages of a class (or of a wire type name);
    ``await capture.wait_for(OrderPlaced, count=1, timeout=5)`` waits until that many were published.
    Use it as a context manager, or call :meth:`close`, to take it off the client again.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.published: list[Published] = []
        self._waiters: list[asyncio.Future[None]] = []

    async def after_publish(self, ctx: PublishContext, error: BaseException | None) -> None:
        if error is not None or ctx.dropped or ctx.outgoing is None or is_fed(self.client, ctx.message):
            return
        self.published.append(Published(ctx.message, message_type(ctx.message), str(ctx.outgoing.message_id),
                                        ctx.exchange or "", ctx.routing_key or "", dict(ctx.headers)))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def messages(self) -> list[Any]:
        """Every published message object, in order."""
        return [p.message for p in self.published]

    def of(self, kind: type | str) -> list[Any]:
        """The published messages that are instances of ``kind`` (or have the wire type ``kind``)."""
        return [p.message for p in self.published if _matches(kind, p.message, p.type)]

    async def wait_for(self, kind: type | str, count: int = 1, timeout: float = 5.0) -> list[Any]:
        """The messages of ``kind`` once at least ``count`` were published; raises
        ObservationTimeout (an AssertionError) naming what was published instead after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.of(kind)
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise errors.ObservationTimeout(
                    f"expected {count} published {_kind_name(kind)}, saw {len(found)} within {timeout:g} s; "
                    f"published meanwhile: {self._summary()}")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                if not waiter.done():
                    waiter.cancel()
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.published.clear()

    def close(self) -> None:
        """Take the capture off the client (what it captured stays readable)."""
        if self in self.client.pipeline:
            self.client.pipeline.remove(self)

    def __enter__(self) -> PublishedCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _summary(self) -> str:
        if not self.published:
            return "nothing"
        shown = ", ".join(f"{p.type} -> {p.exchange or '(default)'}/{p.routing_key}"
                          for p in self.published[:_SHOWN])
        more = len(self.published) - _SHOWN
        return shown + (f" and {more} more" if more > 0 else "")


def record_published(client: Any) -> PublishedCapture:
    """Start capturing what ``client`` publishes (see :class:`PublishedCapture`)."""
    capture = PublishedCapture(client)
    client.use(capture)
    return capture


__all__ = ["Published", "PublishedCapture", "record_published"]
