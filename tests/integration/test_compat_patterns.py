"""aio-pika's patterns through the facade: RPC and Master/Worker, each side by side with real
aio-pika and across (an aio-pika caller against a facade server and the other way round)."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import IMPLS, URL, exc_shape, same, unique

pytestmark = pytest.mark.integration


async def multiply(*, x: int, y: int) -> int:
    return x * y


async def fail(*, why: str) -> None:
    raise ValueError(why)


@pytest.mark.parametrize(("caller", "server"), [("aio_pika", "facade"), ("facade", "aio_pika"),
                                                ("facade", "facade")])
async def test_rpc_across(caller: str, server: str) -> None:
    method = unique("mul")
    async with await IMPLS[server].connect(URL) as sconn, await IMPLS[caller].connect(URL) as cconn:
        srpc = await IMPLS[server].patterns.RPC.create(await sconn.channel())
        await srpc.register(method, multiply, auto_delete=True)
        await srpc.register(method + "-fail", fail, auto_delete=True)
        crpc = await IMPLS[caller].patterns.RPC.create(await cconn.channel())
        results = await asyncio.gather(*(crpc.call(method, {"x": i, "y": 3}) for i in range(20)))
        assert results == [3 * i for i in range(20)]
        assert await getattr(crpc.proxy, method)(x=6, y=7) == 42
        with pytest.raises(ValueError, match="nope"):
            await crpc.call(method + "-fail", {"why": "nope"})
        await crpc.close()
        await srpc.close()


async def test_json_rpc_and_errors_side_by_side() -> None:
    async def scenario(ap: ModuleType) -> Any:
        method = unique("json")
        async with await ap.connect(URL) as conn:
            rpc = await ap.patterns.JsonRPC.create(await conn.channel())
            await rpc.register(method, multiply, auto_delete=True)
            await rpc.register(method + "-fail", fail, auto_delete=True)
            out: list[Any] = [await rpc.call(method, {"x": 2, "y": 5})]
            try:
                await rpc.call(method + "-fail", {"why": "bad"})
            except Exception as e:
                out.append(exc_shape(e)[0])
                out.append(e.args[1]["error"]["type"])
            try:
                await rpc.call(unique("nobody"), {})
            except Exception as e:
                out.append(exc_shape(e)[0])
            await rpc.close()
            return out

    assert await same(scenario) == [10, "JsonRPCError", "ValueError", "MessageProcessError"]


async def test_master_worker_side_by_side() -> None:
    async def scenario(ap: ModuleType) -> Any:
        queue = unique("tasks")
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            master = ap.patterns.Master(ch)
            done: list[Any] = []
            all_done = asyncio.Event()

            async def work(*, n: int) -> None:
                try:
                    if n == 3 and ("retry", 3) not in done:
                        done.append(("retry", 3))
                        raise ap.patterns.NackMessage(requeue=True)
                    if n == 4:
                        done.append(("rejected", 4))
                        raise ap.patterns.RejectMessage(requeue=False)
                    done.append(("ok", n))
                finally:
                    if len([d for d in done if d[0] != "retry"]) == 5:
                        all_done.set()

            worker = await master.create_worker(queue, work, auto_delete=True)
            for n in range(5):
                r = await master.create_task(queue, kwargs={"n": n})
                assert type(r).__name__ == "Ack"
            await asyncio.wait_for(all_done.wait(), 10)
            await worker.close()
            return sorted(done)

    out = await same(scenario)
    assert ("retry", 3) in out and ("ok", 3) in out and ("rejected", 4) in out


async def test_rpc_call_expiring_in_the_queue_raises_timeout() -> None:
    async def scenario(ap: ModuleType) -> Any:
        method = unique("slow")
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            rpc = await ap.patterns.RPC.create(ch)
            # a served method's queue (dead-lettering to rpc.dlx) with nobody consuming it
            await ch.declare_queue(method, auto_delete=False,
                                   arguments={"x-dead-letter-exchange": rpc.DLX_NAME})
            try:
                await rpc.call(method, {"x": 1}, expiration=0.2)
            except Exception as e:
                out = (type(e).__name__, e.args[0])
            await ch.queue_delete(method)
            await rpc.close()
            return out

    assert await same(scenario) == ("TimeoutError", "Message timed-out")
