"""StageFlow: multi-stage workflows across services, wire-compatible with mmate-go's StageFlow.

Definitions (``Workflow``, ``Stage``, ``StageRetry``), the engine (``FlowEngine``), the wire layer
(``_wire``: the workflow state and its Go JSON, the stage / compensation message contracts and the
lifecycle events, registered Mmate contracts) and the state store (``stageflow.store``).
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
from mmate_fast.stageflow.engine import FlowEngine, FlowStatus
from mmate_fast.stageflow.store import FlowRecord, FlowStore, open_store
from mmate_fast.stageflow.workflow import DEFAULT_TIMEOUT, Stage, StageInfo, StageRetry, Workflow

__all__ = [
    "DEFAULT_TIMEOUT",
    "CompensationMessageEnvelope",
    "CompensationResult",
    "FlowEngine",
    "FlowMessageEnvelope",
    "FlowRecord",
    "FlowStatus",
    "FlowStore",
    "Stage",
    "StageCompletedEvent",
    "StageInfo",
    "StageResult",
    "StageRetry",
    "Workflow",
    "WorkflowCompensatedEvent",
    "WorkflowCompletedEvent",
    "WorkflowFailedEvent",
    "WorkflowState",
    "decode_state",
    "encode_state",
    "open_store",
]
