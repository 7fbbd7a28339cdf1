"""Go-unsafe header types (issue 8 item 4): amqp091-go cannot read field values tagged ``u``, ``i``
or ``L``; one such header kills the connection of every Go consumer that receives it (and Go does
not restore its subscription). ``Typed('u'|'i'|'L', ...)`` is refused with InvalidArgumentError
unless the caller opts in knowingly (``go_safe=False``); plain ints never get those tags.
Both frame codecs (compiled and twin).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import pytest

from mmate_fast.contracts import Event
from mmate_fast.errors import InvalidArgumentError
from mmate_fast.messaging.outgoing import build

from ._impls import impl_params


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def _tag_of(F: ModuleType, value: object) -> bytes:
    """The field type tag our encoder writes for ``value`` (a one-entry table ``{"k": value}``)."""
    return bytes(F.encode_table({"k": value})[6:7])


@pytest.mark.parametrize(("tag", "value"), [("u", 5), ("i", 70000), ("L", 2**63)])
def test_go_unsafe_typed_is_refused(F: ModuleType, tag: str, value: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        F.Typed(tag, value)
    text = str(info.value)
    assert "amqp091-go" in text and "go_safe=False" in text and repr(tag) in text
    assert isinstance(info.value, ValueError) and info.value.argument == "tag"


@pytest.mark.parametrize(("tag", "value"), [("u", 5), ("i", 70000), ("L", 2**63)])
def test_go_unsafe_typed_with_opt_in_is_encoded(F: ModuleType, tag: str, value: int) -> None:
    t = F.Typed(tag, value, go_safe=False)
    assert t.go_safe is False
    assert repr(t) == f"Typed({tag!r}, {value!r}, go_safe=False)"
    assert _tag_of(F, t) == tag.encode()
    assert F.decode_table(F.encode_table({"k": t}))[0] == {"k": value}


def test_go_safe_tags_need_no_opt_in(F: ModuleType) -> None:
    for tag, value in [("b", -1), ("B", 5), ("s", -2), ("I", 7), ("l", 2**40), ("t", True), ("S", "x"),
                       ("d", 1.5), ("f", 0.5)]:
        t = F.Typed(tag, value)
        assert t.go_safe is True and repr(t) == f"Typed({tag!r}, {value!r})"
        assert _tag_of(F, t) == tag.encode()


def test_typed_is_immutable(F: ModuleType) -> None:
    """A Typed is hashable, and its tag was checked when it was made: it cannot be changed."""
    t = F.Typed("I", 5)
    for attr, value in [("tag", "u"), ("value", 6), ("go_safe", False)]:
        with pytest.raises(AttributeError):
            setattr(t, attr, value)
    assert (t.tag, t.value) == ("I", 5) and hash(t) == hash(F.Typed("I", 5))


def test_plain_ints_never_get_go_unsafe_tags(F: ModuleType) -> None:
    """pamqp picks ``u`` for 32768..65535 and ``i`` for 2**31..2**32-1; we do not."""
    assert _tag_of(F, 40000) == b"I"
    assert _tag_of(F, 2**31) == b"l"
    assert _tag_of(F, 2**32 - 1) == b"l"
    with pytest.raises(ValueError):
        F.encode_table({"k": 2**63})  # would need L: refused


@dataclass
class GuEvent(Event):
    pass


def test_outgoing_carries_an_opted_in_header() -> None:
    """A Mmate message with an opted-in ``L`` header: the AMQP table keeps the tag, the envelope's
    JSON headers hold the plain number."""
    from mmate_fast._ext import load

    frames = load("frames")
    out = build(GuEvent(aggregate_id="a"), headers={"big": frames.Typed("L", 2**63, go_safe=False)})
    props, _ = frames.decode_properties(out.properties)
    assert props.headers["big"] == 2**63
    assert b'"big":9223372036854775808' in out.body
