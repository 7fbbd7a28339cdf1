"""StageFlow: multi-stage workflows across services, wire-compatible with mmate-go's StageFlow.

The wire layer (``_wire``): the workflow state and its Go JSON, the stage / compensation message
contracts and the lifecycle events (registered Mmate contracts), and Go time formatting; the state
stores (``stageflow.store``).
"""
from __future__ import annotations

from mmate_fast.stageflow._wire import (
    CompensationMessageEnvelope,
    CompensationResult,
    FlowMessageEnvelope,
    StageCompletedEvent,
    StageResult,
    WorkflowCompensatedEvent,
    WorkflowCompletedEvent,
    WorkflowFailedEvent,
    WorkflowState,
    decode_state,
    encode_state,
)
from mmate_fast.stageflow.store import FlowRecord, FlowStore, open_store

__all__ = [
    "CompensationMessageEnvelope",
    "CompensationResult",
    "FlowMessageEnvelope",
    "FlowRecord",
    "FlowStore",
    "StageCompletedEvent",
    "StageResult",
    "WorkflowCompensatedEvent",
    "WorkflowCompletedEvent",
    "WorkflowFailedEvent",
    "WorkflowState",
    "decode_state",
    "encode_state",
    "open_store",
]
