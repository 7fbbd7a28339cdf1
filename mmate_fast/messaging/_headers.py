"""The one header view of a received message, shared by ``MessageContext.headers`` and
``ConsumeContext.headers``.

A Mmate message carries headers twice: in the envelope (inside the body, written by the original
publisher) and as AMQP headers (the same set on Go and mmate_fast publishes, plus AMQP-only ones
added later: ``x-mmate-attempt`` by TTL retry, ``x-death`` by the broker, ``x-signature`` by the
signing interceptor, ``x-mmate-replayed`` by a DLQ replay). The view is every AMQP header of the
delivery plus the envelope headers; when both carry a key, the AMQP value wins: it is what this
delivery carries and what republishes update, while the envelope keeps the original publisher's
value (still readable as ``ctx.envelope.headers``). For security checks read the AMQP-only view
(``ConsumeContext.amqp_headers``): the envelope is controlled by whoever wrote the body.
"""
from __future__ import annotations

from typing import Any


def header_view(amqp: dict[str, Any] | None, envelope: dict[str, Any] | None) -> dict[str, Any]:
    """AMQP headers over envelope headers (see the module docstring); no copy when one side is empty."""
    if not envelope:
        return amqp if amqp is not None else {}
    if not amqp:
        return envelope
    merged = dict(envelope)
    merged.update(amqp)
    return merged
