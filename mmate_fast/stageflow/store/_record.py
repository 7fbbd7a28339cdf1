"""What a StageFlow state store keeps (``FlowRecord``) and the API every backend implements (``FlowStore``).

The store knows nothing of the workflow state's shape: ``state_json`` is the serialized
WorkflowState as the engine wrote it (an opaque string here); the other fields are copies of a few
of its values, kept in columns so that ``list`` can filter and order without decoding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mmate_fast.errors import InvalidArgumentError

#: the most records one ``list`` call returns
MAX_LIMIT = 10_000
#: the statuses of a flow that has ended (``get_ended`` returns the records that have one of them)
ENDED_STATUSES = ("completed", "compensated", "failed", "cancelled")


@dataclass(slots=True)
class FlowRecord:
    """One workflow instance as stored: the latest state the engine saved, plus its index columns."""

    instance_id: str
    workflow_id: str
    status: str
    version: int
    current_stage: str | None
    error: str | None
    started_ns: int
    updated_ns: int
    state_json: str
    worker: str = ""


@runtime_checkable
class FlowStore(Protocol):
    """The state store of StageFlow instances. Every method is async and bounded by its backend's
    timeout; a failure raises ``FlowStoreError`` (``FlowStoreClosedError`` once closed)."""

    async def save(self, record: FlowRecord) -> None:
        """Insert or replace the record of ``record.instance_id``; a lower version than the stored
        one is ignored (state never goes back), an equal or higher one replaces it."""
        ...

    async def get(self, instance_id: str) -> FlowRecord | None:
        """The stored record, or None."""
        ...

    async def list(self, *, status: str | None = None, workflow: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[FlowRecord]:
        """Records, newest ``updated_ns`` first (ties by instance id), filtered by status / workflow id."""
        ...

    async def claim_stage(self, instance_id: str, stage_key: str, result_json: str) -> str:
        """Store ``result_json`` under (instance, stage key) unless one is there; return the stored
        one. First writer wins, across tasks, processes and machines sharing the store."""
        ...

    async def stage_result(self, instance_id: str, stage_key: str) -> str | None:
        """The claimed result of (instance, stage key), or None."""
        ...

    async def close(self) -> None:
        """Release the backend (idempotent); later calls raise ``FlowStoreClosedError``."""
        ...

    # Optional (the engine looks them up with getattr; every backend here has them):
    # ``save_nowait(record)``, ``claim_stage_and_save(instance_id, stage_key, result_json, record)`` and
    # ``get_ended(instance_ids) -> list[FlowRecord]``: the records of those instances that have ended
    # (a status in ENDED_STATUSES), in no particular order; unknown or running instances are left out
    # (``wait()`` asks for all the flows it has waited on for a while at once, in one statement).


_I64 = 2**63


def check_record(record: object) -> FlowRecord:
    """Refuse what no backend could store, before it reaches one."""
    if record.__class__ is FlowRecord:  # the engine's records: every field of its exact type, at once
        r: FlowRecord = record
        iid, cs, err = r.instance_id, r.current_stage, r.error
        if (iid.__class__ is str and iid and r.workflow_id.__class__ is str and r.status.__class__ is str
                and r.state_json.__class__ is str and r.worker.__class__ is str
                and (cs is None or cs.__class__ is str) and (err is None or err.__class__ is str)
                and r.version.__class__ is int and r.started_ns.__class__ is int
                and r.updated_ns.__class__ is int and -_I64 <= r.version < _I64
                and -_I64 <= r.started_ns < _I64 and -_I64 <= r.updated_ns < _I64
                and "\x00" not in iid and "\x00" not in r.workflow_id and "\x00" not in r.status
                and "\x00" not in r.state_json and "\x00" not in r.worker
                and (cs is None or "\x00" not in cs) and (err is None or "\x00" not in err)):
            return r
    return _check_record(record)


def _check_record(record: object) -> FlowRecord:
    """``check_record`` field by field, naming the first wrong one."""
    if not isinstance(record, FlowRecord):
        raise InvalidArgumentError(f"save() takes a FlowRecord, not {type(record).__name__}",
                                   argument="record")
    if not isinstance(record.instance_id, str) or not record.instance_id:
        raise InvalidArgumentError("FlowRecord.instance_id must be a non-empty string",
                                   argument="instance_id")
    for name in ("workflow_id", "status", "state_json", "worker"):
        if not isinstance(getattr(record, name), str):
            raise InvalidArgumentError(f"FlowRecord.{name} must be a string", argument=name)
    for name in ("instance_id", "workflow_id", "status", "state_json", "worker", "current_stage", "error"):
        _no_nul(getattr(record, name), f"FlowRecord.{name}", name)
    for name in ("version", "started_ns", "updated_ns"):
        value = getattr(record, name)
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
            raise InvalidArgumentError(f"FlowRecord.{name} must be an int that fits 64 bits",
                                       argument=name)
    for name in ("current_stage", "error"):
        if getattr(record, name) is not None and not isinstance(getattr(record, name), str):
            raise InvalidArgumentError(f"FlowRecord.{name} must be a string or None", argument=name)
    return record


def _no_nul(value: object, label: str, argument: str) -> None:
    """PostgreSQL's text cannot hold NUL: every backend refuses it, so a store can move between them
    (JSON writes it as \\u0000, so a serialized state never has one)."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidArgumentError(f"{label} contains a NUL character (\\x00), which a store cannot "
                                   "keep: remove it or JSON-encode the text", argument=argument)


