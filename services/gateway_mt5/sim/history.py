"""Load M1 history into numpy arrays, refusing any file the replay could not trust.

Two layouts are read (``fmt="auto"`` tells them apart by the header):

- the shipped CSV: ``time_utc,open,high,low,close,volume`` with ``YYYY-MM-DD HH:MM:SS`` bar open
  times in UTC; ``volume`` may be empty (gold) or a real traded volume (bitcoin);
- a MetaTrader 5 export: tab-separated ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL>
  <SPREAD>``, dates ``2025.07.09``, times ``17:00:00``, in the broker's server time (UTC for Exness).

Either may be gzip-compressed and UTF-8 or UTF-16 (MT5 writes UTF-16 with a BOM). Any NaN or
unreadable field, non-positive price, OHLC inconsistency, time not on a minute, or unsorted or
duplicate bar is an error naming the file, the line and the problem.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from services.gateway_mt5.sim.history_fast import read_columns

Format = Literal["auto", "csv", "mt5"]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class HistoryError(ValueError):
    """A history file the simulator refuses; the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class M1History:
    """One symbol's M1 bars as columns; ``time`` is the bar OPEN time in epoch seconds."""

    source: Path
    time: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    tick_volume: npt.NDArray[np.int64]
    spread: npt.NDArray[np.int64] | None
    """Spread in points per bar (MT5 exports only), else None."""

    def __len__(self) -> int:
        return len(self.time)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def _day_seconds(text: str, sep: str, cache: dict[str, int]) -> int:
    seconds = cache.get(text)
    if seconds is None:
        year, month, day = (int(part) for part in text.split(sep))
        seconds = (date(year, month, day).toordinal() - _EPOCH_ORDINAL) * 86_400
        cache[text] = seconds
    return seconds


def _clock_seconds(text: str) -> int:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"time {text!r} is not HH:MM[:SS]")
    hour, minute = int(parts[0]), int(parts[1])
    second = int(parts[2]) if len(parts) == 3 else 0
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
        raise ValueError(f"time {text!r} is out of range")
    return hour * 3600 + minute * 60 + second


def _price(text: str, name: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} {text!r} is not a positive finite price")
    return value


def _count(text: str, name: str) -> int:
    if text.strip() == "":
        return 0
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} {text!r} is not a finite non-negative number")
    return math.floor(value + 0.5)


def detect_format(header: str) -> Literal["csv", "mt5"]:
    """'mt5' for a MetaTrader export header, 'csv' for the shipped one; anything else is refused."""
    if header.lstrip().upper().startswith("<DATE>"):
        return "mt5"
    if header.split(",", maxsplit=1)[0].strip().lower() in ("time_utc", "time"):
        return "csv"
    raise ValueError(f"unknown header {header[:80]!r}: expected 'time_utc,open,...' or '<DATE>\\t<TIME>...'")


Row = tuple[int, float, float, float, float, int, int]


def _parse(kind: str, line: str, days: dict[str, int]) -> Row:
    """(time, open, high, low, close, tick volume, spread) of one data line; ValueError if unreadable."""
    if kind == "mt5":
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 9:
            raise ValueError(f"expected 9 tab-separated fields, got {len(fields)}")
        t = _day_seconds(fields[0], ".", days) + _clock_seconds(fields[1])
        prices = fields[2:6]
        volume, spread = _count(fields[6], "tick volume"), _count(fields[8], "spread")
    else:
        fields = line.split(",")
        if len(fields) not in (5, 6):
            raise ValueError(f"expected 6 comma-separated fields, got {len(fields)}")
        stamp = fields[0].strip().split(" ")
        if len(stamp) != 2:
            raise ValueError(f"time {fields[0]!r} is not 'YYYY-MM-DD HH:MM:SS'")
        t = _day_seconds(stamp[0], "-", days) + _clock_seconds(stamp[1])
        prices = fields[1:5]
        volume, spread = (_count(fields[5], "volume") if len(fields) == 6 else 0), 0
    names = ("open", "high", "low", "close")
    o, h, lo, c = (_price(text, name) for text, name in zip(prices, names, strict=True))
    return t, o, h, lo, c, volume, spread


def _problem(row: Row, previous: int) -> str:
    """What makes a parsed bar unacceptable after the bar at ``previous``, or ''."""
    t, o, h, lo, c, _, _ = row
    if t % 60:
        return f"bar time {t} is not on a whole minute"
    if t == previous:
        return "duplicate bar (same time as the line before)"
    if t < previous:
        return "bars not sorted by time (earlier than the line before)"
    if h < lo:
        return f"high {h} < low {lo}"
    if h < max(o, c) or lo > min(o, c):
        return f"open {o} / close {c} outside [low {lo}, high {h}]"
    return ""


def load_m1(path: Path, fmt: Format = "auto") -> M1History:
    """Read one M1 file; raise HistoryError naming file and line on any problem."""
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise HistoryError(f"{path}: cannot read: {exc}") from exc
    lines = text.splitlines()
    if not lines:
        raise HistoryError(f"{path}: line 1: empty file, expected a header")
    try:
        kind = detect_format(lines[0]) if fmt == "auto" else fmt
    except ValueError as exc:
        raise HistoryError(f"{path}: line 1: {exc}") from exc
    del text  # the lines hold it all now; dropping the text early lowers the peak (and so the resident size)
    # Vectorised for a plain file; the line reader otherwise, which also names the first bad line.
    columns = read_columns(kind, lines) or _slow(path, kind, lines)
    times, opens, highs, lows, closes, volumes, spreads = columns
    return M1History(
        source=path,
        time=np.asarray(times, dtype=np.int64),
        open=np.asarray(opens, dtype=np.float64),
        high=np.asarray(highs, dtype=np.float64),
        low=np.asarray(lows, dtype=np.float64),
        close=np.asarray(closes, dtype=np.float64),
        tick_volume=np.asarray(volumes, dtype=np.int64),
        spread=np.asarray(spreads, dtype=np.int64) if kind == "mt5" else None,
    )


def _slow(path: Path, kind: str, lines: list[str]) -> tuple[np.ndarray, ...]:
    """Line-by-line read, the reference for what is accepted; raises HistoryError at the first bad line."""
    rows: list[Row] = []
    days: dict[str, int] = {}
    previous = -1
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            row = _parse(kind, line, days)
        except ValueError as exc:
            raise HistoryError(f"{path}: line {number}: {exc}") from exc
        problem = _problem(row, previous)
        if problem:
            raise HistoryError(f"{path}: line {number}: {problem}")
        previous = row[0]
        rows.append(row)
    if not rows:
        raise HistoryError(f"{path}: line {len(lines)}: no bars after the header")
    return tuple(np.asarray(column) for column in zip(*rows, strict=True))
