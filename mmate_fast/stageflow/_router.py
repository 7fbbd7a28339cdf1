"""One dispatcher entry per Client for StageFlow's envelope types: the engines of that client put
their queues here, and a delivery goes to the handler of the queue it came on (Go decides the stage
by the queue too). A StageFlow envelope on a queue no engine of this client serves is refused.

The engine's queues are consumed with ``OWN_TYPES`` as their registry: their deliveries are decoded
with StageFlow's own classes, whatever the client's registry holds under those names (a user's own
``FlowMessageEnvelope``, say, in a watcher of Go's stage messages, which keeps its class elsewhere)."""
from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast.contracts import TypeRegistry
from mmate_fast.errors import UnknownWorkflowError
from mmate_fast.stageflow._wire import CompensationMessageEnvelope, FlowMessageEnvelope

#: (message, redelivered) -> awaitable (the stage message is acked when it is done), or None (done)
Route = Callable[[Any, bool], Awaitable[None] | None]


#: the registry the engine's queues are decoded with: StageFlow's own envelope classes only (another
#: type on a stage queue is not StageFlow's: it arrives as a GenericMessage, or as ``unknown-type``)
OWN_TYPES = TypeRegistry()
OWN_TYPES.register(FlowMessageEnvelope)
OWN_TYPES.register(CompensationMessageEnvelope)


class _OnMessage:
    """The router's dispatcher handler (settle-later): ``(message, context)`` for the subscriber's
    general path, and the context-free entry ``__mmate_settle_direct__(message, delivery, queue)``
    the compiled consume step calls (no MessageContext per stage message)."""

    __slots__ = ("routes",)
    __mmate_settles_later__ = True

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes

    def __call__(self, msg: Any, ctx: Any) -> Awaitable[None] | None:
        """The route of the delivery's queue, called at once; the subscriber settles the delivery
        when what it returns is done (a settle-later handler: no Task per stage message)."""
        return self.__mmate_settle_direct__(msg, ctx.delivery, ctx.queue)

    def __mmate_settle_direct__(self, msg: Any, delivery: Any, queue: str) -> Awaitable[None] | None:
        route = self.routes.get(queue)
        if route is None:
            raise UnknownWorkflowError(
                f"{type(msg).__name__} arrived on queue {queue!r}, which no FlowEngine "
                "of this client serves: register its workflow with serve=True")
        return route(msg, bool(delivery.redelivered))

    def __repr__(self) -> str:
        return "<stageflow router>"


class Router:
    """Queue -> handler for the StageFlow envelopes a Client consumes."""

    def __init__(self, client: Any) -> None:
        self.routes: dict[str, Route] = {}
        #: the dispatcher handler of both envelope types (settle-later, with a context-free entry)
        self.on_message = _OnMessage(self.routes)
        client.add_handler(FlowMessageEnvelope, self.on_message, bind=False)
        client.add_handler(CompensationMessageEnvelope, self.on_message, bind=False)


_ROUTERS: weakref.WeakKeyDictionary[Any, Router] = weakref.WeakKeyDictionary()


def router_for(client: Any) -> Router:
    """The client's router (its dispatcher handlers are registered once, on first use)."""
    router = _ROUTERS.get(client)
    if router is None:
        router = _ROUTERS[client] = Router(client)
    return router


__all__ = ["OWN_TYPES", "Route", "Router", "router_for"]
