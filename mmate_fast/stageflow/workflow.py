"""Workflow definitions: a :class:`Workflow` is an ordered list of :class:`Stage` s, each a sync or
async function of the flow's context, with its timeout, retry policy, dependencies, optional flag and
compensation handler; stages may be grouped to run side by side (:meth:`Workflow.parallel`).

Everything that could not run is refused when it is defined (``WorkflowDefinitionError``): duplicate
stage ids, a dependency that is not an earlier stage, a bad timeout or retry, an empty workflow (at
:meth:`Workflow.validate`, which the engine calls on ``register``/``start``).

A stage's index (its queue ``{prefix}{workflowId}.stage{N}``) is its position in the order stages
were added, as Go numbers them.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from mmate_fast import _backoff
from mmate_fast._checks import name as _check_name
from mmate_fast.errors import InvalidArgumentError, WorkflowDefinitionError
from mmate_fast.stageflow._context import is_context_class

#: Go's default stage timeout (``WithTimeout``): five minutes
DEFAULT_TIMEOUT = 300.0

F = TypeVar("F", bound=Callable[..., Any])
StageFn = Callable[[Any], Any]
CompensateFn = Callable[..., Any]


@dataclasses.dataclass(frozen=True, slots=True)
class StageRetry:
    """Re-run a failed stage handler in-process (Go's ``WithStageRetryPolicy``): ``attempts`` in all
    (1 = no retry), waiting ``initial * multiplier**(n-1)`` seconds (capped at ``maximum``, +-``jitter``)
    before attempt n+1. A stage that timed out is retried too."""

    attempts: int = 3
    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if type(self.attempts) is not int or self.attempts < 1:
            raise WorkflowDefinitionError(
                f"StageRetry.attempts must be a whole number >= 1, got {self.attempts!r}")
        for what in ("initial", "maximum", "multiplier", "jitter"):
            value = getattr(self, what)
            if not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
                raise WorkflowDefinitionError(
                    f"StageRetry.{what} must be a finite number >= 0, got {value!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1, 2, ...)."""
        return _backoff.exponential(attempt, self.initial, self.maximum, self.multiplier, self.jitter)


def _positional_count(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` requires (2 stands for "two or more"; ``*args`` counts
    as many): a parameter with a default is not passed (``lambda ctx, sid=sid: ...`` takes one)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    count = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return 2
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            count += 1
    return min(count, 2)


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


@dataclasses.dataclass(frozen=True, slots=True)
class StageInfo:
    """What a stage function taking a second argument gets: ``fn(ctx, info)`` (Go's handlers see the
    whole state; this is the read-only part of it that a stage may need, e.g. the instance id)."""

    workflow_id: str
    instance_id: str
    stage_id: str
    stage_index: int
    #: 1 on the first run, 2.. on retries (``StageRetry``)
    attempt: int
    #: the state the stage runs on (as received; do not change it: return updates instead)
    state: Any


class Stage:
    """One stage of a workflow. Made by :meth:`Workflow.stage` / :meth:`Workflow.add_stage`; calling it
    calls the stage function (so a decorated function stays usable), and ``@stage.compensate``
    registers its compensation handler ``fn(ctx, result)`` (``result``: the stage's StageResult)."""

    __slots__ = ("_compensate", "compensate_async", "compensate_wants_result", "depends_on", "fn", "group",
                 "id", "index", "is_async", "optional", "retry", "threaded", "timeout", "wants_info")

    def __init__(self, stage_id: str, fn: StageFn, *, index: int, timeout: float | None = None,
                 retry: StageRetry | None = None, optional: bool = False,
                 depends_on: tuple[str, ...] = (), compensate: CompensateFn | None = None) -> None:
        self.id = stage_id
        self.fn = fn
        self.index = index
        #: seconds the stage (and its compensation) may run; Go's default when none is given
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        #: a timeout was given: its sync functions run in a worker thread so that the timeout applies
        #: (without one they run inline in the event loop, not interrupted)
        self.threaded = timeout is not None
        self.retry = retry
        self.optional = optional
        self.depends_on = depends_on
        #: the parallel group this stage belongs to (None: runs on its own)
        self.group: str | None = None
        self.is_async = _is_async(fn)
        #: ``fn(ctx, info)``: the stage also gets a StageInfo
        self.wants_info = _positional_count(fn) >= 2
        self._compensate: CompensateFn | None = None
        self.compensate_async = False
        self.compensate_wants_result = False
        if compensate is not None:
            self.compensate(compensate)

    def __repr__(self) -> str:
        return f"<Stage {self.index} {self.id!r}{' optional' if self.optional else ''}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def compensation(self) -> CompensateFn | None:
        """The compensation handler, or None (its compensation is recorded ``skipped``)."""
        return self._compensate

    def compensate(self, fn: F) -> F:
        """Register ``fn(ctx, result)`` (or ``fn(ctx)``), sync or async, as this stage's compensation
        handler; usable as a decorator. Returns ``fn``."""
        if not callable(fn):
            raise WorkflowDefinitionError(
                f"the compensation of stage {self.id!r} must be callable, got {fn!r}")
        self._compensate = fn
        self.compensate_async = _is_async(fn)
        self.compensate_wants_result = _positional_count(fn) >= 2
        return fn


class Workflow:
    """A workflow definition: ``Workflow("order-processing", context=OrderCtx)``.

    ``context``: a dataclass or pydantic model class (a *typed* workflow, Go's ``NewTypedWorkflow``:
    the context's JSON fields live directly in ``globalData``, stage results carry no ``data``), or
    None (the stage gets a dict of ``globalData``; what it returns is its result ``data``, merged into
    ``globalData`` as ``"{stageId}.{key}"``). ``name`` is the ``workflowName`` of the lifecycle events
    (default: the id).
    """

    def __init__(self, workflow_id: str, *, name: str | None = None, context: type | None = None) -> None:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise WorkflowDefinitionError(f"a workflow id must be a non-empty str, got {workflow_id!r}")
        try:
            _check_name(f"stageflow.compensation.{workflow_id}", "workflow_id", "stage queue name")
        except InvalidArgumentError as exc:
            raise WorkflowDefinitionError(f"workflow id {workflow_id!r} cannot name a queue: {exc}") from None
        if context is not None and not is_context_class(context):
            raise WorkflowDefinitionError(
                f"context must be a dataclass or pydantic model class (or None for a dict), got {context!r}")
        self.id = workflow_id
        self.name = name if name is not None else workflow_id
        self.context = context
        self.stages: list[Stage] = []
        self._by_id: dict[str, Stage] = {}
        #: parallel group name -> its member stages, in index order
        self.groups: dict[str, list[Stage]] = {}

    def __repr__(self) -> str:
        return f"<Workflow {self.id!r} stages={[s.id for s in self.stages]}>"

    @property
    def typed(self) -> bool:
        """True when stages get a dataclass / pydantic context (Go's typed workflow)."""
        return self.context is not None

    def stage_by_id(self, stage_id: str) -> Stage | None:
        return self._by_id.get(stage_id)

    # ------------------------------------------------------------------ building
    def stage(self, stage_id: str, *, timeout: float | None = None, retry: StageRetry | None = None,
              optional: bool = False, depends_on: Iterable[str] = (),
              compensate: CompensateFn | None = None) -> Callable[[StageFn], Stage]:
        """Decorator: ``@wf.stage("validate", timeout=30)`` adds the function as the next stage and
        returns its :class:`Stage` (so ``@validate.compensate`` can follow)."""

        def add(fn: StageFn) -> Stage:
            return self.add_stage(stage_id, fn, timeout=timeout, retry=retry, optional=optional,
                                  depends_on=depends_on, compensate=compensate)

        return add

    def add_stage(self, stage_id: str, fn: StageFn, *, timeout: float | None = None,
                  retry: StageRetry | None = None, optional: bool = False, depends_on: Iterable[str] = (),
                  compensate: CompensateFn | None = None) -> Stage:
        """Add ``fn(ctx)`` or ``fn(ctx, info)`` (sync or async; ``info``: a :class:`StageInfo`) as the
        next stage; returns its :class:`Stage`.

        ``timeout``: seconds the stage may run (default: Go's 300 for an async function; a sync
        function without ``timeout`` runs inline in the event loop and is not interrupted, with
        ``timeout`` it runs in a worker thread, fails on time and its late result is discarded);
        ``retry``: a :class:`StageRetry`; ``optional``: a failure is recorded and the flow goes on (a
        required stage's failure fails the flow and compensates what completed); ``depends_on``:
        earlier stage ids that must have completed (else a required stage is refused, an optional one
        skipped); ``compensate``: the compensation handler.
        """
        if not isinstance(stage_id, str) or not stage_id:
            raise WorkflowDefinitionError(f"a stage id must be a non-empty str, got {stage_id!r}")
        if stage_id in self._by_id:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} already has a stage {stage_id!r}: stage ids must be unique")
        if not callable(fn):
            raise WorkflowDefinitionError(f"stage {stage_id!r} needs a callable, got {fn!r}")
        if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool)
                                    or not timeout > 0 or not math.isfinite(timeout)):
            raise WorkflowDefinitionError(f"stage {stage_id!r}: timeout must be a number of seconds > 0, "
                                          f"got {timeout!r}")
        if retry is not None and not isinstance(retry, StageRetry):
            raise WorkflowDefinitionError(f"stage {stage_id!r}: retry must be a StageRetry, got {retry!r}")
        if isinstance(depends_on, str):
            depends_on = (depends_on,)
        deps = tuple(depends_on)
        for dep in deps:
            if dep == stage_id:
                raise WorkflowDefinitionError(f"stage {stage_id!r} cannot depend on itself")
            if dep not in self._by_id:
                raise WorkflowDefinitionError(
                    f"stage {stage_id!r} depends on {dep!r}, which is not an earlier stage of workflow "
                    f"{self.id!r}: stages run in the order they are added, so add {dep!r} first")
        stage = Stage(stage_id, fn, index=len(self.stages),
                      timeout=None if timeout is None else float(timeout), retry=retry,
                      optional=bool(optional), depends_on=deps, compensate=compensate)
        self.stages.append(stage)
        self._by_id[stage_id] = stage
        return stage

    def parallel(self, *stage_ids: str, group: str | None = None) -> str:
        """Run the already added, consecutive stages ``stage_ids`` side by side: the hop before them
        goes to all of them at once, and the flow moves on once every member finished (the join).
        Each member keeps its own queue. Returns the group name (default ``"a+b"``)."""
        if len(stage_ids) < 2:
            raise WorkflowDefinitionError("a parallel group needs at least two stages")
        members: list[Stage] = []
        for sid in stage_ids:
            stage = self._by_id.get(sid)
            if stage is None:
                raise WorkflowDefinitionError(f"parallel: {sid!r} is not a stage of workflow {self.id!r} "
                                              "(add the stages first)")
            if stage.group is not None:
                raise WorkflowDefinitionError(f"parallel: stage {sid!r} is already in group {stage.group!r}")
            members.append(stage)
        members.sort(key=lambda s: s.index)
        indexes = [s.index for s in members]
        if len(set(indexes)) != len(indexes) or indexes != list(range(indexes[0], indexes[0] + len(indexes))):
            raise WorkflowDefinitionError(
                f"parallel: stages {list(stage_ids)} must be distinct and added one after the other")
        ids = {s.id for s in members}
        for s in members:
            inner = ids.intersection(s.depends_on)
            if inner:
                raise WorkflowDefinitionError(
                    f"parallel: stage {s.id!r} depends on {sorted(inner)} of its own group; members run "
                    "side by side")
        name = group if group is not None else "+".join(s.id for s in members)
        if not isinstance(name, str) or not name or name in self.groups:
            raise WorkflowDefinitionError(f"parallel: group name {name!r} is empty or already used")
        for s in members:
            s.group = name
        self.groups[name] = members
        return name

    def validate(self) -> None:
        """Refuse a workflow that cannot run (no stages). Called by the engine on register/start."""
        if not self.stages:
            raise WorkflowDefinitionError(f"workflow {self.id!r} has no stages: add at least one")

    # ------------------------------------------------------------------ shape of the flow
    def first_indexes(self) -> list[int]:
        """The stage indexes a new flow starts with (the whole group when stage 0 is in one)."""
        return self.indexes_from(0)

    def indexes_from(self, index: int) -> list[int]:
        """Stage ``index`` alone, or every member of its parallel group."""
        if index >= len(self.stages):
            return []
        group = self.stages[index].group
        if group is None:
            return [index]
        return [s.index for s in self.groups[group]]

    def next_index(self, index: int) -> int:
        """The index after stage ``index`` (after its whole group); ``len(stages)`` at the end."""
        group = self.stages[index].group
        if group is None:
            return index + 1
        return self.groups[group][-1].index + 1


__all__ = ["DEFAULT_TIMEOUT", "Stage", "StageInfo", "StageRetry", "Workflow"]
