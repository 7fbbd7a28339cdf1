"""StageFlow definitions: stages by decorator or call, typed / dict contexts, retry and timeout, and
the definition errors raised when a workflow is made."""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pydantic
import pytest

from mmate_fast.errors import FlowTimeoutError, WorkflowDefinitionError
from mmate_fast.stageflow._context import ContextCodec
from mmate_fast.stageflow._runner import call_compensation, call_stage
from mmate_fast.stageflow.workflow import DEFAULT_TIMEOUT, StageRetry, Workflow


@dataclasses.dataclass
class OrderCtx:
    order_id: str = ""
    amount: float = 0.0
    charged: bool = False


class PydCtx(pydantic.BaseModel):
    orderId: str = ""
    amount: float = 0.0
    charged: bool = False


def test_stages_by_decorator_and_call_keep_their_order_and_options() -> None:
    wf = Workflow("order-processing", name="Orders")

    @wf.stage("validate", timeout=30, optional=True)
    async def validate(ctx: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    @validate.compensate
    async def undo(ctx: dict[str, Any], result: Any) -> None:
        return None

    def charge(ctx: dict[str, Any]) -> None:
        return None

    st = wf.add_stage("charge", charge, retry=StageRetry(attempts=2), depends_on=["validate"])
    assert [s.id for s in wf.stages] == ["validate", "charge"]
    assert [s.index for s in wf.stages] == [0, 1]
    assert validate.timeout == 30.0 and validate.optional and validate.is_async
    assert validate.compensation is undo and validate.compensate_wants_result
    assert st.timeout == DEFAULT_TIMEOUT and not st.is_async and st.depends_on == ("validate",)
    assert wf.name == "Orders" and not wf.typed
    assert asyncio.run(validate({})) == {"ok": True}  # the decorated function stays callable
    wf.validate()


@pytest.mark.parametrize("build, match", [
    (lambda wf: (wf.add_stage("a", print), wf.add_stage("a", print)), "already has a stage 'a'"),
    (lambda wf: wf.add_stage("a", print, depends_on=["nope"]), "not an earlier stage"),
    (lambda wf: (wf.add_stage("a", print, depends_on=["b"]), wf.add_stage("b", print)), "add 'b' first"),
    (lambda wf: wf.add_stage("a", print, depends_on="a"), "cannot depend on itself"),
    (lambda wf: wf.validate(), "has no stages"),
    (lambda wf: wf.add_stage("a", print, timeout=0), "timeout must be"),
    (lambda wf: wf.add_stage("a", "not callable"), "needs a callable"),
    (lambda wf: wf.add_stage("", print), "non-empty"),
    (lambda wf: wf.add_stage("a", print, retry=StageRetry(attempts=0)), "attempts"),
    (lambda wf: wf.parallel("x", "y"), "not a stage"),
    (lambda wf: (wf.add_stage("a", print), wf.add_stage("b", print), wf.add_stage("c", print),
                 wf.parallel("a", "c")), "one after the other"),
    (lambda wf: (wf.add_stage("a", print), wf.add_stage("b", print, depends_on=["a"]),
                 wf.parallel("a", "b")), "of its own group"),
])
def test_definition_errors_are_raised_when_the_workflow_is_made(build: Any, match: str) -> None:
    wf = Workflow("wf")
    with pytest.raises(WorkflowDefinitionError, match=match):
        build(wf)


def test_bad_workflow_ids_and_contexts_are_refused() -> None:
    with pytest.raises(WorkflowDefinitionError):
        Workflow("")
    with pytest.raises(WorkflowDefinitionError, match="cannot name a queue"):
        Workflow("x" * 300)
    with pytest.raises(WorkflowDefinitionError, match="dataclass or pydantic"):
        Workflow("wf", context=dict)


def test_parallel_group_shape() -> None:
    wf = Workflow("wf")
    for sid in ("a", "b", "c", "d"):
        wf.add_stage(sid, print)
    assert wf.parallel("c", "b") == "b+c"
    assert wf.indexes_from(1) == [1, 2] and wf.indexes_from(0) == [0]
    assert wf.next_index(0) == 1 and wf.next_index(1) == 3 and wf.next_index(2) == 3
    assert wf.first_indexes() == [0]


def test_dict_context_merges_data_as_stage_keys() -> None:
    codec = ContextCodec(None)
    gd = codec.to_data({"orderId": "o1"})
    ctx = codec.build(gd)
    ctx["mutated"] = 1  # a copy: not written back
    assert codec.apply("charge", ctx, {"chargeId": "c1"}, gd) == ({"chargeId": "c1"}, {"charge.chargeId": "c1"})
    assert gd == {"orderId": "o1"}
    assert codec.apply("ship", ctx, {}, gd) == (None, {})
    assert codec.apply("ship", ctx, None, gd) == (None, {})
    with pytest.raises(TypeError, match="must return a dict or None"):
        codec.apply("ship", ctx, 5, gd)


@pytest.mark.parametrize("cls, wire", [(OrderCtx, "orderId"), (PydCtx, "orderId")])
def test_typed_context_keeps_its_fields_in_global_data(cls: type, wire: str) -> None:
    codec = ContextCodec(cls)
    gd = codec.to_data(cls(**{("order_id" if cls is OrderCtx else "orderId"): "o1", "amount": 9.5}))
    assert gd[wire] == "o1" and gd["amount"] == 9.5
    gd["other.key"] = True  # keys that are no field are ignored
    ctx = codec.build(gd)
    assert isinstance(ctx, cls)
    ctx.charged = True  # mutated in place, returned None: only what changed is an update
    assert codec.apply("charge", ctx, None, gd) == (None, {"charged": True})
    assert codec.apply("charge", codec.build(gd), {"amount": 1.0}, gd) == (None, {"amount": 1.0})
    with pytest.raises(TypeError, match="must return the context"):
        codec.apply("charge", ctx, 3, gd)


async def test_retry_reruns_with_a_fresh_context_then_succeeds() -> None:
    calls: list[dict[str, Any]] = []
    wf = Workflow("wf")

    @wf.stage("flaky", retry=StageRetry(attempts=3, initial=0.001))
    async def flaky(ctx: dict[str, Any]) -> dict[str, Any]:
        calls.append(dict(ctx))
        ctx["dirty"] = True
        if len(calls) < 3:
            raise RuntimeError(f"attempt {len(calls)}")
        return {"n": len(calls)}

    _ctx, returned = await call_stage(flaky, lambda: {"a": 1})
    assert returned == {"n": 3} and calls == [{"a": 1}] * 3


async def test_retry_gives_up_with_the_last_error_and_timeout_is_named() -> None:
    wf = Workflow("wf")

    @wf.stage("bad", retry=StageRetry(attempts=2, initial=0.001))
    def bad(ctx: dict[str, Any]) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await call_stage(bad, dict)

    @wf.stage("slow", timeout=0.01)
    async def slow(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    with pytest.raises(FlowTimeoutError, match=r"timeout of 0\.01 s"):
        await call_stage(slow, dict)


async def test_compensation_with_or_without_result_argument() -> None:
    wf = Workflow("wf")
    seen: list[Any] = []
    a = wf.add_stage("a", print, compensate=lambda ctx: seen.append(("a", ctx)))
    b = wf.add_stage("b", print)

    @b.compensate
    async def undo_b(ctx: Any, result: Any) -> None:
        seen.append(("b", ctx, result))

    await call_compensation(a, {"x": 1}, "R")
    await call_compensation(b, {"x": 2}, "R")
    assert seen == [("a", {"x": 1}), ("b", {"x": 2}, "R")]
