"""The compiled envelope decoder reads plain bodies (what Go and we write) without building the
envelope headers; everything else goes the general way. Either way it must give what the twin gives
(every field, the headers once read) or the same named error: checked on the Go vectors and on
bodies made to sit on the edges of the plain form."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._py import envelope as twin
from tests.unit._impls import NO_EXT
from tests.vectors import VECTORS

pytestmark = pytest.mark.skipif(NO_EXT, reason="MMATE_NO_EXTENSIONS=1")

HEAD = b'{"id":"i-1","type":"T","timestamp":"2026-11-30T14:55:24Z"'
EDGE_BODIES: list[bytes] = [
    HEAD + b"}",
    HEAD + b',"headers":{},"payload":{}}',
    HEAD + b',"headers":{"a":"b","n":1,"f":-1.5,"z":0,"t":true,"u":false,"x":null,"o":{"k":[1,"2",{}]}},'
           b'"payload":{"k":"v"}}',
    HEAD + b',"correlationId":"c-1","replyTo":"r","headers":{"a":"b"},"payload":[1,2]}',
    b' \n{ "type" : "T" , "payload" : { "a" : 1 } } \t',
    HEAD + b',"headers":{"a":"b\\"q"},"payload":{}}',
    HEAD + b',"headers":{"a":"\xc3\xa9"},"payload":{}}',
    HEAD + b',"headers":{"a":1e5},"payload":{}}',
    HEAD + b',"headers":{"a":12345678901234567890},"payload":{}}',
    HEAD + b',"headers":{"a":"b","a":"c"},"payload":{}}',
    HEAD + b',"headers":{"a":tru},"payload":{}}',
    HEAD + b',"headers":{"a":"b",},"payload":{}}',
    HEAD + b',"headers":{"a":01},"payload":{}}',
    HEAD + b',"headers":{"a":"\x01"},"payload":{}}',
    HEAD + b',"headers":null,"payload":null}',
    HEAD + b',"headers":[],"payload":{}}',
    HEAD + b',"payload":{"s":"line\\nnext \\u00e9 \\ud83d\\ude00","n":-0.5e-3,"b":[true,false,null]}}',
    HEAD + b',"payload":{"big":123456789012345678901234567890}}',
    HEAD + b',"payload":{"bad":tru}}',
    HEAD + b',"payload":{"s":"\xff"}}',
    HEAD + b',"payload":{}} trailing',
    HEAD + b',"payload":{}',
    HEAD + b',"extra":1,"payload":{}}',
    HEAD + b',"type":"U","payload":{}}',
    b'{"id":"i","type":"","payload":{}}',
    b'{"id":"i","payload":{}}',
    b'{"id":5,"type":"T"}',
    b'{"id":null,"type":"T"}',
    b'{"id":"a\\u0041","type":"T"}',
    b'{"id":"\xc3\xa9","type":"T\xe2\x82\xac"}',
    b'{"id":"\xed\xa0\x80","type":"T"}',
    b'{"id":"a\x1fb","type":"T"}',
    b"{}",
    b"[]",
    b"",
    b"null",
    b'{"type":"T","headers":{"a":' + b"[" * 40 + b"]" * 40 + b'}}',
    # clean bodies (no backslash, control byte or byte from 0x80 anywhere: strings end at the next
    # quote) cut or broken where a string would end, and bodies one byte away from clean
    b'{"type":"T","headers":{"a":"b}}',
    b'{"type":"T","headers":{"a":"b"},"payload":{"k":"v}}',
    b'{"type":"T","payload":{"k":"v","n":[1,"x",{"y":"z"}]},"id":"i',
    b'{"type":"T","id":"i"',
    b'{"type":"T","payload":{"k":"v"}}\n',
    b'{"type":"T","payload":{"k":"v\\u0041"}}',
    b'{"type":"T","payload":{"k":"v\\tw"}}',
    b'{"type":"T","payload":{"k":"v\tw"}}',
    b'{"type":"T","payload":{"k":"v"},\n"id":"i"}',
    b'{"type":"T","headers":{"k":"\\u00e9"},"payload":{"k":"v"}}',
    b'{"type":"T","headers":{"k":"\xc3\xa9"},"payload":{"k":"v"}}',
    b'{"type":"T\\"","payload":{}}',
    b'{"type":"T","payload":{"k":"' + b"x" * 37 + b'\\\\"}}',
    b'{"type":"T","payload":{"k":"' + b"x" * 37 + b'\x7f\x80"}}',
    # long digit runs: in strings (no matter), as integers in a payload read whole or kept
    b'{"type":"T","payload":{"s":"12345678901234567890123","n":1}}',
    b'{"type":"T","headers":{"s":"123456789012345678901234"},"payload":{"n":12345678901234567890123}}',
    b'{"type":"T","headers":{"s":"x"},"payload":{"n":12345678901234567890123,"e":"\\u00e9"}}',
    b'{"type":"T","headers":{"n":1234567890123456789012},"payload":{"n":1}}',
    b'{"type":"T","payload":[12345678901234567890123]}',
]


def _outcome(E: ModuleType, body: bytes | bytearray) -> tuple[str, Any]:
    try:
        env = E.decode_envelope(body)
    except errors.EnvelopeError as exc:
        return "error", (exc.reason, str(exc))
    return "ok", (env.id, env.type, env.timestamp, env.correlation_id, env.reply_to, env.headers,
                  env.payload)


@pytest.mark.parametrize("body", EDGE_BODIES + [p.read_bytes() for p in sorted(VECTORS.glob("*.body.json"))],
                         ids=lambda b: repr(b[:40]) if isinstance(b, bytes) else str(b))
def test_compiled_equals_the_twin(body: bytes) -> None:
    from mmate_fast._cy import envelope as compiled

    got = _outcome(compiled, body)
    want = _outcome(twin, body)
    assert got == want
    assert _outcome(compiled, bytearray(body)) == want  # not bytes: the general path


def test_headers_are_read_on_first_use_and_can_be_replaced() -> None:
    from mmate_fast._cy import envelope as compiled

    body = HEAD + b',"headers":{"x-a":"1","x-b":2},"payload":{"k":"v"}}'
    env = compiled.decode_envelope(body)
    assert env.headers == {"x-a": "1", "x-b": 2}
    assert env.headers is env.headers
    env.headers["x-c"] = 3
    assert env.headers["x-c"] == 3
    fresh = compiled.decode_envelope(body)
    fresh.headers = {"new": 1}
    assert fresh.headers == {"new": 1}
    assert compiled.decode_envelope(body) == compiled.decode_envelope(body)



#: string contents that stop the shared string scanner (``_jsonscan.stop_at``) somewhere: escapes,
#: bytes from 0x80, control bytes, a cut escape; valid JSON or not
SCAN_STOPS = [b"", b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\xc3\xa9", b"\xe4\xb8\xad\\t",
              b"\xc3\xa9\x01", b"\x7f", b"\x01", b"\x1f", b"\t", b"\\x", b"\xff", b'\\"\\"' + b"q" * 15 + b"\\\\"]


@pytest.mark.parametrize("stop", SCAN_STOPS, ids=repr)
def test_a_stop_at_every_offset_of_a_string_equals_the_twin(stop: bytes) -> None:
    """The stop bytes at every offset of a 16-byte scan (0-40 bytes in), with 0, 1 or 17 bytes after
    them, in a payload value and key, a header value and the type: what the twin gives."""
    from mmate_fast._cy import envelope as compiled

    for before in range(41):
        for after in (0, 1, 17):
            s = b"x" * before + stop + b"y" * after
            for body in (b'{"type":"T","payload":{"k":"' + s + b'","n":1}}',
                         b'{"type":"T","payload":{"' + s + b'":[1,"' + s + b'"]}}',
                         b'{"type":"T","headers":{"h":"' + s + b'"},"payload":{}}',
                         b'{"type":"' + s + b'","payload":{}}'):
                assert _outcome(compiled, body) == _outcome(twin, body), body
