"""Which of Go's lifecycle events an engine publishes (``FlowEngine(events=...)``).

Go's ``WithCompletionEvents(true)`` publishes all four; ``wait()`` across processes only needs the
terminal three, and every event is a persistent message the broker stores and routes, so a user who
does not consume ``StageCompletedEvent`` can leave it out (``events="terminal"``) and a user who needs
none can turn them off (``events=False``; ``wait()`` then reads the store).
"""
from __future__ import annotations

from collections.abc import Iterable

from mmate_fast.errors import InvalidArgumentError

STAGE_COMPLETED = "StageCompletedEvent"
WORKFLOW_COMPLETED = "WorkflowCompletedEvent"
WORKFLOW_FAILED = "WorkflowFailedEvent"
WORKFLOW_COMPENSATED = "WorkflowCompensatedEvent"

#: the events that end a flow (what ``wait()`` listens to), in Go's order
TERMINAL_EVENTS = (WORKFLOW_COMPLETED, WORKFLOW_FAILED, WORKFLOW_COMPENSATED)
#: every lifecycle event Go publishes
ALL_EVENTS = frozenset((STAGE_COMPLETED, *TERMINAL_EVENTS))

EventsOption = bool | str | Iterable[str]


def event_types(events: object) -> frozenset[str]:
    """The event type names ``events`` selects: ``True`` all four, ``False`` none, ``"terminal"`` the
    three terminal ones, an iterable of type names those. InvalidArgumentError for anything else."""
    if events is True:
        return ALL_EVENTS
    if events is False:
        return frozenset()
    if events == "terminal":
        return frozenset(TERMINAL_EVENTS)
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise InvalidArgumentError(
            f"events takes True (all of Go's lifecycle events), False (none), \"terminal\" "
            f"({', '.join(TERMINAL_EVENTS)}) or a set of event type names, got {events!r}", "events")
    names = frozenset(events)
    unknown = sorted(str(n) for n in names - ALL_EVENTS)
    if unknown:
        raise InvalidArgumentError(
            f"events names unknown lifecycle event types {unknown}: choose from {sorted(ALL_EVENTS)}",
            "events")
    return names


__all__ = ["ALL_EVENTS", "TERMINAL_EVENTS", "EventsOption", "event_types"]
