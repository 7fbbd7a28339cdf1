"""Request/reply per-message steps (compiled: src_cy/replystep.pyx; twin:
mmate_fast/_py/replystep.py): the bridge's reply step (frame -> envelope -> correlation lookup ->
typed reply -> the waiting request's future, in one call for a plain typed reply) and the Client's
handler-result hook (a typed reply written straight into the reply publisher's sink)."""
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

class ReplyHook:
    """The Client's handler-result hook (``Subscriber(result_hook=...)``): the outcome of
    ``general`` (``Client._on_handler_result``) for every result, without its Python frames for a
    typed reply: when ``type(result)`` has a ContractPlan in ``plans`` that is not generic and its
    kind is ``reply_kind``, the request message carries a non-empty ``str`` ``reply_to``,
    ``client._reply_publisher`` (read per call; its ``pipeline`` and ``confirms``, set once by
    ``Publisher.__init__``, read once per publisher) exists without publish interceptors and the
    envelope has a correlation id, it sends what ``publisher.reply_nowait(result, reply_to,
    correlation_id, persistent)`` sends (``persistent``: the request's ``delivery_mode`` was not 1):
    itself when the publisher is not in confirm mode and has a plan for the class
    (``publisher.reply_plan(result, persistent)``, asked once per class, ``persistent`` and
    publisher) and a sink (``publisher._sink``, replaced by ``publisher._refresh_sink()`` when
    missing or closed) that takes the write (``published`` counted), else through ``reply_nowait``;
    an ``error`` raised there goes to ``not_sent(result, reply_to, exc)`` (the Client logs it). A
    result of a plan whose kind is not ``reply_kind`` is ignored (returns None, as ``general``
    does); anything else (no plan yet, generic messages, the context's reply address or
    correlation id fallbacks, interceptors) goes to ``general(result, msg, ctx)``. A class's verdict
    (reply, not a reply, generic) is kept once its plan exists (the compiled hook; the twin reads
    the plan per call: the same answers). The compiled consume step (``dispatch.DeliveryStep``)
    calls the compiled hook's C entry (``mmate_fast/_cy/replystep.pxd``) instead of ``direct`` when
    the result hook is exactly this class.
    """

    def __init__(self, client: Any, general: Callable[[Any, Any, Any], Any], plans: dict[type, Any],
                 reply_kind: Any, not_sent: Callable[[Any, str, BaseException], Any],
                 error: type[BaseException]) -> None: ...
    def __call__(self, result: Any, msg: Any, ctx: Any) -> Any:
        """``general(result, msg, ctx)``'s outcome (reads ``ctx.envelope`` and ``ctx.delivery``)."""
    def direct(self, result: Any, msg: Any, delivery: Any, env: Any) -> bool:
        """The same without a MessageContext, for a compiled consume step: True when the result was
        dealt with (sent, or not a reply), False when the caller must build the context and call
        the hook (``__call__``) itself."""
