"""Micro-benchmarks of the envelope codec: compiled vs pure-Python twin vs a stdlib-json envelope (the
anchors' make_envelope + json.dumps). Run with ``pytest benchmarks/micro --benchmark-only``."""
from __future__ import annotations

import datetime
import importlib
import json
import uuid
from typing import Any

import pytest

IMPLS = {"cy": importlib.import_module("mmate_fast._cy.envelope"), "py": importlib.import_module("mmate_fast._py.envelope")}
ID = "0b5e0000-0000-4000-8000-000000000002"
TS = "2025-01-02T03:04:05Z"
HEADERS: dict[str, Any] = {
    "correlation-id": ID, "expiration": "300000", "message-id": ID, "message-type": "OrderCreatedEvent",
    "source": "mmate-go", "timestamp": TS, "x-aggregate-id": "order-1001", "x-correlation-id": ID,
    "x-message-id": ID, "x-message-kind": "event", "x-message-type": "OrderCreatedEvent", "x-sequence": "7",
    "x-source": "mmate-go", "x-version": "1.0", "priority": 0, "delivery-mode": 2,
}
PAYLOAD = {"orderId": "order-1001", "aggregateId": "order-1001", "sequence": 7, "amount": 99.95,
           "customer": {"id": "C-1", "tier": "gold"}}
BODY_300 = (b'{"id":"0b5e0000-0000-4000-8000-000000000002","type":"OrderCreatedEvent","timestamp":"2025-01-02T03:04:05Z",'
            b'"correlationId":"0b5e0000-0000-4000-8000-000000000103","headers":{"x-message-kind":"event","x-version":"1.0"},'
            b'"payload":{"aggregateId":"order-1001","amount":99.95,"orderId":"order-1001","sequence":7}}')


def _stdlib_envelope() -> bytes:
    env = {"id": str(uuid.uuid4()), "type": "OrderCreatedEvent",
           "timestamp": datetime.datetime.now(datetime.UTC).isoformat(), "correlationId": ID,
           "headers": HEADERS, "payload": PAYLOAD}
    return json.dumps(env).encode()


@pytest.mark.parametrize("impl", ["cy", "py", "stdlib"])
def test_encode_envelope(benchmark: Any, impl: str) -> None:
    if impl == "stdlib":
        benchmark(lambda: json.dumps({"id": ID, "type": "OrderCreatedEvent", "timestamp": TS,
                                      "headers": HEADERS, "payload": PAYLOAD}).encode())
        return
    enc = IMPLS[impl].encode_envelope
    benchmark(enc, ID, "OrderCreatedEvent", TS, None, None, HEADERS, PAYLOAD)


@pytest.mark.parametrize("impl", ["cy", "py", "stdlib"])
def test_build_envelope_with_id_and_timestamp(benchmark: Any, impl: str) -> None:
    if impl == "stdlib":
        benchmark(_stdlib_envelope)
        return
    E = IMPLS[impl]
    enc, nid, now = E.encode_envelope, E.new_id, E.utc_timestamp
    benchmark(lambda: enc(nid(), "OrderCreatedEvent", now(), ID, None, HEADERS, PAYLOAD))


@pytest.mark.parametrize("impl", ["cy", "py", "stdlib"])
def test_decode_envelope(benchmark: Any, impl: str) -> None:
    assert 280 <= len(BODY_300) <= 330
    if impl == "stdlib":
        benchmark(json.loads, BODY_300)
        return
    benchmark(IMPLS[impl].decode_envelope, BODY_300)


# ~3.5 KB of order lines whose ids and SKUs are dense with short digit runs: the worst case of the
# scan for integers beyond 64 bits that finds none (the normal path)
BODY_DIGITS = IMPLS["py"].encode_envelope(
    ID, "OrderCreatedEvent", TS, None, None, {"x-version": "1.0"},
    {"items": [{"sku": f"SKU-{i:05d}", "qty": i, "price": i * 1.25, "id": f"0b5e0000-0000-4000-8000-{i:012d}"}
               for i in range(40)]})
# the same with one integer beyond 64 bits: the exact re-parse
BODY_BIG_INT = BODY_DIGITS.replace(b'"qty":7,', b'"qty":18446744073709551617,')


@pytest.mark.parametrize("impl", ["cy", "py"])
@pytest.mark.parametrize("body", ["digits", "big-int"])
def test_decode_envelope_numbers(benchmark: Any, impl: str, body: str) -> None:
    data = BODY_DIGITS if body == "digits" else BODY_BIG_INT
    assert (b"18446744073709551617" in data) == (body == "big-int")
    benchmark(IMPLS[impl].decode_envelope, data)


@pytest.mark.parametrize("impl", ["cy", "py", "stdlib"])
def test_new_id(benchmark: Any, impl: str) -> None:
    benchmark(lambda: str(uuid.uuid4())) if impl == "stdlib" else benchmark(IMPLS[impl].new_id)


@pytest.mark.parametrize("impl", ["cy", "py", "stdlib"])
def test_utc_timestamp(benchmark: Any, impl: str) -> None:
    if impl == "stdlib":
        benchmark(lambda: datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return
    benchmark(IMPLS[impl].utc_timestamp)
