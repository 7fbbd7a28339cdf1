"""StageFlow's state store: where workflow instances and their claimed stage results live.

``open_store(url)`` picks the backend from the URL: ``memory://`` (this process), ``sqlite:///path.db``
(one machine, several processes), ``postgresql://...`` (a fleet; the ``postgres`` extra). Every
backend implements ``FlowStore`` with the same semantics: ``save`` never moves an instance's version
back, ``claim_stage`` is first-writer-wins.
"""
from __future__ import annotations

from mmate_fast.stageflow.store._record import MAX_LIMIT, FlowRecord, FlowStore
from mmate_fast.stageflow.store._url import open_store

__all__ = ["MAX_LIMIT", "FlowRecord", "FlowStore", "open_store"]
