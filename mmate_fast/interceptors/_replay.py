"""The freshness check of signed messages: too old (or dated too far ahead) is ``expired``, an id
accepted before on the same queue is ``replayed``.

A message counts from its signed timestamp plus its signed ``x-delay`` (a scheduled message is due
then); it is refused when that is more than ``max_age`` seconds ago, or when its timestamp is more
than ``clock_skew`` seconds ahead of this clock. Every accepted (queue, message id) is remembered
until it would be refused as expired anyway, so the memory holds at most the ids of ``max_age``
seconds — and never more than ``max_ids``: beyond that the oldest are forgotten early (counted in
``evictions``, logged once), which keeps the service running at the price of replay protection for
those ids; size ``max_ids`` to messages per second x ``max_age``.

Two legitimate repeats are let through: a delivery the broker marks ``redelivered`` (it had been
delivered and not settled: a consumer or channel went away), and the retry of a message that failed
after it was accepted (the subscriber releases its id, see ``Interceptor.release_delivery``).
"""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable

from mmate_fast.errors import ConfigurationError, ExpiredMessageError, ReplayedMessageError, SignatureError

log = logging.getLogger("mmate_fast.interceptors")


class ReplayWindow:
    """Accepted (queue, message id) pairs of the last ``max_age`` seconds (see the module docstring)."""

    def __init__(self, max_age: float, clock_skew: float, max_ids: int, clock: Callable[[], float]) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int | float) or not 0 < max_age < math.inf:
            raise ConfigurationError(f"max_age must be a number of seconds > 0 (or None: no freshness "
                                     f"check), not {max_age!r}")
        if isinstance(clock_skew, bool) or not isinstance(clock_skew, int | float) \
                or not 0 <= clock_skew < math.inf:
            raise ConfigurationError(f"clock_skew must be a number of seconds >= 0, not {clock_skew!r}")
        if type(max_ids) is not int or max_ids < 1:
            raise ConfigurationError(f"max_ids must be a whole number >= 1, not {max_ids!r}")
        self.max_age = float(max_age)
        self.clock_skew = float(clock_skew)
        self.max_ids = max_ids
        self._clock = clock
        #: (queue, id) -> when it expires (insertion order ~ expiry order: swept from the front)
        self._ids: OrderedDict[tuple[str, str], float] = OrderedDict()
        #: ids forgotten before their time because the window was full
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._ids)

    def admit(self, queue: str, message_id: str, timestamp: int | None, delay_ms: int,
              redelivered: bool) -> None:
        """Accept a verified message or raise ExpiredMessageError / ReplayedMessageError
        (SignatureError when it carries no id or no timestamp to check)."""
        if not message_id:
            raise SignatureError("signed message has no message id: the replay check needs one "
                                 "(or turn it off with max_age=None)")
        if timestamp is None:
            raise SignatureError("signed message has no timestamp: the age check needs one "
                                 "(or turn it off with max_age=None)")
        now = self._clock()
        ahead = timestamp - now
        if ahead > self.clock_skew:
            raise ExpiredMessageError(f"message is dated {ahead:.0f} s in the future (clock_skew "
                                      f"{self.clock_skew:g} s): check the sender's clock")
        due = timestamp + delay_ms / 1000.0
        age = now - due
        if age > self.max_age:
            raise ExpiredMessageError(f"message is {age:.0f} s old, over max_age {self.max_age:g} s")
        ids = self._ids
        self._sweep(now)
        key = (queue, message_id)
        if key in ids:
            if redelivered:  # the broker hands back what it delivered before and nobody settled
                return
            raise ReplayedMessageError(f"message id {message_id[:64]!r} was already accepted on queue "
                                       f"{queue[:255]!r} within the last {self.max_age:g} s")
        ids[key] = due + self.max_age
        if len(ids) > self.max_ids:
            ids.popitem(last=False)
            if self.evictions == 0:
                log.warning("replay window full (max_ids=%d): the oldest message ids are forgotten before "
                            "max_age; raise max_ids to at least messages/s x max_age", self.max_ids)
            self.evictions += 1

    def forget(self, queue: str, message_id: str) -> None:
        """The message failed after it was accepted: let its retry (same id) in."""
        self._ids.pop((queue, message_id), None)

    def _sweep(self, now: float) -> None:
        ids = self._ids
        while ids:
            key, expires = next(iter(ids.items()))
            if expires > now:
                return
            del ids[key]


__all__ = ["ReplayWindow"]
