"""Channel-id allocation and publisher-confirm tracking (compiled: src_cy/pool.pyx; twin:
mmate_fast/_py/pool.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

class ChannelIds:
    """Allocates channel ids 1..channel_max, reusing the lowest freed id first."""

    channel_max: int
    def __init__(self, channel_max: int = 2047) -> None: ...
    def allocate(self) -> int:
        """Next free id; raises mmate_fast.errors.NoChannelsAvailableError when all are used."""
    def release(self, channel_id: int) -> None: ...
    def in_use(self) -> int: ...

class RoundRobin:
    """Cycles over a list of items (e.g. publishing channels); ``next()`` is O(1)."""

    def __init__(self, items: list[Any]) -> None: ...
    def next(self) -> Any: ...
    def replace(self, items: list[Any]) -> None: ...
    def __len__(self) -> int: ...

class ConfirmTracker:
    """Maps publish delivery tags (1, 2, 3, ... per channel in confirm mode) to waiters.

    A waiter is any object with ``done()``, ``set_result()`` and ``set_exception()`` (an
    asyncio.Future), or None when nobody waits for that tag. ``ack``/``nack`` accept ``multiple=True``
    ranges (every outstanding tag <= delivery_tag). A nack sets ``make_nack_error(tag)`` as the
    waiter's exception. Tags that are unknown or already settled are ignored (no error).
    """

    def __init__(self, make_nack_error: Callable[[int], BaseException]) -> None: ...
    def next_tag(self) -> int:
        """The tag the next publish will get (does not consume it)."""
    def add(self, waiter: Any | None, value: Any = True) -> int:
        """Register the next publish; returns its delivery tag. On ack its waiter resolves with
        ``value`` (default True; e.g. the message id the caller wants back)."""
    def ack(self, delivery_tag: int, multiple: bool) -> int:
        """Resolve waiter(s) with their value (True unless ``add`` got one); returns how many tags
        were settled. One call settles a whole ``multiple=True`` range."""
    def nack(self, delivery_tag: int, multiple: bool) -> int:
        """Fail waiter(s) with make_nack_error(tag); returns how many tags were settled."""
    def mark_returned(self, exc: BaseException) -> bool:
        """basic.return came for the oldest outstanding *mandatory* publish: its waiter will get
        ``exc`` instead of True when its ack arrives. Returns False if no mandatory publish is pending."""
    def add_mandatory(self, waiter: Any | None, value: Any = True) -> int:
        """Like ``add`` for a publish with mandatory=True (so ``mark_returned`` can find it)."""
    def outstanding(self) -> int:
        """Tags published but not yet acked/nacked."""
    def fail_all(self, exc: BaseException) -> int:
        """Fail every outstanding waiter with ``exc`` (channel/connection closed); returns count."""
    def reset(self) -> None:
        """Forget everything and restart tags at 1 (a new channel after recovery)."""
    nacked: int  # total tags nacked since creation/reset
    acked: int  # total tags acked since creation/reset
