"""SigningInterceptor on hand-built deliveries (no broker): the canonical signature input, what it
covers, key rotation, secrets kept secret, and the freshness check (expired, replayed, bounded)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import Command, Event
from mmate_fast.interceptors import SigningInterceptor, sign_message, signing_input
from mmate_fast.interceptors._canonical import encode_fields
from mmate_fast.interceptors._replay import ReplayWindow
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import PublishContext

_frames = load("frames")

SECRET = b"s3cr3t-key-material-0123456789"
OLD = b"old-secret-material-9876543210"
NOW = 1_700_000_000.0


@dataclass
class SgEvt(Event):
    n: int = 0


@dataclass
class SgCmd(Command):
    what: str = ""


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(**kw: Any) -> SigningInterceptor:
    kw.setdefault("clock", Clock())
    return SigningInterceptor(kw.pop("secret", SECRET), **kw)


def published(s: SigningInterceptor, msg: Any = None, **options: Any) -> PublishContext:
    """``msg`` encoded by the publisher and sealed by ``s``."""
    msg = SgEvt(n=1, aggregate_id="a") if msg is None else msg
    ctx = PublishContext(msg, None, None, {})
    ctx.outgoing = build(msg, **options)
    s.seal(ctx)
    return ctx


def delivered(ctx: PublishContext, *, redelivered: bool = False, body: bytes | None = None,
              **changes: Any) -> Any:
    """What a consumer receives for ``ctx`` (properties through the wire codec), with
    ``changes``: property values, or ``h_{header}`` (``_`` for ``-``) header values (None removes)."""
    props = ctx.properties()
    headers = dict(props.headers or {})
    for name, value in changes.items():
        if name.startswith("h_"):
            key = name[2:].replace("_", "-")
            if value is None:
                headers.pop(key, None)
            else:
                headers[key] = value
        else:
            setattr(props, name, value)
    props.headers = headers
    props, _ = _frames.decode_properties(_frames.encode_properties(props))
    return _frames.Delivery(kind=0, channel=1, delivery_tag=1, redelivered=redelivered, exchange="mmate.events",
                            routing_key="evt.a.SgEvt", properties=props,
                            body=ctx.outgoing.body if body is None else body)


def verify(s: SigningInterceptor, d: Any, queue: str = "q") -> bytes | None:
    return s.verify_delivery(d, d.body, queue)


def msg_at(ts: float, **kw: Any) -> SgEvt:
    from datetime import UTC, datetime

    return SgEvt(n=1, aggregate_id="a", timestamp=datetime.fromtimestamp(ts, UTC), **kw)


# --------------------------------------------------------------------------- what is signed
def test_signing_input_is_the_documented_canonical_form() -> None:
    """The example of the README's "Signing" section, checked against an independent HMAC (openssl agrees)."""
    props = _frames.BasicProperties(
        message_id="m-1", type="OrderCreated", timestamp=1700000000, correlation_id="c-9",
        headers={"x-message-id": "m-1", "timestamp": "2023-11-14T22:13:20Z",
                 "x-reply-to": "bridge.reply.0a1b2c3d"})
    body = b'{"id":"m-1"}'
    expected = (b"mmate-signature-v1\n2:k1\n3:m-1\n12:OrderCreated\n10:1700000000\n0:\n3:c-9\n"
                b"21:bridge.reply.0a1b2c3d\n0:\n" + body)
    assert signing_input(props, body, "k1") == expected
    assert sign_message(b"key material", props, body, "k1") == \
        "6f785b56561fcb099afd6f4ef24a7f8371ed55ad07b9fe763cfe7cbce6fc5cb2"
    assert hmac.new(b"key material", expected, hashlib.sha256).hexdigest() == \
        "6f785b56561fcb099afd6f4ef24a7f8371ed55ad07b9fe763cfe7cbce6fc5cb2"


async def test_round_trip_and_headers_only_in_amqp() -> None:
    s = signer(key_id="k2")
    cmd = SgCmd(what="x", target_service="svc", timestamp=msg_at(NOW).timestamp)
    ctx = published(s, cmd, correlation_id="c-1", reply_to="bridge.reply.1")
    assert set(ctx.amqp_headers) == {"x-signature", "x-signature-key"}
    assert ctx.amqp_headers["x-signature-key"] == "k2"
    assert b"x-signature" not in ctx.outgoing.body  # never in the (signed) envelope
    d = delivered(ctx)
    assert d.properties.headers["x-signature"] == sign_message(SECRET, d.properties, d.body, "k2")
    assert s.verify_delivery(d, d.body, "q") is None
    # upper-case hex and a bytes header value are accepted
    other = published(signer(), msg_at(NOW))
    sig = other.amqp_headers["x-signature"]
    assert verify(signer(), delivered(other, h_x_signature=sig.upper().encode()), "q") is None


