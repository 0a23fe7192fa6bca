"""`Progress`: step / total, steps/s, ETA and bag size of long work, at most once a second.

On a terminal it is one line that updates in place; into a pipe or a log, plain lines:

    step 412/1000 (41%)  1,203 steps/s  ETA 0:00:01  bag 35.2 MiB
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

PREFIX = "step "
"""Every progress line starts with this (the launcher redraws such lines in place on a terminal)."""


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def clock_text(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def bag_bytes(path: Path) -> int:
    """Bytes on disk of a bag being written: a .mcap file, or the .mcap files of a folder."""
    try:
        files = sorted(path.glob("*.mcap")) if path.is_dir() else [path]
        return sum(f.stat().st_size for f in files)
    except OSError:
        return 0


class Progress:
    """Call `update(done)` as often as you like; it writes at most once per `interval` s."""

    def __init__(
        self,
        total: int | None,
        *,
        stream: TextIO | None = None,
        interval: float = 1.0,
        size: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`total`: steps expected (None or 0: unknown, no ETA); `size`: bytes written so far."""
        self.total = total or None
        self.stream = stream or sys.stderr
        self.interval = interval
        self.size = size
        self.clock = clock
        self._first: tuple[float, int] | None = None  # (time, done) of the first update: rates count from there
        self._next = clock() + interval
        self._in_place = is_terminal(self.stream)
        self._drawn = False

    def line(self, done: int) -> str:
        """The progress text for `done` steps so far."""
        t0, done0 = self._first or (self.clock(), done)
        elapsed = self.clock() - t0
        rate = (done - done0) / elapsed if elapsed > 0 else 0.0
        parts = [f"{PREFIX}{done}/{self.total} ({100 * done / self.total:.0f}%)" if self.total else f"{PREFIX}{done}"]
        parts.append(f"{rate:,.0f} steps/s")
        if self.total and rate > 0:
            parts.append(f"ETA {clock_text(max(self.total - done, 0) / rate)}")
        if self.size is not None:
            parts.append(f"bag {size_text(self.size())}")
        return "  ".join(parts)

    def update(self, done: int) -> None:
        now = self.clock()
        if self._first is None:
            self._first = (now, done)
            self._next = now + self.interval
        if now < self._next:
            return
        self._next = now + self.interval
        self._write(self.line(done))

    def finish(self) -> None:
        """End an in-place line with a newline (plain lines need nothing)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _write(self, text: str) -> None:
        if self._in_place:
            self.stream.write("\r" + fit(text) + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def fit(text: str) -> str:
    """`text` cut to the terminal's width: a line that wraps cannot be redrawn in place."""
    return text[: max(shutil.get_terminal_size().columns - 1, 20)]


def is_terminal(stream: object) -> bool:
    """Whether lines written to `stream` can be redrawn in place."""
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False
