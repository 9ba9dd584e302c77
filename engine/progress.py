"""A dependency-free progress bar on stderr: done/total, rate and ETA.

On a terminal it redraws one line; elsewhere (CI logs) it prints a line every 10 %."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, unit: str = "replicates", enabled: bool = True, stream=None) -> None:
        self.total, self.unit, self.enabled = total, unit, enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.perf_counter()
        self._last_print = 0.0
        self._last_decile = -1
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        decile = int(10 * self.done / max(self.total, 1))
        if self.tty and now - self._last_print < 0.2 and self.done < self.total:
            return
        if not self.tty and decile == self._last_decile and self.done < self.total:
            return
        self._last_print, self._last_decile = now, decile
        rate = self.rate
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        line = (f"{100 * self.done / max(self.total, 1):5.1f}%  {self.done:,}/{self.total:,} {self.unit}  "
                f"{rate:,.0f} {self.unit}/s  ETA {eta:,.1f} s")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
