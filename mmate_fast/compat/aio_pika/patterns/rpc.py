"""aio-pika's RPC pattern, wire-compatible with it (an aio-pika caller can call a facade server and
back): ``rpc = await RPC.create(channel)``; ``await rpc.register("name", func)`` declares the queue
``name`` (dead-lettering to the ``rpc.dlx`` headers exchange) and serves it; ``await
rpc.proxy.name(**kwargs)`` / ``await rpc.call("name", kwargs)`` publish a ``call`` message with
``reply_to`` = the caller's result queue and wait for the ``result`` (or ``error``) reply. A call that
expires in the queue comes back through ``rpc.dlx`` and raises TimeoutError."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Any

from mmate_fast.compat.aio_pika.abc import DeliveryMode, ExchangeType
from mmate_fast.compat.aio_pika.exceptions import MessageProcessError
from mmate_fast.compat.aio_pika.message import Message
from mmate_fast.compat.aio_pika.patterns.base import Base, CallbackType, Proxy
from mmate_fast.compat.aio_pika.tools import ensure_awaitable

log = logging.getLogger("mmate_fast.compat.aio_pika.patterns")


class RPCException(RuntimeError):
    pass


class RPCMessageType(str, Enum):  # noqa: UP042  (str, Enum) as aio-pika
    ERROR = "error"
    RESULT = "result"
    CALL = "call"


RPCMessageTypes = RPCMessageType


class RPC(Base):
    """Remote procedure calls over one channel (see the module docstring)."""

    __slots__ = ("channel", "consumer_tags", "dlx_exchange", "futures", "host_exceptions", "loop", "proxy",
                 "queues", "result_consumer_tag", "result_queue", "routes", "rpc_exchange")

    DLX_NAME = "rpc.dlx"
    DELIVERY_MODE = DeliveryMode.NOT_PERSISTENT

    def __init__(self, channel: Any, host_exceptions: bool = False) -> None:
        self.channel = channel
        self.loop = asyncio.get_event_loop()
        self.proxy = Proxy(self.call)
        self.futures: dict[str, asyncio.Future[Any]] = {}
        self.routes: dict[str, Callable[..., Any]] = {}
        self.queues: dict[Callable[..., Any], Any] = {}
        self.consumer_tags: dict[Callable[..., Any], str] = {}
        self.host_exceptions = host_exceptions

    def create_future(self) -> tuple[asyncio.Future[Any], str]:
        future = self.loop.create_future()
        correlation_id = str(uuid.uuid4())
        self.futures[correlation_id] = future
        future.add_done_callback(lambda _: self.futures.pop(correlation_id, None))
        return future, correlation_id

    def _format_routing_key(self, method_name: str) -> str:
        exchange = getattr(self, "rpc_exchange", None)
        return f"{exchange.name}::{method_name}" if exchange else method_name

    async def close(self) -> None:
        """Stop: cancel the result consumer, fail pending calls (CancelledError), delete the result queue."""
        if not hasattr(self, "result_queue"):
            log.warning("RPC already closed")
            return
        await self.result_queue.cancel(self.result_consumer_tag)
        del self.result_consumer_tag
        await self.result_queue.unbind(self.dlx_exchange, "",
                                       arguments={"From": self.result_queue.name, "x-match": "any"})
        for future in self.futures.values():
            if not future.done():
                future.set_exception(asyncio.CancelledError)
        await self.result_queue.delete()
        del self.result_queue
        del self.dlx_exchange
        if self.rpc_exchange:
            del self.rpc_exchange

    async def initialize(self, auto_delete: bool = True, durable: bool = False, exchange: str = "",
                         **kwargs: Any) -> None:
        """Declare the result queue, the ``rpc.dlx`` exchange and start consuming results."""
        if hasattr(self, "result_queue"):
            return
        self.rpc_exchange = (await self.channel.declare_exchange(
            exchange, type=ExchangeType.DIRECT, auto_delete=True, durable=durable) if exchange else None)
        self.result_queue = await self.channel.declare_queue(None, auto_delete=auto_delete, durable=durable,
                                                             **kwargs)
        self.dlx_exchange = await self.channel.declare_exchange(self.DLX_NAME, type=ExchangeType.HEADERS,
                                                                auto_delete=True)
        await self.result_queue.bind(self.dlx_exchange, "",
                                     arguments={"From": self.result_queue.name, "x-match": "any"})
        self.result_consumer_tag = await self.result_queue.consume(self.on_result_message, exclusive=True,
                                                                   no_ack=True)
        self.channel.close_callbacks.add(self.on_close)
        self.channel.return_callbacks.add(self.on_message_returned)

    def on_close(self, channel: Any, exc: BaseException | None = None) -> None:
        for future in self.futures.values():
            if not future.done():
                future.set_exception(exc or Exception)

    @classmethod
    async def create(cls, channel: Any, *, host_exceptions: bool | None = None, **kwargs: Any) -> RPC:
        """A ready RPC on ``channel`` (``kwargs`` go to ``initialize``)."""
        rpc = cls(channel)
        if host_exceptions is not None:
            rpc.host_exceptions = host_exceptions
        await rpc.initialize(**kwargs)
        return rpc

    def on_message_returned(self, channel: Any, message: Any) -> None:
        if message.correlation_id is None:
            log.warning("Message without correlation_id was returned: %r", message)
            return
        future = self.futures.pop(message.correlation_id, None)
        if not future or future.done():
            log.warning("Unknown message was returned: %r", message)
            return
        future.set_exception(MessageProcessError("Message has been returned", message))

    async def on_result_message(self, message: Any) -> None:
        if message.correlation_id is None:
            log.warning("Message without correlation_id was received: %r", message)
            return
        future = self.futures.pop(message.correlation_id, None)
        if future is None:
            log.warning("Unknown message: %r", message)
            return
        try:
            payload = await self.deserialize_message(message)
        except Exception as e:
            log.error("Failed to deserialize response on message: %r", message)
            future.set_exception(e)
            return
        kind = message.type
        if kind == RPCMessageType.RESULT.value:
            future.set_result(payload)
        elif kind == RPCMessageType.ERROR.value:
            if not isinstance(payload, Exception):
                payload = RPCException("Wrapped non-exception object", payload)
            future.set_exception(payload)
        elif kind == RPCMessageType.CALL.value:
            future.set_exception(TimeoutError("Message timed-out", message))
        else:
            future.set_exception(RuntimeError(f"Unknown message type {kind!r}"))

    async def on_call_message(self, method_name: str, message: Any) -> None:
        routing_key = self._format_routing_key(method_name)
        if routing_key not in self.routes:
            log.warning("Method %r not registered in %r", method_name, self)
            return
        try:
            payload = await self.deserialize_message(message)
            result: Any = await self.execute(self.routes[routing_key], payload)
            message_type = RPCMessageType.RESULT
        except Exception as e:
            result = self.serialize_exception(e)
            message_type = RPCMessageType.ERROR
            if self.host_exceptions is True:
                log.exception(e)
        if not message.reply_to:
            log.info('RPC message without "reply_to" header %r call result will be lost', message)
            await message.ack()
            return
        try:
            reply = await self.serialize_message(payload=result, message_type=message_type,
                                                 correlation_id=message.correlation_id,
                                                 delivery_mode=message.delivery_mode)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            reply = await self.serialize_message(payload=e, message_type=RPCMessageType.ERROR,
                                                 correlation_id=message.correlation_id,
                                                 delivery_mode=message.delivery_mode)
        try:
            await self.channel.default_exchange.publish(reply, message.reply_to, mandatory=False)
        except Exception as exc:
            log.error("Failed to send reply %r due to %s: %s", reply, type(exc).__name__, exc)
            await message.reject(requeue=False)
            return
        await message.ack()

    def serialize_exception(self, exception: Exception) -> Any:
        return exception

    async def execute(self, func: CallbackType[Any], payload: dict[str, Any]) -> Any:
        return await func(**payload)

    async def deserialize_message(self, message: Any) -> Any:
        return self.deserialize(message.body)

    async def serialize_message(self, payload: Any, message_type: RPCMessageType,
                                correlation_id: str | None, delivery_mode: DeliveryMode,
                                **kwargs: Any) -> Message:
        return Message(self.serialize(payload), content_type=self.CONTENT_TYPE, correlation_id=correlation_id,
                       delivery_mode=delivery_mode, timestamp=time.time(), type=message_type.value, **kwargs)

    async def call(self, method_name: str, kwargs: dict[str, Any] | None = None, *,
                   expiration: int | None = None, priority: int = 5,
                   delivery_mode: DeliveryMode = DELIVERY_MODE) -> Any:
        """Call ``method_name(**kwargs)`` remotely and return its result (or raise its exception);
        ``expiration`` seconds: a call not taken in time raises TimeoutError."""
        future, correlation_id = self.create_future()
        try:
            message = await self.serialize_message(
                payload=kwargs or {}, message_type=RPCMessageType.CALL, correlation_id=correlation_id,
                delivery_mode=delivery_mode, reply_to=self.result_queue.name,
                headers={"From": self.result_queue.name}, priority=priority)
            if expiration is not None:
                message.expiration = expiration
            routing_key = self._format_routing_key(method_name)
            exchange = self.rpc_exchange or self.channel.default_exchange
            await exchange.publish(message, routing_key=routing_key, mandatory=True)
            return await future
        finally:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()

    async def register(self, method_name: str, func: CallbackType[Any], **kwargs: Any) -> Any:
        """Serve ``method_name`` with ``func`` (keyword arguments only); ``kwargs`` go to declare_queue."""
        arguments = kwargs.pop("arguments", {})
        arguments.update({"x-dead-letter-exchange": self.DLX_NAME})
        func = ensure_awaitable(func)
        kwargs["arguments"] = arguments
        routing_key = self._format_routing_key(method_name)
        queue = await self.channel.declare_queue(routing_key, **kwargs)
        if self.rpc_exchange:
            await queue.bind(self.rpc_exchange, routing_key)
        if func in self.consumer_tags:
            raise RuntimeError("Function already registered")
        if routing_key in self.routes:
            raise RuntimeError(f"Method name already used for {self.routes[routing_key]!r}")
        self.consumer_tags[func] = await queue.consume(partial(self.on_call_message, method_name))
        self.routes[routing_key] = func
        self.queues[func] = queue

    async def unregister(self, func: CallbackType[Any]) -> None:
        if func not in self.consumer_tags:
            return
        consumer_tag = self.consumer_tags.pop(func)
        queue = self.queues.pop(func)
        await queue.cancel(consumer_tag)
        self.routes.pop(queue.name)


class JsonRPCError(RuntimeError):
    pass


class JsonRPC(RPC):
    SERIALIZER = json
    CONTENT_TYPE = "application/json"

    def serialize(self, data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False, default=repr).encode()

    def serialize_exception(self, exception: Exception) -> Any:
        return {"error": {"type": type(exception).__name__, "message": repr(exception),
                          "args": exception.args}}

    async def deserialize_message(self, message: Any) -> Any:
        payload = await super().deserialize_message(message)
        if message.type == RPCMessageType.ERROR:
            payload = JsonRPCError("RPC exception", payload)
        return payload


__all__ = ("RPC", "JsonRPC", "JsonRPCError", "RPCException", "RPCMessageType")
