"""Dead-lettering, the default end of a delivery that failed: moved to ``dlq.{queue}`` with the reason.

The messaging core hands a failed delivery (a body that is not an envelope, a type without handler, a
payload that does not fit its class, a handler error) to its subscription's failure handler; what is
not settled otherwise ends with ``subscription.give_up``, which the Client wires to
:class:`DeadLettering`: the delivery is republished to ``dlq.{queue}`` — same body and properties,
persistent whatever the original was, plus the headers ``x-mmate-reason``, ``x-mmate-error``,
``x-mmate-original-queue`` and ``x-mmate-failed-at`` (and for ``bad-properties`` the property bytes
exactly as they came, ``x-mmate-raw-properties``) — with a broker confirm, and only then acked:
nothing is lost between the two.

A delivery over the connection's ``max_message_size`` (reason ``too-large``) arrives without its
body (dropped as it came): its DLQ copy is a record — the properties and the headers above, an
empty body and ``x-mmate-original-size`` (the declared body size) — and the original is rejected
without requeue instead of acked, so a dead-letter exchange on its queue keeps the whole body.

The DLQ is declared on the first failure of its queue (a consumer that never fails leaves no queue
behind), once, on a channel of its own, so a refusal (406: a ``dlq.{queue}`` with other arguments
exists) closes nothing else. The copy is published ``mandatory``: a DLQ deleted since it was declared
returns it instead of dropping it, and is declared again, once. When the move fails the delivery is
rejected without requeue (counted in ``stats.rejected`` and logged); the next failure tries again.
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Any

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.messaging import topology
from mmate_fast.messaging._channels import close_quietly
from mmate_fast.messaging.subscriber import Failure, Subscription
from mmate_fast.reliability._declared import Declarations

_env = load("envelope")

log = logging.getLogger("mmate_fast.dead_lettering")

REASON_HEADER = "x-mmate-reason"
ERROR_HEADER = "x-mmate-error"
QUEUE_HEADER = "x-mmate-original-queue"
TIME_HEADER = "x-mmate-failed-at"
#: on a ``bad-properties`` dead letter: the property bytes exactly as they came (a byte array)
RAW_PROPERTIES_HEADER = "x-mmate-raw-properties"
#: on a ``too-large`` record: the body size the original declared (its body is not in the copy)
ORIGINAL_SIZE_HEADER = "x-mmate-original-size"
#: the properties every dead-letter copy gets on top of the original's
_PERSISTENT = {"delivery_mode": 2}
#: error texts in headers are cut to this many characters
MAX_ERROR_TEXT = 1000


def failure_headers(failure: Failure) -> dict[str, Any]:
    """The headers a dead letter carries on top of the original's: why, what, where and when."""
    headers: dict[str, Any] = {
        REASON_HEADER: failure.reason,
        ERROR_HEADER: failure.text[:MAX_ERROR_TEXT],
        QUEUE_HEADER: failure.subscription.queue,
        TIME_HEADER: _env.utc_timestamp(time.time()),
    }
    delivery = failure.delivery
    raw = delivery.raw_properties
    if raw is not None:
        headers[RAW_PROPERTIES_HEADER] = bytes(raw)
    if delivery.oversized:
        headers[ORIGINAL_SIZE_HEADER] = int(delivery.oversized)
    return headers


class DeadLettering:
    """Moves failed deliveries of one connection's subscriptions to their ``dlq.{queue}`` (a
    FailureHandler: ``await dead_lettering(failure)``; see the module docstring)."""

    def __init__(self, connection: Any, *, queue_type: str | None = None) -> None:
        self.connection = connection
        #: the type of the DLQs declared (``quorum``: a Client with ``queue_type="quorum"``)
        self.queue_type = queue_type
        #: the ``dlq.{queue}`` declared so far (on the first failure of each queue)
        self._declared = Declarations()

    async def __call__(self, failure: Failure) -> None:
        sub = failure.subscription
        delivery = failure.delivery
        dlq = topology.dead_letter_queue(sub.queue)
        try:
            await self._move_to(sub, delivery, failure_headers(failure))
        except Exception as exc:
            log.error("could not move delivery %d to %s (%r); rejecting it instead", delivery.delivery_tag,
                      dlq, exc)
            sub.reject(failure)
            return
        if delivery.oversized:  # a record only: the broker's dead-letter policy may keep the body
            sub.reject(failure, dead_lettered=True)
        else:
            sub.ack(failure, dead_lettered=True)

    async def ensure(self, queue: str) -> str:
        """Declare ``dlq.{queue}`` (durable, as ``topology.declare_dead_letter_queue``) unless done
        already; returns its name. Concurrent callers share one declare; a refused one raises to
        them and the next call tries again."""
        await self._declared.ensure(queue, functools.partial(self._declare, queue))
        return topology.dead_letter_queue(queue)

    def forget(self, queue: str) -> None:
        """``dlq.{queue}`` is gone (deleted since it was declared): the next ``ensure`` declares it."""
        self._declared.forget(queue)

    async def _declare(self, queue: str) -> None:
        channel = await self.connection.channel()
        try:
            await topology.declare_dead_letter_queue(channel, queue, queue_type=self.queue_type)
        finally:
            await close_quietly(channel)

    async def _move_to(self, sub: Subscription, delivery: Any, headers: dict[str, Any]) -> None:
        """Republish to the DLQ, declared first unless done already. Mandatory: a DLQ deleted since it
        was declared returns the copy instead of dropping it; then it is declared again, once."""
        for last in (False, True):
            dlq = await self.ensure(sub.queue)
            try:
                # persistent whatever the original was: a dead letter is kept through a broker restart
                await sub.republish(delivery, "", dlq, headers, _PERSISTENT, mandatory=True)
                return
            except errors.PublishReturnedError:
                if last:
                    raise
                log.warning("%s is gone; declaring it again", dlq)
                self.forget(sub.queue)


__all__ = ["ERROR_HEADER", "MAX_ERROR_TEXT", "ORIGINAL_SIZE_HEADER", "QUEUE_HEADER", "RAW_PROPERTIES_HEADER",
           "REASON_HEADER", "TIME_HEADER", "DeadLettering", "failure_headers"]
