"""Short strings decoded through the compiled string cache (routing keys, consumer tags, types,
envelope timestamps) come out exactly as decoded afresh, whatever came before them (both impls)."""
from __future__ import annotations

import itertools
from types import ModuleType

import pytest
from pamqp import commands as pc

from ._impls import impl_params
from .test_frames import content

WORDS = ["q", "r", "orders", "ordert", "xrders", "héllo", "hello", "hellö", "a" * 64, "a" * 63 + "b",
         "b" + "a" * 63, "a" * 65, "a" * 200, "Ünïcödé-ключ", "2026-11-30T18:18:29Z",
         "2026-11-30T18:18:30Z"]


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=impl_params("envelope"))
def E(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def test_delivery_strings(F: ModuleType) -> None:
    r = F.FrameReader()
    for i, (a, b) in enumerate(itertools.product(WORDS, repeat=2)):
        props = pc.Basic.Properties(content_type=a, message_type=b, message_id=a, app_id=b)
        d = r.feed(content(1, pc.Basic.Deliver(b[:200], i + 1, False, "", a[:200]), props, b"x"))[0]
        assert (d.consumer_tag, d.routing_key) == (b[:200], a[:200])
        p = d.properties
        assert (p.content_type, p.type, p.message_id, p.app_id) == (a, b, a, b)


def test_envelope_strings(E: ModuleType) -> None:
    for a, b in itertools.product(WORDS, repeat=2):
        body = f'{{"id":"{a}","type":"{b}","timestamp":"{a}","payload":{{}}}}'.encode()
        env = E.decode_envelope(body)
        assert (env.id, env.type, env.timestamp) == (a, b, a)
