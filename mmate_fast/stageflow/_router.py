"""One dispatcher entry per Client for StageFlow's envelope types: the engines of that client put
their queues here, and a delivery goes to the handler of the queue it came on (Go decides the stage
by the queue too). A StageFlow envelope on a queue no engine of this client serves is refused.

The client decodes a delivery with the class its registry holds for the envelope type; a user's own
class with StageFlow's name (``FlowMessageEnvelope``, a watcher of Go's stage messages) takes that
name there. The router then decodes the envelope again with StageFlow's own class, so the engine
never depends on what else the registry holds (and the user's handlers keep the user's class)."""
from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from mmate_fast.contracts import TypeRegistry, from_envelope
from mmate_fast.errors import BadFlowMessageError, ContractError, UnknownWorkflowError
from mmate_fast.stageflow._wire import CompensationMessageEnvelope, FlowMessageEnvelope

#: (message, redelivered) -> awaitable
Route = Callable[[Any, bool], Awaitable[None]]


#: StageFlow's own envelope classes by type name (never the user's, whatever the client's registry holds)
OWN_TYPES = TypeRegistry()
OWN_TYPES.register(FlowMessageEnvelope)
OWN_TYPES.register(CompensationMessageEnvelope)


def own_message(msg: Any, envelope: Any) -> Any:
    """``msg`` if it is StageFlow's own class for the envelope type, else the envelope decoded with
    StageFlow's class (a failure to decode is a bad message: reason ``contract-error``)."""
    own = OWN_TYPES.resolve(envelope.type)
    if own is None or type(msg) is own:
        return msg
    try:
        return from_envelope(envelope, OWN_TYPES)
    except ContractError as exc:
        raise BadFlowMessageError(str(exc), "contract-error") from exc


class Router:
    """Queue -> handler for the StageFlow envelopes a Client consumes."""

    def __init__(self, client: Any) -> None:
        self.routes: dict[str, Route] = {}
        client.add_handler(FlowMessageEnvelope, self.on_message, bind=False)
        client.add_handler(CompensationMessageEnvelope, self.on_message, bind=False)

    async def on_message(self, msg: Any, ctx: Any) -> None:
        route = self.routes.get(ctx.queue)
        if route is None:
            raise UnknownWorkflowError(
                f"{type(msg).__name__} arrived on queue {ctx.queue!r}, which no FlowEngine "
                "of this client serves: register its workflow with serve=True")
        await route(own_message(msg, ctx.envelope), bool(ctx.delivery.redelivered))


_ROUTERS: weakref.WeakKeyDictionary[Any, Router] = weakref.WeakKeyDictionary()


def router_for(client: Any) -> Router:
    """The client's router (its dispatcher handlers are registered once, on first use)."""
    router = _ROUTERS.get(client)
    if router is None:
        router = _ROUTERS[client] = Router(client)
    return router


__all__ = ["OWN_TYPES", "Route", "Router", "own_message", "router_for"]
