"""The one canonical encoding of a list of text fields, shared by the signature input
(``signing.py``) and the AES-GCM associated data (``encryption.py``), and the header values read
from a delivery.

``encode_fields(tag, values)`` is ``tag`` followed, for each value, by its UTF-8 byte length in
ASCII decimal, ``:``, the UTF-8 bytes and ``\\n``: ``b"mmate-signature-v1\\n2:k1\\n0:\\n"``. Length
prefixes make it unambiguous whatever the values hold (newlines, colons, nothing at all), and any
language writes it with one format call per field (Go: ``fmt.Fprintf(w, "%d:%s\\n", len(v), v)``).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: marks an encrypted payload (AMQP header and envelope header); value: the algorithm
ENCRYPTION_HEADER = "x-mmate-encryption"
#: the id of the key a payload was encrypted with
ENCRYPTION_KEY_HEADER = "x-mmate-encryption-key"


def encode_fields(tag: bytes, values: Iterable[str]) -> bytes:
    """``tag`` + ``{len}:{utf-8 bytes}\\n`` per value (lone surrogates kept as their 3-byte forms)."""
    values = tuple(values)
    text = "".join([f"{len(value)}:{value}\n" for value in values])
    if text.isascii():  # the usual case: character counts are byte counts
        return tag + text.encode("ascii")
    parts = [tag]
    for value in values:
        raw = value.encode("utf-8", "surrogatepass")
        parts.append(b"%d:%s\n" % (len(raw), raw))
    return b"".join(parts)


def header_text(value: Any) -> str | None:
    """A header value as text: str as is, bytes as UTF-8 (None when they are not), numbers in
    decimal; None when absent."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(value)
