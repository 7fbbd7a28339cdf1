"""Pure-Python twin of src_cy/replystep.pyx: the bridge's reply step and the Client's
handler-result hook (contract: mmate_fast/_cy/replystep.pyi). The Bridge and the Client use them
only when compiled (the twin would only add a call in front of the general path); the tests run
both."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmate_fast.errors import RemoteError

_CACHE_MAX = 1024


class ReplyStep:
    """The bridge's reply callback: a plain typed reply to a waiting request is matched and its
    future resolved here; anything else goes, with nothing done yet, to ``owner._on_reply``."""

    __slots__ = ("_by_name", "_decode_envelope", "_error_of", "_general", "_judge", "_judged",
                 "_pending", "_plan_for", "_plans", "_publisher", "_stats")

    def __init__(self, owner: Any, pending: dict[str, Any], by_name: dict[str, type],
                 decode_envelope: Callable[[Any], Any], plans: dict[type, Any],
                 plan_for: Callable[[type], Any], error_of: Callable[[Any, Any], Any],
                 judged: tuple[type, ...]) -> None:
        self._general = owner._on_reply
        self._stats = owner.stats
        self._publisher = owner.publisher
        self._pending = pending
        self._by_name = by_name
        self._decode_envelope = decode_envelope
        self._plans = plans
        self._plan_for = plan_for
        self._error_of = error_of
        self._judged = judged
        self._judge: dict[type, bool] = {}

    def __call__(self, delivery: Any) -> None:
        """Handle one reply exactly as ``owner._on_reply`` would (a channel callback)."""
        self._run(delivery)

    def no_ack_hook(self, settle: Callable[[int, bool], Any]) -> Callable[[Any], None]:
        """The step for the frame reader of a no-ack consumer's channel: settle, then the step."""
        if not callable(settle):
            raise TypeError(f"settle must be callable, not {type(settle).__name__}")

        def hooked(delivery: Any) -> None:
            settle(delivery.delivery_tag, False)
            self._run(delivery)

        return hooked

    def _needs_judging(self, cls: type) -> bool:
        verdict = self._judge.get(cls)
        if verdict is None:
            verdict = issubclass(cls, self._judged)
            if len(self._judge) >= _CACHE_MAX:
                self._judge.clear()
            self._judge[cls] = verdict
        return verdict

    def _run(self, delivery: Any) -> None:
        if delivery.undecodable is not None or self._publisher.pipeline.has_wire:
            self._general(delivery)
            return None
        try:
            env = self._decode_envelope(delivery.body)
        except Exception:
            self._general(delivery)
            return None
        correlation_id = env.correlation_id
        if not correlation_id:
            self._general(delivery)
            return None
        fut = self._pending.get(correlation_id)
        if fut is None or fut.done():
            self._general(delivery)
            return None
        type_name = env.type
        cls = self._by_name.get(type_name)
        if cls is None:
            self._general(delivery)
            return None
        plan = self._plans.get(cls) or self._plan_for(cls)
        try:  # read from the payload's bytes when the envelope kept them; not a dict: raises
            reply = plan.decode_envelope(env)
        except Exception:
            self._general(delivery)
            return None
        self._pending.pop(correlation_id, None)
        stats = self._stats
        stats.replied += 1
        if not self._needs_judging(type(reply)) and getattr(reply, "success", True) is not False:
            fut.set_result(reply)
            return None
        failure = self._error_of(reply, env.payload)
        if failure is None:
            fut.set_result(reply)
        else:
            stats.errors += 1
            fut.set_exception(RemoteError(failure[0], failure[1], reply))
        return None


class ReplyHook:
    """The Client's handler-result hook: a typed reply with its reply address on the message is
    written by the reply publisher's plan into its sink (``reply_nowait`` when that declines);
    anything else goes to ``general`` (``_on_handler_result``)."""

    __slots__ = ("_client", "_confirms", "_durable", "_error", "_general", "_not_sent", "_pipeline", "_plans",
                 "_publisher", "_reply_kind", "_transient")

    def __init__(self, client: Any, general: Callable[[Any, Any, Any], Any], plans: dict[type, Any],
                 reply_kind: Any, not_sent: Callable[[Any, str, BaseException], Any],
                 error: type[BaseException]) -> None:
        self._client = client
        self._general = general
        self._plans = plans
        self._reply_kind = reply_kind
        self._not_sent = not_sent
        self._error = error
        self._publisher: Any = None
        self._pipeline: Any = None
        self._confirms = False
        #: reply class -> its plan in ``_publisher`` (False: none), persistent and transient
        self._durable: dict[type, Any] = {}
        self._transient: dict[type, Any] = {}

    def __call__(self, result: Any, msg: Any, ctx: Any) -> Any:
        """``Client._on_handler_result(result, msg, ctx)``, the same outcome."""
        if not self._send(result, msg, ctx.envelope, ctx.delivery):
            return self._general(result, msg, ctx)
        return None

    def direct(self, result: Any, msg: Any, delivery: Any, env: Any) -> bool:
        """The hook without a MessageContext: True when dealt with, False when the caller must
        build the context and call the hook itself."""
        return self._send(result, msg, env, delivery)

    def _send(self, result: Any, msg: Any, env: Any, delivery: Any) -> bool:
        cls = type(result)
        plan = self._plans.get(cls)
        if plan is None or plan.is_generic:
            return False
        if plan.kind is not self._reply_kind:
            return True
        reply_to = getattr(msg, "reply_to", None)
        if type(reply_to) is not str or not reply_to:
            return False
        publisher = self._client._reply_publisher
        if publisher is None:
            return False
        if publisher is not self._publisher:  # a new reply publisher (reconnect): its own plans
            self._adopt(publisher)
        if self._pipeline.has_publish:
            return False
        correlation_id = env.correlation_id
        if not correlation_id:
            return False
        persistent = getattr(delivery.properties, "delivery_mode", None) != 1
        try:
            if not self._write(publisher, cls, result, reply_to, correlation_id, persistent):
                publisher.reply_nowait(result, reply_to, correlation_id, persistent)
        except self._error as exc:
            self._not_sent(result, reply_to, exc)
        return True

    def _adopt(self, publisher: Any) -> None:
        """Start on ``publisher``: its pipeline and confirm mode (both set once, in
        ``Publisher.__init__``) read once, no reply plans of its own yet."""
        self._publisher = publisher
        self._pipeline = publisher.pipeline
        self._confirms = bool(publisher.confirms)
        self._durable = {}
        self._transient = {}

    def _write(self, publisher: Any, cls: type, result: Any, reply_to: str, correlation_id: str,
               persistent: bool) -> bool:
        """``reply_nowait``'s one-call path: the class's reply plan (asked of the publisher once per
        class and ``persistent``) written into the publisher's sink; False when nothing was written."""
        if self._confirms:
            return False
        plans = self._durable if persistent else self._transient
        plan = plans.get(cls)
        if plan is None:
            plan = publisher.reply_plan(result, persistent)
            if plan is None:
                plan = False
            if len(plans) >= _CACHE_MAX:
                plans.clear()
            plans[cls] = plan
        if plan is False:
            return False
        sink = publisher._sink
        if sink is None or not sink.open:
            sink = publisher._refresh_sink()
            if sink is None:
                return False
        if sink.write(plan, result, correlation_id, None, reply_to) is None:
            return False
        publisher.published += 1
        return True


__all__ = ["ReplyHook", "ReplyStep"]
