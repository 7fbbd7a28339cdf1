"""The request/reply bridge's reply step (compiled: src_cy/replystep.pyx; twin:
mmate_fast/_py/replystep.py): frame -> envelope -> correlation lookup -> typed reply -> the waiting
request's future, in one call for a plain typed reply."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

class ReplyStep:
    """The bridge's reply-consumer callback. It takes only a reply the general path
    (``owner._on_reply``) would resolve inline with nothing around it: properties that decoded, no
    wire stage in ``owner.publisher.pipeline`` (read per delivery), an envelope that decodes with
    a correlation id naming a request still waiting in ``pending``, a type registered in
    ``by_name`` with a dict payload that the class's ContractPlan (``plans`` / ``plan_for``)
    decodes. Then it removes the request from ``pending``, counts ``owner.stats.replied``, and sets
    the reply as the future's result; when the reply's class is a ``judged`` one (ErrorReply,
    GenericMessage, or a subclass) or its ``success`` is False, ``error_of(reply, payload)``
    decides as in ``_on_reply`` (an error: ``stats.errors`` and RemoteError on the future).
    Anything else (late or unknown correlation ids, error envelopes, signed/encrypted replies,
    malformed bodies, generic types) goes, with nothing done yet, to ``owner._on_reply``.

    ``pending`` is the bridge's dict of waiting futures (kept, never replaced: the bridge clears it
    in place). ``owner`` is read at construction for ``_on_reply``, ``stats`` and ``publisher``.
    """

    def __init__(self, owner: Any, pending: dict[str, Any], by_name: dict[str, type],
                 decode_envelope: Callable[[Any], Any], plans: dict[type, Any],
                 plan_for: Callable[[type], Any], error_of: Callable[[Any, Any], Any],
                 judged: tuple[type, ...]) -> None: ...
    def __call__(self, delivery: Any) -> None:
        """Handle one reply exactly as ``owner._on_reply`` would (a channel callback)."""
    def no_ack_hook(self, settle: Callable[[int, bool], Any]) -> Callable[[Any], None]:
        """The same step for the frame reader of the AMQP channel it consumes on with no-ack
        (``FrameReader.set_hook``; the channel registers it in ``basic_consume`` for a no-ack
        consumer whose callback type has ``no_ack_hook``): each delivery's tag goes to
        ``settle(tag, False)`` first (the channel's settled watermark, as ``Channel._on_frame`` does
        for a no-ack delivery), then the step."""
