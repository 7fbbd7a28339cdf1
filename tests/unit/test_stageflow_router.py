"""StageFlow's router handler: the general path's ``(message, context)`` and the context-free entry
the compiled consume step calls (``__mmate_settle_direct__``) take the same route and raise alike."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mmate_fast.errors import UnknownWorkflowError
from mmate_fast.messaging.dispatcher import HandlerSpec
from mmate_fast.messaging.subscriber import _settles_later
from mmate_fast.stageflow._router import Router


class FakeClient:
    def __init__(self) -> None:
        self.handlers: list[tuple[Any, Any, Any]] = []

    def add_handler(self, message: Any, fn: Any, *, bind: bool | None = None) -> None:
        self.handlers.append((message, fn, bind))


def test_both_entries_take_the_queues_route() -> None:
    client = FakeClient()
    router = Router(client)
    calls: list[tuple[Any, bool]] = []
    router.routes["stage.q"] = lambda msg, redelivered: calls.append((msg, redelivered)) or "fut"
    handler = router.on_message
    assert [fn for _m, fn, _b in client.handlers] == [handler, handler]
    spec = HandlerSpec(handler)
    assert spec.wants_context and not spec.is_async and _settles_later(spec)
    delivery = SimpleNamespace(redelivered=1)
    ctx = SimpleNamespace(delivery=delivery, queue="stage.q")
    assert handler("m1", ctx) == "fut"
    assert handler.__mmate_settle_direct__("m2", SimpleNamespace(redelivered=0), "stage.q") == "fut"
    assert calls == [("m1", True), ("m2", False)]


def test_a_queue_without_a_route_is_refused_by_both() -> None:
    handler = Router(FakeClient()).on_message
    with pytest.raises(UnknownWorkflowError, match="no FlowEngine"):
        handler("m", SimpleNamespace(delivery=SimpleNamespace(redelivered=False), queue="other"))
    with pytest.raises(UnknownWorkflowError, match="'other'"):
        handler.__mmate_settle_direct__("m", SimpleNamespace(redelivered=False), "other")
