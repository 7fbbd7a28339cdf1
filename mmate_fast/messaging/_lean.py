"""The opt-in ``lean`` wire profile: the Mmate message without its AMQP header table.

mmate-go writes 11-16 standard headers twice: in the envelope (the body's ``headers`` object) and as
the AMQP header table. The broker decodes that table on every publish (and keeps it with the
message), which costs it about as much CPU as the rest of a small message (see
docs/notes/brokercost.md). Nobody needs the second copy: a Go consumer reads no header at all, only
the body (wire spec §3.5, §5), and ours reads the envelope headers where the AMQP ones are missing
(``messaging/_headers.header_view``). So ``lean`` keeps the body byte for byte as Go's, keeps the
AMQP properties (``content_type``, ``delivery_mode``, and the .NET mapping's ``message_id``,
``correlation_id``, ``type``, ``timestamp``, ``reply_to``) and drops the standard header table.
Headers the caller asks for (``headers=``, a delay's ``x-delay``, interceptors' AMQP headers) are
sent as AMQP headers as always: such a publish carries the full Go set.

``go`` (Go-identical, the default) is what every peer, tool and broker-side policy expects; use
``lean`` when every reader of the traffic is a Mmate consumer (Go or mmate_fast) and nothing routes
on or filters by the standard headers (a headers exchange, a shovel or policy matching them).
"""
from __future__ import annotations

import struct

from mmate_fast import errors

#: wire profiles a Publisher/Client accepts
WIRE_PROFILES = ("go", "lean")

_u32 = struct.Struct(">I").unpack_from


def check_wire_profile(profile: object) -> str:
    """``profile`` if it is one of WIRE_PROFILES, else InvalidArgumentError."""
    if profile not in WIRE_PROFILES:
        raise errors.InvalidArgumentError(
            f"wire_profile must be one of {', '.join(map(repr, WIRE_PROFILES))}, got {profile!r}",
            "wire_profile")
    return str(profile)


def without_header_table(properties: bytes) -> bytes:
    """Encoded basic properties (flags + fields) without their ``headers`` field; the rest unchanged."""
    hi = properties[0]
    if not hi & 0x20:  # no headers flag (0x2000)
        return properties
    pos = 2
    if hi & 0x80:  # content_type
        pos += 1 + properties[2]
    if hi & 0x40:  # content_encoding
        pos += 1 + properties[pos]
    end = pos + 4 + _u32(properties, pos)[0]
    return bytes((hi & 0xDF, properties[1])) + properties[2:pos] + properties[end:]
