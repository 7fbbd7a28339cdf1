"""``memory://``: the state store in this process's memory (tests, embedded single-process engines).

``memory://`` opens a private store; ``memory://NAME`` opens a handle on the store of that name,
shared by every ``open_store("memory://NAME")`` of the process (several engines in one test) and
kept until the process ends. Every operation runs to completion without yielding to the event loop,
under a threading lock (engines on other threads' loops may share a named store), so
``claim_stage`` is an atomic compare-and-set: the first writer wins.
"""
from __future__ import annotations

import threading

from mmate_fast.errors import FlowStoreClosedError
from mmate_fast.stageflow.store._record import (
    ENDED_STATUSES,
    FlowRecord,
    check_claim,
    check_ids,
    check_key,
    check_page,
    check_record,
)


class _MemoryData:
    """The records and claimed stage results of one store, behind one lock."""

    __slots__ = ("flows", "lock", "stages")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.flows: dict[str, FlowRecord] = {}
        self.stages: dict[tuple[str, str], str] = {}


_NAMED: dict[str, _MemoryData] = {}
_NAMED_LOCK = threading.Lock()


def _named(name: str) -> _MemoryData:
    with _NAMED_LOCK:
        data = _NAMED.get(name)
        if data is None:
            data = _NAMED[name] = _MemoryData()
        return data


def _newest_first(record: FlowRecord) -> tuple[int, str]:
    return (-record.updated_ns, record.instance_id)


class MemoryFlowStore:
    """A FlowStore in process memory; records are copied in and out (callers cannot alter the store)."""

    def __init__(self, name: str = "") -> None:
        self._name = name
        self._data = _named(name) if name else _MemoryData()
        self._closed = False

    @property
    def url(self) -> str:
        return f"memory://{self._name}"

    def __repr__(self) -> str:
        return f"<MemoryFlowStore {self.url}{' closed' if self._closed else ''}>"

    def _check_open(self) -> _MemoryData:
        if self._closed:
            raise FlowStoreClosedError(f"the flow store {self.url} is closed: open a new one with "
                                       "open_store(url)")
        return self._data

    async def save(self, record: FlowRecord) -> None:
        self.save_nowait(record)

    def save_nowait(self, record: FlowRecord) -> None:
        """``save`` at once, for callers that do not wait (the engine's saves after a hop)."""
        self.save_now(record)

    # the ``*_now`` calls: the FlowStore calls answered at once, no coroutine (a store without I/O
    # has them; the engine's stage hops use them when all four exist)
    def save_now(self, record: FlowRecord) -> None:
        """``save``, done when it returns."""
        check_record(record)
        data = self._check_open()
        with data.lock:
            stored = data.flows.get(record.instance_id)
            if stored is None or record.version >= stored.version:
                data.flows[record.instance_id] = _copy(record)

    async def get(self, instance_id: str) -> FlowRecord | None:
        data = self._check_open()
        with data.lock:
            stored = data.flows.get(instance_id)
        return None if stored is None else _copy(stored)

    async def get_ended(self, instance_ids: list[str]) -> list[FlowRecord]:
        """The records of those instances that have ended (see ``FlowStore``)."""
        ids = check_ids(instance_ids)
        data = self._check_open()
        flows = data.flows
        with data.lock:
            found = [r for r in map(flows.get, ids) if r is not None and r.status in ENDED_STATUSES]
        return [_copy(r) for r in found]

    async def list(self, *, status: str | None = None, workflow: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[FlowRecord]:
        check_page(limit, offset)
        data = self._check_open()
        with data.lock:
            found = [r for r in data.flows.values()
                     if (status is None or r.status == status)
                     and (workflow is None or r.workflow_id == workflow)]
        found.sort(key=_newest_first)
        return [_copy(r) for r in found[offset:offset + limit]]

    async def claim_stage(self, instance_id: str, stage_key: str, result_json: str) -> str:
        return self.claim_stage_now(instance_id, stage_key, result_json)

    def claim_stage_now(self, instance_id: str, stage_key: str, result_json: str) -> str:
        """``claim_stage``, answered at once."""
        check_claim(instance_id, stage_key, result_json)
        data = self._check_open()
        with data.lock:
            return data.stages.setdefault((instance_id, stage_key), result_json)

    async def claim_stage_and_save(self, instance_id: str, stage_key: str, result_json: str,
                                   record: FlowRecord) -> str:
        """``claim_stage``; when this call wins the claim, ``save(record)`` at once (under the lock)."""
        return self.claim_stage_and_save_now(instance_id, stage_key, result_json, record)

    def claim_stage_and_save_now(self, instance_id: str, stage_key: str, result_json: str,
                                 record: FlowRecord) -> str:
        """``claim_stage_and_save``, answered at once."""
        check_claim(instance_id, stage_key, result_json)
        check_record(record)
        data = self._check_open()
        with data.lock:
            stored = data.stages.setdefault((instance_id, stage_key), result_json)
            if stored == result_json:
                current = data.flows.get(record.instance_id)
                if current is None or record.version >= current.version:
                    data.flows[record.instance_id] = _copy(record)
        return stored

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        return self.stage_result_now(instance_id, stage_key)

    def stage_result_now(self, instance_id: str, stage_key: str) -> str | None:
        """``stage_result``, answered at once."""
        check_key(instance_id, stage_key)
        data = self._check_open()
        with data.lock:
            return data.stages.get((instance_id, stage_key))

    async def close(self) -> None:
        self._closed = True


def _copy(r: FlowRecord) -> FlowRecord:
    """A copy (the caller may change its record later; ours stays), without ``replace``'s field walk."""
    return FlowRecord(r.instance_id, r.workflow_id, r.status, r.version, r.current_stage, r.error,
                      r.started_ns, r.updated_ns, r.state_json, r.worker)


__all__ = ["MemoryFlowStore"]
