"""engine.progress: tqdm behind the Progress interface (terminal redraw, whole lines in a log)."""

from __future__ import annotations

import io
import time

from tqdm import tqdm

from engine.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line_then_a_newline():
    stream = _Terminal()
    bar = Progress(100, stream=stream, heartbeat=None)
    assert isinstance(bar._bar, tqdm)
    bar.update(50)
    time.sleep(0.25)  # the terminal redraws at most 5 times a second
    bar.update(50)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r 50.0%  50/100 replicates") and "\r100.0%  100/100 replicates" in text
    assert text.endswith("\n") and text.count("\n") == 1 and "ETA 0.0 s" in text


def test_a_log_gets_a_whole_line_per_tenth_and_the_last_line_once():
    stream = io.StringIO()
    bar = Progress(100, unit="evaluations", stream=stream, every=60, heartbeat=None)
    for _ in range(20):
        bar.update(5)
    bar.update(0)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["5.0%"] + [f"{p}.0%" for p in range(10, 101, 10)]  # first, then 10 %
    assert all("evaluations/s" in line and "\r" not in line for line in lines)
    assert bar.line().startswith("100.0%  100/100 evaluations")


def test_disabled_prints_nothing():
    stream = io.StringIO()
    bar = Progress(10, stream=stream, enabled=False)
    bar.update(10)
    bar.close()
    assert stream.getvalue() == "" and bar.line().startswith("100.0%  10/10 replicates")


def test_in_jupyter_the_widget_redraws_like_a_terminal(monkeypatch):
    import engine.progress

    monkeypatch.setattr(engine.progress, "WIDGET", True)
    stream = io.StringIO()  # what the widget shows is tqdm's business; here: how often it is redrawn
    bar = Progress(1000, stream=stream, every=60, heartbeat=None)
    bar.update(1)
    time.sleep(0.25)
    bar.update(1)  # same tenth, well inside `every`: a log would wait, a widget redraws
    bar.close()
    assert [line.split()[1] for line in stream.getvalue().splitlines()] == ["1/1,000", "2/1,000"]
