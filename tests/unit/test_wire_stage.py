"""The pipeline's wire stage: ``seal`` / ``verify_delivery`` nest by ``wire_layer`` whatever the
registration order (encrypt then sign, verify then decrypt), cost nothing when unused, and a
signed and encrypted message made by one pipeline opens in another."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast._ext import load
from mmate_fast.contracts import Event
from mmate_fast.interceptors import (
    EncryptionInterceptor,
    FilterInterceptor,
    LoggingInterceptor,
    SigningInterceptor,
)
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.pipeline import Interceptor, Pipeline, PublishContext

pytest.importorskip("cryptography")

_frames = load("frames")
_env = load("envelope")

SECRET = b"wire-stage-secret-0123456789abcdef"
KEY = bytes(range(32))


@dataclass
class WsEvt(Event):
    secret_note: str = ""


class Spy(Interceptor):
    def __init__(self, name: str, calls: list[str], layer: int = 1000) -> None:
        self.name = name
        self.calls = calls
        self.wire_layer = layer  # type: ignore[misc]

    def seal(self, ctx: PublishContext) -> None:
        self.calls.append(f"seal {self.name}")

    def verify_delivery(self, delivery: Any, body: bytes, queue: str) -> bytes | None:
        self.calls.append(f"verify {self.name}")
        return None


async def _publish(pipe: Pipeline, msg: Any) -> Any:
    """Run ``pipe.publish`` and return what the broker would deliver."""
    sent: list[Any] = []

    def encode(c: PublishContext) -> None:
        c.outgoing = build(c.message)

    async def send(c: PublishContext) -> None:
        props, _ = _frames.decode_properties(_frames.encode_properties(c.properties()))
        sent.append(_frames.Delivery(properties=props, body=c.outgoing.body))

    await pipe.publish(PublishContext(msg, None, None, {}), encode, send)
    [delivery] = sent
    return delivery


def test_layers_nest_whatever_the_registration_order() -> None:
    calls: list[str] = []
    outer, inner, user_a, user_b = (Spy("outer", calls, 100), Spy("inner", calls, 200),
                                    Spy("a", calls), Spy("b", calls))
    pipe = Pipeline([user_a, inner, user_b, outer])
    pipe.verify(_frames.Delivery(properties=_frames.BasicProperties(), body=b"x"), "q")
    assert calls == ["verify outer", "verify inner", "verify a", "verify b"]
    calls.clear()
    for s in pipe._sealers:
        s.seal(PublishContext(None, None, None, {}))
    assert calls == ["seal b", "seal a", "seal inner", "seal outer"]  # exactly the reverse


def test_the_stage_costs_nothing_when_unused_and_counts_as_publish_hooks() -> None:
    plain = Pipeline([LoggingInterceptor(), FilterInterceptor(lambda ctx: True)])
    assert not plain.has_wire
    signing = Pipeline([SigningInterceptor(SECRET)])
    assert signing.has_wire and signing.has_publish and not signing.has_consume  # plain handlers stay inline
    assert Pipeline([EncryptionInterceptor(KEY, "k1", decrypt=False)]).has_publish


@pytest.mark.parametrize("publish_order, consume_order", [("sign-first", "encrypt-first"),
                                                          ("encrypt-first", "sign-first")])
async def test_signed_and_encrypted_round_trip_in_any_order(publish_order: str, consume_order: str) -> None:
    def pipeline(order: str) -> Pipeline:
        pair = [SigningInterceptor(SECRET, key_id="s1"), EncryptionInterceptor(KEY, "e1")]
        return Pipeline(pair if order == "sign-first" else pair[::-1])

    delivery = await _publish(pipeline(publish_order), WsEvt(secret_note="launch codes", aggregate_id="a"))
    assert b"launch codes" not in delivery.body
    # the signature covers the ciphertext and the encryption marker: encrypt-then-sign
    assert SigningInterceptor(SECRET, key_id="s1").verify_delivery(delivery, delivery.body, "q") is None
    env = _env.decode_envelope(pipeline(consume_order).verify(delivery, "q"))
    assert env.payload["secretNote"] == "launch codes" and env.type == "WsEvt"