@pytest.mark.parametrize("change", [
    {"message_id": "other"}, {"h_x_message_id": "other"}, {"h_message_id": "other"},
    {"type": "Other"}, {"h_x_message_type": "Other"}, {"h_message_type": "Other"},
    {"correlation_id": "other"}, {"h_x_correlation_id": "other"}, {"h_correlation_id": "other"},
    {"reply_to": "evil.queue"}, {"h_x_reply_to": "evil.queue"}, {"h_reply_to": "evil.queue"},
    {"h_replyTo": "evil.queue"},
    {"timestamp": int(NOW) - 5}, {"h_timestamp": "2023-11-14T22:13:21Z"}, {"h_timestamp": "yesterday"},
    {"h_x_delay": 60_000}, {"h_x_delay": "soon"},
    {"h_x_mmate_encryption": "aes-gcm"},
    {"h_x_signature_key": "k9"},
], ids=lambda c: next(iter(c)))
def test_every_steering_header_is_signed(change: dict[str, Any]) -> None:
    """Changing or adding any copy of a signed field, anywhere handling may read it, fails."""
    s = signer()
    ctx = published(s, msg_at(NOW), correlation_id="c-1", reply_to="bridge.reply.1")
    genuine = delivered(ctx)
    assert signer().verify_delivery(genuine, genuine.body, "q") is None
    d = delivered(ctx, **change)
    with pytest.raises(errors.SignatureError) as info:
        signer().verify_delivery(d, d.body, "q")
    assert info.value.reason == "bad-signature"


def test_the_body_is_signed_and_a_signature_in_the_envelope_is_ignored() -> None:
    ctx = published(signer(), msg_at(NOW))
    tampered = ctx.outgoing.body.replace(b'"n":1', b'"n":9')
    assert tampered != ctx.outgoing.body
    with pytest.raises(errors.SignatureError, match="does not match"):
        verify(signer(), delivered(ctx, body=tampered), "q")
    forged = build(SgEvt(n=1, aggregate_id="a"), headers={"x-signature": "00" * 32})
    props, _ = _frames.decode_properties(forged.properties)
    props.headers.pop("x-signature")  # only in the envelope headers
    d = _frames.Delivery(properties=props, body=forged.body)
    with pytest.raises(errors.SignatureError, match="no x-signature"):
        signer().verify_delivery(d, d.body, "q")


def test_unsigned_headers_and_routing_may_change() -> None:
    """What a retry, the broker or a DLQ replay adds or changes keeps the signature valid."""
    ctx = published(signer(), msg_at(NOW))
    d = delivered(ctx, delivery_mode=1, h_x_mmate_attempt=2, h_x_death=[{"count": 1}],
                  h_x_mmate_replayed="true", h_priority=5)
    assert signer().verify_delivery(d, d.body, "q") is None


@pytest.mark.parametrize("headers", [
    None, {}, {"x-signature": "zz" * 32}, {"x-signature": "abc"}, {"x-signature": "é" * 64},
    {"x-signature": "00" * 32}, {"x-signature": b"\xff" * 64},
])
def test_missing_malformed_or_wrong_signatures_are_refused(headers: dict[str, Any] | None) -> None:
    d = _frames.Delivery(properties=_frames.BasicProperties(headers=headers), body=b"{}")
    with pytest.raises(errors.SignatureError) as info:
        signer().verify_delivery(d, d.body, "q")
    assert info.value.reason == "bad-signature"


def test_optional_signing_lets_unsigned_through_but_not_wrong() -> None:
    s = signer(required=False)
    d = _frames.Delivery(properties=_frames.BasicProperties(headers={}), body=b"not even json")
    assert s.verify_delivery(d, d.body, "q") is None
    d = _frames.Delivery(properties=_frames.BasicProperties(headers={"x-signature": "11" * 32}), body=b"{}")
    with pytest.raises(errors.SignatureError):
        s.verify_delivery(d, d.body, "q")


def test_rotation_by_key_id_and_by_trying_all() -> None:
    old_signed = published(SigningInterceptor(OLD, key_id="old"), msg_at(NOW))
    by_id = signer(key_id="new", previous={"old": OLD})
    assert verify(by_id, delivered(old_signed), "q") is None
    with pytest.raises(errors.SignatureError, match="key id 'new'"):  # the named key only
        verify(by_id, delivered(old_signed, h_x_signature_key="new"), "q2")
    no_id = published(SigningInterceptor(OLD), msg_at(NOW))
    listed = signer(previous=[OLD])
    assert verify(listed, delivered(no_id), "q") is None
    with pytest.raises(errors.SignatureError):
        verify(signer(), delivered(no_id), "q")


async def test_secrets_never_shown_nor_pickled() -> None:
    s = signer(key_id="k1", previous={"k0": OLD})
    texts = [repr(s), str(s), repr(s._keys), str(s._current)]
    d = _frames.Delivery(properties=_frames.BasicProperties(
        headers={"x-signature": "00" * 32, "x-signature-key": "k1"}), body=b"{}")
    with pytest.raises(errors.SignatureError) as info:
        s.verify_delivery(d, d.body, "q")
    texts += [str(info.value), repr(info.value)]
    for secret in (SECRET, OLD):
        for form in (secret.decode(), secret.hex(), repr(secret)):
            assert all(form not in t for t in texts)
    with pytest.raises(TypeError):
        pickle.dumps(s)


