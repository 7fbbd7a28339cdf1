"""Pure-Python twin of src_cy/pool.pyx: channel ids, round robin, publisher-confirm tracking.

Contract: mmate_fast/_cy/pool.pyi.
"""
from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Any

from mmate_fast.errors import NoChannelsAvailableError

_MISSING = object()


class ChannelIds:
    """Allocates channel ids 1..channel_max, reusing the lowest freed id first."""

    __slots__ = ("_free", "_next", "_used", "channel_max")

    def __init__(self, channel_max: int = 2047) -> None:
        if not 1 <= channel_max <= 0xFFFF:
            raise ValueError(f"channel_max {channel_max} outside 1..65535")
        self.channel_max = channel_max
        self._next = 1  # ids >= _next were never handed out
        self._free: list[int] = []  # heap of released ids below _next
        self._used: set[int] = set()

    def allocate(self) -> int:
        """Next free id; raises NoChannelsAvailableError when all are used."""
        if self._free:
            cid = heapq.heappop(self._free)
        elif self._next <= self.channel_max:
            cid = self._next
            self._next += 1
        else:
            raise NoChannelsAvailableError(
                f"all {self.channel_max} channel ids are in use; close channels or raise channel_max")
        self._used.add(cid)
        return cid

    def release(self, channel_id: int) -> None:
        """Give an id back (unknown ids are ignored)."""
        if channel_id in self._used:
            self._used.discard(channel_id)
            heapq.heappush(self._free, channel_id)

    def in_use(self) -> int:
        """How many ids are allocated."""
        return len(self._used)


class RoundRobin:
    """Cycles over a list of items (e.g. publishing channels); ``next()`` is O(1)."""

    __slots__ = ("_i", "_items")

    def __init__(self, items: list[Any]) -> None:
        self._items = list(items)
        self._i = 0

    def next(self) -> Any:
        """The next item; IndexError when empty."""
        items = self._items
        if not items:
            raise IndexError("RoundRobin is empty")
        i = self._i
        if i >= len(items):
            i = 0
        self._i = i + 1
        return items[i]

    def replace(self, items: list[Any]) -> None:
        """Swap in a new list (keeps the position modulo the new length)."""
        self._items = list(items)
        if self._items:
            self._i %= len(self._items)
        else:
            self._i = 0

    def __len__(self) -> int:
        return len(self._items)


class ConfirmTracker:
    """Maps publish delivery tags to waiters; O(1) amortised per tag (see pool.pyi)."""

    __slots__ = ("_low", "_make_nack_error", "_mandatory", "_next", "_returned", "_values", "_waiters",
                 "acked", "nacked")

    def __init__(self, make_nack_error: Callable[[int], BaseException]) -> None:
        self._make_nack_error = make_nack_error
        self.reset()

    def reset(self) -> None:
        """Forget everything and restart tags at 1 (a new channel after recovery)."""
        self._next = 1
        self._low = 1  # every tag below _low is settled
        self._waiters: dict[int, Any] = {}
        self._values: dict[int, Any] = {}  # tag -> what its waiter resolves with, when not True
        self._mandatory: deque[int] = deque()
        self._returned: dict[int, BaseException] = {}
        self.acked = 0
        self.nacked = 0

    def next_tag(self) -> int:
        """The tag the next publish will get (does not consume it)."""
        return self._next

    def add(self, waiter: Any | None, value: Any = True) -> int:
        """Register the next publish (its waiter resolves with ``value``); returns its delivery tag."""
        tag = self._next
        self._next = tag + 1
        self._waiters[tag] = waiter
        if value is not True:
            self._values[tag] = value
        return tag

    def add_mandatory(self, waiter: Any | None, value: Any = True) -> int:
        """Like ``add`` for a publish with mandatory=True."""
        tag = self.add(waiter, value)
        self._mandatory.append(tag)
        return tag

    def outstanding(self) -> int:
        """Tags published but not yet acked/nacked."""
        return len(self._waiters)

    def _settle(self, tag: int, nack: bool) -> bool:
        waiter = self._waiters.pop(tag, _MISSING)
        if waiter is _MISSING:
            return False
        returned = self._returned.pop(tag, None) if self._returned else None
        value = self._values.pop(tag, True) if self._values else True
        if waiter is not None and not waiter.done():
            if nack:
                waiter.set_exception(self._make_nack_error(tag))
            elif returned is not None:
                waiter.set_exception(returned)
            else:
                waiter.set_result(value)
        return True

    def _resolve(self, delivery_tag: int, multiple: bool, nack: bool) -> int:
        count = 0
        if multiple:
            top = min(delivery_tag, self._next - 1)
            tag = self._low
            while tag <= top:
                if self._settle(tag, nack):
                    count += 1
                tag += 1
            if top + 1 > self._low:
                self._low = top + 1
        elif self._settle(delivery_tag, nack):
            count = 1
            if delivery_tag == self._low:
                low, waiters, nxt = self._low + 1, self._waiters, self._next
                while low < nxt and low not in waiters:
                    low += 1
                self._low = low
        while self._mandatory and self._mandatory[0] not in self._waiters:
            self._mandatory.popleft()
        return count

    def ack(self, delivery_tag: int, multiple: bool) -> int:
        """Resolve waiter(s) with their value (True by default); returns how many tags were settled."""
        count = self._resolve(delivery_tag, multiple, False)
        self.acked += count
        return count

    def nack(self, delivery_tag: int, multiple: bool) -> int:
        """Fail waiter(s) with make_nack_error(tag); returns how many tags were settled."""
        count = self._resolve(delivery_tag, multiple, True)
        self.nacked += count
        return count

    def mark_returned(self, exc: BaseException) -> bool:
        """The oldest outstanding, not yet returned mandatory publish gets ``exc`` on its ack."""
        for tag in self._mandatory:
            if tag in self._waiters and tag not in self._returned:
                self._returned[tag] = exc
                return True
        return False

    def fail_all(self, exc: BaseException) -> int:
        """Fail every outstanding waiter with ``exc``; returns how many tags were outstanding."""
        waiters = self._waiters
        count = len(waiters)
        self._waiters = {}
        self._values = {}
        self._mandatory.clear()
        self._returned.clear()
        self._low = self._next
        for waiter in waiters.values():
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
        return count


__all__ = ["ChannelIds", "ConfirmTracker", "RoundRobin"]
