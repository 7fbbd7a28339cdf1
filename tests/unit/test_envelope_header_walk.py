"""The compiled envelope's walk of Go's envelope (14 headers + payload): every header missing, of
another type, escaped, non-ASCII, reordered, duplicated, spaced out; the body cut at every byte and
one byte changed at every position. Each must give what the twin gives (every field, the headers
once read, or the same named error), and the bodies that are still plain must take the fast path
(seen through ``raw_payload``: the payload object kept as bytes)."""
from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from mmate_fast._py import envelope as twin
from tests.unit._impls import NO_EXT
from tests.unit.test_envelope_plain_path import _outcome
from tests.vectors import VECTORS

pytestmark = pytest.mark.skipif(NO_EXT, reason="MMATE_NO_EXTENSIONS=1")

GO_BODY = (VECTORS / "02-event-OrderCreatedEvent.body.json").read_bytes()
GO = orjson.loads(GO_BODY)
HEADER_NAMES = list(GO["headers"])


def _body(headers: list[tuple[str, bytes]], top: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """Go's body with these header members (name, raw JSON value), in this order."""
    h = b"{" + b",".join(orjson.dumps(k) + b":" + v for k, v in headers) + b"}"
    if top is None:
        top = [(b"id", orjson.dumps(GO["id"])), (b"type", orjson.dumps(GO["type"])),
               (b"timestamp", orjson.dumps(GO["timestamp"])), (b"headers", h),
               (b"payload", orjson.dumps(GO["payload"]))]
    return b"{" + b",".join(b'"' + k + b'":' + (h if v is None else v) for k, v in top) + b"}"


def _members() -> list[tuple[str, bytes]]:
    return [(k, orjson.dumps(v)) for k, v in GO["headers"].items()]


def _variants() -> Iterator[tuple[str, bytes, bool]]:
    """(name, body, still plain: the fast path must take it)."""
    base = _members()
    yield "as-is", _body(base), True
    yield "reversed", _body(base[::-1]), True
    yield "no-headers", _body([]), True
    top = [(b"payload", orjson.dumps(GO["payload"])), (b"headers", None), (b"timestamp", b'"t"'),
           (b"type", b'"T"'), (b"id", b'"i"')]
    yield "top-reordered", _body(base, top), True  # type: ignore[arg-type]
    for i, (name, value) in enumerate(base):
        others = base[:i] + base[i + 1:]
        yield f"{name}-missing", _body(others), True
        # a repeated header: orjson keeps the last one, as the twin's parser does
        yield f"{name}-twice", _body([*base[:i + 1], (name, b'"again"'), *base[i + 1:]]), True
        yield f"{name}-first", _body([(name, value), *others]), True
        for kind, raw in [("int", b"7"), ("neg", b"-7"), ("float", b"1.5"), ("str", b'"7"'),
                          ("empty", b'""'), ("true", b"true"), ("false", b"false"), ("null", b"null"),
                          ("obj", b'{"a":[1,"b",{}]}'), ("list", b"[]"), ("long", b"1234567890123456789"),
                          ("exp", b"1e5"), ("lead0", b"01"), ("dot", b"1."), ("plus", b"+1"),
                          ("bad-word", b"nul"), ("bad-obj", b'{"a"}'), ("cut-str", b'"ab')]:
            plain = kind not in ("long", "exp", "lead0", "dot", "plus", "bad-word", "bad-obj", "cut-str")
            yield f"{name}-{kind}", _body([*base[:i], (name, raw), *base[i + 1:]]), plain
        for kind, raw in [("escaped", b'"a\\u0041"'), ("quote", b'"a\\"b"'), ("backslash", b'"a\\\\"'),
                          ("non-ascii", '"é€"'.encode()), ("bad-utf8", b'"\xff"'), ("ctl", b'"a\x01"'),
                          ("tab", b'"a\tb"'), ("del", b'"a\x7f"')]:
            plain = kind == "del"
            yield f"{name}-{kind}", _body([*base[:i], (name, raw), *base[i + 1:]]), plain
            if kind in ("escaped", "non-ascii", "ctl"):
                yield f"{name}-key-{kind}", _body([*base[:i], (raw.decode("latin-1")[1:-1], value),
                                                   *base[i + 1:]]), False
        spaced = _body([*base[:i], (name, b" \n" + value + b"\t "), *base[i + 1:]])
        yield f"{name}-spaced", spaced, True
    long_value = b'"' + b"x" * 40 + b'"'
    yield "long-value", _body([*base, ("x-long", long_value)]), True
    for n in range(0, 40):  # every string length, so the 16- and 8-byte scans end everywhere
        yield f"len-{n}", _body([("k" * n, b'"' + b"v" * n + b'"'), *base]), True
        yield f"len-{n}-high", _body([("k" * n, b'"' + b"v" * n + b'\x80"'), *base]), False
        yield f"len-{n}-ctl", _body([("k" * n, b'"' + b"v" * n + b'\x1f"'), *base]), False


VARIANTS = list(_variants())


@pytest.mark.parametrize(("name", "body", "plain"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_each_header_edge_gives_what_the_twin_gives(name: str, body: bytes, plain: bool) -> None:
    from mmate_fast._cy import envelope as compiled

    want = _outcome(twin, body)
    assert _outcome(compiled, body) == want
    assert _outcome(compiled, bytearray(body)) == want  # not bytes: the general path
    env = compiled.decode_envelope(body) if want[0] == "ok" else None
    taken = env is not None and env.raw_payload is not None
    assert taken == plain, name


@pytest.mark.parametrize("base", [GO_BODY, _body(_members()[::-1])], ids=["go", "reversed"])
def test_every_cut_and_every_changed_byte_gives_what_the_twin_gives(base: bytes) -> None:
    from mmate_fast._cy import envelope as compiled

    for n in range(len(base) + 1):
        body = base[:n]
        assert _outcome(compiled, body) == _outcome(twin, body), n
    for i in range(len(base)):
        for b in b' "\\\x01\x80:,{}[]0-ex':
            body = base[:i] + bytes([b]) + base[i + 1:]
            assert _outcome(compiled, body) == _outcome(twin, body), (i, b)
