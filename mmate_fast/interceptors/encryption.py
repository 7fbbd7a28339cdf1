"""Message-level encryption: the payload is AES-GCM ciphertext on the wire, so the broker and anyone
reading a queue (or a DLQ) see ciphertext; the envelope around it stays readable and Go-parseable.

Needs the ``cryptography`` package: ``pip install "mmate-fast[crypto]"``.

On the wire (version 1). The body stays a Mmate envelope with the same keys, ``id``, ``type``,
``timestamp``, ``correlationId``, ``replyTo`` and ``headers`` in clear (routing, tracing, logging and
dead-lettering work as before); only ``payload`` changes, from a JSON object to a JSON **string**:
standard base64 (with padding) of ``nonce (12 bytes) || ciphertext || tag (16 bytes)``, where the
plaintext is the payload's JSON exactly as it would have been sent (UTF-8, keys sorted). Two
headers mark it, both in the AMQP headers and in the envelope ``headers``:
``x-mmate-encryption: "aes-gcm"`` and ``x-mmate-encryption-key: <key id>``. The AES-GCM associated
data binds the ciphertext to its envelope: the line ``mmate-encryption-v1`` followed by the key
id, ``id``, ``type``, ``timestamp`` (the envelope string as is), ``correlationId`` and ``replyTo``
("" when absent), each as ``{UTF-8 byte length}:{UTF-8 bytes}\\n`` (``_canonical.encode_fields``).
A ciphertext moved into another envelope, or an envelope field changed, does not decrypt. The key
is 16, 24 or 32 bytes (AES-128/192/256); the nonce is random per message (rotate a key before it
has encrypted 2^32 messages).

What a Go peer sees: a normal envelope whose ``payload`` is a string. mmate-go parses the envelope,
then fails to unmarshal a string into its message struct and nacks the delivery without requeue
(dropped, or kept by the queue's dead-letter exchange): a peer without the key never handles zero
values by mistake. A Go requester waiting for an encrypted reply times out. A Go (or .NET) peer that
implements this format decrypts ``payload`` with the key named by ``x-mmate-encryption-key`` and the
associated data above.

On publish the payload is encrypted in the ``seal`` stage (before a signature, which then covers
the ciphertext); on consume it is decrypted in ``verify_delivery``, before the payload is decoded
and after the signature is checked, whatever the registration order. Replies of the bridge are
decrypted the same way. A message that does not decrypt raises DecryptionError (reason
``bad-ciphertext``; ``not-encrypted`` for a plain message while ``required``): it goes to the DLQ as
it came (still encrypted) and the consumer goes on.

Key rotation: encrypt with ``key`` under ``key_id``; decrypt with the key the message names, from
``key`` and ``previous`` (key id -> key). Keys never appear in ``repr``/``str``, logs or errors and
cannot be pickled.
"""
from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

from mmate_fast._ext import load
from mmate_fast.errors import ConfigurationError, DecryptionError, EnvelopeError
from mmate_fast.interceptors._canonical import (
    ENCRYPTION_HEADER,
    ENCRYPTION_KEY_HEADER,
    encode_fields,
    header_text,
)
from mmate_fast.messaging.pipeline import Interceptor, PublishContext

_env = load("envelope")
_decode_envelope = _env.decode_envelope
_encode_envelope = _env.encode_envelope

#: the value of ``x-mmate-encryption``
ALGORITHM = "aes-gcm"
#: the first line of the associated data (version 1)
AAD_TAG = b"mmate-encryption-v1\n"
NONCE_SIZE = 12
TAG_SIZE = 16
_KEY_SIZES = (16, 24, 32)
_PAYLOAD_LAST = b'"payload":0}'


