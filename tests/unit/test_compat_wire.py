"""The facade encodes a message's properties byte for byte as aio-pika (pamqp) does: same flags,
same field types in the headers (smallest integer type, 32-bit floats, sorted table keys), same
expiration and timestamp conversions; so any consumer sees the same message from either."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import aio_pika
import pytest

import mmate_fast.compat.aio_pika as facade

TS = datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.UTC)
CASES: list[dict[str, Any]] = [
    {},
    {"delivery_mode": 2, "priority": 9, "expiration": 1.5},
    {"headers": {"z": 1, "a": -1, "m": 300, "u": 40000, "I": -70000, "i": 3_000_000_000, "l": 2 ** 40,
                 "neg_l": -(2 ** 40), "t": True, "f": 0.1, "d": Decimal("1.25"), "s": "ü", "n": None,
                 "ts": TS, "arr": [1, 0.5, "x", [300]], "tbl": {"b": 1, "a": {"y": 2, "x": 3.5}},
                 "ba": bytearray(b"\x00\x01")}},
    {"content_type": "application/json", "content_encoding": "utf-8", "correlation_id": "c",
     "reply_to": "r", "expiration": datetime.timedelta(seconds=30), "timestamp": TS, "type": "t",
     "user_id": "guest", "app_id": "app", "delivery_mode": aio_pika.DeliveryMode.PERSISTENT},
    {"timestamp": 1_700_000_000, "priority": 0, "correlation_id": "", "headers": {}},
]


@pytest.mark.parametrize("props", CASES)
def test_properties_are_encoded_as_aio_pika_encodes_them(props: dict[str, Any]) -> None:
    ours = facade.Message(b"body", message_id="fixed", **props)._wire_properties()
    theirs = aio_pika.Message(b"body", message_id="fixed", **props).properties.marshal()
    assert ours == theirs


def test_message_attributes_match() -> None:
    for props in CASES:
        ours = facade.Message(b"body", **props).info()
        theirs = aio_pika.Message(b"body", **props).info()
        assert ours == theirs
