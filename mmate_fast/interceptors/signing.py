"""HMAC-SHA256 message signing: body plus the headers that steer handling, verified before anything
decodes the body, with a freshness check (age and replay).

What is signed (version 1). The signature input is the ASCII line ``mmate-signature-v1``, then
eight fields, then the body bytes exactly as on the wire; each field is written as its UTF-8 byte
length in decimal, ``:``, its UTF-8 bytes and a newline (``_canonical.encode_fields``):

====  ==============  =================================================================================
 #    field           read from (every copy present must agree; an absent or empty copy is skipped)
====  ==============  =================================================================================
 1    key id          header ``x-signature-key`` ("" without one)
 2    message id      property ``message_id``, headers ``x-message-id``, ``message-id``
 3    type            property ``type``, headers ``x-message-type``, ``message-type``
 4    timestamp       property ``timestamp`` (POSIX seconds), header ``timestamp`` (RFC 3339, compared
                      as whole POSIX seconds); written as decimal POSIX seconds
 5    delay           header ``x-delay`` (whole milliseconds, decimal; 0 is written as "")
 6    correlation id  property ``correlation_id``, headers ``x-correlation-id``, ``correlation-id``
 7    reply-to        property ``reply_to``, headers ``x-reply-to``, ``reply-to``, ``replyTo``
 8    encryption      header ``x-mmate-encryption`` (the encryption marker, see ``encryption.py``)
====  ==============  =================================================================================

A field with no copy is the empty string. Copies that disagree (say ``reply_to`` changed but not
``x-reply-to``) fail the signature: every place handling may read a value from is covered, and the
body (the envelope with its own id, type, timestamp, correlation id and reply address) is covered
whole. Example for a message with key id ``k1``, id ``m-1``, type ``T``, timestamp 1700000000 and
nothing else::

    mmate-signature-v1\\n2:k1\\n3:m-1\\n1:T\\n10:1700000000\\n0:\\n0:\\n0:\\n0:\\n{body bytes}

The signature travels in the AMQP headers only (never in the envelope, which is inside the body):
``x-signature`` = lowercase hex HMAC-SHA256 of that input (64 characters), ``x-signature-key`` = the
key id when the signing key has one. Routing (exchange, routing key) and the other headers are not
signed: the broker rewrites them on dead-lettering and retries add theirs.

On publish the signature is made in the ``seal`` stage, after encryption (so it covers the
ciphertext). On consume it is checked in ``verify_delivery``, on the raw delivery, before anything
decodes the body and before every other interceptor, whatever the registration order. A missing
(when ``required``), malformed or wrong signature raises SignatureError (reason ``bad-signature``):
the message goes to the DLQ and the consumer goes on.

Freshness (``max_age``, default 24 h; None turns it off): a signed message older than ``max_age``
(counted from its timestamp plus its delay) or dated more than ``clock_skew`` ahead is refused as
``expired``; a message id accepted before on the same queue within ``max_age`` as ``replayed``
(bounded memory: ``max_ids``; see ``_replay.py``). Both read the signed fields, so neither can be
forged. ``max_age`` must cover the longest time a message may legitimately wait: a consumer
backlog, TTL-retry delays (a retry keeps its original timestamp), DLQ replays. The default (a day)
keeps messages that waited through an ordinary outage deliverable (nothing is lost by default);
lower it where tighter replay protection matters more than long backlogs.

Key rotation: sign with ``secret`` (and ``key_id``), verify with it and every entry of ``previous``
(a mapping key id -> secret, or a list of secrets). With a known ``x-signature-key`` only that key is
tried; otherwise every key is (all of them, so the timing tells nothing). Secrets never appear in
``repr``/``str``, logs or error messages, and cannot be pickled.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from mmate_fast._ext import load
from mmate_fast.errors import ConfigurationError, EnvelopeError, SignatureError
from mmate_fast.interceptors._canonical import ENCRYPTION_HEADER, encode_fields, header_text
from mmate_fast.interceptors._replay import ReplayWindow
from mmate_fast.messaging.pipeline import Interceptor, PublishContext

_env = load("envelope")

SIGNATURE_HEADER = "x-signature"
KEY_ID_HEADER = "x-signature-key"
#: the first line of the signature input (version 1)
SIGNATURE_TAG = b"mmate-signature-v1\n"
#: default freshness limits (seconds) and replay-window size
DEFAULT_MAX_AGE = 86_400.0
DEFAULT_CLOCK_SKEW = 60.0
DEFAULT_MAX_IDS = 100_000
_HEX_LEN = 64
_HEX_CHARS = frozenset("0123456789abcdef")

#: the copies of each text field: (field name, property, headers)
_ID = ("message id", "message_id", ("x-message-id", "message-id"))
_TYPE = ("type", "type", ("x-message-type", "message-type"))
_CORRELATION = ("correlation id", "correlation_id", ("x-correlation-id", "correlation-id"))
_REPLY_TO = ("reply-to", "reply_to", ("x-reply-to", "reply-to", "replyTo"))


class SignedFields(NamedTuple):
    """The signed values of one message (what the signature input is built from)."""

    message_id: str
    type: str
    timestamp: int | None
    delay_ms: int
    correlation_id: str
    reply_to: str
    encryption: str


def signed_fields(properties: Any) -> SignedFields:
    """The signed fields of a message with these (decoded) AMQP properties; SignatureError when two
    copies of one field disagree."""
    headers = properties.headers or {}
    return SignedFields(
        _copies(properties, headers, _ID), _copies(properties, headers, _TYPE),
        _timestamp(properties.timestamp, headers.get("timestamp")), _delay(headers.get("x-delay")),
        _copies(properties, headers, _CORRELATION), _copies(properties, headers, _REPLY_TO),
        header_text(headers.get(ENCRYPTION_HEADER)) or "")


def signing_input(properties: Any, body: bytes | bytearray | memoryview, key_id: str | None = None) -> bytes:
    """The exact bytes the signature is an HMAC-SHA256 of (see the module docstring)."""
    return _prefix(signed_fields(properties), key_id or "") + bytes(body)


def sign_message(secret: bytes, properties: Any, body: bytes | bytearray | memoryview,
                 key_id: str | None = None) -> str:
    """The ``x-signature`` value of a message (lowercase hex), e.g. for a peer or a test that
    publishes raw; ``key_id`` must then travel in ``x-signature-key``."""
    return _Key(secret, key_id).sign(_prefix(signed_fields(properties), key_id or ""), body)


class _Key:
    """One HMAC key; its repr never shows the secret."""

    __slots__ = ("_mac", "key_id")

    def __init__(self, secret: bytes, key_id: str | None) -> None:
        if isinstance(secret, str) or not isinstance(secret, bytes | bytearray | memoryview):
            raise ConfigurationError("a signing secret must be bytes (e.g. secret.encode())")
        if len(secret) == 0:
            raise ConfigurationError("a signing secret must not be empty")
        if key_id is not None and (not isinstance(key_id, str) or not key_id):
            raise ConfigurationError("a signing key id must be a non-empty str (or None)")
        #: keyed once; each signature continues a copy (saves the key setup per message)
        self._mac = hmac.new(bytes(secret), digestmod=hashlib.sha256)
        self.key_id = key_id

    def sign(self, prefix: bytes, body: bytes | bytearray | memoryview) -> str:
        mac = self._mac.copy()
        mac.update(prefix)
        mac.update(body)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return f"<key {self.key_id or '(no id)'} ***>"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle a secret by accident
        raise TypeError("signing keys cannot be pickled")


class SigningInterceptor(Interceptor):
    """Sign published messages and verify consumed ones and replies (see the module docstring).

    ``sign``/``verify`` turn either side off (e.g. a verify-only consumer). ``required=False`` lets
    unsigned messages through (migration; they get no freshness check), but a present and wrong
    signature still fails. ``max_age=None`` turns the age and replay checks off.
    """

    wire_layer = 100

    def __init__(self, secret: bytes, key_id: str | None = None, required: bool = True, *,
                 previous: Mapping[str, bytes] | Iterable[bytes] = (), sign: bool = True,
                 verify: bool = True, max_age: float | None = DEFAULT_MAX_AGE,
                 clock_skew: float = DEFAULT_CLOCK_SKEW, max_ids: int = DEFAULT_MAX_IDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._current = _Key(secret, key_id)
        keys = [self._current]
        if isinstance(previous, Mapping):
            keys += [_Key(s, kid) for kid, s in previous.items()]
        else:
            keys += [_Key(s, None) for s in previous]
        self._keys = tuple(keys)
        self._by_id = {k.key_id: k for k in reversed(keys) if k.key_id}
        self.key_id = key_id
        self.required = required
        self.sign = sign
        self.verify = verify
        #: the freshness check (None with ``max_age=None``)
        self.window = None if max_age is None else ReplayWindow(max_age, clock_skew, max_ids, clock)

    def __repr__(self) -> str:
        age = None if self.window is None else self.window.max_age
        return (f"<SigningInterceptor key_id={self.key_id!r} keys={len(self._keys)} "
                f"required={self.required} sign={self.sign} verify={self.verify} max_age={age}>")

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SigningInterceptor holds secrets and cannot be pickled")

    # ------------------------------------------------------------------ publish
    def seal(self, ctx: PublishContext) -> None:
        if not self.sign:
            return
        key = self._current
        prefix = _prefix(signed_fields(ctx.properties()), key.key_id or "")
        ctx.amqp_headers[SIGNATURE_HEADER] = key.sign(prefix, ctx.outgoing.body)
        if key.key_id:
            ctx.amqp_headers[KEY_ID_HEADER] = key.key_id

    # ------------------------------------------------------------------ consume
    def verify_delivery(self, delivery: Any, body: bytes, queue: str) -> bytes | None:
        if not self.verify:
            return None
        properties = delivery.properties
        headers = properties.headers or {}
        given = headers.get(SIGNATURE_HEADER)
        if given is None:
            if self.required:
                raise SignatureError(f"message has no {SIGNATURE_HEADER} header")
            return None
        text = (header_text(given) or "").strip().lower()
        if len(text) != _HEX_LEN or not _HEX_CHARS.issuperset(text):
            raise SignatureError(f"{SIGNATURE_HEADER} is not a hex HMAC-SHA256 ({len(text)} chars)")
        key_id = header_text(headers.get(KEY_ID_HEADER)) or ""
        fields = signed_fields(properties)
        prefix = _prefix(fields, key_id)
        key = self._by_id.get(key_id) if key_id else None
        ok = False
        for k in (key,) if key is not None else self._keys:  # all of them: the timing tells nothing
            ok |= hmac.compare_digest(k.sign(prefix, body), text)
        if not ok:
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the message"
                                 + (f" (key id {key_id[:64]!r})" if key_id else ""))
        if self.window is not None:
            self.window.admit(queue, fields.message_id, fields.timestamp, fields.delay_ms,
                              bool(delivery.redelivered))
        return None

    def release_delivery(self, delivery: Any, queue: str) -> None:
        window = self.window
        if window is None or not self.verify:
            return
        properties = delivery.properties
        if SIGNATURE_HEADER in (properties.headers or {}):
            window.forget(queue, _copies(properties, properties.headers, _ID))


# ---------------------------------------------------------------------------------- fields
def _prefix(fields: SignedFields, key_id: str) -> bytes:
    ts = "" if fields.timestamp is None else str(fields.timestamp)
    return encode_fields(SIGNATURE_TAG, (key_id, fields.message_id, fields.type, ts, str(fields.delay_ms)
                                         if fields.delay_ms else "", fields.correlation_id,
                                         fields.reply_to, fields.encryption))


def _copies(properties: Any, headers: Mapping[str, Any], spec: tuple[str, str, tuple[str, ...]]) -> str:
    """The one value of a field's property and header copies ("" when none is present)."""
    name, prop, keys = spec
    value = getattr(properties, prop)
    value = str(value) if value else None
    for key in keys:
        copy = headers.get(key)
        if copy is None or copy == "":
            continue
        text = header_text(copy)
        if value is None:
            value = text
        elif text != value:
            raise SignatureError(f"the message's {name} copies disagree ({key} differs): "
                                 "changed after signing")
    return value or ""


