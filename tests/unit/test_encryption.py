"""EncryptionInterceptor on hand-built deliveries (no broker): the wire form a Go peer sees, what the
associated data binds, key rotation, refusals with reasons, keys kept secret."""
from __future__ import annotations

import base64
import builtins
import pickle
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import Query
from mmate_fast.interceptors import EncryptionInterceptor
from mmate_fast.interceptors.encryption import associated_data
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import PublishContext

pytest.importorskip("cryptography")

_frames = load("frames")
_env = load("envelope")

KEY = bytes(range(32))
OLD = bytes(range(100, 116))


@dataclass
class EnQuery(Query):
    card: str = ""
    amounts: list[int] = field(default_factory=list)


def sealed(e: EncryptionInterceptor, msg: Any = None, **options: Any) -> PublishContext:
    msg = EnQuery(card="4111-1111", amounts=[1, 2**70], reply_to="bridge.reply.1") if msg is None else msg
    ctx = PublishContext(msg, None, None, {})
    ctx.outgoing = build(msg, correlation_id="c-1", **options)
    e.seal(ctx)
    return ctx


def delivered(ctx: PublishContext, body: bytes | None = None, **headers: Any) -> Any:
    props = ctx.properties()
    h = dict(props.headers or {})
    for k, v in headers.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    props.headers = h
    return _frames.Delivery(properties=props, body=ctx.outgoing.body if body is None else body)


def decrypt(e: EncryptionInterceptor, d: Any) -> bytes | None:
    return e.verify_delivery(d, d.body, "q")


def test_the_wire_form_keeps_the_envelope_and_hides_the_payload() -> None:
    e = EncryptionInterceptor(KEY, "k1")
    plain = build(EnQuery(card="4111-1111", amounts=[1, 2**70], reply_to="bridge.reply.1"), correlation_id="c-1")
    ctx = sealed(e)
    body = ctx.outgoing.body
    wire = orjson.loads(body)
    before = orjson.loads(plain.body)
    assert list(wire) == ["id", "type", "timestamp", "correlationId", "replyTo", "headers", "payload"]
    assert isinstance(wire["payload"], str) and b"4111" not in body and b"amounts" not in body
    raw = base64.b64decode(wire["payload"], validate=True)
    assert len(raw) == 12 + len(_env.encode_json(before["payload"])) + 16
    assert wire["headers"]["x-mmate-encryption"] == "aes-gcm" and wire["headers"]["x-mmate-encryption-key"] == "k1"
    assert ctx.amqp_headers == {"x-mmate-encryption": "aes-gcm", "x-mmate-encryption-key": "k1"}
    assert list(wire["headers"]) == sorted(wire["headers"])  # Go's sorted map keys
    # decrypted: the same envelope and payload as the plain message (exact big ints too)
    out = decrypt(EncryptionInterceptor(KEY, "k1"), delivered(ctx))
    assert out is not None
    env = _env.decode_envelope(out)
    assert env.payload == _env.decode_envelope(plain.body).payload and env.payload["amounts"] == [1, 2**70]
    assert (env.id, env.type, env.correlation_id, env.reply_to) == (wire["id"], "EnQuery", "c-1", "bridge.reply.1")


def test_every_message_gets_its_own_nonce() -> None:
    e = EncryptionInterceptor(KEY, "k1")
    msg = EnQuery(card="same")
    a, b = sealed(e, msg), sealed(e, msg)
    assert orjson.loads(a.outgoing.body)["payload"] != orjson.loads(b.outgoing.body)["payload"]


@pytest.mark.parametrize("field_name, value", [
    ("id", "another-id"), ("type", "OtherQuery"), ("timestamp", "2020-01-01T00:00:00Z"),
    ("correlationId", "c-2"), ("replyTo", "evil.queue"),
])
def test_the_envelope_fields_are_bound_to_the_ciphertext(field_name: str, value: str) -> None:
    ctx = sealed(EncryptionInterceptor(KEY, "k1"))
    wire = orjson.loads(ctx.outgoing.body)
    wire[field_name] = value
    with pytest.raises(errors.DecryptionError) as info:
        decrypt(EncryptionInterceptor(KEY, "k1"), delivered(ctx, body=orjson.dumps(wire)))
    assert info.value.reason == "bad-ciphertext"


