"""``channel.transaction()``: AMQP transactions (tx.select / tx.commit / tx.rollback) on a channel
without publisher confirms, as aio-pika's ``Transaction``; ``async with channel.transaction():``
commits on success and rolls back on an exception."""
from __future__ import annotations

from types import TracebackType
from typing import Any

from pamqp import commands as spec

from mmate_fast import errors
from mmate_fast.compat.aio_pika._errors import raise_translated
from mmate_fast.compat.aio_pika.abc import AbstractTransaction, TimeoutType, TransactionState


async def channel_rpc(raw: Any, method: Any, reply: type, timeout: TimeoutType) -> Any:
    """Send one synchronous AMQP method the mmate_fast channel has no named call for, and return the
    broker's reply (on a robust channel: on its live underlying channel)."""
    what = method.name.lower()
    if hasattr(raw, "_call"):  # RobustChannel
        return await raw._call(lambda ch: ch._rpc(method, (reply,), timeout, what), timeout)
    return await raw._rpc(method, (reply,), timeout, what)


class Transaction(AbstractTransaction):
    """One transaction on ``channel`` (aio-pika's ``Transaction``)."""

    def __init__(self, channel: Any) -> None:
        self.__channel = channel
        self.state = TransactionState.CREATED

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.state.value}>"

    def __str__(self) -> str:
        return str(self.state.value)

    @property
    def channel(self) -> Any:
        if self.__channel is None:
            raise RuntimeError("Channel not opened")
        if self.__channel.is_closed:
            raise RuntimeError("Closed channel")
        return self.__channel

    async def _call(self, method: Any, reply: type, timeout: TimeoutType) -> Any:
        raw = await self.channel.get_underlay_channel()
        try:
            return await channel_rpc(raw, method, reply, timeout)
        except errors.MmateError as error:
            raise_translated(error, self.channel)

    async def select(self, timeout: TimeoutType = None) -> Any:
        result = await self._call(spec.Tx.Select(), spec.Tx.SelectOk, timeout)
        self.state = TransactionState.STARTED
        return result

    async def rollback(self, timeout: TimeoutType = None) -> Any:
        result = await self._call(spec.Tx.Rollback(), spec.Tx.RollbackOk, timeout)
        self.state = TransactionState.ROLLED_BACK
        return result

    async def commit(self, timeout: TimeoutType = None) -> Any:
        result = await self._call(spec.Tx.Commit(), spec.Tx.CommitOk, timeout)
        self.state = TransactionState.COMMITED
        return result

    async def __aenter__(self) -> Transaction:
        await self.select()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> None:
        if exc_type:
            await self.rollback()
        else:
            await self.commit()


__all__ = ("Transaction", "TransactionState")