def check_key(instance_id: object, stage_key: object) -> None:
    """Both parts of a stage key are non-empty strings."""
    if (instance_id.__class__ is str and stage_key.__class__ is str and instance_id and stage_key
            and "\x00" not in instance_id and "\x00" not in stage_key):
        return  # the engine's keys, at once (the loop below names what is wrong)
    for name, value in (("instance_id", instance_id), ("stage_key", stage_key)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"{name} must be a non-empty string", argument=name)
        _no_nul(value, name, name)


def check_ids(instance_ids: object) -> list[str]:
    """``get_ended``'s argument: a list (or tuple) of non-empty instance id strings."""
    if instance_ids.__class__ is list or instance_ids.__class__ is tuple:
        ids: list[str] = instance_ids  # type: ignore[assignment]
        for iid in ids:
            if iid.__class__ is not str or not iid or "\x00" in iid:
                break
        else:
            return list(dict.fromkeys(ids))  # each once
    if not isinstance(instance_ids, list | tuple):
        raise InvalidArgumentError("get_ended() takes a list of instance ids, not "
                                   f"{type(instance_ids).__name__}", argument="instance_ids")
    for iid in instance_ids:
        if not isinstance(iid, str) or not iid:
            raise InvalidArgumentError("every instance id must be a non-empty string",
                                       argument="instance_ids")
        _no_nul(iid, "an instance id", "instance_ids")
    return list(dict.fromkeys(instance_ids))


def check_claim(instance_id: object, stage_key: object, result_json: object) -> None:
    """A stage key plus a string result."""
    check_key(instance_id, stage_key)
    if not isinstance(result_json, str):
        raise InvalidArgumentError(f"result_json must be a str, not {type(result_json).__name__}",
                                   argument="result_json")
    _no_nul(result_json, "result_json", "result_json")


def check_page(limit: object, offset: object) -> None:
    """``limit`` 1..MAX_LIMIT, ``offset`` >= 0."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(f"limit must be an int from 1 to {MAX_LIMIT}, got {limit!r}",
                                   argument="limit")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidArgumentError(f"offset must be an int >= 0, got {offset!r}", argument="offset")


__all__ = ["ENDED_STATUSES", "MAX_LIMIT", "FlowRecord", "FlowStore", "check_claim", "check_ids", "check_key",
           "check_page", "check_record"]
