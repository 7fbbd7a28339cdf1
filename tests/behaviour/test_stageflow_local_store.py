"""A store private to the process (``memory://``, ``sqlite:///:memory:``) cannot join parallel stages run by
two processes: serving a workflow with parallel groups on one logs a warning, once per engine, that
says to share a store. And what ``status`` / ``state`` / ``wait`` answer for an instance the store
does not know. On memory:// and RabbitMQ."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.stageflow import Workflow
from tests.behaviour.conftest import Names
from tests.behaviour.stageflow_helpers import engine_for, flow_queues


def parallel(wf_id: str) -> Workflow:
    wf = Workflow(wf_id)
    wf.add_stage("a", lambda ctx: None)
    wf.add_stage("left", lambda ctx: None)
    wf.add_stage("right", lambda ctx: None)
    wf.parallel("left", "right")
    return wf


def sequential(wf_id: str) -> Workflow:
    wf = Workflow(wf_id)
    wf.add_stage("a", lambda ctx: None)
    return wf


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "mmate_fast.stageflow" and r.levelno == logging.WARNING and "shared store" in r.getMessage()]


@pytest.mark.parametrize("store", ["memory://", "sqlite:///:memory:"])
async def test_parallel_groups_on_a_process_local_store_warn_once(url: str, names: Names, store: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "mmate_fast.stageflow")
    first, second, plain = (parallel(f"local-{names.queue('wf')}"), parallel(f"local-{names.queue('wf')}"),
                            sequential(f"local-{names.queue('wf')}"))
    async with engine_for(url, names, plain, store=store) as flows:
        for wf in (first, second):
            flow_queues(names, flows.prefix, wf)
        assert warnings_of(caplog) == []                      # no parallel group: nothing to say
        await flows.register(first, serve=False)
        assert warnings_of(caplog) == []                      # not served here: no join here
        await flows.register(first)
        [text] = warnings_of(caplog)
        assert first.id in text and store in text and "sqlite:///" in text and "postgresql://" in text
        await flows.register(second)
        assert len(warnings_of(caplog)) == 1                  # once per engine
        state = await flows.wait(await flows.start(first, {}), timeout=10)
        assert state.status == "completed"                     # one process: it works


async def test_parallel_groups_on_a_shared_store_do_not_warn(url: str, names: Names, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "mmate_fast.stageflow")
    wf = parallel(f"local-{names.queue('wf')}")
    async with engine_for(url, names, wf, store=f"sqlite:///{tmp_path / 'flows.db'}"):
        assert warnings_of(caplog) == []


async def test_an_instance_the_store_does_not_know(url: str, names: Names) -> None:
    """``status`` and ``state`` answer None at once; ``wait`` cannot tell an unknown instance from one
    not started yet (or started by an engine with another store) and times out."""
    wf = sequential(f"local-{names.queue('wf')}")
    async with engine_for(url, names, wf) as flows:
        unknown: Any = "00000000-0000-4000-8000-000000000000"
        assert await flows.status(unknown) is None and await flows.state(unknown) is None
        with pytest.raises(errors.FlowTimeoutError, match="did not finish within"):
            await flows.wait(unknown, timeout=0.3)
