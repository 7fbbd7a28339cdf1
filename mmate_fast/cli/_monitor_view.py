"""How ``mmate monitor`` draws a :class:`~mmate_fast.cli._monitor_data.Snapshot` for people: a rich table
with one row per queue and a caption naming the source (and why it is not the API when it is not)."""
from __future__ import annotations

import os
import time
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mmate_fast.cli._monitor_data import QueueStats, Snapshot

#: consumer lag (seconds) from which the lag cell turns yellow, and red
LAG_WARN, LAG_BAD = 10.0, 60.0
#: the queue column folds long names over lines rather than cutting them; at least this wide
QUEUE_MIN_WIDTH = 24
#: the width of the view written to a file or a pipe (COLUMNS overrides it)
FILE_WIDTH = 140


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _lag(q: QueueStats, has_rates: bool) -> Text:
    lag = q.lag_seconds
    if lag is None:
        if has_rates and q.ready:  # messages wait and nothing is delivered
            return Text("stalled" if q.consumers else "no consumer", style="bold red")
        return Text("-")
    style = "red" if lag >= LAG_BAD else "yellow" if lag >= LAG_WARN else ""
    return Text(f"{lag:,.1f}s", style=style)


def _dlq(value: int | None) -> Text:
    if value is None:
        return Text("-")
    return Text(f"{value:,}", style="bold red" if value else "")


def console_for(out: TextIO) -> Console:
    """A console on ``out``: the terminal's width, or (a file, a pipe) COLUMNS, else wide enough for
    the table without folding most names (rich would assume 80)."""
    console = Console(file=out)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(file=out, width=FILE_WIDTH)
    return console


def render(snap: Snapshot, error: str | None = None) -> RenderableType:
    """The table of ``snap``; ``error`` (the last refresh failed) is shown under it."""
    stamp = time.strftime("%H:%M:%S", time.localtime(snap.taken_at))
    table = Table(title=f"queues of vhost {snap.vhost}  {stamp}", title_justify="left", expand=False)
    table.add_column("queue", overflow="fold", min_width=QUEUE_MIN_WIDTH)
    rates = ("publish/s", "deliver/s", "ack/s") if snap.has_rates else ()
    heads = ["ready", "unacked", "consumers", *rates, "dlq", "lag"]
    for head in heads:
        table.add_column(head, justify="right", no_wrap=True)
    for q in snap.queues:
        cells: list[str | Text] = [q.name, _count(q.ready), _count(q.unacked), _count(q.consumers)]
        if snap.has_rates:
            cells += [_rate(q.publish_rate), _rate(q.deliver_rate), _rate(q.ack_rate)]
        cells += [_dlq(q.dlq_messages), _lag(q, snap.has_rates)]
        table.add_row(*cells)
    lines: list[RenderableType] = [table]
    if not snap.queues:
        lines.append(Text("no queues match"))
    if snap.missing:
        lines.append(Text(f"not found: {', '.join(snap.missing)}", style="yellow"))
    lines.append(Text(f"source: {snap.describe()}", style="dim"))
    if error:
        lines.append(Text(f"last refresh failed (showing the one before): {error}", style="bold red"))
    return Group(*lines)


__all__ = ["console_for", "render"]
