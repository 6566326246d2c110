"""The progress bar shows bars per second and an ETA on a terminal, and nothing anywhere else."""

from __future__ import annotations

import io

from backtest.progress import ProgressBar

T = 1_752_537_600.0  # 2025-07-15 00:00 UTC


class Terminal(io.StringIO):
    """A stream that says it is a terminal (the edge the bar looks at)."""

    def isatty(self) -> bool:
        return True


def test_the_line_has_the_rate_and_the_eta() -> None:
    bar = ProgressBar(10_000, Terminal())
    line = bar.line(T, 2_500, elapsed=0.5)
    assert "25.0%" in line and "2025-07-15 00:00" in line and "2,500/10,000 M1 bars" in line
    assert "5,000 bars/s" in line and "ETA 0:01" in line  # 7,500 bars left at 5,000 a second


def test_a_terminal_gets_the_bar_and_anything_else_gets_nothing() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = ProgressBar(100, stream)
        bar(T, 100)
        bar.close()
    assert terminal.getvalue().startswith("\r[") and terminal.getvalue().endswith("\n")
    assert pipe.getvalue() == ""