@pytest.mark.parametrize("change", ["flip", "truncate", "not-base64", "object", "not-json"])
def test_a_changed_payload_does_not_decrypt(change: str) -> None:
    ctx = sealed(EncryptionInterceptor(KEY, "k1"))
    wire = orjson.loads(ctx.outgoing.body)
    raw = bytearray(base64.b64decode(wire["payload"]))
    if change == "flip":
        raw[20] ^= 1
        wire["payload"] = base64.b64encode(raw).decode()
    elif change == "truncate":
        wire["payload"] = base64.b64encode(raw[:20]).decode()
    elif change == "not-base64":
        wire["payload"] = "%%%"
    elif change == "object":
        wire["payload"] = {"card": "4111"}
    body = b"{not json" if change == "not-json" else orjson.dumps(wire)
    with pytest.raises(errors.DecryptionError) as info:
        decrypt(EncryptionInterceptor(KEY, "k1"), delivered(ctx, body=body))
    assert info.value.reason == "bad-ciphertext"


def test_keys_rotate_by_id() -> None:
    old_ctx = sealed(EncryptionInterceptor(OLD, "k0"))
    rotated = EncryptionInterceptor(KEY, "k1", previous={"k0": OLD})
    assert decrypt(rotated, delivered(old_ctx)) is not None
    assert decrypt(rotated, delivered(sealed(rotated))) is not None
    assert orjson.loads(sealed(rotated).outgoing.body)["headers"]["x-mmate-encryption-key"] == "k1"
    with pytest.raises(errors.DecryptionError, match="no decryption key with id 'k0'"):
        decrypt(EncryptionInterceptor(KEY, "k1"), delivered(old_ctx))
    with pytest.raises(errors.DecryptionError, match="does not authenticate"):  # same id, other key
        decrypt(EncryptionInterceptor(KEY, "k0"), delivered(old_ctx))
    with pytest.raises(errors.DecryptionError, match="unknown algorithm"):
        decrypt(rotated, delivered(old_ctx, x_mmate_encryption="rot13"))


def test_a_plain_message_is_refused_unless_optional() -> None:
    plain = PublishContext(EnQuery(), None, None, {})
    plain.outgoing = build(EnQuery(card="x"))
    with pytest.raises(errors.DecryptionError) as info:
        decrypt(EncryptionInterceptor(KEY, "k1"), delivered(plain))
    assert info.value.reason == "not-encrypted"
    assert decrypt(EncryptionInterceptor(KEY, "k1", required=False), delivered(plain)) is None
    assert decrypt(EncryptionInterceptor(KEY, "k1", decrypt=False), delivered(sealed(EncryptionInterceptor(KEY, "k1")))) is None
    ctx = sealed(EncryptionInterceptor(KEY, "k1", encrypt=False))
    assert ctx.amqp_headers == {} and b"4111" in ctx.outgoing.body


def test_associated_data_is_the_documented_form() -> None:
    env = _env.Envelope("m-1", "T", "2023-11-14T22:13:20Z", None, "bridge.reply.1", {}, {})
    assert associated_data("k1", env) == \
        b"mmate-encryption-v1\n2:k1\n3:m-1\n1:T\n20:2023-11-14T22:13:20Z\n0:\n14:bridge.reply.1\n"


@pytest.mark.parametrize("key, key_id", [("text", "k"), (b"short", "k"), (bytes(33), "k"), (KEY, ""),
                                         (KEY, None), (KEY, "x" * 256)])
def test_bad_keys_are_a_named_error_without_echo(key: Any, key_id: Any) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        EncryptionInterceptor(key, key_id)
    assert "text" not in str(info.value)


def test_keys_are_never_shown_nor_pickled() -> None:
    e = EncryptionInterceptor(KEY, "k1", previous={"k0": OLD})
    texts = [repr(e), str(e), repr(e._current)]
    ctx = sealed(EncryptionInterceptor(OLD, "k1"))
    with pytest.raises(errors.DecryptionError) as info:
        decrypt(e, delivered(ctx))
    texts += [str(info.value), repr(info.value)]
    for key in (KEY, OLD):
        assert all(key.hex() not in t and repr(key) not in t for t in texts)
    with pytest.raises(TypeError):
        pickle.dumps(e)


def test_without_cryptography_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_crypto(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("cryptography"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_crypto)
    with pytest.raises(errors.ConfigurationError, match=r"mmate-fast\[crypto\]"):
        EncryptionInterceptor(KEY, "k1")