def _cryptography() -> tuple[Any, type[Exception]]:
    """AESGCM and InvalidTag, imported when an EncryptionInterceptor is made (an optional extra)."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigurationError('EncryptionInterceptor needs the "cryptography" package: '
                                 'pip install "mmate-fast[crypto]"') from None
    return AESGCM, InvalidTag


def associated_data(key_id: str, env: Any) -> bytes:
    """The AES-GCM associated data of an envelope encrypted under ``key_id`` (module docstring)."""
    return encode_fields(AAD_TAG, (key_id, env.id, env.type, env.timestamp, env.correlation_id or "",
                                   env.reply_to or ""))


class _Key:
    """One AES-GCM key; its repr never shows the key."""

    __slots__ = ("aead", "key_id")

    def __init__(self, key: bytes, key_id: str, aesgcm: Any) -> None:
        if isinstance(key, str) or not isinstance(key, bytes | bytearray | memoryview):
            raise ConfigurationError("an encryption key must be bytes (16, 24 or 32 of them)")
        if len(key) not in _KEY_SIZES:
            raise ConfigurationError(f"an encryption key must be 16, 24 or 32 bytes, not {len(key)}")
        if not isinstance(key_id, str) or not key_id or len(key_id.encode("utf-8", "surrogatepass")) > 255:
            raise ConfigurationError("an encryption key id must be a non-empty str of at most 255 bytes")
        self.aead = aesgcm(bytes(key))
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"<key {self.key_id} ***>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("encryption keys cannot be pickled")


class EncryptionInterceptor(Interceptor):
    """Encrypt published payloads and decrypt consumed ones and replies (see the module docstring).

    ``encrypt``/``decrypt`` turn either side off. ``required=False`` lets plain messages through
    (migration); an encrypted one that does not decrypt still fails.
    """

    wire_layer = 200

    def __init__(self, key: bytes, key_id: str, *, previous: Mapping[str, bytes] | None = None,
                 required: bool = True, encrypt: bool = True, decrypt: bool = True) -> None:
        aesgcm, self._invalid_tag = _cryptography()
        self._current = _Key(key, key_id, aesgcm)
        if previous is not None and not isinstance(previous, Mapping):
            raise ConfigurationError("previous must map key ids to keys ({'k1': old_key})")
        keys = [self._current] + [_Key(k, kid, aesgcm) for kid, k in (previous or {}).items()]
        self._by_id = {k.key_id: k for k in reversed(keys)}
        self.key_id = key_id
        self.required = required
        self.encrypt = encrypt
        self.decrypt = decrypt

    def __repr__(self) -> str:
        return (f"<EncryptionInterceptor key_id={self.key_id!r} keys={len(self._by_id)} "
                f"required={self.required} encrypt={self.encrypt} decrypt={self.decrypt}>")

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("EncryptionInterceptor holds keys and cannot be pickled")

    # ------------------------------------------------------------------ publish
    def seal(self, ctx: PublishContext) -> None:
        if not self.encrypt:
            return
        out = ctx.outgoing
        env = _decode_envelope(out.body)
        key = self._current
        nonce = os.urandom(NONCE_SIZE)
        sealed = key.aead.encrypt(nonce, _env.encode_json(env.payload), associated_data(key.key_id, env))
        headers = dict(env.headers)
        headers[ENCRYPTION_HEADER] = ALGORITHM
        headers[ENCRYPTION_KEY_HEADER] = key.key_id
        out.body = _encode_envelope(env.id, env.type, env.timestamp, env.correlation_id, env.reply_to,
                                    headers, base64.b64encode(nonce + sealed).decode("ascii"))
        ctx.amqp_headers[ENCRYPTION_HEADER] = ALGORITHM
        ctx.amqp_headers[ENCRYPTION_KEY_HEADER] = key.key_id

    # ------------------------------------------------------------------ consume
    def verify_delivery(self, delivery: Any, body: bytes, queue: str) -> bytes | None:
        if not self.decrypt:
            return None
        headers = delivery.properties.headers or {}
        marker = headers.get(ENCRYPTION_HEADER)
        if marker is None:
            if self.required:
                raise DecryptionError(f"message is not encrypted (no {ENCRYPTION_HEADER} header) and this "
                                      "consumer requires encryption", "not-encrypted")
            return None
        if header_text(marker) != ALGORITHM:
            raise DecryptionError(f"{ENCRYPTION_HEADER} names an unknown algorithm (only {ALGORITHM!r})")
        key_id = header_text(headers.get(ENCRYPTION_KEY_HEADER)) or ""
        key = self._by_id.get(key_id)
        if key is None:
            raise DecryptionError(f"no decryption key with id {key_id[:64]!r} (known: "
                                  f"{', '.join(sorted(self._by_id))}): add it to previous=")
        try:
            env = _decode_envelope(body)
        except EnvelopeError as exc:
            raise DecryptionError(f"encrypted message body is not an envelope ({exc.reason})") from None
        if not isinstance(env.payload, str):
            raise DecryptionError("encrypted message payload is not a ciphertext string")
        try:
            raw = base64.b64decode(env.payload, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError("encrypted message payload is not base64") from None
        if len(raw) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionError(f"ciphertext of {len(raw)} bytes is too short for AES-GCM")
        try:
            plain = key.aead.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], associated_data(key_id, env))
        except self._invalid_tag:
            raise DecryptionError("ciphertext does not authenticate: wrong key, or the payload or the "
                                  "envelope fields were changed") from None
        return _with_payload(env, plain)


def _with_payload(env: Any, payload_json: bytes) -> bytes:
    """The envelope ``env`` with ``payload_json`` (JSON bytes) as its payload: encoded with a
    placeholder payload, which the encoder always writes last, then spliced."""
    shell = _encode_envelope(env.id, env.type, env.timestamp, env.correlation_id, env.reply_to,
                             env.headers, 0)
    if not shell.endswith(_PAYLOAD_LAST):  # pragma: no cover - the encoder's documented layout
        raise DecryptionError("cannot rebuild the decrypted envelope")
    return shell[:-2] + payload_json + b"}"


__all__ = ["AAD_TAG", "ALGORITHM", "ENCRYPTION_HEADER", "ENCRYPTION_KEY_HEADER", "EncryptionInterceptor",
           "associated_data"]
