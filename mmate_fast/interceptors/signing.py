"""HMAC-SHA256 message signing and verification (``x-signature`` AMQP header).

On publish (``before_send``, after encoding) the signature of the exact body bytes is added to the
AMQP headers only — not to the envelope headers, which are part of the signed body:

- ``x-signature``: lowercase **hex** HMAC-SHA256 of the body (64 characters; hex because it is
  case-insensitive-safe in logs and tools, unambiguous and what most webhook schemes use);
- ``x-signature-key``: the key id, when the interceptor has one (lets the receiver pick the secret).

On consume (``before_consume``) the signature in the delivery's AMQP headers is checked against the
delivery body with :func:`hmac.compare_digest`. A missing (when ``required``), malformed or wrong
signature raises :class:`~mmate_fast.errors.SignatureError` (reason ``bad-signature``): the message
is rejected / dead-lettered and the consumer goes on. The envelope ``headers`` are never trusted
for the signature (they are attacker-controlled when the body is).

Key rotation: sign with ``secret`` (and ``key_id``), verify with ``secret`` and every entry of
``previous`` (a mapping key id -> secret, or a list of secrets). With a known ``x-signature-key`` only
that key is tried; otherwise every key is.

Secrets never appear in ``repr``/``str``, logs or error messages.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from mmate_fast.errors import ConfigurationError, SignatureError
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

SIGNATURE_HEADER = "x-signature"
KEY_ID_HEADER = "x-signature-key"
_HEX_LEN = 64
_HEX_CHARS = frozenset("0123456789abcdef")


class _Key:
    """One HMAC key; its repr never shows the secret."""

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes, key_id: str | None) -> None:
        if isinstance(secret, str) or not isinstance(secret, bytes | bytearray | memoryview):
            raise ConfigurationError("a signing secret must be bytes (e.g. secret.encode())")
        if len(secret) == 0:
            raise ConfigurationError("a signing secret must not be empty")
        self._secret = bytes(secret)
        self.key_id = key_id

    def sign(self, body: bytes | bytearray | memoryview) -> str:
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"<key {self.key_id or '(no id)'} ***>"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle a secret by accident
        raise TypeError("signing keys cannot be pickled")


def sign_body(secret: bytes, body: bytes | bytearray | memoryview) -> str:
    """The ``x-signature`` value for ``body``: lowercase hex HMAC-SHA256."""
    return _Key(secret, None).sign(body)


class SigningInterceptor(Interceptor):
    """Sign published messages and verify consumed ones (HMAC-SHA256 over the body bytes).

    ``sign``/``verify`` turn either side off (e.g. a verify-only consumer). ``required=False``
    lets unsigned messages through (migration), but a present and wrong signature still fails.
    """

    def __init__(self, secret: bytes, key_id: str | None = None, required: bool = True, *,
                 previous: Mapping[str, bytes] | Iterable[bytes] = (), sign: bool = True,
                 verify: bool = True) -> None:
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

    def __repr__(self) -> str:
        return (f"<SigningInterceptor key_id={self.key_id!r} keys={len(self._keys)} "
                f"required={self.required} sign={self.sign} verify={self.verify}>")

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SigningInterceptor holds secrets and cannot be pickled")

    # ------------------------------------------------------------------ publish
    async def before_send(self, ctx: PublishContext) -> None:
        if not self.sign:
            return
        ctx.amqp_headers[SIGNATURE_HEADER] = self._current.sign(ctx.outgoing.body)
        if self._current.key_id:
            ctx.amqp_headers[KEY_ID_HEADER] = self._current.key_id

    # ------------------------------------------------------------------ consume
    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        if self.verify:
            self.check(ctx.delivery.body, ctx.delivery.properties.headers or {})
        return None

    def check(self, body: bytes | bytearray | memoryview, headers: Mapping[str, Any]) -> None:
        """Verify ``body`` against the signature in the AMQP ``headers``; raise SignatureError."""
        given = _text(headers.get(SIGNATURE_HEADER))
        if given is None:
            if self.required:
                raise SignatureError(f"message has no {SIGNATURE_HEADER} header")
            return
        given = given.strip().lower()
        if len(given) != _HEX_LEN or not _HEX_CHARS.issuperset(given):
            raise SignatureError(f"{SIGNATURE_HEADER} is not a hex HMAC-SHA256 ({len(given)} chars)")
        key_id = _text(headers.get(KEY_ID_HEADER))
        key = self._by_id.get(key_id) if key_id else None
        candidates = (key,) if key is not None else self._keys
        ok = False
        for k in candidates:  # try all (no early exit) so the timing does not tell which key matched
            ok |= hmac.compare_digest(k.sign(body), given)
        if not ok:
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the message body"
                                 + (f" (key id {key_id[:64]!r})" if key_id else ""))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return ""
    return str(value)


__all__ = ["KEY_ID_HEADER", "SIGNATURE_HEADER", "SigningInterceptor", "sign_body"]
