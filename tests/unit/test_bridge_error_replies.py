"""Error replies a Go requester can read (issue 8 item 9): which reply type a failing handler
answers with, what that failure reply looks like, and how our requester recognises it."""
from __future__ import annotations

import enum
from collections.abc import Awaitable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.bridge import error_of, reply_type_for, typed_error_reply
from mmate_fast.contracts import ErrorReply, GenericMessage, Query, Reply, TypeRegistry, register


@dataclass
class ErGet(Query):
    order_id: str = ""


@dataclass
class ErOrderReply(Reply):
    order_id: str
    lines: list[str]
    total: float = 0.0


@dataclass
class ErOtherReply(Reply):
    n: int = 0


class ErMode(enum.Enum):
    ON = "on"


@dataclass
class ErNoZeroReply(Reply):
    mode: ErMode


class _Spec:
    def __init__(self, fn: Any) -> None:
        self.fn = fn


class _Dispatcher:
    def __init__(self, *fns: Any) -> None:
        self.specs = [_Spec(f) for f in fns]

    def lookup(self, type_name: str) -> list[_Spec]:
        return self.specs


CTX = SimpleNamespace(envelope=SimpleNamespace(type="ErGet"))


def _plain(q: ErGet) -> ErOrderReply: ...
def _optional(q: ErGet) -> ErOrderReply | None: ...
async def _async(q: ErGet) -> ErOrderReply: ...
def _awaitable(q: ErGet) -> Awaitable[ErOrderReply]: ...
def _with_error(q: ErGet) -> ErOrderReply | ErrorReply: ...
def _base(q: ErGet) -> Reply: ...
def _error_only(q: ErGet) -> ErrorReply: ...
def _none(q: ErGet) -> None: ...
def _other(q: ErGet) -> ErOtherReply: ...
def _two(q: ErGet) -> ErOrderReply | ErOtherReply: ...
def _unresolvable(q: ErGet) -> NoSuchReply: ...  # type: ignore[name-defined]  # noqa: F821


class _Callable:
    def __call__(self, q: ErGet) -> ErOrderReply: ...


@pytest.mark.parametrize(("fns", "want"), [
    ((_plain,), ErOrderReply), ((_optional,), ErOrderReply), ((_async,), ErOrderReply),
    ((_awaitable,), ErOrderReply), ((_with_error,), ErOrderReply), ((_Callable(),), ErOrderReply),
    ((_plain, _none), ErOrderReply), ((_plain, _optional), ErOrderReply),
    ((_base,), None), ((_error_only,), None), ((_none,), None), ((_two,), None), ((_plain, _other), None),
    ((_unresolvable,), None), ((), None),
])
def test_reply_type_from_the_handlers_return_annotation(fns: tuple[Any, ...], want: type | None) -> None:
    assert reply_type_for(ErGet(), CTX, _Dispatcher(*fns)) is want


def test_reply_type_given_at_registration() -> None:
    @dataclass
    class ErGetRegistered(Query):
        pass

    register(ErGetRegistered, reply=ErOtherReply)
    assert reply_type_for(ErGetRegistered(), CTX, _Dispatcher(_none)) is ErOtherReply
    assert reply_type_for(ErGetRegistered(), CTX, _Dispatcher(_plain)) is ErOrderReply  # the handler wins
    assert reply_type_for(GenericMessage(type="ErGet"), CTX, None) is None
    with pytest.raises(errors.ContractError, match="reply class"):
        TypeRegistry().register(ErGetRegistered, reply=ErGet)


def test_typed_error_reply_is_the_zero_value_with_gos_error_fields() -> None:
    reply = typed_error_reply(ErOrderReply, "ORDER_NOT_FOUND", "no order 7")
    assert isinstance(reply, GenericMessage) and reply.type == "ErOrderReply"
    assert reply.payload == {"success": False, "orderId": "", "lines": [], "total": 0.0,
                             "errorCode": "ORDER_NOT_FOUND", "errorMessage": "no order 7", "error": "no order 7"}


def test_typed_error_reply_for_a_pydantic_reply_type() -> None:
    pytest.importorskip("pydantic")
    from mmate_fast.contracts import PydanticReply

    class ErPydReply(PydanticReply):
        order_id: str
        count: int

    reply = typed_error_reply(ErPydReply, "E", "bad")
    assert reply is not None
    assert reply.payload == {"success": False, "orderId": "", "count": 0, "errorCode": "E",
                             "errorMessage": "bad", "error": "bad"}


def test_a_reply_type_without_a_zero_value_falls_back_to_error_reply() -> None:
    assert typed_error_reply(ErNoZeroReply, "E", "bad") is None


def test_error_of_reads_a_typed_failure_from_its_payload() -> None:
    failed = ErOrderReply(order_id="", lines=[], success=False)
    payload = {"success": False, "orderId": "", "errorCode": "E1", "errorMessage": "m1", "error": "m1"}
    assert error_of(failed, payload) == ("E1", "m1")
    assert error_of(failed, {"success": False, "error": "only error"}) == ("", "only error")
    assert error_of(failed) is None and error_of(failed, {"success": False}) is None  # an ordinary answer
    ok = ErOrderReply(order_id="o", lines=[])
    assert error_of(ok, {"success": True, "errorCode": "E1"}) is None