@pytest.mark.parametrize("kw", [{"secret": "text-secret"}, {"secret": b""}, {"secret": 123}, {"key_id": ""},
                                {"max_age": 0}, {"max_age": -1}, {"max_age": True}, {"max_age": float("inf")},
                                {"clock_skew": -1}, {"max_ids": 0}, {"max_ids": 1.5}])
def test_bad_configuration_is_a_named_error_without_echo(kw: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        signer(**kw)
    assert "text-secret" not in str(info.value)


# --------------------------------------------------------------------------- freshness
def test_a_replay_is_refused_per_queue_and_a_redelivery_is_not() -> None:
    s = signer()
    ctx = published(s, msg_at(NOW))
    d = delivered(ctx)
    assert verify(s, d, "q") is None
    with pytest.raises(errors.ReplayedMessageError) as info:
        verify(s, d, "q")
    assert info.value.reason == "replayed"
    assert verify(s, d, "other-queue") is None  # fan-out: another queue's copy
    assert verify(s, delivered(ctx, redelivered=True), "q") is None  # the broker's
    s.release_delivery(d, "q")  # it failed: its retry (same id) may come
    assert verify(s, delivered(ctx), "q") is None
    with pytest.raises(errors.ReplayedMessageError):
        verify(s, d, "q")


def test_too_old_and_too_far_ahead_are_expired_and_the_delay_counts() -> None:
    clock = Clock()
    s = signer(max_age=60, clock_skew=5, clock=clock)
    with pytest.raises(errors.ExpiredMessageError, match="61 s old, over max_age 60") as info:
        verify(s, delivered(published(s, msg_at(NOW - 61))), "q")
    assert info.value.reason == "expired"
    assert verify(s, delivered(published(s, msg_at(NOW - 59))), "q") is None
    with pytest.raises(errors.ExpiredMessageError, match="in the future"):
        verify(s, delivered(published(s, msg_at(NOW + 6))), "q")
    assert verify(s, delivered(published(s, msg_at(NOW + 4))), "q") is None
    # a message scheduled an hour ahead counts from when it is due
    scheduled = published(s, msg_at(NOW - 3600 - 30), delay_ms=3600 * 1000)
    assert verify(s, delivered(scheduled), "q") is None


def test_max_age_none_turns_the_freshness_check_off() -> None:
    s = signer(max_age=None)
    ctx = published(s, msg_at(NOW - 86400 * 365))
    d = delivered(ctx)
    for _ in range(2):
        assert verify(s, d, "q") is None
    assert s.window is None
    s.release_delivery(d, "q")


def test_a_signed_message_without_id_or_timestamp_fails_the_freshness_check() -> None:
    s = signer()
    props = _frames.BasicProperties(headers={})
    props.headers["x-signature"] = sign_message(SECRET, props, b"{}")
    with pytest.raises(errors.SignatureError, match="no message id"):
        s.verify_delivery(_frames.Delivery(properties=props, body=b"{}"), b"{}", "q")
    props = _frames.BasicProperties(message_id="m", headers={})
    props.headers["x-signature"] = sign_message(SECRET, props, b"{}")
    with pytest.raises(errors.SignatureError, match="no timestamp"):
        s.verify_delivery(_frames.Delivery(properties=props, body=b"{}"), b"{}", "q")


def test_the_window_forgets_expired_ids_and_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    w = ReplayWindow(60, 5, 3, clock)
    for i in range(3):
        w.admit("q", f"id-{i}", int(NOW), 0, False)
    assert len(w) == 3
    clock.now += 61  # all expired: swept on the next admit
    w.admit("q", "id-3", int(clock.now), 0, False)
    assert len(w) == 1 and w.evictions == 0
    with caplog.at_level(logging.WARNING, "mmate_fast.interceptors"):
        for i in range(4, 9):
            w.admit("q", f"id-{i}", int(clock.now), 0, False)
    assert len(w) == 3 and w.evictions == 3
    assert len([r for r in caplog.records if "replay window full" in r.getMessage()]) == 1
    with pytest.raises(errors.ReplayedMessageError):
        w.admit("q", "id-8", int(clock.now), 0, False)
    w.forget("q", "id-8")
    w.admit("q", "id-8", int(clock.now), 0, False)


def test_field_lengths_are_utf8_byte_counts() -> None:
    assert encode_fields(b"t\n", ["é", "a:b\nc", ""]) == b"t\n2:\xc3\xa9\n5:a:b\nc\n0:\n"
    assert encode_fields(b"t\n", ["\ud800"]) == b"t\n3:\xed\xa0\x80\n"  # a lone surrogate from JSON
