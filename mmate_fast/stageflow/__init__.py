"""StageFlow: multi-stage workflows over Mmate messaging (wire-compatible with mmate-go's stageflow)."""
