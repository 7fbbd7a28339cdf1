"""The opt-in ``lean`` wire profile: exactly the properties mmate-go sends, without the header table.

mmate-go writes 11-16 standard headers twice: in the envelope (the body's ``headers`` object) and as
the AMQP header table; and mmate_fast adds the .NET mapping's properties (``message_id``, ``type``,
``timestamp``, ``correlation_id``, ``reply_to``). The broker decodes the properties on every publish
and keeps them with the message, and it pays 7-11 µs more per message once they are longer than
64 bytes (an Erlang binary of up to 64 bytes is copied with the message, a longer one is a
reference-counted sub-binary of the received data; README "Benchmarks", broker cost, has the measurements).
A Go consumer reads neither the headers nor the properties, only the body (wire spec §3.5, §5), and
ours reads everything from the body first (type, id, correlation id, reply address; ``ctx.headers``
merges the envelope headers). So ``lean`` sends the body byte for byte as Go does with Go's own
properties: ``content_type`` and ``delivery_mode`` (20 bytes), plus a real ``expiration``/``priority``
when the publish asks for a TTL or priority. With publish interceptors (signing reads the message
id and timestamp from the properties, see interceptors/signing.py) the .NET properties stay and only
the header table goes. A publish with ``headers=`` or a delay (``x-delay``) sends the full
Go-identical form, as always.

``go`` (Go-identical headers plus the .NET properties, the default) is what every peer, tool and
broker-side policy expects; use ``lean`` when every reader of the traffic is a Mmate consumer (Go or
mmate_fast) and nothing reads the standard headers or the .NET properties from the AMQP side (a
headers exchange, a shovel or policy matching them, a .NET consumer using the property mapping).
"""
from __future__ import annotations

import struct

from mmate_fast import errors
from mmate_fast._ext import load

_frames = load("frames")

#: wire profiles a Publisher/Client accepts
WIRE_PROFILES = ("go", "lean")

_CONTENT_TYPE = "application/json"
_CACHE: dict[tuple[bool, int | None, int | None], bytes] = {}
_CACHE_MAX = 1024
_u32 = struct.Struct(">I").unpack_from


def check_wire_profile(profile: object) -> str:
    """``profile`` if it is one of WIRE_PROFILES, else InvalidArgumentError."""
    if profile not in WIRE_PROFILES:
        raise errors.InvalidArgumentError(
            f"wire_profile must be one of {', '.join(map(repr, WIRE_PROFILES))}, got {profile!r}",
            "wire_profile")
    return str(profile)


def lean_properties(persistent: bool, ttl_ms: int | None, priority: int | None) -> bytes:
    """The encoded lean properties of a publish (the same for every message with these options:
    cached). ``ttl_ms``/``priority`` as ``outgoing.build`` turns them into AMQP properties."""
    key = (persistent, ttl_ms, priority)
    props = _CACHE.get(key)
    if props is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        props = _CACHE[key] = bytes(_frames.encode_properties(_frames.BasicProperties(
            content_type=_CONTENT_TYPE, delivery_mode=2 if persistent else 1,
            expiration=str(int(ttl_ms)) if ttl_ms else None, priority=priority if priority else None)))
    return props


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
