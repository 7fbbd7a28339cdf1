"""StageFlow: multi-stage workflows over Mmate messaging (wire-compatible with mmate-go's stageflow)."""
from __future__ import annotations

from mmate_fast.stageflow.workflow import DEFAULT_TIMEOUT, Stage, StageRetry, Workflow

__all__ = ["DEFAULT_TIMEOUT", "Stage", "StageRetry", "Workflow"]
