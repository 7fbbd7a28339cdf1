"""Side-by-side helpers for the aio-pika facade tests: the same scenario runs with real aio-pika and
with ``mmate_fast.compat.aio_pika`` on the same broker, and the observable results are compared."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import aio_pika as real_aio_pika

import mmate_fast.compat.aio_pika as facade
from tests.integration.conftest import AMQP_URL

IMPLS: dict[str, ModuleType] = {"aio_pika": real_aio_pika, "facade": facade}
URL = AMQP_URL


def unique(tag: str) -> str:
    return f"compat-test-{tag}-{uuid.uuid4().hex[:10]}"


def exc_shape(error: BaseException) -> tuple[str, tuple[Any, ...]]:
    """What a user sees of an exception: its class name and args (channel reprs left out)."""
    args = tuple(a if isinstance(a, str | int | float | type(None)) else type(a).__name__
                 for a in error.args if not (isinstance(a, str) and a.startswith("<")))
    return type(error).__name__, args


def info_shape(message: Any, drop: tuple[str, ...] = ("message_id", "consumer_tag", "routing_key")) -> dict[str, Any]:
    """``message.info()`` without the fields that are random per run."""
    info = dict(message.info())
    for key in drop:
        info.pop(key, None)
    info["delivery_mode"] = int(info["delivery_mode"])
    return info


async def side_by_side(scenario: Callable[[ModuleType], Awaitable[Any]]) -> dict[str, Any]:
    """Run ``scenario(module)`` with aio-pika, then with the facade; return both results."""
    results = {}
    for name, module in IMPLS.items():
        results[name] = await asyncio.wait_for(scenario(module), 30)
    return results


async def same(scenario: Callable[[ModuleType], Awaitable[Any]]) -> Any:
    """Run ``scenario`` with both and assert the facade's result equals aio-pika's."""
    results = await side_by_side(scenario)
    assert results["facade"] == results["aio_pika"], results
    return results["facade"]
