"""Progress bars on stderr (or a Jupyter widget) drawn by tqdm: done/total, rate, elapsed and ETA.

On a terminal the bar redraws one line (at most 5 times a second); elsewhere (CI logs, files) it
prints a whole line at every 10 % and at least every ``every`` seconds (default 5).  A heartbeat
thread redraws every second even while no work is reported (elapsed time keeps moving), and work
done inside a long chunk can be reported with :meth:`Progress.partial` before the chunk's
:meth:`update`.  The analyses call this interface only; tqdm stays behind it."""

from __future__ import annotations

import io
import sys
import threading
import time
from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["Progress", "format_duration"]

#: tqdm.auto picked Jupyter's widget: redraw it as often as a terminal line, print no newline at the end.
WIDGET = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)
BAR_FORMAT = "{share}  {done}/{total_fmt} {unit}  {rate_fmt}  elapsed {elapsed_fmt}  ETA {eta_fmt}"


def format_duration(seconds: float) -> str:
    """``4.2 s``, ``42 s``, ``3 min 20 s``, ``5 h 10 min``, ``12.5 days``, ``31,710 years``."""
    if seconds != seconds or seconds == float("inf"):
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds < 86400 * 730:
        return f"{seconds / 86400:,.1f} days"
    return f"{seconds / (86400 * 365.25):,.0f} years"


class _Bar(tqdm):
    """tqdm with the fields of :data:`BAR_FORMAT`: a share that stays readable for tiny fractions of
    huge runs (``6.6e-06%``), thousands separators and durations in words."""

    monitor_interval = 0  # no tqdm monitor thread: Progress redraws (heartbeat)

    @property
    def format_dict(self):
        fields = super().format_dict
        done, total, elapsed = fields["n"], max(fields["total"] or 0, 1), fields["elapsed"]
        share = 100 * done / total
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("inf")
        fields.update(share=f"{share:5.1f}%" if share >= 1 or share == 0 else f"{share:.2g}%",
                      done=f"{done:,}", total_fmt=f"{fields['total']:,}",
                      rate_fmt=f"{rate:,.0f} {fields['unit']}/s", elapsed_fmt=format_duration(elapsed),
                      eta_fmt=format_duration(eta) if done else "estimating…")
        return fields


class _Lines:
    """A file for tqdm off a terminal: each redraw becomes one whole line (logs keep every line)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\033[A", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    def __init__(self, total: int, unit: str = "replicates", enabled: bool = True, stream=None,
                 every: float = 5.0, heartbeat: float | None = 1.0) -> None:
        self.total, self.unit, self.enabled = total, unit, enabled
        self.stream = stream or sys.stderr
        self.every = every
        self.done = 0
        self._partial = 0  # reported inside the running chunk(s), not yet committed by update()
        self._last_print = float("-inf")
        self._last_decile = -1
        self._lock = threading.Lock()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = _Bar(total=total, unit=unit, disable=not enabled, file=self.stream if self.tty else
                         _Lines(self.stream), bar_format=BAR_FORMAT, delay=float("inf"), dynamic_ncols=True,
                         leave=True) if enabled else None
        self._stop = threading.Event()
        self._thread = None
        if enabled and heartbeat:
            self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True,
                                            name="cityrank-progress")
            self._thread.start()

    def update(self, n: int) -> None:
        """``n`` more units of work done (a completed chunk); clears what :meth:`partial` reported."""
        with self._lock:
            self.done += n
            self._partial = 0
        self._show()

    def partial(self, n: int) -> None:
        """``n`` more units done inside a chunk that is still running (thread-safe; shown until the
        chunk's :meth:`update`, which replaces them)."""
        with self._lock:
            self._partial += n
        self._show()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._show()

    def line(self) -> str:
        """The bar's current text (as printed in a log)."""
        bar = self._bar or _Bar(total=self.total, unit=self.unit, file=io.StringIO(), bar_format=BAR_FORMAT,
                                delay=float("inf"))
        bar.n = min(self.done + self._partial, self.total)
        return bar.format_meter(**bar.format_dict)

    @contextmanager
    def paused(self):
        """No redraw inside the block (e.g. while a question is asked on the terminal)."""
        enabled, self.enabled = self.enabled, False
        if enabled and self.tty:
            self.stream.write("\n")
        try:
            yield self
        finally:
            self.enabled = enabled

    def _show(self) -> None:
        if not self.enabled or self._bar is None:
            return
        with self._lock:
            now = time.perf_counter()
            done = self.done + self._partial
            decile = int(10 * done / max(self.total, 1))
            finished = self.done >= self.total
            if (self.tty or WIDGET) and now - self._last_print < 0.2 and not finished:
                return
            if not (self.tty or WIDGET) and decile == self._last_decile and now - self._last_print < self.every \
                    and not finished:
                return
            if finished and self._last_decile == 10:
                return  # the final line is printed once
            self._last_print, self._last_decile = now, decile
            self._bar.n = min(done, self.total)
            self._bar.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
        if self.enabled and self.tty and not WIDGET:
            self.stream.write("\n")
            self.stream.flush()
