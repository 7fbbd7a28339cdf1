"""Received AMQP headers are decoded on first use by the compiled reader: what a consumer reads is
what the twin (decoded at once) gives, and writing or comparing properties sees the same table."""
from __future__ import annotations

import datetime as dt
import decimal
import struct
from types import ModuleType
from typing import Any

import pytest

from ._impls import impl_params

HEADERS: dict[str, Any] = {
    "x-message-type": "OrderCreatedEvent", "x-source": "mmate-python", "priority": 0, "delivery-mode": 1,
    "nested": {"a": [1, "two", None, True], "t": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)},
    "big": 1 << 40, "f": 1.5, "raw": b"\x00\xff", "dec": decimal.Decimal("1.25"), "ключ": "значение",
}


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def _delivery(F: ModuleType, props: Any, body: bytes = b"{}") -> Any:
    raw = F.encode_properties(props)
    deliver = struct.pack(">HH", 60, 60) + b"\x03tag" + struct.pack(">QB", 7, 0) + b"\x02ex\x02rk"
    head = struct.pack(">HHQ", 60, 0, len(body)) + raw
    data = b"".join(struct.pack(">BHI", t, 1, len(p)) + p + b"\xce"
                    for t, p in ((1, deliver), (2, head), (3, body)))
    (d,) = F.FrameReader().feed(data)
    return d


def test_received_headers_read_as_the_sent_table(F: ModuleType) -> None:
    sent = F.BasicProperties(content_type="application/json", headers=HEADERS, message_id="m-1")
    d = _delivery(F, sent)
    assert d.undecodable is None
    assert d.properties == sent  # compares the headers too (decodes them)
    assert d.properties.headers == HEADERS
    assert d.properties.headers is d.properties.headers  # decoded once, then the same dict
    d.properties.headers["added"] = 1
    assert d.properties.headers["added"] == 1
    assert d.properties.to_dict()["headers"]["added"] == 1


def test_headers_can_be_replaced_before_first_use(F: ModuleType) -> None:
    d = _delivery(F, F.BasicProperties(headers={"a": "b"}))
    d.properties.headers = {"c": 1}
    assert d.properties.headers == {"c": 1}
    d.properties.headers = None
    assert d.properties.headers is None
    again = F.decode_properties(F.encode_properties(F.BasicProperties(headers={"k": "v"})))[0]
    assert again.headers == {"k": "v"}


def test_empty_and_absent_tables(F: ModuleType) -> None:
    assert _delivery(F, F.BasicProperties(headers={})).properties.headers == {}
    assert _delivery(F, F.BasicProperties(content_type="x")).properties.headers is None


def test_both_implementations_agree_on_a_mmate_table() -> None:
    impls = [p.values[0] for p in impl_params("frames") if p.values[0] is not None]  # type: ignore[attr-defined]
    got = [_delivery(F, F.BasicProperties(headers=HEADERS)).properties.headers for F in impls]
    assert all(g == HEADERS for g in got)
