"""The StageFlow state store's behaviour suite on the in-process backends: memory:// and SQLite."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from mmate_fast.errors import InvalidArgumentError
from mmate_fast.stageflow.store import FlowStore, open_store
from tests.flow_store_suite import FlowStoreSuite


class TestMemoryStore(FlowStoreSuite):
    cross_process = False

    @pytest.fixture
    def store_url(self) -> str:
        return f"memory://suite-{uuid.uuid4().hex}"

    @pytest.fixture
    async def store(self, store_url: str) -> AsyncIterator[FlowStore]:
        opened = open_store(store_url)
        yield opened
        await opened.close()


async def test_each_plain_memory_url_is_a_private_store() -> None:
    from tests.flow_store_suite import record

    one, two = open_store("memory://"), open_store("memory://")
    await one.save(record())
    assert await two.get("i-1") is None
    assert await one.get("i-1") == record()


@pytest.mark.parametrize("url", ["", "nothing", "redis://host/0", "memory://a/b", "memory://a?x=1",
                                 "mysql://u:secret@h/db"])
def test_a_bad_url_names_the_accepted_schemes(url: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        open_store(url)
    assert "memory://" in str(info.value) and "secret" not in str(info.value)
