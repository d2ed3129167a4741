"""A progress line for long operator commands: done/total, rate and time left, on
standard error (redrawn in place on a terminal, a line every few seconds otherwise),
so standard output keeps only the command's result."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

LOG_EVERY_SECONDS = 5.0
REDRAW_EVERY_SECONDS = 0.2


class Progress:
    def __init__(
        self,
        what: str,
        total: int | None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.done = what, total, 0
        self._stream = stream or sys.stderr
        self._clock = clock
        self._started = self._shown = clock()
        self._terminal = self._stream.isatty()
        self._shown_done: int | None = None

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self._clock()
        every = REDRAW_EVERY_SECONDS if self._terminal else LOG_EVERY_SECONDS
        if now - self._shown >= every:
            self._shown = now
            self._show(now, final=False)

    def finish(self) -> None:
        if self._terminal or self._shown_done != self.done:
            self._show(self._clock(), final=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.what}: {self.done}"
        if self.total is not None:
            text += f"/{self.total}"
            if self.total:
                text += f" ({100 * self.done // self.total}%)"
        text += f", {rate:,.0f}/s"
        if self.total is not None and rate > 0 and self.done < self.total:
            text += f", about {_duration((self.total - self.done) / rate)} left"
        else:
            text += f", {_duration(elapsed)}"
        return text

    def _show(self, now: float, *, final: bool) -> None:
        self._shown_done = self.done
        text = self.line(now)
        if self._terminal:
            self._stream.write("\r" + text.ljust(72) + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


def _duration(span: float) -> str:
    seconds = round(span)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