def _timestamp(prop: Any, header: Any) -> int | None:
    """POSIX seconds from the ``timestamp`` property and/or the RFC 3339 ``timestamp`` header."""
    ts = int(prop) if prop else None
    if header is None or header == "":
        return ts
    text = header_text(header)
    if ts is not None:
        try:
            if text == _env.utc_timestamp(ts):  # the usual case: no parsing
                return ts
        except (ValueError, OverflowError):
            pass
    try:
        parsed = int(_env.parse_timestamp(text or "").timestamp() // 1)
    except (EnvelopeError, ValueError, OverflowError):
        raise SignatureError("the timestamp header is not an RFC 3339 time") from None
    if ts is not None and parsed != ts:
        raise SignatureError("the message's timestamp copies disagree (timestamp differs): "
                             "changed after signing")
    return parsed


def _delay(header: Any) -> int:
    """Whole milliseconds of the ``x-delay`` header (0 when absent)."""
    if header is None or header == "":
        return 0
    if isinstance(header, int) and not isinstance(header, bool) and header >= 0:
        return header
    text = header_text(header) or ""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise SignatureError("the x-delay header is not a whole number of milliseconds")
    return int(text)


__all__ = ["DEFAULT_CLOCK_SKEW", "DEFAULT_MAX_AGE", "DEFAULT_MAX_IDS", "KEY_ID_HEADER", "SIGNATURE_HEADER",
           "SIGNATURE_TAG", "SignedFields", "SigningInterceptor", "sign_message", "signed_fields",
           "signing_input"]
