"""Live progress on stderr: a one-line bar on a terminal (redrawn at most ~10 times a second), a
few plain lines otherwise, nothing when quiet. Plain text and ANSI, no dependency."""
from __future__ import annotations

import shutil
import time
from typing import TextIO

from ._pipeline import Snapshot

_WIDTH = 30
_MIN_REDRAW = 0.1
_CLEAR_LINE = "\r\x1b[2K"


class Progress:
    """Render snapshots of the pipeline; ``mode`` is ``"bar"``, ``"lines"`` or ``"off"``."""

    def __init__(self, stream: TextIO, mode: str) -> None:
        self.stream = stream
        self.mode = mode
        self._last_draw = 0.0
        self._next_quarter = 1
        self._drawn = False

    @classmethod
    def for_stream(cls, stream: TextIO, *, quiet: bool) -> Progress:
        """A bar when ``stream`` is a terminal, lines when it is not, nothing when ``quiet``."""
        if quiet:
            return cls(stream, "off")
        isatty = getattr(stream, "isatty", None)
        return cls(stream, "bar" if isatty is not None and isatty() else "lines")

    def __call__(self, s: Snapshot) -> None:
        if self.mode == "bar":
            now = time.monotonic()
            finished = s.completed + s.rejected >= s.total
            if now - self._last_draw >= _MIN_REDRAW or finished:
                self._last_draw = now
                self._draw_bar(s)
        elif self.mode == "lines":
            self._lines(s)

    def _draw_bar(self, s: Snapshot) -> None:
        done = s.completed + s.rejected
        frac = done / s.total if s.total else 1.0
        filled = int(frac * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        rate = s.handled / s.elapsed if s.elapsed > 0 else 0.0
        line = (f"[{bar}] {frac:4.0%}  {done}/{s.total} orders  completed {s.completed}  "
                f"rejected {s.rejected}  {rate:,.0f} msg/s")
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write(_CLEAR_LINE + line[:max(20, columns - 1)])
        self.stream.flush()
        self._drawn = True

    def _lines(self, s: Snapshot) -> None:
        done = s.completed + s.rejected
        quarter = done * 4 // s.total if s.total else 4
        if quarter >= self._next_quarter:
            self._next_quarter = quarter + 1
            self.stream.write(f"progress: {done}/{s.total} orders finished ({done / s.total:.0%}), "
                              f"{s.handled} messages handled, {s.elapsed:.2f} s\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line so what follows starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
