"""Time-ordered instance ids: UUIDv7-style strings (RFC 9562), still canonical UUIDs that Go parses.

A random (v4) instance id lands on a random leaf of every index keyed by it, so the state store's
write transactions dirtied one page per flow in flight there (a 4 KB WAL frame each in SQLite); ids
that grow with time append at the end of those indexes, a few hot pages for all the flows in flight.

Layout (hex ``tttttttt-tttt-7ccc-vrrr-rrrrrrrrrrrr``): 48 bits of Unix time in milliseconds, the
version 7, a 12-bit counter (``ccc``, RFC 9562 method 1: seeded at random below 0x800 each new
millisecond and counted up within it, so ids of one process are strictly increasing as numbers and
as strings), the variant (``v`` in 8..b) and 62 random bits from ``os.urandom`` (buffered; refilled
in a forked child, so parent and child never share them). When the counter runs out within one
millisecond (more than 2,048 ids), or the clock steps back, the time field moves on from the last one
used instead: ordering never goes backwards in a process.
"""
from __future__ import annotations

import os
import threading
import time

#: hex digits of random bytes fetched at once (64 ids' worth)
_RANDOM_HEX = 2048
#: the variant nibble (binary 10xx) for a random hex digit
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
#: the 12-bit counter as 3 hex digits
_COUNTER = [f"{i:03x}" for i in range(4096)]
#: the largest counter a new millisecond starts at (the rest is room to count up)
_SEED_MASK = 0x7FF

_lock = threading.Lock()
_time_ns = time.time_ns
_urandom = os.urandom
#: [last millisecond used, its "tttttttt-tttt-7" prefix, the counter, random hex digits, read position]
_state: list = [-1, "", 0, "", _RANDOM_HEX]


def _prefix(ms: int) -> str:
    return f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"


def new_id() -> str:
    """A new time-ordered instance id (lowercase UUID string, 36 characters, version 7)."""
    with _lock:
        st = _state
        ms = _time_ns() // 1_000_000
        pos = st[4]
        if pos > _RANDOM_HEX - 19:  # room for a counter seed and the random tail
            st[3] = _urandom(_RANDOM_HEX // 2).hex()
            pos = 0
        rnd: str = st[3]
        if ms > st[0]:
            st[0] = ms
            st[1] = _prefix(ms)
            count = int(rnd[pos:pos + 3], 16) & _SEED_MASK
            pos += 3
        else:  # the same millisecond (or the clock stepped back): count on
            count = st[2] + 1
            if count > 0xFFF:  # the counter ran out: the next millisecond, a fresh seed
                st[0] += 1
                st[1] = _prefix(st[0])
                count = int(rnd[pos:pos + 3], 16) & _SEED_MASK
                pos += 3
        st[2] = count
        st[4] = pos + 16
        return f"{st[1]}{_COUNTER[count]}-{_VARIANT[rnd[pos]]}{rnd[pos + 1:pos + 4]}-{rnd[pos + 4:pos + 16]}"


def id_time_ms(instance_id: str) -> int:
    """The millisecond field of an id made by ``new_id`` (Unix time, unless the counter ran ahead)."""
    return int(instance_id[:8] + instance_id[9:13], 16)


def _reset() -> None:
    """In a forked child: fresh random digits and a fresh counter seed (none shared with the parent)."""
    global _lock
    _lock = threading.Lock()
    _state[:] = [-1, "", 0, "", _RANDOM_HEX]


os.register_at_fork(after_in_child=_reset)

__all__ = ["id_time_ms", "new_id"]
