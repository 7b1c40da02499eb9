"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO


class BarAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that lifts the progress bar off its line while it writes a record."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.bar: ProgressBar | None = None

    def emit(self, record: logging.LogRecord) -> None:
        bar = self.bar
        if bar is not None and bar.stream is self.stream:
            with _draw_lock:
                bar.clear()
                super().emit(record)
                bar.redraw()
        else:
            super().emit(record)


_draw_lock = threading.RLock()


class ProgressBar:
    """``[█████·····]  120/200 actions  14.2/s  8.4 s`` redrawn in place, at most ~10 times a second.

    Disabled (every method a no-op) when the stream is not a TTY, so logs and CI output stay clean.
    """

    def __init__(
        self,
        total: float,
        *,
        unit: str = "actions",
        stream: TextIO | None = None,
        ascii_only: bool = False,
        enabled: bool | None = None,
        width: int = 28,
    ) -> None:
        self.total = max(total, 1e-9)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.ascii_only = ascii_only
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.width = width
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._done = 0.0
        self._drawn = False
        self._last = ""
        self._actions: int | None = None

    def update(self, done: float, *, actions: int | None = None, force: bool = False) -> None:
        """Set progress to ``done`` (of ``total``) and redraw if due."""
        self._done = done
        self._actions = actions
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        with _draw_lock:
            self._last = self.render(done, actions=actions, now=now)
            self.stream.write("\r" + self._last)
            self.stream.flush()
            self._drawn = True

    def clear(self) -> None:
        """Blank the bar's line (before something else is written to the stream)."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * len(self._last) + "\r")

    def redraw(self) -> None:
        """Draw the bar again after :meth:`clear`."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + self._last)
            self.stream.flush()

    def render(self, done: float, *, actions: int | None = None, now: float | None = None) -> str:
        elapsed = (now if now is not None else time.monotonic()) - self._started
        frac = min(1.0, max(0.0, done / self.total))
        filled = round(frac * self.width)
        full, empty = ("#", ".") if self.ascii_only else ("█", "·")
        bar = full * filled + empty * (self.width - filled)
        count = actions if actions is not None else int(done)
        rate = f"{count / elapsed:5.1f}/s" if elapsed >= 0.5 else "    -/s"
        if self.unit == "s":
            what = f"{min(done, self.total):5.1f}/{self.total:.0f} s  {count} actions"
        else:
            what = f"{int(done):>{len(str(int(self.total)))}}/{int(self.total)} {self.unit}"
        return f"[{bar}] {what}  {rate}  {elapsed:5.1f} s"

    def close(self) -> None:
        """Finish the line (leaves the last state visible)."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False
